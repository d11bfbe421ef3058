//! `exec:` targets: a local program run under a pseudo-terminal.
//!
//! The program gets a fresh session with the PTY as its controlling terminal,
//! so it behaves as on a real console (`virsh console`, `socat`, a shell).
//! The master side is non-blocking and driven by tokio's [`AsyncFd`]. When the
//! program exits, Linux reports `EIO` on the master: that is EOF, not an error.
//! Dropping the transport hangs up the terminal and reaps the program; if
//! this process dies instead, the kernel closes the master (it is never
//! inherited) and the hang-up reaches the program all the same.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use async_trait::async_trait;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::{openpty, Winsize};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{SendKind, Transport, TransportResult};
use crate::error::{Error, Result};

/// Columns and rows of the terminal the program sees.
pub const PTY_SIZE: (u16, u16) = (200, 50);

/// A program under a PTY.
pub struct PtyTransport {
    master: AsyncFd<std::fs::File>,
    child: Child,
    description: String,
}

impl PtyTransport {
    /// Starts `argv[0]` with `argv[1..]` under a new PTY of [`PTY_SIZE`].
    pub fn spawn(argv: &[String]) -> Result<Self> {
        PtyTransport::spawn_sized(argv, PTY_SIZE)
    }

    /// Starts `argv[0]` with `argv[1..]` under a new PTY of `(columns, rows)`.
    pub fn spawn_sized(argv: &[String], size: (u16, u16)) -> Result<Self> {
        let description = format!("exec:{}", shell_words::join(argv));
        // The variables our secrets were read from (--password-env and the
        // like) are not the program's business.
        let mut command = crate::secret::command(&argv[0]);
        command.args(&argv[1..]);
        PtyTransport::start(command, description, size, StderrTo::Pty).map_err(|e| match e {
            Start::Spawn(e) => Error::usage(format!(
                "cannot run {:?} for target exec:{}: {e}; check the command exists and is executable",
                argv[0],
                shell_words::join(argv)
            )),
            Start::Other(e) => e,
        })
    }

    /// Starts `command` (its environment as the caller set it) with the PTY
    /// as its terminal, standard input and output, and its standard error
    /// where `stderr` says.
    pub fn start(
        mut command: Command,
        description: String,
        (columns, rows): (u16, u16),
        stderr: StderrTo,
    ) -> std::result::Result<Self, Start> {
        let size = Winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None)
            .map_err(|e| Error::io("cannot allocate a pseudo-terminal", e.into()))?;
        // Neither end may leak into the program beyond its stdio: a master
        // held by the program itself would keep the terminal from hanging up
        // when we exit, and the program would outlive us.
        for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
            fcntl(fd, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))
                .map_err(|e| Error::io("marking the PTY close-on-exec", e.into()))?;
        }
        let slave: OwnedFd = pty.slave;
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(|e| Error::io("duplicating the PTY", e))
        };
        command
            .stdin(dup(&slave)?)
            .stdout(dup(&slave)?)
            .stderr(match stderr {
                StderrTo::Pty => Stdio::from(slave),
                StderrTo::Pipe => Stdio::piped(),
            });
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // The master is ready before the program starts: nothing can fail
        // after it, so no program is left running on an error.
        let master = std::fs::File::from(pty.master);
        let flags = fcntl(master.as_raw_fd(), FcntlArg::F_GETFL)
            .map_err(|e| Error::io("reading PTY flags", e.into()))?;
        fcntl(
            master.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(|e| Error::io("making the PTY non-blocking", e.into()))?;
        // SAFETY: `master` is an owned File; its descriptor stays open and the
        // same for as long as the AsyncFd owns it.
        let master = unsafe {
            AsyncFd::register_with_interest(master, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(|e| {
            Error::io(
                "registering the PTY with the runtime",
                std::io::Error::other(e.to_string()),
            )
        })?;
        let child = command.spawn().map_err(Start::Spawn)?;
        Ok(PtyTransport {
            master,
            child,
            description,
        })
    }

    /// The program's standard error, when [`PtyTransport::start`] piped it.
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// True once the program switched its terminal out of canonical (line)
    /// mode, as interactive programs do when they are ready for keys.
    pub fn in_raw_mode(&self) -> bool {
        nix::sys::termios::tcgetattr(self.master.get_ref().as_fd()).is_ok_and(|t| {
            !t.local_flags
                .contains(nix::sys::termios::LocalFlags::ICANON)
        })
    }

    /// True once the program has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

/// Where a program under a PTY writes its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrTo {
    /// The terminal, like its other output.
    Pty,
    /// A pipe of its own ([`PtyTransport::take_stderr`]): the program's
    /// messages kept apart from what the console says.
    Pipe,
}

/// Why [`PtyTransport::start`] failed.
#[derive(Debug)]
pub enum Start {
    /// The program could not be started (not found, not executable).
    Spawn(io::Error),
    /// The terminal could not be set up.
    Other(Error),
}

impl From<Error> for Start {
    fn from(e: Error) -> Self {
        Start::Other(e)
    }
}

#[async_trait]
impl Transport for PtyTransport {
    async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard.try_io(|inner| inner.get_ref().read(buf)) {
                Ok(Ok(n)) => return Ok(n),
                // The slave side is closed: the program has exited.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => continue,
            }
        }
    }

    async fn write(&mut self, mut data: &[u8], _kind: SendKind) -> TransportResult<()> {
        while !data.is_empty() {
            let mut guard = self.master.writable().await?;
            match guard.try_io(|inner| inner.get_ref().write(data)) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    async fn send_break(&mut self) -> TransportResult<()> {
        nix::sys::termios::tcsendbreak(self.master.get_ref().as_fd(), 0)
            .map_err(|e| io::Error::from(e).into())
    }

    async fn resize(&mut self, columns: u16, rows: u16) -> TransportResult<()> {
        let size = libc::winsize {
            ws_row: rows.max(1),
            ws_col: columns.max(1),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the struct we pass; the kernel sends
        // the program SIGWINCH.
        let done =
            unsafe { libc::ioctl(self.master.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &size) };
        if done < 0 {
            return Err(io::Error::last_os_error().into());
        }
        Ok(())
    }

    async fn close(&mut self) -> TransportResult<()> {
        self.hang_up();
        Ok(())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl PtyTransport {
    fn hang_up(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGHUP,
            );
            for _ in 0..20 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for PtyTransport {
    fn drop(&mut self) {
        self.hang_up();
    }
}
