//! `completions SHELL` and `man`: both generated from the same clap
//! definitions the command line is parsed with, so they cannot drift.

use super::stdout::write_verbatim;
use crate::error::{Error, ExitCode, Result};

/// Prints the completion script for `shell` on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = super::args::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "ec2-serial-expect", &mut script);
    write_verbatim(&script)?;
    Ok(ExitCode::Success)
}

/// Prints the manual page (roff) on stdout: the command and its global
/// options (once), each subcommand's synopsis, description and own options,
/// then EXAMPLES and EXIT STATUS, as `git` and `cargo` pages have them.
pub(super) fn man_page() -> Result<ExitCode> {
    let mut command = super::args::command();
    command.build();
    let mut page = Vec::new();
    let failed = |e: std::io::Error| Error::io("cannot render the man page", e);
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .map_err(failed)?;
    let global: Vec<String> = command
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.get_id().to_string())
        .collect();
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        // Built: the subcommand knows its full name (`ec2-serial-expect doctor`).
        // Its copy of the global options is hidden: they are described once,
        // above. (Only this rendering copy is changed, never the parser.)
        let own = global.iter().fold(sub.clone(), |sub, id| {
            if sub.get_arguments().any(|a| a.get_id() == id.as_str()) {
                sub.mut_arg(id.as_str(), |a| a.hide(true))
            } else {
                sub
            }
        });
        let man = clap_mangen::Man::new(own);
        man.render_name_section(&mut page)
            .and_then(|()| man.render_synopsis_section(&mut page))
            .and_then(|()| man.render_description_section(&mut page))
            .and_then(|()| man.render_options_section(&mut page))
            .map_err(failed)?;
    }
    page.extend_from_slice(EXAMPLES_AND_EXIT_STATUS.as_bytes());
    write_verbatim(&page)?;
    Ok(ExitCode::Success)
}

/// The page's last sections, in roff.
const EXAMPLES_AND_EXIT_STATUS: &str = r#".SH EXAMPLES
.TP
Why does SSH refuse the key? Check over the serial console, then repair:
.nf
ec2-serial-expect doctor i-0123456789abcdef0 --user ec2-user --password-env PW
ec2-serial-expect doctor i-0123456789abcdef0 --user ec2-user --password-env PW --fix
.fi
.TP
No password user at all: through GRUB's rescue shell (the instance reboots):
.nf
ec2-serial-expect doctor i-0123456789abcdef0 --user ec2-user --via grub --fix
.fi
.TP
Run a script on a console, watching it live:
.nf
ec2-serial-expect run unix:/run/vm1/serial.sock login-check.rhai --var user=ec2-user --secret password=env:PW --watch
.fi
.TP
Record a test once, replay it in CI:
.nf
ec2-serial-expect test login-check.rhai --update --target i-0123456789abcdef0 --var user=ec2-user --secret password=env:PW
ec2-serial-expect test --junit report.xml
.fi
.TP
A whole fleet, 50 at a time, one report and transcript per target:
.nf
ec2-serial-expect doctor --targets fleet.txt -j 50 --out-dir results/ --user ec2-user --password-env PW
.fi
.SH "EXIT STATUS"
.TP
0
Healthy, or repaired and verified; the script reached its end; every test passed.
.TP
1
Problems remain (doctor findings, fail() in a script, a failed test, a replay that parted from its recording in a fleet).
.TP
2
Bad usage or bad input (arguments, a script, a transcript); nothing was changed.
.TP
3
The console could not be reached: connection, transport or AWS error, or a replay that parted from its recording.
.TP
4
Logging in on the console failed.
.TP
5
Timed out waiting for the console.
.TP
129, 130, 143
Ended by SIGHUP, SIGINT or SIGTERM, after logging out and closing the transcript.
"#;
