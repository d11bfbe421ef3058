//! The GRUB rescue path: a root shell on a console where nobody can log in.
//!
//! AWS AMIs ship without a password user, so on the serial console of a
//! locked-out instance there is usually no one to log in as. What remains is
//! the boot loader: restart the machine, stop GRUB's countdown, add
//! `init=/bin/sh` (or another rescue argument) to the kernel line and boot.
//! The kernel then runs a root shell on the console, with no password, no
//! services and the root filesystem read-only. [`enter`] does all of that
//! and hands back a [`RescueShell`] whose [`Shell`] runs commands as root
//! (the doctor uses it exactly like a logged-in one); [`RescueShell::leave`]
//! syncs the disks and reboots normally, waiting for `login:`.
//!
//! Every key sent to GRUB goes through the [`Session`], so the transcript
//! shows the editing; GRUB's full-screen menu and editor are read through
//! the session's virtual terminal ([`grub`]), never by counting keys.
//!
//! Progress goes to the caller as [`RescueStep`]s; the library prints nothing.

mod grub;
mod power;

use std::time::Duration;

pub(crate) use power::PowerCycle;

use crate::error::{Error, Result};
use crate::expect::{Pattern, Session};
use crate::shell::{Shell, ShellState};

/// The kernel argument that gives a root shell on any distribution whose
/// kernel line has `console=ttyS0`: the shell runs as PID 1.
pub(crate) const DEFAULT_RESCUE_ARGS: &str = "init=/bin/sh";

/// How to reach the rescue shell.
#[derive(Debug, Clone)]
pub(crate) struct RescueOptions {
    /// What restarts the machine.
    pub power: PowerCycle,
    /// Words appended to every kernel (`linux`) line of the default entry.
    pub args: RescueArgs,
    /// The longest wait for each stage of a boot: GRUB's menu after the
    /// power cycle, the root shell after GRUB, `login:` after the reboot.
    pub boot_timeout: Duration,
}

/// Kernel arguments to append, checked: printable words a GRUB editor line
/// can hold, none of them a control key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RescueArgs(String);

impl RescueArgs {
    /// Validates `text` (for example `init=/bin/sh`, `rd.break enforcing=0`).
    pub(crate) fn new(text: &str) -> Result<RescueArgs> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let printable = text.chars().all(|c| c == ' ' || c.is_ascii_graphic());
        if words.is_empty() || !printable || text.len() > 200 {
            return Err(Error::usage(format!(
                "--rescue-args {text:?}: give kernel arguments as printable ASCII words, \
                 at most 200 characters (e.g. `init=/bin/sh`, or `rd.break` on dracut systems)"
            )));
        }
        Ok(RescueArgs(words.join(" ")))
    }

    /// The arguments, single-spaced.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// True for dracut's `rd.break`: the real root waits at `/sysroot`.
    fn stops_in_initramfs(&self) -> bool {
        self.0.split(' ').any(|w| w == "rd.break")
    }
}

impl Default for RescueArgs {
    fn default() -> Self {
        RescueArgs(DEFAULT_RESCUE_ARGS.into())
    }
}

/// Where the rescue has got to, for progress lines and live tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RescueStep {
    /// Running the power-cycle command (or asking the user to reboot).
    PowerCycling,
    /// The user must restart the machine now ([`PowerCycle::Manual`]).
    WaitingForReboot,
    /// Waiting for GRUB's menu on the console.
    WaitingForGrub,
    /// Editing the kernel line in GRUB's editor.
    EditingGrub,
    /// Booted with the rescue arguments, waiting for the root shell.
    BootingRescue,
    /// Making the root filesystem writable.
    PreparingRoot,
    /// Syncing and rebooting normally.
    Rebooting,
}

/// The root shell the rescue reached.
pub(crate) struct RescueShell<'s> {
    shell: Shell<'s>,
    boot_timeout: Duration,
}

/// Restarts the machine, boots it through GRUB with the rescue arguments
/// and takes over the root shell, with `/` (and `/home`, when fstab has it)
/// mounted read-write. `step` hears each stage as it starts.
pub(crate) async fn enter<'s>(
    session: &'s mut Session,
    options: &RescueOptions,
    step: &(dyn Fn(RescueStep) + Sync),
) -> Result<RescueShell<'s>> {
    session.watch_screen();
    session.mark(&format!(
        "rescue: through GRUB with `{}`",
        options.args.as_str()
    ));
    step(RescueStep::PowerCycling);
    // What the console showed before the restart must not count. A replay
    // neither drains nor restarts: the live drain's text is in its
    // recording, but that is a console at rest, with no GRUB in it.
    if !session.is_replay() {
        grub::drain(session).await?;
        options.power.run(step).await?;
    }
    let mut reached = Reached::Nothing;
    match boot_to_root(session, options, step, &mut reached).await {
        Ok(state) => Ok(RescueShell {
            shell: Shell::bind(state, session),
            boot_timeout: options.boot_timeout,
        }),
        Err(e) if session.is_replay() => Err(e),
        Err(e) => Err(back_to_a_normal_boot(session, reached, e).await),
    }
}

/// How far a rescue boot got: what must be undone when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// Nothing of ours on the machine (GRUB never showed its menu).
    Nothing,
    /// GRUB's editor is open, maybe with our edits.
    Editor,
    /// The rescue kernel was booted: a root shell is, or will be, there.
    Booted,
}

/// From GRUB's menu to the root shell, with `/` writable.
async fn boot_to_root(
    session: &mut Session,
    options: &RescueOptions,
    step: &(dyn Fn(RescueStep) + Sync),
    reached: &mut Reached,
) -> Result<ShellState> {
    step(RescueStep::WaitingForGrub);
    grub::open_editor(session, options.boot_timeout).await?;
    *reached = Reached::Editor;
    step(RescueStep::EditingGrub);
    grub::append_to_kernel_lines(session, &options.args).await?;
    step(RescueStep::BootingRescue);
    grub::boot(session).await?;
    *reached = Reached::Booted;
    let mut shell = adopt_root(session, options.boot_timeout).await?;
    step(RescueStep::PreparingRoot);
    if options.args.stops_in_initramfs() {
        // dracut's shell: the real root is /sysroot; work inside it, with
        // the kernel's filesystems there too (the reboot writes to
        // /proc/sysrq-trigger; the doctor reads /proc and uses /dev/null).
        run_checked(
            &mut shell,
            session,
            "mount -o remount,rw /sysroot && for d in proc sys dev; do mount --bind /$d /sysroot/$d || exit 1; done",
        )
        .await?;
        session.send_line("exec chroot /sysroot /bin/sh").await?;
        shell = adopt_root(session, Duration::from_secs(30)).await?;
    } else {
        run_checked(&mut shell, session, "mount -o remount,rw /").await?;
    }
    // `/proc` is there (the initramfs moves it over); `/home` may be a
    // separate filesystem that only the normal boot would mount; `/run` is
    // an empty tmpfs, where `sshd -t` (the doctor's config check) wants
    // its privilege separation directory, gone again at the reboot.
    run_checked(
        &mut shell,
        session,
        "if grep -qs '^[^#]*[[:space:]]/home[[:space:]]' /etc/fstab && ! grep -qs ' /home ' /proc/mounts; \
         then mount /home || exit 1; fi; [ -d /run/sshd ] || mkdir -m 0755 /run/sshd",
    )
    .await?;
    Ok(shell)
}

/// After a failed rescue boot, sends the machine back to a normal boot
/// rather than leave it in GRUB's editor (which never times out) or at a
/// root shell anyone on the console could use: Escape (GRUB drops the
/// edits) and Enter (boots the entry as it was), or a sync and an
/// immediate reboot from the shell. Best effort; `error` says what was done.
async fn back_to_a_normal_boot(session: &mut Session, reached: Reached, error: Error) -> Error {
    let (keys, done) = match reached {
        Reached::Nothing => return error,
        Reached::Editor => (
            "\x1b\r",
            "GRUB's edits were dropped and the entry booted as it was",
        ),
        Reached::Booted => (
            "\rsync; echo b >/proc/sysrq-trigger\r",
            "the rescue shell was told to sync and reboot normally",
        ),
    };
    session.mark(&format!("rescue: failed; {done}"));
    // Then a moment for the machine to take the keys (and the transcript
    // to show its answer) before the session closes.
    let sent = match session.send(keys).await {
        Ok(()) => grub::settle(session).await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(()) => error.context(format!("the rescue failed ({done})")),
        Err(e) => error.context(format!(
            "the rescue failed, and sending the machine back to a normal boot failed too ({e}): \
             restart it"
        )),
    }
}

impl<'s> RescueShell<'s> {
    /// The root shell, to run commands in (`is_root()` is true).
    pub(crate) fn shell(&mut self) -> &mut Shell<'s> {
        &mut self.shell
    }

    /// Ends the rescue: with `changed` on an SELinux system, asks for a
    /// relabel on the next boot (files written here keep no labels); then
    /// syncs, reboots at once (the shell is PID 1 and must not exit) and
    /// waits until the normal boot shows `login:`.
    pub(crate) async fn leave(
        self,
        changed: bool,
        step: &(dyn Fn(RescueStep) + Sync),
    ) -> Result<()> {
        step(RescueStep::Rebooting);
        let (mut shell, session) = self.shell.into_state();
        if changed {
            run_checked(
                &mut shell,
                session,
                "if [ -f /etc/selinux/config ] && grep -qs '^SELINUX=\\(enforcing\\|permissive\\)' /etc/selinux/config; then touch /.autorelabel; fi",
            )
            .await?;
        }
        run_checked(&mut shell, session, "sync").await?;
        session.mark("rescue: rebooting normally");
        shell.release(session);
        session.send_line("echo b >/proc/sysrq-trigger").await?;
        let login = Pattern::regex(r"login: ?$");
        session
            .expect(&[login], Some(self.boot_timeout))
            .await
            .map_err(|e| e.context("waiting for `login:` after the rescue's reboot"))?;
        session.mark("rescue: back at login");
        Ok(())
    }
}

/// Commands in the rescue shell get at least this long, whatever the
/// session's default: the machine has just booted, so every program they
/// start is read from a cold disk (on EC2, a volume restored from a
/// snapshot loads each block on its first read), and the doctor's first
/// root command starts a dozen. Two GRUB rescues side by side on the
/// emulated lab, on a busy machine, took longer than the 30 s default.
const RESCUE_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Takes over the shell the rescue boot started, which must be root's.
async fn adopt_root(session: &mut Session, timeout: Duration) -> Result<ShellState> {
    let mut shell = ShellState::adopt(session, timeout).await?;
    if shell.is_root() {
        let patient = shell.command_timeout().max(RESCUE_COMMAND_TIMEOUT);
        shell.set_command_timeout(patient);
        return Ok(shell);
    }
    let user = shell.user().to_string();
    shell.release(session);
    Err(Error::login(format!(
        "the shell on {} runs as {user}, not root: the rescue arguments did not give a root shell",
        session.describe()
    )))
}

/// Runs `command` in the rescue shell, failing with its output when it fails.
async fn run_checked(shell: &mut ShellState, session: &mut Session, command: &str) -> Result<()> {
    let out = shell.run(session, command).await?;
    if out.success() {
        return Ok(());
    }
    Err(Error::problems(format!(
        "in the rescue shell, `{command}` exited {}: {}",
        out.status,
        out.output.trim()
    )))
}
