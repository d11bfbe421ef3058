//! `console`: interactive pass-through between the user's terminal and a console.

use crate::cli::Common;
use crate::error::{Error, ExitCode, Result};

/// Runs `console TARGET`.
pub async fn console_command(_target: &str, _common: &Common) -> Result<ExitCode> {
    Err(Error::NotYetAvailable("`console`"))
}
