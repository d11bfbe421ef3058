//! Console scripts in Rhai.

use std::path::Path;

use crate::cli::{Common, RunArgs};
use crate::error::{Error, ExitCode, Result};

/// Runs `run TARGET SCRIPT`.
pub async fn run_command(_args: RunArgs, _common: Common) -> Result<ExitCode> {
    Err(Error::NotYetAvailable("`run`"))
}

/// Runs `lint SCRIPT`.
pub fn lint_command(_script: &Path, _common: &Common) -> Result<ExitCode> {
    Err(Error::NotYetAvailable("`lint`"))
}
