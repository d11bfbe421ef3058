//! `completions SHELL` and `man`: both generated from the same clap
//! definitions the command line is parsed with, so they cannot drift.

use clap::CommandFactory;

use super::args::Cli;
use super::stdout::write_verbatim;
use crate::error::{Error, ExitCode, Result};

/// Prints the completion script for `shell` on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "ec2-serial-expect", &mut script);
    write_verbatim(&script)?;
    Ok(ExitCode::Success)
}

/// Prints the manual page (roff) on stdout: the command and its global
/// options, then each subcommand's synopsis, description and own options.
pub(super) fn man_page() -> Result<ExitCode> {
    let mut command = Cli::command();
    command.build();
    let mut page = Vec::new();
    let failed = |e: std::io::Error| Error::io("cannot render the man page", e);
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .map_err(failed)?;
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        // Built: the subcommand knows its full name (`ec2-serial-expect doctor`).
        let man = clap_mangen::Man::new(sub.clone());
        man.render_name_section(&mut page)
            .and_then(|()| man.render_synopsis_section(&mut page))
            .and_then(|()| man.render_description_section(&mut page))
            .and_then(|()| man.render_options_section(&mut page))
            .map_err(failed)?;
    }
    write_verbatim(&page)?;
    Ok(ExitCode::Success)
}
