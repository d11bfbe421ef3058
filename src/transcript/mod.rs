//! Transcripts: every session recorded as asciicast v2, secrets redacted.
//!
//! [`Recorder`] writes a transcript while a session runs: console output as
//! `o` events, what was sent as `i` events (secrets as `<redacted>`), and
//! markers (`m`) for each match and script step. [`cast`] reads transcripts
//! back, for `play` and for replaying one as a console.

pub mod cast;
mod recorder;

pub use recorder::{default_path, Recorder};

use std::path::Path;

use crate::error::{Error, ExitCode, Result};

/// Runs `play FILE [--speed N]`.
pub fn play(_file: &Path, _speed: f64) -> Result<ExitCode> {
    Err(Error::NotYetAvailable("`play`"))
}
