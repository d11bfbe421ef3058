//! A replay test, written the way it goes in your own crate's `tests/`:
//! a recording made once on a real machine is the console, so the test runs
//! anywhere, in milliseconds, and fails when the commands it types change.
//!
//! ```sh
//! cargo test --example replay_in_a_test   # the #[test] below
//! cargo run  --example replay_in_a_test   # the same steps, printed
//! ```
//!
//! In your crate: `ec2-serial-expect` and `tokio` (features `macros`, `rt`,
//! `test-util`) as dev-dependencies, the recording under `tests/`.

use ec2_serial_expect::connect::Console;
use ec2_serial_expect::shell::{LoginSpec, Shell};
use ec2_serial_expect::{Result, Secret, Target};

/// Recorded on the lab VM: a login as ec2-user, `uname -n`, the logout.
const RECORDING: &str = "replay:fixtures/shell/lab-doc-example.cast";

/// Logs in on the console `target`, asks its host name, logs out.
async fn host_name(target: &Target) -> Result<String> {
    let mut session = Console::open(target).session().await?;
    // A recording shows the password as <redacted>: any value replays.
    let login = LoginSpec::new("ec2-user", Secret::new("password", "any"));
    let out = Shell::scoped(&mut session, &login, async |shell| {
        shell.run("uname -n").await
    })
    .await?;
    session.close().await?;
    Ok(out.output.trim_end().to_string())
}

fn main() -> Result<()> {
    // A replay waits on tokio's clock: paused, its waits cost nothing.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let target: Target = RECORDING.parse()?;
    let name = runtime.block_on(host_name(&target))?;
    println!("{RECORDING} answered `uname -n` with {name}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_recorded_instance_names_itself() {
        let target: Target = RECORDING.parse().unwrap();
        assert_eq!(host_name(&target).await.unwrap(), "lab-instance");
    }

    /// What a changed script looks like: the recording has no answer for a
    /// command it never saw, and the replay says so instead of passing.
    #[tokio::test(start_paused = true)]
    async fn a_command_the_recording_never_saw_fails() {
        let target: Target = RECORDING.parse().unwrap();
        let mut session = Console::open(&target).session().await.unwrap();
        let login = LoginSpec::new("ec2-user", Secret::new("password", "any"));
        let ran = Shell::scoped(&mut session, &login, async |shell| {
            shell.run("uname -a").await
        })
        .await;
        assert!(ran.is_err(), "a different command replayed: {ran:?}");
    }
}
