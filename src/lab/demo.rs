//! `lab demo`: the product's main job, end to end, on a lab VM.
//!
//! Boot a pristine VM, check SSH works, break it the way the classic
//! "Server refused our key" starts (`chmod 777 ~`), show the refusal, log in
//! on the serial console and repair it with the crate's own `Session`, show
//! SSH working again, and point to the transcript of the console session.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::layout::LabDirs;
use super::scenario;
use super::ssh::KeyLogin;
use super::vm;
use crate::cli::{Common, OutputFormat};
use crate::error::{Error, ExitCode, Result};

/// The scenario the demo breaks and repairs.
const DEMO_SCENARIO: &str = "home-777";

/// Runs the demo on VM `name`; stops it afterwards unless `keep`.
pub async fn run(dirs: &LabDirs, name: &str, keep: bool, common: &Common) -> Result<ExitCode> {
    let say = |line: String| {
        if common.output == OutputFormat::Human {
            println!("{line}");
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
    let booted = vm::up(dirs, name, &super::cli_boot_options(common)).await?;
    let outcome = break_and_repair(&booted.info, common, &say).await;
    if !keep {
        vm::down(dirs, name).await?;
    }
    let (refusal, transcript) = outcome?;
    if common.output == OutputFormat::Json {
        println!(
            "{}",
            json!({
                "vm": name, "boot_seconds": booted.info.boot_seconds,
                "image_build_seconds": booted.image.built_in,
                "scenario": DEMO_SCENARIO, "refused_with": refusal,
                "repaired_over": booted.info.serial_target().to_string(),
                "ssh_after_repair": "accepted", "transcript": transcript,
                "kept_running": keep,
            })
        );
    } else if keep {
        println!("the VM is still running: ec2-serial-expect lab status; stop it with `lab down --name {name}`");
    }
    Ok(ExitCode::Success)
}

/// Steps 2 to 5; returns ssh's refusal and the transcript path.
async fn break_and_repair(
    info: &vm::VmInfo,
    common: &Common,
    say: &impl Fn(String),
) -> Result<(String, Option<PathBuf>)> {
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
    say(format!(
        "4. repairing over the serial console {}: log in as {}, {}",
        info.serial_target(),
        scenario.repair_user,
        scenario.repair_commands.join("; ")
    ));
    let started = Instant::now();
    let mut session = crate::cli::open_session(&info.serial_target(), common, "lab-demo").await?;
    let transcript = session.transcript_path().map(|p| p.to_path_buf());
    let repaired = scenario::repair_on_console(&mut session, info, scenario).await;
    session.close().await?;
    repaired?;
    say(format!(
        "   repaired in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    match ssh.probe_until_answered(Duration::from_secs(30)).await? {
        KeyLogin::Accepted => say("5. ssh with the lab key works again".into()),
        other => {
            return Err(Error::Problems(format!(
                "the repair ran but ssh key login is still not accepted: {other:?}"
            )))
        }
    }
    if let Some(path) = &transcript {
        say(format!(
            "transcript of the console session (password redacted): {}\n   watch it: ec2-serial-expect play {}",
            path.display(),
            path.display()
        ));
    }
    Ok((refusal, transcript))
}
