//! The user's side of `console`: the terminal in raw mode (restored on
//! every way out, panics included) and standard input read on a thread of
//! its own, so that leaving never waits for a key.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// The terminal's settings before raw mode; restores them when dropped.
pub(super) struct RawMode {
    original: Termios,
}

impl RawMode {
    /// Puts standard input in raw mode if it is a terminal; `None` otherwise.
    pub(super) fn enter_if_terminal() -> Result<Option<RawMode>> {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        if !nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false) {
            return Ok(None);
        }
        let original = termios::tcgetattr(fd)
            .map_err(|e| Error::io("reading the terminal settings", e.into()))?;
        let mut raw = original.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)
            .map_err(|e| Error::io("putting the terminal in raw mode", e.into()))?;
        Ok(Some(RawMode { original }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = io::stdin();
        // TCSADRAIN: let what we printed reach the screen under the raw
        // settings, then restore.
        if let Err(e) = termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &self.original) {
            eprintln!("warning: could not restore the terminal settings ({e}); run `stty sane`");
        }
    }
}

/// Standard input read on its own thread (a blocking read cannot be
/// cancelled, so the thread polls stdin together with a stop pipe and is
/// joined when this is dropped; tokio's stdin would keep the runtime waiting).
pub(super) struct Keyboard {
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl Keyboard {
    pub(super) fn spawn() -> Result<Keyboard> {
        let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io("creating the stdin stop pipe", e.into()))?;
        let (sender, chunks) = mpsc::channel(16);
        let thread = std::thread::Builder::new()
            .name("console-stdin".into())
            .spawn(move || read_stdin(stop_read, sender))
            .map_err(|e| Error::io("starting the stdin reader", e))?;
        Ok(Keyboard {
            chunks,
            stop: Some(stop_write),
            thread: Some(thread),
        })
    }

    /// The next chunk typed; `None` or an empty chunk means end of input.
    pub(super) async fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        self.chunks.recv().await
    }
}

impl Drop for Keyboard {
    fn drop(&mut self) {
        self.chunks.close();
        if let Some(stop) = self.stop.take() {
            let _ = nix::unistd::write(&stop, b"x");
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The stdin thread: waits for input or the stop pipe, forwards chunks;
/// sends an empty chunk at end of input.
fn read_stdin(stop: OwnedFd, sender: mpsc::Sender<io::Result<Vec<u8>>>) {
    // SAFETY: fd 0 stays open for the life of the process.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let mut buf = vec![0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(stdin, PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                let _ = sender.blocking_send(Err(e.into()));
                return;
            }
            Ok(_) => {}
        }
        if fds[1].any().unwrap_or(true) {
            return;
        }
        let chunk = match nix::unistd::read(0, &mut buf) {
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            // A hung-up terminal reads as EIO: that is the end of input too.
            Err(nix::errno::Errno::EIO) | Ok(0) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
            Ok(n) => Ok(buf[..n].to_vec()),
        };
        let last = !matches!(&chunk, Ok(c) if !c.is_empty());
        if sender.blocking_send(chunk).is_err() || last {
            return;
        }
    }
}
