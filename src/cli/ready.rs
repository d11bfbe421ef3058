//! `ready TARGET…`: which rescue paths each target has, changing nothing.
//!
//! For an EC2 instance, EC2 is asked (no key pushed, nothing restarted):
//! can its serial console be opened (access, state, Nitro), and may it be
//! rebooted for the GRUB path (`RebootInstances` dry run). With
//! `--login-user`, the tool also logs in and looks inside, read-only: the
//! login path works (it just did), whether the rescue user exists, and
//! whether GRUB's menu is on the serial console (what `prepare` sets).
//! Exit 0 when every answer is yes, 1 otherwise.

use serde::Serialize;

use super::stdout::{json_line, outln};
use super::{Common, OutputFormat, ReadyArgs};
use crate::doctor::facts::UserName;
use crate::error::{Error, ExitCode, Result};
use crate::prepare::{self, PrepareRequest};
use crate::root::{as_root, RootAccess};
use crate::shell::{LoginSpec, Shell};
use crate::target::Target;

/// One answer: yes, or no and why.
#[derive(Serialize)]
struct Answer {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

impl From<std::result::Result<(), String>> for Answer {
    fn from(r: std::result::Result<(), String>) -> Answer {
        match r {
            Ok(()) => Answer {
                ok: true,
                why: None,
            },
            Err(why) => Answer {
                ok: false,
                why: Some(why),
            },
        }
    }
}

/// `ready --output json`: one line per target; absent answers were not asked.
#[derive(Serialize, Default)]
struct Ready {
    target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial_console: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reboot: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    login: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rescue_user: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grub_serial: Option<Answer>,
}

impl Ready {
    fn answers(&self) -> [(&'static str, Option<&Answer>); 5] {
        [
            ("serial console", self.serial_console.as_ref()),
            ("reboot (RebootInstances)", self.reboot.as_ref()),
            ("login path", self.login.as_ref()),
            ("rescue user", self.rescue_user.as_ref()),
            ("GRUB on the serial console", self.grub_serial.as_ref()),
        ]
    }

    fn all_ok(&self) -> bool {
        self.answers().iter().all(|(_, a)| a.is_none_or(|a| a.ok))
    }
}

/// Runs `ready`.
pub(super) async fn command(args: ReadyArgs, common: Common) -> Result<ExitCode> {
    let targets: Vec<Target> = args
        .targets
        .iter()
        .map(|t| t.parse())
        .collect::<Result<_>>()?;
    let request = PrepareRequest {
        rescue_user: UserName::parse(&args.rescue_user)
            .map_err(|e| Error::usage(format!("--rescue-user: {e}")))?,
    };
    let login = super::prepare::login_spec(
        args.login_user.as_deref(),
        &args.password,
        args.login_timeout,
    )?;
    let connect = super::connect_options(&common).await?;
    let mut all_ok = true;
    for target in &targets {
        let mut ready = Ready {
            target: target.to_string(),
            ..Ready::default()
        };
        if let Target::Ec2 { instance_id } = target {
            let r = crate::ec2::readiness::check(&connect.ec2, instance_id).await?;
            ready.serial_console = Some(r.console.into());
            ready.reboot = Some(r.reboot.into());
        }
        if let Some(spec) = &login {
            look_inside(target, &common, connect.clone(), spec, &request, &mut ready).await;
        }
        all_ok &= ready.all_ok();
        print(&ready, common.output, login.is_none())?;
    }
    Ok(if all_ok {
        ExitCode::Success
    } else {
        ExitCode::Problems
    })
}

/// Logs in and reads the rescue user and GRUB's settings, read-only.
async fn look_inside(
    target: &Target,
    common: &Common,
    connect: crate::connect::ConnectOptions,
    spec: &LoginSpec,
    request: &PrepareRequest,
    ready: &mut Ready,
) {
    let looked = async {
        let mut session = super::open_session_over(target, common, "ready", connect).await?;
        let access = RootAccess::Login(spec.clone());
        let job = async |shell: &mut Shell<'_>| prepare::examine(shell, request).await;
        let facts = as_root(&mut session, &access, &|_| {}, job, |_| false).await;
        let _ = session.close().await;
        facts
    }
    .await;
    match looked {
        Ok(facts) => {
            ready.login = Some(Ok(()).into());
            let user = request.rescue_user.as_str();
            ready.rescue_user = Some(
                match facts.user_exists {
                    true => Ok(()),
                    false => Err(format!("no user {user}: `prepare` creates it")),
                }
                .into(),
            );
            ready.grub_serial = Some(prepare::grub_ready(&facts).into());
        }
        Err(e) => ready.login = Some(Err(e.to_string()).into()),
    }
}

fn print(ready: &Ready, output: OutputFormat, no_login: bool) -> Result<()> {
    if output == OutputFormat::Json {
        return json_line(ready);
    }
    outln!("{}", ready.target)?;
    for (what, answer) in ready.answers() {
        match answer {
            Some(Answer { ok: true, .. }) => outln!("  {what}: yes")?,
            Some(Answer { why, .. }) => outln!("  {what}: NO: {}", why.as_deref().unwrap_or(""))?,
            None => {}
        }
    }
    if no_login {
        outln!("  (log in with --login-user to see the password user and GRUB's settings)")?;
    }
    Ok(())
}
