//! `--watch`: a session's events shown live on stderr, as the transcript
//! has them (secrets redacted), the way Expect's `log_user 1` shows a
//! spawned program. The console's escape sequences and other control
//! characters are dropped first: a hostile console must not drive the
//! user's terminal (set its title, write its clipboard). With `-vv`, what
//! was sent and each match are shown too, on lines of their own.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::text::EscapeStripper;
use crate::transcript::{Watched, Watcher};

/// The watcher `--watch` installs; `verbose` is the `-v` count.
pub(super) fn watcher(verbose: u8) -> Watcher {
    let stripper = Mutex::new(EscapeStripper::new());
    Arc::new(move |event| {
        let mut err = std::io::stderr().lock();
        let _ = match event {
            Watched::Output(text) => {
                let mut plain = String::with_capacity(text.len());
                stripper
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .strip(text, &mut plain);
                plain.retain(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\x08'));
                // Also what the process knows beyond the session (a
                // --token-env token, AWS keys), as every other stderr line.
                err.write_all(crate::secret::scrub_known(&plain).as_bytes())
            }
            Watched::Input(text) if verbose >= 2 => {
                writeln!(err, "\n[sent {}]", crate::text::printable(text))
            }
            Watched::Marker(text) if verbose >= 2 => {
                writeln!(err, "\n[{}]", crate::text::printable(text))
            }
            Watched::Input(_) | Watched::Marker(_) => Ok(()),
        };
    })
}
