//! The doctor as a library: log in on a console, gather the facts, and say
//! why SSH refuses a key, without the command line.
//!
//! ```sh
//! cargo run --example doctor_on_a_console                  # a recording
//! cargo run --example doctor_on_a_console -- unix:/path/serial.sock USER PASSWORD-FILE
//! ```
//!
//! With no arguments it replays a recording of the AWS article's case (a
//! home directory left `chmod 777`), so it runs anywhere.

use ec2_serial_expect::connect::Console;
use ec2_serial_expect::doctor::{self, Policy, Request, Status};
use ec2_serial_expect::shell::Shell;
use ec2_serial_expect::{Error, Result, Secret, Target};

const RECORDING: &str = "fixtures/doctor/home-777-check";

/// Checks `user` (and that `key`, a `.pub` line, is authorized) on
/// `target`; returns the open findings, one line each.
async fn diagnose(
    target: &Target,
    user: &str,
    password: Secret,
    key: Option<&str>,
) -> Result<Vec<String>> {
    let request = Request::new(user, Policy::Aws, key, None, false).map_err(Error::usage)?;
    let mut session = Console::open(target).session().await?;
    let mut shell = Shell::login(&mut session, &doctor::login_spec(user, password)).await?;
    let outcome = doctor::examine(&mut shell, &request, false, &mut |_| {}).await?;
    shell.logout().await?;
    session.close().await?;
    Ok(outcome
        .findings
        .iter()
        .filter(|f| f.status == Status::Open)
        .map(|f| {
            let found = f.actual.as_deref().unwrap_or("-");
            let wanted = f.expected.as_deref().unwrap_or("-");
            format!(
                "{} ({:?}): found {found}, want {wanted}: {}",
                f.check, f.severity, f.why
            )
        })
        .collect())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let read = |path: &str| {
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {path}"), e))
    };
    let (target, user, password, key, replay) = match args.as_slice() {
        [] => (
            format!("replay:{RECORDING}.cast"),
            read(&format!("{RECORDING}.login"))?.trim().to_string(),
            "any: a recording shows <redacted>".to_string(),
            Some(read(&format!("{RECORDING}.pub"))?),
            true,
        ),
        [target, user, password_file] => (
            target.clone(),
            user.clone(),
            read(password_file)?.trim_end().to_string(),
            None,
            false,
        ),
        _ => {
            return Err(Error::usage(
                "usage: doctor_on_a_console [TARGET USER PASSWORD-FILE]",
            ))
        }
    };
    let target: Target = target.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(replay)
        .build()
        .expect("a runtime");
    let password = Secret::new(format!("password for {user}"), password);
    let findings = runtime.block_on(diagnose(&target, &user, password, key.as_deref()))?;
    println!("{target}: {} open finding(s)", findings.len());
    for f in &findings {
        println!("  {f}");
    }
    if replay && !findings.iter().any(|f| f.starts_with("home.mode")) {
        return Err(Error::usage("the recording's chmod 777 home was not found"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_recorded_home_777_is_found() {
        super::main().unwrap();
    }
}
