//! `prepare TARGET [--check] [--account]`: the command around
//! [`crate::prepare`]. Logs in (or takes over the shell an `exec:ssh …`
//! target shows), examines as root, prints the plan, and unless `--check`
//! applies it and examines again to prove a second run would change
//! nothing. The new rescue user's password is generated here, written 0600
//! to `--rescue-password-file` or shown once on the terminal, and only its
//! crypt hash reaches the console.

use std::io::IsTerminal;

use serde::Serialize;

use super::stdout::{json_line, outln};
use super::{Common, OutputFormat, PrepareArgs};
use crate::doctor::facts::UserName;
use crate::error::{Error, ExitCode, Result};
use crate::expect::Session;
use crate::prepare::{self, Change, Plan, PrepareRequest};
use crate::root::{as_root, RootAccess};
use crate::secret::Secret;
use crate::shell::{LoginSpec, Shell};
use crate::target::Target;

/// Length of a generated rescue password.
const PASSWORD_LEN: usize = 20;
/// SHA-512 crypt rounds: glibc's default.
const CRYPT_ROUNDS: usize = 5000;

/// `prepare --output json`.
#[derive(Serialize)]
struct PrepareResult<'a> {
    target: Option<&'a str>,
    mode: &'static str,
    account: Option<&'static str>,
    changes: Vec<ChangeView>,
    notes: &'a [String],
    password_file: Option<String>,
}

#[derive(Serialize)]
struct ChangeView {
    change: &'static str,
    what: String,
    diff: Vec<String>,
}

/// Runs `prepare`.
pub(super) async fn command(args: PrepareArgs, common: Common) -> Result<ExitCode> {
    let request = PrepareRequest {
        rescue_user: UserName::parse(&args.rescue_user)
            .map_err(|e| Error::usage(format!("--rescue-user: {e}")))?,
    };
    let target: Option<Target> = args.target.as_deref().map(str::parse).transpose()?;
    let login = login_spec(
        args.login_user.as_deref(),
        &args.password,
        args.login_timeout,
    )?;
    let connect = super::connect_options(&common).await?;
    let account = match args.account {
        false => None,
        true => Some(enable_account(&connect.ec2, args.check).await?),
    };
    let Some(target) = target else {
        return print(&common, &args, None, account, &Plan::default(), None);
    };
    let mut session = super::open_session_over(&target, &common, "prepare", connect).await?;
    let outcome = prepare_on(&mut session, &args, &request, login.as_ref()).await;
    let _ = session.close().await;
    let (plan, password_file) = outcome?;
    print(&common, &args, Some(&target), account, &plan, password_file)
}

/// The login the flags ask for; `None` when the target already shows a
/// shell (or, for `ready`, when no login is asked for).
pub(super) fn login_spec(
    login_user: Option<&str>,
    password: &super::PasswordArgs,
    timeout_secs: u64,
) -> Result<Option<LoginSpec>> {
    let Some(user) = login_user else {
        if password.given() {
            return Err(Error::usage(
                "a password source was given without --login-user: name who logs in on the console",
            ));
        }
        return Ok(None);
    };
    let user = UserName::parse(user).map_err(|e| Error::usage(format!("--login-user: {e}")))?;
    let password = super::prompt::login_password(password, user.as_str())?;
    let mut spec = crate::doctor::login_spec(user.as_str(), password);
    spec.timeout = std::time::Duration::from_secs(timeout_secs);
    Ok(Some(spec))
}

/// Examines, plans and (unless `--check`) applies and verifies, on every
/// path leaving the console as it found it.
async fn prepare_on(
    session: &mut Session,
    args: &PrepareArgs,
    request: &PrepareRequest,
    login: Option<&LoginSpec>,
) -> Result<(Plan, Option<String>)> {
    let job = async |shell: &mut Shell<'_>| {
        let plan = prepare::plan(&prepare::examine(shell, request).await?, request);
        if args.check || plan.changes.is_empty() {
            return Ok((plan, None));
        }
        let (hash, password_file) = match plan.creates_user() {
            true => {
                let (hash, file) = new_password(args, request)?;
                (Some(hash), file)
            }
            false => (None, None),
        };
        if let Some(hash) = &hash {
            shell.session().add_secret(hash);
        }
        prepare::apply(shell, &plan, hash.as_ref().map(Secret::expose)).await?;
        let again = prepare::plan(&prepare::examine(shell, request).await?, request);
        if !again.changes.is_empty() {
            return Err(Error::problems(format!(
                "after preparing, a second look still finds changes to make: {:?}",
                again.changes
            )));
        }
        Ok((plan, password_file))
    };
    let access = match login {
        Some(spec) => RootAccess::Login(spec.clone()),
        None => RootAccess::Adopt(std::time::Duration::from_secs(30)),
    };
    as_root(session, &access, &|_| {}, job, |_| false).await
}

/// A new password for the rescue user: written 0600 where asked, else
/// shown once on the terminal (never into a pipe or a log); its hash.
fn new_password(args: &PrepareArgs, request: &PrepareRequest) -> Result<(Secret, Option<String>)> {
    let user = request.rescue_user.as_str();
    if args.rescue_password_file.is_none() && !std::io::stderr().is_terminal() {
        return Err(Error::usage(format!(
            "prepare creates {user} with a new password, which must go somewhere: pass \
             --rescue-password-file FILE (written 0600), or run it on a terminal to see it once"
        )));
    }
    let password = crate::secret::generate(&format!("password for {user}"), PASSWORD_LEN)?;
    let params = sha_crypt::Sha512Params::new(CRYPT_ROUNDS)
        .map_err(|e| Error::usage(format!("hashing the rescue password: {e:?}")))?;
    let hash = sha_crypt::sha512_simple(password.expose(), &params)
        .map_err(|e| Error::usage(format!("hashing the rescue password: {e:?}")))?;
    let file = match &args.rescue_password_file {
        Some(path) => {
            crate::private_file::write_secret(path, format!("{}\n", password.expose()).as_bytes())
                .map_err(|e| {
                    Error::usage(format!(
                        "cannot write --rescue-password-file {}: {e}",
                        path.display()
                    ))
                })?;
            Some(path.display().to_string())
        }
        None => {
            // The one place the password is shown: the user's own terminal.
            eprintln!(
                "password for {user} (shown once; keep it where you keep root passwords): {}",
                password.expose()
            );
            None
        }
    };
    Ok((Secret::new("rescue password hash", hash), file))
}

async fn enable_account(ec2: &crate::ec2::Ec2Options, check: bool) -> Result<&'static str> {
    use crate::ec2::access::{enable, Access};
    Ok(match enable(ec2, check).await? {
        Access::Enabled => "serial console access enabled",
        Access::WouldEnable => "serial console access would be enabled (dry run allowed)",
    })
}

fn print(
    common: &Common,
    args: &PrepareArgs,
    target: Option<&Target>,
    account: Option<&'static str>,
    plan: &Plan,
    password_file: Option<String>,
) -> Result<ExitCode> {
    let mode = if args.check { "check" } else { "apply" };
    let changes: Vec<ChangeView> = plan.changes.iter().map(view).collect();
    if common.output == OutputFormat::Json {
        let target = target.map(ToString::to_string);
        json_line(&PrepareResult {
            target: target.as_deref(),
            mode,
            account,
            changes,
            notes: &plan.notes,
            password_file,
        })?;
        return Ok(ExitCode::Success);
    }
    if let Some(account) = account {
        outln!("account: {account}")?;
    }
    let verb = if args.check {
        "would change"
    } else {
        "changed"
    };
    if target.is_some() && changes.is_empty() {
        outln!("nothing to change: the rescue paths are ready")?;
    }
    for c in &changes {
        outln!("{verb}: {}", c.what)?;
        for line in &c.diff {
            outln!("    {line}")?;
        }
    }
    for note in &plan.notes {
        outln!("note: {note}")?;
    }
    if let Some(file) = password_file {
        outln!("the rescue user's password is in {file} (mode 0600)")?;
    }
    if args.check && !changes.is_empty() {
        outln!("run again without --check to apply")?;
    }
    Ok(ExitCode::Success)
}

fn view(change: &Change) -> ChangeView {
    match change {
        Change::CreateUser { user, group } => ChangeView {
            change: "create_user",
            what: format!(
                "create the password user {}{}",
                user.as_str(),
                group
                    .as_deref()
                    .map(|g| format!(" in group {g} (sudo)"))
                    .unwrap_or_default()
            ),
            diff: Vec::new(),
        },
        Change::GrubDefaults {
            path,
            diff,
            regenerate,
            ..
        } => ChangeView {
            change: "grub_serial",
            what: format!("GRUB on the serial console: {path}, then `{regenerate}`"),
            diff: diff.clone(),
        },
    }
}
