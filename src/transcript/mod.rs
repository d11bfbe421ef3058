//! Transcripts: every session recorded as asciicast v2, secrets redacted.
//!
//! [`Recorder`] writes a transcript while a session runs: console output as
//! `o` events, what was sent as `i` events (secrets as `<redacted>`), and
//! markers (`m`) for each match and script step. [`cast`] reads transcripts
//! back, for `play` and for replaying one as a console.

pub mod cast;
pub mod play;
mod recorder;

pub use play::play;
pub use recorder::{default_path, Recorder, Watched, Watcher};
