//! SIGINT, SIGTERM and SIGHUP for `run` and `doctor`.
//!
//! `run` and `doctor` must never die with a root shell left open
//! on the console or a transcript without its end. So for them the CLI
//! takes over the three signals: the first is published on a watch channel
//! that every session of the process follows ([`crate::Session::watch_signals`]):
//! the session stops what it does, the shell interrupts the running
//! command and logs out, the transcript is closed, and the command returns
//! [`crate::ErrorKind::Interrupted`], whose exit code is 128 + the signal. A
//! second signal means "now": the process exits at once with that code.
//! `console` handles the three itself (it relays, it has no shell to log
//! out); other commands keep the default dispositions (a signal ends them).

use std::sync::OnceLock;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::error::{Error, Result, Signal};

/// The channel, once [`listen`] has run.
static SIGNALS: OnceLock<watch::Receiver<Option<Signal>>> = OnceLock::new();

/// Takes over the three signals for this process (call inside the runtime).
pub(super) fn listen() -> Result<()> {
    let mut streams = Vec::new();
    for (kind, which) in [
        (SignalKind::interrupt(), Signal::Interrupt),
        (SignalKind::terminate(), Signal::Terminate),
        (SignalKind::hangup(), Signal::HangUp),
    ] {
        let stream = signal(kind).map_err(|e| Error::io(format!("cannot handle {which}"), e))?;
        streams.push((stream, which));
    }
    let (tx, rx) = watch::channel(None);
    let _ = SIGNALS.set(rx);
    tokio::spawn(async move {
        let mut seen = false;
        loop {
            let which = next(&mut streams).await;
            if seen {
                // The second signal: the user means it.
                std::process::exit(which.exit_code().code());
            }
            seen = true;
            tracing::warn!(
                "{which}: logging out and closing the transcript (again to quit at once)"
            );
            let _ = tx.send(Some(which));
        }
    });
    Ok(())
}

/// The channel sessions follow, when this command takes over signals.
pub(super) fn receiver() -> Option<watch::Receiver<Option<Signal>>> {
    SIGNALS.get().cloned()
}

async fn next(streams: &mut [(tokio::signal::unix::Signal, Signal)]) -> Signal {
    let futures = streams.iter_mut().map(|(stream, which)| {
        let which = *which;
        Box::pin(async move {
            stream.recv().await;
            which
        })
    });
    futures_util::future::select_all(futures).await.0
}
