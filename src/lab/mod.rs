//! The lab: a local Debian VM with a real serial console.

use crate::cli::{Common, LabCommand};
use crate::error::{Error, ExitCode, Result};

/// Runs a `lab` subcommand.
pub async fn command(_cmd: LabCommand, _common: &Common) -> Result<ExitCode> {
    Err(Error::NotYetAvailable("`lab`"))
}
