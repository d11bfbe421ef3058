//! `lab demo`: the product's main job, end to end, on a lab VM.
//!
//! Boot a pristine VM, check SSH works, break it the way the classic
//! "Server refused our key" starts (`chmod 777 ~`), show the refusal, repair
//! it over the serial console, show SSH working again, and point to the
//! transcript of the console session. The repair is `doctor --fix`, run as a
//! user would run it (this same binary, password from the lab's password
//! file); `--scripted` types the scenario's documented repair instead, with
//! the crate's `Session` directly. `--no-password` shows the GRUB rescue:
//! the VM boots through GRUB, every password is locked too, and `doctor
//! --via grub --fix` repairs it with no password at all.

use crate::cli::stdout::{json_line, out, outln};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;
use serde_json::Value;

use crate::cli::{Cli, Command, Common, OutputFormat};
use crate::doctor::job::Targets;
use crate::error::{Error, ExitCode, Result};
use crate::lab::layout::LabDirs;
use crate::lab::scenario;
use crate::lab::ssh::KeyLogin;
use crate::lab::vm::{self, VmInfo};

/// The scenario the demo breaks and repairs.
const DEMO_SCENARIO: &str = "home-777";

/// How the demo runs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DemoOptions {
    /// Leave the VM running afterwards.
    pub keep: bool,
    /// Repair with the scripted console repair rather than `doctor --fix`.
    pub scripted: bool,
    /// Lock every password too, and repair through GRUB (`--via grub`).
    pub no_password: bool,
}

/// What the repair step produced.
struct Repaired {
    transcript: Option<PathBuf>,
    doctor_report: Option<Value>,
}

/// `lab demo --output json`.
#[derive(Serialize)]
struct DemoResult<'a> {
    vm: &'a str,
    boot_seconds: f64,
    image_build_seconds: Option<f64>,
    scenario: &'static str,
    refused_with: String,
    repaired_over: String,
    repaired_by: &'static str,
    /// The doctor's own JSON report, as it printed it.
    doctor: Option<Value>,
    ssh_after_repair: &'static str,
    transcript: Option<PathBuf>,
    kept_running: bool,
}

/// Runs the demo on VM `name`; stops it afterwards unless `options.keep`.
pub(super) async fn run(
    dirs: &LabDirs,
    name: &str,
    options: DemoOptions,
    common: &Common,
) -> Result<ExitCode> {
    // Progress is best-effort: a reader gone mid-demo shows as the failed
    // write of the result at the end.
    let say = |line: String| {
        if common.output == OutputFormat::Human {
            let _ = outln!("{line}");
        }
    };
    if vm::down(dirs, name).await? {
        say(format!(
            "stopped the previous lab VM {name:?} to start pristine"
        ));
    }
    say(format!(
        "1. booting lab VM {name:?} (QEMU, software emulation)…"
    ));
    let boot = vm::BootOptions {
        boot: if options.no_password {
            vm::Boot::Grub
        } else {
            vm::Boot::Direct
        },
        ..super::cli_boot_options(common)
    };
    let booted = vm::up(dirs, name, &boot).await?;
    let outcome = break_and_repair(&booted.info, options, common, &say).await;
    if !options.keep {
        vm::down(dirs, name).await?;
    }
    let (refusal, repaired) = outcome?;
    if common.output == OutputFormat::Json {
        json_line(&DemoResult {
            vm: name,
            boot_seconds: booted.info.boot_seconds,
            image_build_seconds: booted.image.built_in,
            scenario: DEMO_SCENARIO,
            refused_with: refusal,
            repaired_over: booted.info.serial_target().to_string(),
            repaired_by: match (options.scripted, options.no_password) {
                (true, _) => "scripted repair",
                (false, true) => "doctor --via grub --fix",
                (false, false) => "doctor --fix",
            },
            doctor: repaired.doctor_report,
            ssh_after_repair: "accepted",
            transcript: repaired.transcript,
            kept_running: options.keep,
        })?;
    } else if options.keep {
        outln!(
            "the VM is still running: ec2-serial-expect lab status; stop it with `lab down --name {name}`"
        )?;
    }
    Ok(ExitCode::Success)
}

/// Steps 2 to 5; returns ssh's refusal and what the repair produced.
async fn break_and_repair(
    info: &VmInfo,
    options: DemoOptions,
    common: &Common,
    say: &impl Fn(String),
) -> Result<(String, Repaired)> {
    let ssh = info.ssh();
    say(format!(
        "   up in {:.1} s; serial console {}, ssh 127.0.0.1:{}",
        info.boot_seconds,
        info.serial_target(),
        info.ssh_port
    ));
    say("2. ssh with the lab key works:".into());
    let out = ssh
        .run("echo \"logged in as $(id -un) on $(hostname)\"")
        .await?;
    say(format!(
        "   $ {}\n   {}",
        ssh.command_line(),
        out.stdout.trim()
    ));
    let scenario = scenario::find(DEMO_SCENARIO)?;
    say(format!(
        "3. breaking it like a tired admin would: {}",
        scenario.break_command
    ));
    let refusal = scenario::break_over_ssh(info, scenario).await?;
    say(format!("   ssh now fails: {refusal}"));
    if options.no_password {
        let locked = scenario::find("no-password")?;
        say(format!(
            "   and no one can log in on the console, as on an AWS AMI: {}",
            locked.break_command
        ));
        scenario::break_over_ssh(info, locked).await?;
    }
    let started = Instant::now();
    let repaired = if options.scripted {
        say(format!(
            "4. repairing over the serial console {}: log in as {}, {}",
            info.serial_target(),
            scenario.repair_user,
            scenario.repair_commands.join("; ")
        ));
        scripted_repair(info, scenario, common).await?
    } else if options.no_password {
        say(format!(
            "4. ec2-serial-expect doctor {} --user {} --via grub --fix --power-cycle-command \
             'ec2-serial-expect lab reset --name {}'  (restart, GRUB's editor, a root shell, a normal boot)",
            info.serial_target(),
            info.user,
            info.name
        ));
        doctor_repair(info, common, true).await?
    } else {
        say(format!(
            "4. ec2-serial-expect doctor {} --user {} --password-file {} --fix",
            info.serial_target(),
            info.user,
            info.password_file.display()
        ));
        doctor_repair(info, common, false).await?
    };
    say(format!(
        "   repaired in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    match ssh.probe_until_answered(Duration::from_secs(30)).await? {
        KeyLogin::Accepted => say("5. ssh with the lab key works again".into()),
        other => {
            return Err(Error::problems(format!(
                "the repair ran but ssh key login is still not accepted: {other:?}"
            )))
        }
    }
    if let Some(path) = &repaired.transcript {
        say(format!(
            "transcript of the console session (password redacted): {}\n   watch it: {}",
            path.display(),
            watch_command(path, under_sudo())
        ));
    }
    Ok((refusal, repaired))
}

/// How the person who typed the demo watches its transcript. Under sudo
/// the transcript is root's (mode 0600, in root's data directory) and
/// `~/.cargo/bin` is not on sudo's PATH: the command says sudo and the full
/// path of this program.
fn watch_command(transcript: &Path, under_sudo: bool) -> String {
    if !under_sudo {
        return format!("ec2-serial-expect play {}", transcript.display());
    }
    let me = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "ec2-serial-expect".into());
    format!(
        "sudo {} play {} (the transcript is root's: made under sudo)",
        shell_words::quote(&me),
        transcript.display()
    )
}

/// Whether this runs as root through sudo.
fn under_sudo() -> bool {
    std::env::var_os("SUDO_USER").is_some() && crate::lab::layout::effective_uid() == 0
}

/// The scenario's documented repair, typed with the crate's `Session`.
async fn scripted_repair(
    info: &VmInfo,
    scenario: &scenario::Scenario,
    common: &Common,
) -> Result<Repaired> {
    let mut session = crate::cli::open_session(&info.serial_target(), common, "lab-demo").await?;
    let transcript = session.transcript_path().map(Path::to_path_buf);
    let result = scenario::repair_on_console(&mut session, info, scenario).await;
    session.close().await?;
    result?;
    Ok(Repaired {
        transcript,
        doctor_report: None,
    })
}

/// `doctor --fix` over the serial console, the very command a user runs
/// (its flags parsed as the command line parses them, run in this
/// process); through GRUB with `via_grub`.
async fn doctor_repair(info: &VmInfo, common: &Common, via_grub: bool) -> Result<Repaired> {
    let target = info.serial_target();
    let mut argv = vec![
        "ec2-serial-expect".to_string(),
        "doctor".into(),
        target.to_string(),
        "--user".into(),
        info.user.clone(),
        "--fix".into(),
    ];
    if via_grub {
        let me = std::env::current_exe().map_err(|e| Error::io("finding this program", e))?;
        let reset = format!(
            "{} lab reset --name {}",
            shell_words::quote(&me.display().to_string()),
            info.name
        );
        argv.extend([
            "--via".into(),
            "grub".into(),
            "--power-cycle-command".into(),
            reset,
        ]);
    } else {
        argv.push("--password-file".into());
        argv.push(info.password_file.display().to_string());
    }
    let Command::Doctor(args) = Cli::try_parse_from(&argv)
        .map_err(|e| Error::usage(format!("the demo's doctor flags: {e}")))?
        .command
    else {
        return Err(Error::usage(
            "the demo's doctor flags did not parse as `doctor`",
        ));
    };
    // Like `doctor` itself: a signal ends the session cleanly.
    super::super::signals::listen()?;
    let connect = super::super::connect_options(common).await?;
    let job = super::super::doctor_job::job(&args, Targets::One(&target))?;
    let examined =
        super::super::doctor::examine_one(&job, &target, common, "lab-demo", connect).await;
    let transcript = common.noted_transcript();
    let not_repaired = |why: String| {
        Error::problems(format!(
            "`doctor --fix` did not repair the lab VM ({why}); see its report above{}",
            transcript
                .as_ref()
                .map_or(String::new(), |p| format!(" and {}", p.display()))
        ))
    };
    let report = examined.map_err(|e| not_repaired(e.to_string()))?;
    let json = super::super::stdout::json_pretty(&report)?;
    let doctor_report = match common.output {
        OutputFormat::Json => serde_json::from_str(&json).ok(),
        OutputFormat::Human => {
            out!("{}", report.human())?;
            None
        }
    };
    if report.problems_remain() {
        return Err(not_repaired("problems remain".into()));
    }
    Ok(Repaired {
        transcript,
        doctor_report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_sudo_the_watch_line_says_sudo_and_the_full_path() {
        let path = Path::new("/root/.local/share/ec2-serial-expect/transcripts/lab-demo.cast");
        assert_eq!(
            watch_command(path, false),
            format!("ec2-serial-expect play {}", path.display())
        );
        let line = watch_command(path, true);
        let me = std::env::current_exe().unwrap();
        assert!(
            line.starts_with(&format!("sudo {} play {}", me.display(), path.display())),
            "{line}"
        );
    }
}
