//! `lab up | reset | down | status | break | repair | demo`: the practice VM as a
//! command, each subcommand printing for people or as JSON. The lab itself
//! (image, VM, scenarios, SSH) is the library's [`crate::lab`].

mod demo;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::cli::stdout::{json_line, outln};

use super::{Common, LabBoot, LabCommand, OutputFormat};
use crate::error::{Error, ExitCode, Result};
use crate::lab::layout::LabDirs;
use crate::lab::{scenario, ssh, vm};
use scenario::{Effect, Scenario};
use ssh::KeyLogin;
use vm::{BootOptions, VmInfo};

/// Runs a `lab` subcommand.
pub(super) async fn command(cmd: LabCommand, common: &Common) -> Result<ExitCode> {
    let dirs = LabDirs::from_env();
    match cmd {
        LabCommand::Up { name, boot } => up_command(&dirs, &name, boot, common).await,
        LabCommand::Reset { name } => reset_command(&dirs, &name, common),
        LabCommand::Down { name, all } => down_command(&dirs, &name, all, common).await,
        LabCommand::Status => status_command(&dirs, common),
        LabCommand::Break {
            scenario: None,
            list: false,
            ..
        } => Err(Error::usage(
            "lab break needs a SCENARIO (e.g. `lab break home-777`); `lab break --list` shows them",
        )),
        LabCommand::Break { list: true, .. } => list_command(common),
        LabCommand::Break {
            scenario: Some(scenario),
            name,
            ..
        } => break_command(&dirs, &name, &scenario, common).await,
        LabCommand::Repair { scenario, name } => {
            repair_command(&dirs, &name, &scenario, common).await
        }
        LabCommand::Demo {
            name,
            keep,
            scripted,
            no_password,
        } => {
            let options = demo::DemoOptions {
                keep,
                scripted,
                no_password,
            };
            demo::run(&dirs, &name, options, common).await
        }
    }
}

/// Prints a lab progress line on stderr.
fn print_progress(line: &str) {
    eprintln!("{line}");
}

/// Boot options for the CLI: detached, progress on a terminal unless `-q`,
/// `--transcript` for the boot log.
fn cli_boot_options(common: &Common) -> BootOptions {
    use std::io::IsTerminal;
    BootOptions {
        detach: true,
        boot_transcript: common.transcript.clone(),
        progress: (!common.quiet && std::io::stderr().is_terminal())
            .then_some(print_progress as fn(&str)),
        gateway: true,
        ..BootOptions::default()
    }
}

async fn up_command(
    dirs: &LabDirs,
    name: &str,
    boot: LabBoot,
    common: &Common,
) -> Result<ExitCode> {
    let boot = match boot {
        LabBoot::Direct => vm::Boot::Direct,
        LabBoot::Grub => vm::Boot::Grub,
    };
    if let Some(info) = vm::find(dirs, name)?.filter(|i| i.is_alive() && i.ready) {
        if info.boot != boot {
            return Err(Error::usage(format!(
                "lab VM {name:?} is already running, booted {:?}; stop it first (`lab down --name {name}`) \
                 to boot it the other way",
                info.boot
            )));
        }
        let info = vm::ensure_gateway(dirs, info)?;
        print_vm(&info, None, true, common.output)?;
        return Ok(ExitCode::Success);
    }
    let options = BootOptions {
        boot,
        ..cli_boot_options(common)
    };
    let booted = vm::up(dirs, name, &options).await?;
    print_vm(&booted.info, booted.image.built_in, false, common.output)?;
    Ok(ExitCode::Success)
}

/// How to reach a VM, as `--output json` shows it.
#[derive(Serialize)]
struct VmView<'a> {
    name: &'a str,
    serial: String,
    websocket: Option<&'a str>,
    ssh: ssh::SshTarget,
    ssh_command: String,
    user: &'a str,
    password_file: &'a Path,
    pid: i32,
    boot_seconds: f64,
}

impl<'a> VmView<'a> {
    fn of(info: &'a VmInfo) -> Self {
        VmView {
            name: &info.name,
            serial: info.serial_target().to_string(),
            websocket: info.gateway.as_ref().map(|g| g.url.as_str()),
            ssh: info.ssh(),
            ssh_command: info.ssh().command_line(),
            user: &info.user,
            password_file: &info.password_file,
            pid: info.pid,
            boot_seconds: round1(info.boot_seconds),
        }
    }
}

/// `lab up --output json`.
#[derive(Serialize)]
struct UpResult<'a> {
    #[serde(flatten)]
    vm: VmView<'a>,
    already_running: bool,
    image_build_seconds: Option<f64>,
}

/// One VM of `lab status --output json`.
#[derive(Serialize)]
struct VmState<'a> {
    #[serde(flatten)]
    vm: VmView<'a>,
    state: &'static str,
}

/// One VM of `lab down --output json`.
#[derive(Serialize)]
struct Stopped {
    name: String,
    was_running: bool,
}

/// `lab break SCENARIO --output json`.
#[derive(Serialize)]
struct BreakResult<'a> {
    vm: &'a str,
    scenario: &'a str,
    ran: &'a str,
    ssh: &'static str,
    ssh_error: String,
    repair: RepairHint<'a>,
}

/// What to type to undo a break.
#[derive(Serialize)]
struct RepairHint<'a> {
    console_user: &'a str,
    commands: Vec<String>,
}

/// `lab repair SCENARIO --output json`.
#[derive(Serialize)]
struct RepairResult<'a> {
    vm: &'a str,
    scenario: &'a str,
    ssh: &'static str,
    transcript: Option<std::path::PathBuf>,
}

fn print_vm(
    info: &VmInfo,
    built_in: Option<f64>,
    already: bool,
    output: OutputFormat,
) -> Result<()> {
    if output == OutputFormat::Json {
        return json_line(&UpResult {
            vm: VmView::of(info),
            already_running: already,
            image_build_seconds: built_in.map(round1),
        });
    }
    let when = if already {
        "was already running".to_string()
    } else {
        let built = built_in.map_or(String::new(), |s| format!("image built in {s:.1} s, "));
        format!("is up ({built}booted in {:.1} s)", info.boot_seconds)
    };
    outln!("lab VM {:?} {when}", info.name)?;
    outln!(
        "  serial console: {}   (try: ec2-serial-expect console {})",
        info.serial_target(),
        info.serial_target()
    )?;
    if let Some(gateway) = &info.gateway {
        outln!(
            "  websocket:      {}   (the same console through a gateway, --auth none on loopback)",
            gateway.url
        )?;
    }
    outln!("  ssh:            {}", info.ssh().command_line())?;
    outln!("  user:           {} (passwordless sudo)", info.user)?;
    outln!(
        "  password:       read it from {} (e.g. --password-file {})",
        info.password_file.display(),
        info.password_file.display()
    )?;
    outln!(
        "  stop it:        ec2-serial-expect lab down --name {}",
        info.name
    )?;
    Ok(())
}

fn reset_command(dirs: &LabDirs, name: &str, common: &Common) -> Result<ExitCode> {
    let Some(info) = vm::find(dirs, name)?.filter(VmInfo::is_alive) else {
        return Err(Error::usage(format!(
            "no lab VM named {name:?} is running; start it with `ec2-serial-expect lab up --name {name}`"
        )));
    };
    vm::reset(&info)?;
    if common.output == OutputFormat::Json {
        #[derive(Serialize)]
        struct Reset<'a> {
            reset: &'a str,
        }
        json_line(&Reset { reset: name })?;
    } else {
        outln!(
            "lab VM {name:?} reset: it is booting again (watch it: ec2-serial-expect console {})",
            info.serial_target()
        )?;
    }
    Ok(ExitCode::Success)
}

async fn down_command(dirs: &LabDirs, name: &str, all: bool, common: &Common) -> Result<ExitCode> {
    let names: Vec<String> = if all {
        vm::list(dirs).into_iter().map(|(i, _)| i.name).collect()
    } else {
        vec![name.to_string()]
    };
    let mut stopped = Vec::new();
    for n in &names {
        let was_running = vm::down(dirs, n).await?;
        stopped.push(Stopped {
            name: n.clone(),
            was_running,
        });
        if common.output == OutputFormat::Human {
            match was_running {
                true => outln!("lab VM {n:?} stopped")?,
                false => outln!("lab VM {n:?} was not running")?,
            }
        }
    }
    if common.output == OutputFormat::Json {
        #[derive(Serialize)]
        struct Down {
            stopped: Vec<Stopped>,
        }
        json_line(&Down { stopped })?;
    } else if names.is_empty() {
        outln!("no lab VMs")?;
    }
    Ok(ExitCode::Success)
}

fn status_command(dirs: &LabDirs, common: &Common) -> Result<ExitCode> {
    let vms = vm::list(dirs);
    if common.output == OutputFormat::Json {
        #[derive(Serialize)]
        struct LabStatus<'a> {
            vms: Vec<VmState<'a>>,
        }
        let vms = vms
            .iter()
            .map(|(info, alive)| VmState {
                vm: VmView::of(info),
                state: state_word(info, *alive),
            })
            .collect();
        json_line(&LabStatus { vms })?;
        return Ok(ExitCode::Success);
    }
    if vms.is_empty() {
        outln!("no lab VMs (start one with `ec2-serial-expect lab up`)")?;
    }
    for (info, alive) in &vms {
        let websocket = match &info.gateway {
            Some(g) if g.is_alive() => format!("  {}", g.url),
            _ => String::new(),
        };
        outln!(
            "{:<16} {:<8} pid {:<7} {}  ssh 127.0.0.1:{}{websocket}",
            info.name,
            state_word(info, *alive),
            info.pid,
            info.serial_target(),
            info.ssh_port
        )?;
    }
    Ok(ExitCode::Success)
}

fn state_word(info: &VmInfo, alive: bool) -> &'static str {
    match (alive, info.ready) {
        (true, true) => "running",
        (true, false) => "booting",
        (false, _) => "dead",
    }
}

fn list_command(common: &Common) -> Result<ExitCode> {
    if common.output == OutputFormat::Json {
        #[derive(Serialize)]
        struct List {
            scenarios: &'static [Scenario],
        }
        json_line(&List {
            scenarios: scenario::SCENARIOS,
        })?;
        return Ok(ExitCode::Success);
    }
    for s in scenario::SCENARIOS {
        outln!("{:<31} {}", s.name, s.summary)?;
    }
    Ok(ExitCode::Success)
}

async fn break_command(
    dirs: &LabDirs,
    name: &str,
    scenario_name: &str,
    common: &Common,
) -> Result<ExitCode> {
    let scenario = scenario::find(scenario_name)?;
    let info = vm::require_running(dirs, name)?;
    let refusal = scenario::break_over_ssh(&info, scenario).await?;
    let public_key = std::fs::read_to_string(dirs.public_key_file()).unwrap_or_default();
    let repair = scenario.repair_lines(&public_key);
    if common.output == OutputFormat::Json {
        json_line(&BreakResult {
            vm: &info.name,
            scenario: scenario.name,
            ran: scenario.break_command,
            ssh: match scenario.effect {
                Effect::KeyRefused => "refused",
                Effect::ConsoleLoginRefused => "accepted",
            },
            ssh_error: refusal,
            repair: RepairHint {
                console_user: scenario.repair_user,
                commands: repair,
            },
        })?;
        return Ok(ExitCode::Success);
    }
    outln!(
        "broke {:?} on lab VM {:?}: ran `{}`",
        scenario.name,
        info.name,
        scenario.break_command
    )?;
    if scenario.effect == Effect::ConsoleLoginRefused {
        outln!("{refusal}; ssh key login still works")?;
        outln!(
            "reach the console without a password through GRUB (a VM booted with `lab up --boot grub`): \
             ec2-serial-expect doctor {} --user {} --via grub --power-cycle-command 'ec2-serial-expect lab reset --name {}'",
            info.serial_target(),
            info.user,
            info.name
        )?;
        return Ok(ExitCode::Success);
    }
    outln!("ssh key login is now refused: {refusal}")?;
    print_repair_hint(&info, scenario, &repair)?;
    Ok(ExitCode::Success)
}

fn print_repair_hint(info: &VmInfo, scenario: &Scenario, repair: &[String]) -> Result<()> {
    outln!(
        "repair it over the serial console (ec2-serial-expect console {}): log in as {} \
         (password in {}), then type:",
        info.serial_target(),
        scenario.repair_user,
        info.password_file.display()
    )?;
    for line in repair {
        outln!("    {line}")?;
    }
    outln!(
        "or let the lab type it: ec2-serial-expect lab repair {} --name {}",
        scenario.name,
        info.name
    )?;
    Ok(())
}

async fn repair_command(
    dirs: &LabDirs,
    name: &str,
    scenario_name: &str,
    common: &Common,
) -> Result<ExitCode> {
    let scenario = scenario::find(scenario_name)?;
    if scenario.repair_commands.is_empty() {
        return Err(Error::usage(format!(
            "{:?} has no console repair: no one can log in on the console; reach it through GRUB \
             (`doctor --via grub`, docs/rescue.md)",
            scenario.name
        )));
    }
    let info = vm::require_running(dirs, name)?;
    let mut session = crate::cli::open_session(&info.serial_target(), common, "lab-repair").await?;
    let transcript = session.transcript_path().map(|p| p.to_path_buf());
    let repaired = scenario::repair_on_console(&mut session, &info, scenario).await;
    session.close().await?;
    repaired?;
    let after = info
        .ssh()
        .probe_until_answered(Duration::from_secs(30))
        .await?;
    let accepted = after == KeyLogin::Accepted;
    if common.output == OutputFormat::Json {
        json_line(&RepairResult {
            vm: &info.name,
            scenario: scenario.name,
            ssh: login_word(&after),
            transcript,
        })?;
    } else {
        outln!(
            "typed the repair of {:?} on the serial console; ssh key login is now {}",
            scenario.name,
            login_word(&after)
        )?;
        if let Some(path) = &transcript {
            outln!("transcript: {}", path.display())?;
        }
    }
    if accepted {
        Ok(ExitCode::Success)
    } else {
        Err(Error::problems(format!(
            "after the repair of {:?} ssh key login is still {}",
            scenario.name,
            login_word(&after)
        )))
    }
}

/// One word for a key login result.
fn login_word(login: &KeyLogin) -> &'static str {
    match login {
        KeyLogin::Accepted => "accepted",
        KeyLogin::Refused(_) => "refused",
        KeyLogin::Unreachable(_) => "unreachable",
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
