//! Progress on the long waits of one session, for the person watching: a
//! line on stderr as each phase starts, saying what it waits for and how
//! long it may take, with the time since the command started (one clock
//! for the whole command, however many parts report).
//!
//! Only on a terminal and without `-q`: in a pipe, a file or a CI log the
//! results and the errors say everything, and no line is added. (A fleet
//! run has its live table instead, [`super::board`].)

use std::io::IsTerminal;
use std::time::Duration;

use super::board::Phase;
use super::Common;
use crate::ec2::Step;

/// Where progress lines go, if anywhere.
#[derive(Debug, Clone, Copy)]
pub(super) struct Progress {
    on: bool,
}

impl Progress {
    /// Progress for this command: on when stderr is a terminal and not `-q`.
    pub(super) fn new(common: &Common) -> Progress {
        Progress {
            on: std::io::stderr().is_terminal() && !common.quiet,
        }
    }

    /// Says `what` is under way.
    pub(super) fn say(&self, what: &str) {
        if self.on {
            eprintln!(
                "{:>6.1}s  {}",
                super::STARTED
                    .get()
                    .map_or(0.0, |t| t.elapsed().as_secs_f64()),
                crate::secret::scrub_known(what)
            );
        }
    }

    /// A stage of the GRUB rescue. The request to reboot by hand is an
    /// instruction, not progress: it is printed even when progress is off.
    fn rescue(&self, step: crate::rescue::RescueStep) {
        use crate::rescue::RescueStep as Step;
        let line = match step {
            Step::WaitingForReboot => {
                eprintln!(
                    "reboot the machine now (its power or reset button, the hypervisor, the cloud console): \
                     waiting for GRUB's menu on the serial console"
                );
                return;
            }
            Step::PowerCycling => "power cycle: running the power-cycle command",
            Step::WaitingForGrub => "waiting for GRUB's menu on the console",
            Step::EditingGrub => "editing the kernel line in GRUB's editor",
            Step::BootingRescue => "booting with the rescue arguments, waiting for a root shell",
            Step::PreparingRoot => "root shell: mounting / read-write",
            Step::Rebooting => "syncing and rebooting normally, waiting for `login:`",
        };
        self.say(line);
    }

    /// A step of opening an EC2 console.
    pub(super) fn step(&self, step: Step, wait_for_session: Option<Duration>) {
        let line = match step {
            Step::Preflight => {
                "EC2 preflight: serial console access, the instance's state and type".to_string()
            }
            Step::PushingKey => "pushing a one-time SSH key (EC2 Instance Connect)".to_string(),
            Step::WaitingForSession => format!(
                "another serial console session is open: waiting for it to end (up to {} s)",
                wait_for_session.map_or(0, |d| d.as_secs())
            ),
            Step::OpeningSsh => format!(
                "connecting to the serial console endpoint over SSH (up to {} s)",
                crate::ec2::ssh::CONNECT_TIMEOUT.as_secs()
            ),
        };
        self.say(&line);
    }

    /// A phase of the doctor's session; `login_limit` bounds the login.
    pub(super) fn phase(&self, phase: Phase, login: Option<(&str, Duration)>) {
        let line = match (phase, login) {
            (Phase::LoggingIn, Some((login_user, login_limit))) => format!(
                "waiting for a login prompt, logging in as {login_user} (up to {} s)",
                login_limit.as_secs()
            ),
            (phase, _) => match phase {
                Phase::Examining => "examining as root: one gather of every fact".to_string(),
                Phase::Repairing => "repairing, then verifying with a second look".to_string(),
                Phase::LoggingOut => "logging out".to_string(),
                Phase::Rescue(step) => return self.rescue(step),
                // The connect steps say themselves (`step`).
                _ => return,
            },
        };
        self.say(&line);
    }
}
