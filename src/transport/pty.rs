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
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd};

use async_trait::async_trait;
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::spawn::{spawn_session_leader, ErrorsTo, Program, SessionLeader};
use super::{SendKind, Transport, TransportResult};
use crate::error::{Error, Result};

/// Columns and rows of the terminal the program sees.
pub const PTY_SIZE: (u16, u16) = (200, 50);

/// A program under a PTY.
pub struct PtyTransport {
    master: AsyncFd<std::fs::File>,
    child: SessionLeader,
    /// The read end of the program's standard error, when it was piped.
    stderr: Option<std::fs::File>,
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
        // like) are not the program's business: Program leaves them out.
        let command = Program::new(argv);
        PtyTransport::start(command, description, size, StderrTo::Pty).map_err(|e| match e {
            Start::Spawn(e) => Error::usage(format!(
                "cannot run {:?} for target exec:{}: {e}; check the command exists and is executable",
                argv[0],
                shell_words::join(argv)
            )),
            Start::Other(e) => e,
        })
    }

    /// Starts `command` as the leader of a new session with the PTY as its
    /// controlling terminal, standard input and output, and its standard
    /// error where `stderr` says.
    pub fn start(
        command: Program,
        description: String,
        (columns, rows): (u16, u16),
        stderr: StderrTo,
    ) -> std::result::Result<Self, Start> {
        // Close-on-exec from the start: a master held by any program we
        // start (this one or one started meanwhile on another thread) would
        // keep the terminal from hanging up when we exit, and the program
        // would outlive us. Non-blocking for the runtime; no slave is
        // opened here: the program opens it by name in its new session.
        let master =
            posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
                .map_err(|e| Error::io("cannot allocate a pseudo-terminal", e.into()))?;
        grantpt(&master)
            .and_then(|()| unlockpt(&master))
            .map_err(|e| Error::io("unlocking the pseudo-terminal", e.into()))?;
        let terminal =
            ptsname_r(&master).map_err(|e| Error::io("naming the pseudo-terminal", e.into()))?;
        // SAFETY: into_raw_fd hands over the one owner of an open descriptor.
        let master = unsafe { std::fs::File::from_raw_fd(master.into_raw_fd()) };
        set_size(&master, columns, rows)
            .map_err(|e| Error::io("setting the terminal's size", e))?;
        let pipe = match stderr {
            StderrTo::Pty => None,
            StderrTo::Pipe => Some(
                nix::unistd::pipe2(OFlag::O_CLOEXEC)
                    .map_err(|e| Error::io("creating a pipe for the program's errors", e.into()))?,
            ),
        };
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
        let errors = match &pipe {
            None => ErrorsTo::Terminal,
            Some((_, write)) => ErrorsTo::Fd(write.as_fd()),
        };
        let child = spawn_session_leader(&command, terminal.as_ref(), errors)?;
        // Our copy of the pipe's write end closes here: the program's
        // messages end when it exits.
        Ok(PtyTransport {
            master,
            child,
            stderr: pipe.map(|(read, _)| std::fs::File::from(read)),
            description,
        })
    }

    /// The program's standard error, when [`PtyTransport::start`] piped it.
    pub fn take_stderr(&mut self) -> Option<std::fs::File> {
        self.stderr.take()
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
        self.child.exited()
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
    /// The program could not be run (not found, not executable, a NUL in
    /// an argument): the user can mend it by naming another program.
    Spawn(io::Error),
    /// The terminal or the program's session could not be set up: not the
    /// program's fault.
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
        set_size(self.master.get_ref(), columns, rows).map_err(Into::into)
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
        if !self.child.exited() {
            self.child.signal(nix::sys::signal::Signal::SIGHUP);
            for _ in 0..20 {
                if self.child.exited() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            self.child.signal(nix::sys::signal::Signal::SIGKILL);
        }
        self.child.wait();
    }
}

/// Sets the terminal's size (the program gets SIGWINCH).
fn set_size(master: &std::fs::File, columns: u16, rows: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows.max(1),
        ws_col: columns.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the struct we pass.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for PtyTransport {
    fn drop(&mut self) {
        self.hang_up();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Reads until `want` appears (or 10 s pass): everything read so far.
    async fn read_until(pty: &mut PtyTransport, want: &str) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&seen).contains(want) {
            let read = tokio::time::timeout_at(deadline, pty.read(&mut buf)).await;
            match read {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => panic!("reading the PTY: {e}"),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    fn sh(script: &str) -> PtyTransport {
        PtyTransport::spawn(&["sh".to_string(), "-c".to_string(), script.to_string()]).unwrap()
    }

    /// The program leads its own session, and the PTY is its controlling
    /// terminal (`/dev/tty` opens; ^C typed on it interrupts the program).
    #[tokio::test]
    async fn the_program_leads_a_session_on_its_terminal_and_ctrl_c_reaches_it() {
        let mut pty = sh("test \"$(ps -o sid= -p $$)\" -eq $$ && echo LEADER; \
             echo tty-ok >/dev/tty; trap 'echo GOT-INT; exit 0' INT; echo READY; \
             while :; do sleep 0.05; done");
        let shown = read_until(&mut pty, "READY").await;
        assert!(shown.contains("LEADER"), "{shown:?}");
        assert!(shown.contains("tty-ok"), "{shown:?}");
        pty.write(b"\x03", SendKind::Plain).await.unwrap();
        let shown = read_until(&mut pty, "GOT-INT").await;
        assert!(shown.contains("GOT-INT"), "{shown:?}");
    }

    /// Rust ignores SIGPIPE, and an ignored signal survives `exec`: the
    /// program must get it back at its default, or `yes | head -1` makes
    /// `yes` complain about a broken pipe instead of ending quietly.
    #[tokio::test]
    async fn the_program_gets_sigpipe_at_its_default() {
        let mut pty = sh("yes | head -n 1; echo DONE");
        let shown = read_until(&mut pty, "DONE").await;
        assert!(shown.contains("DONE"), "{shown:?}");
        assert!(!shown.contains("Broken pipe"), "{shown:?}");
    }

    /// Dropping the transport hangs up the terminal: the program is gone
    /// (reaped, not a zombie of ours).
    #[tokio::test]
    async fn dropping_the_transport_ends_the_program() {
        let mut pty = sh("echo $$; echo READY; exec sleep 60");
        let shown = read_until(&mut pty, "READY").await;
        let pid: i32 = shown.lines().next().unwrap().trim().parse().unwrap();
        drop(pty);
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
        assert_eq!(gone, Err(nix::errno::Errno::ESRCH), "{pid} still exists");
    }

    /// The master never reaches the program: with it, the program could
    /// keep its own terminal from hanging up.
    #[tokio::test]
    async fn only_the_terminal_reaches_the_program() {
        let mut pty = sh("ls -l /proc/$$/fd; echo DONE");
        let shown = read_until(&mut pty, "DONE").await;
        assert!(shown.contains("/dev/pts/"), "{shown:?}");
        assert!(!shown.contains("ptmx"), "{shown:?}");
    }

    /// Found in review: `posix_spawn` does not run a script without `#!`
    /// under `/bin/sh` as `execvp` (std's `Command`) did.
    #[tokio::test]
    async fn a_script_without_a_shebang_runs_under_sh() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("plain");
        std::fs::write(&script, "echo NO-SHEBANG-$1\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let program = Program::new(&[script.as_os_str(), "ran".as_ref()]);
        let mut pty = PtyTransport::start(program, "t".into(), PTY_SIZE, StderrTo::Pty).unwrap();
        let shown = read_until(&mut pty, "NO-SHEBANG-ran").await;
        assert!(shown.contains("NO-SHEBANG-ran"), "{shown:?}");
    }

    /// A program's environment may hold credentials: its Debug form names
    /// the variables, never their values.
    #[test]
    fn a_programs_debug_form_shows_no_values() {
        let program = Program::new(&["true"]).env("ESE_SECRETISH", "s3cr3t-value-4711");
        let shown = format!("{program:?}");
        assert!(shown.contains("ESE_SECRETISH"), "{shown}");
        assert!(!shown.contains("s3cr3t-value-4711"), "{shown}");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error_and_a_nul_byte_is_refused() {
        let missing = Program::new(&["/nonexistent/program-4711"]);
        let started = PtyTransport::start(missing, "t".into(), PTY_SIZE, StderrTo::Pty);
        assert!(matches!(started, Err(Start::Spawn(e)) if e.kind() == io::ErrorKind::NotFound));
        let nul = Program::new(&["sh", "-c", "echo a\0b"]);
        let started = PtyTransport::start(nul, "t".into(), PTY_SIZE, StderrTo::Pty);
        assert!(matches!(started, Err(Start::Spawn(e)) if e.kind() == io::ErrorKind::InvalidInput));
    }

    /// With `StderrTo::Pipe` the program's errors come through the pipe,
    /// not the terminal; its environment is only what `Program` says.
    #[tokio::test]
    async fn errors_through_the_pipe_and_only_the_given_environment() {
        let program = Program::new(&[
            "sh",
            "-c",
            "echo OUT $ESE_ONLY ${HOME:-no-home}; echo ERR >&2",
        ])
        .without_env()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("ESE_ONLY", "given");
        let mut pty = PtyTransport::start(program, "t".into(), PTY_SIZE, StderrTo::Pipe).unwrap();
        let mut errors = pty.take_stderr().unwrap();
        let shown = read_until(&mut pty, "no-home").await;
        assert!(shown.contains("OUT given no-home"), "{shown:?}");
        assert!(!shown.contains("ERR"), "{shown:?}");
        let mut said = String::new();
        errors.read_to_string(&mut said).unwrap();
        assert_eq!(said, "ERR\n");
    }
}
