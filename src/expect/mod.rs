//! The expect engine: send to a console, wait for patterns, record everything.
//!
//! [`Session`] owns a [`crate::transport::Transport`] and a
//! [`crate::transcript::Recorder`]. Bytes from the console are recorded raw,
//! then decoded (UTF-8 across chunk boundaries, escape sequences removed,
//! secrets scrubbed) into a text buffer that [`Pattern`]s are matched against.
//!
//! # Match semantics
//! - The **earliest match in the stream wins; ties go to the pattern listed
//!   first**. With `["login:", "Login incorrect"]` and the text
//!   `Login incorrect\r\nhost login: `, the failure is seen first, as it must be.
//! - A match consumes the buffer through its end; the text before it is
//!   returned with it, and what follows stays for the next expect.
//! - `$` anchors at the end of what has arrived so far: `login: $` means
//!   "the prompt is waiting".
//! - Timeouts are absolute per call: chatter does not extend them.
//! - Each read searches only the new text plus a lookback of
//!   [`SessionOptions::search_window`] bytes, so work per byte stays constant
//!   however much output arrives; a single match can therefore be at most
//!   that long. Unconsumed text beyond [`SessionOptions::max_buffer`] is
//!   dropped oldest first, so memory stays flat.

//!
//! Programs that draw a screen (GRUB, dialog, editors) are matched on what a
//! terminal would show instead: [`Session::expect_screen`], over a
//! [`VirtualTerminal`] the session keeps once [`Session::watch_screen`]
//! turns it on.

mod pattern;
mod session;
mod terminal;

pub use pattern::{Match, Pattern};
pub use session::{Pacing, Session, SessionOptions};
pub use terminal::VirtualTerminal;
