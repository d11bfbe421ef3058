//! Starting a program as the leader of a new session whose controlling
//! terminal is a PTY, with `posix_spawn`.
//!
//! std's `Command` can only give a child a controlling terminal from a
//! `pre_exec` hook (`setsid`, then `TIOCSCTTY`), and a hook makes it `fork`:
//! the whole parent's page tables are copied for each child and torn down at
//! its `exec`. With a thousand consoles open that copy was a third of the
//! time it took to open them (`perf record`, BENCHMARKS.md workload 4).
//! glibc's `posix_spawn` shares the parent's memory until the `exec`
//! instead, and since glibc 2.26 it can start the child in a new session
//! (`POSIX_SPAWN_SETSID`) *before* its file actions run; opening the
//! terminal's slave by name as a session leader then makes it the controlling
//! terminal, as `TIOCSCTTY` did. (nix 0.29, the version the crate uses, has
//! no `posix_spawn` wrapper; the calls are made through `libc` here, each
//! checked, and the C structures are freed on every path.)
//!
//! The child's environment is always spelled out ([`Program`]), never
//! inherited implicitly, so no variable a secret was read from reaches it.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::Start;
use crate::error::Error;

/// A program to start: its arguments and its whole environment.
#[derive(Clone)]
pub struct Program {
    argv: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl Program {
    /// `argv[0]` (looked up in `PATH`) with `argv[1..]`, in this process's
    /// environment less the variables secrets were read from
    /// ([`crate::secret::inherited_environment`]).
    pub fn new<S: AsRef<OsStr>>(argv: &[S]) -> Program {
        Program {
            argv: argv.iter().map(|a| a.as_ref().to_owned()).collect(),
            env: crate::secret::inherited_environment(),
        }
    }

    /// The same program with no environment at all, until [`Program::env`]
    /// adds to it.
    pub fn without_env(mut self) -> Program {
        self.env.clear();
        self
    }

    /// Sets `key` to `value` in the program's environment.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Program {
        let key = key.as_ref();
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.as_ref().to_owned()));
        self
    }
}

/// The environment's names only: its values may be credentials.
impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("argv", &self.argv)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

/// Where the child's standard error goes.
pub(super) enum ErrorsTo<'a> {
    /// The terminal, like its other output.
    Terminal,
    /// This descriptor (the write end of a pipe).
    Fd(BorrowedFd<'a>),
}

/// A child started by [`spawn_session_leader`]: its process ID and, once it
/// has been reaped, its end (so a reused ID is never waited for or signalled).
#[derive(Debug)]
pub(super) struct SessionLeader {
    pid: Pid,
    reaped: bool,
}

/// Starts `program` as the leader of a new session with the PTY slave
/// named `terminal` as its controlling terminal and its standard input and
/// output, and standard error where `errors` says. Descriptors marked
/// close-on-exec (every one this crate opens) do not reach it. A file that
/// is executable but not a binary nor a `#!` script runs under `/bin/sh`,
/// as `execvp` (and so std's `Command`) does.
pub(super) fn spawn_session_leader(
    program: &Program,
    terminal: &Path,
    errors: ErrorsTo<'_>,
) -> Result<SessionLeader, Start> {
    // Not the program's fault: a C library without `POSIX_SPAWN_SETSID`.
    let setup = |e| Start::Other(Error::io("starting the program in a session of its own", e));
    let actions = FileActions::new(terminal, errors).map_err(setup)?;
    let attributes = Attributes::new().map_err(setup)?;
    let env = c_strings(program.env.iter().map(|(k, v)| {
        let mut pair = k.as_bytes().to_vec();
        pair.push(b'=');
        pair.extend_from_slice(v.as_bytes());
        pair
    }))
    .map_err(Start::Spawn)?;
    let argv =
        c_strings(program.argv.iter().map(|a| a.as_bytes().to_vec())).map_err(Start::Spawn)?;
    match spawn(&argv, &env, &actions, &attributes) {
        Err(libc::ENOEXEC) => match under_sh(argv) {
            Some(argv) => spawn(&argv, &env, &actions, &attributes),
            None => Err(libc::ENOEXEC),
        },
        spawned => spawned,
    }
    .map_err(|e| {
        let error = io::Error::from_raw_os_error(e);
        match e {
            libc::ENOENT
            | libc::EACCES
            | libc::ENOEXEC
            | libc::ENOTDIR
            | libc::ELOOP
            | libc::ENAMETOOLONG
            | libc::E2BIG
            | libc::ETXTBSY
            | libc::EPERM => Start::Spawn(error),
            // Not the program's: the terminal could not be opened, say.
            _ => setup(error),
        }
    })
}

/// One `posix_spawnp` call; the error number on failure.
fn spawn(
    argv: &[CString],
    env: &[CString],
    actions: &FileActions,
    attributes: &Attributes,
) -> Result<SessionLeader, libc::c_int> {
    let Some(program) = argv.first() else {
        return Err(libc::ENOENT);
    };
    let pointers = |strings: &[CString]| -> Vec<*mut libc::c_char> {
        let mut p: Vec<_> = strings.iter().map(|s| s.as_ptr() as *mut _).collect();
        p.push(std::ptr::null_mut());
        p
    };
    let (argv_p, env_p) = (pointers(argv), pointers(env));
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid and NUL-terminated for the duration of
    // the call (the CStrings and vectors above outlive it); the attribute
    // and action objects were initialised by their constructors.
    let failed = unsafe {
        libc::posix_spawnp(
            &mut pid,
            program.as_ptr(),
            &actions.raw,
            &attributes.raw,
            argv_p.as_ptr(),
            env_p.as_ptr(),
        )
    };
    if failed != 0 {
        return Err(failed);
    }
    Ok(SessionLeader {
        pid: Pid::from_raw(pid),
        reaped: false,
    })
}

/// `argv` as `/bin/sh` runs it as a script: `/bin/sh`, then the file
/// `posix_spawnp` found for `argv[0]`, then the arguments.
fn under_sh(mut argv: Vec<CString>) -> Option<Vec<CString>> {
    let script = on_path(OsStr::from_bytes(argv.first()?.as_bytes()))?;
    argv[0] = CString::new(script.into_os_string().into_vec()).ok()?;
    argv.insert(0, CString::from(c"/bin/sh"));
    Some(argv)
}

/// Where `name` is: itself when it holds a `/`, else the first executable
/// file of that name in this process's `PATH` (where `posix_spawnp` looks).
pub(crate) fn on_path(name: &OsStr) -> Option<PathBuf> {
    if name.as_bytes().contains(&b'/') {
        return Some(name.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| is_executable(file))
}

/// A regular file with an execute bit set.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn c_strings(items: impl Iterator<Item = Vec<u8>>) -> io::Result<Vec<CString>> {
    items
        .map(|bytes| {
            CString::new(bytes).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an argument or variable holds a NUL byte",
                )
            })
        })
        .collect()
}

/// Checks a `posix_spawn*` call's result (they return the error number).
fn check(result: libc::c_int) -> io::Result<()> {
    match result {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The file actions: open the terminal by name as standard input (which,
/// in a new session, makes it the controlling terminal), then copy it to
/// standard output and standard error (or the error pipe).
struct FileActions {
    raw: libc::posix_spawn_file_actions_t,
    /// The terminal's name, which must outlive the spawn.
    _terminal: CString,
}

impl FileActions {
    fn new(terminal: &Path, errors: ErrorsTo<'_>) -> io::Result<FileActions> {
        let terminal = CString::new(terminal.as_os_str().as_bytes())
            .map_err(|_| io::Error::other("the terminal's name holds a NUL byte"))?;
        // SAFETY: zeroed storage is what init overwrites; the value is
        // wrapped (and so destroyed on drop) only once init succeeded.
        let mut raw = unsafe { std::mem::zeroed() };
        check(unsafe { libc::posix_spawn_file_actions_init(&mut raw) })?;
        let mut actions = FileActions {
            raw,
            _terminal: terminal,
        };
        let errors: RawFd = match errors {
            ErrorsTo::Terminal => 0,
            ErrorsTo::Fd(fd) => fd.as_raw_fd(),
        };
        // SAFETY: the path pointer lives as long as `actions`.
        unsafe {
            check(libc::posix_spawn_file_actions_addopen(
                &mut actions.raw,
                0,
                actions._terminal.as_ptr(),
                libc::O_RDWR,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions.raw,
                0,
                1,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions.raw,
                errors,
                2,
            ))?;
        }
        Ok(actions)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.raw) };
    }
}

/// The attributes: a new session, no blocked signals, and `SIGPIPE` back
/// to its default (Rust programs ignore it, and ignored signals survive
/// `exec`).
struct Attributes {
    raw: libc::posix_spawnattr_t,
}

impl Attributes {
    fn new() -> io::Result<Attributes> {
        // SAFETY: as for FileActions; sigset_t is plain data.
        unsafe {
            let mut raw = std::mem::zeroed();
            check(libc::posix_spawnattr_init(&mut raw))?;
            let mut attributes = Attributes { raw };
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            check(libc::posix_spawnattr_setsigmask(&mut attributes.raw, &set))?;
            libc::sigaddset(&mut set, libc::SIGPIPE);
            check(libc::posix_spawnattr_setsigdefault(
                &mut attributes.raw,
                &set,
            ))?;
            let flags = libc::POSIX_SPAWN_SETSID
                | libc::POSIX_SPAWN_SETSIGMASK as libc::c_short
                | libc::POSIX_SPAWN_SETSIGDEF as libc::c_short;
            check(libc::posix_spawnattr_setflags(&mut attributes.raw, flags))?;
            Ok(attributes)
        }
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`.
        unsafe { libc::posix_spawnattr_destroy(&mut self.raw) };
    }
}

impl SessionLeader {
    /// True once the child has exited (and is reaped).
    pub(super) fn exited(&mut self) -> bool {
        if !self.reaped {
            self.reaped = !matches!(
                waitpid(self.pid, Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            );
        }
        self.reaped
    }

    /// Sends `signal` unless the child is already reaped.
    pub(super) fn signal(&mut self, signal: Signal) {
        if !self.exited() {
            let _ = nix::sys::signal::kill(self.pid, signal);
        }
    }

    /// Waits for the child to exit.
    pub(super) fn wait(&mut self) {
        while !self.reaped {
            self.reaped = !matches!(waitpid(self.pid, None), Err(nix::errno::Errno::EINTR));
        }
    }
}
