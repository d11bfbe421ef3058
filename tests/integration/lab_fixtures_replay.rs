//! Transcripts recorded from the real lab console (`fixtures/lab-*.cast`,
//! see `tests/integration/lab_console.rs`), replayed through `replay:` with no VM: the
//! console logic meets the real getty, login, bash and boot log in every
//! `cargo test`, and the recordings themselves are checked for secrets.

use crate::support::lab as lab_support;

use std::path::PathBuf;

use ec2_serial_expect::transcript::cast::{Cast, EventCode};
use ec2_serial_expect::{ErrorKind, Secret};
use lab_support::flows;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Any secret replays where the recording says `<redacted>`.
fn some_password() -> Secret {
    Secret::new("password", "any-password-replays")
}

#[tokio::test]
async fn login_and_logout_replay() {
    let mut s = flows::replay(&fixture(flows::LOGIN)).await;
    flows::login(&mut s, &some_password()).await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_a_login_error_then_the_right_one_logs_in() {
    let mut s = flows::replay(&fixture(flows::FAILED_LOGIN)).await;
    let err = flows::failed_login(&mut s, &some_password(), &some_password())
        .await
        .unwrap();
    assert!(matches!(err.kind(), ErrorKind::Login(_)), "{err:?}");
    assert_eq!(err.exit_code().code(), 4);
    assert!(err.to_string().contains("Login incorrect"), "{err}");
}

#[tokio::test]
async fn a_command_gives_its_output_and_status() {
    let mut s = flows::replay(&fixture(flows::COMMAND)).await;
    let result = flows::command(&mut s, &some_password()).await.unwrap();
    assert_eq!(result.status, 0);
    assert!(
        result
            .output
            .contains("700 ec2-user ec2-user /home/ec2-user\n"),
        "{:?}",
        result.output
    );
    assert!(result
        .output
        .contains("700 ec2-user ec2-user /home/ec2-user/.ssh\n"));
    assert!(
        !result.output.contains("__ESE_RC"),
        "the status marker is not output"
    );
}

#[tokio::test]
async fn a_reboot_shows_the_whole_boot_log_up_to_login() {
    let mut s = flows::replay(&fixture(flows::REBOOT)).await;
    let log = flows::reboot(&mut s, &some_password()).await.unwrap();
    for line in [
        "reboot: Restarting system",
        "Linux version 6.1",
        "Debian GNU/Linux 12",
        "login: ",
    ] {
        assert!(log.contains(line), "{line:?} missing from the boot log");
    }
}

#[tokio::test]
async fn a_different_send_is_caught_not_ignored() {
    // The replay is strict: a session that types something else fails at once.
    let mut s = flows::replay(&fixture(flows::LOGIN)).await;
    let err = ec2_serial_expect::lab::console::login(&mut s, "root", &some_password())
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ReplayMismatch(_)),
        "{err:?}"
    );
}

#[test]
fn every_recorded_password_send_is_redacted() {
    for name in [
        flows::LOGIN,
        flows::FAILED_LOGIN,
        flows::COMMAND,
        flows::REBOOT,
    ] {
        let cast = Cast::read(&fixture(name)).unwrap();
        let inputs: Vec<&str> = cast
            .events
            .iter()
            .filter(|e| e.code == EventCode::Input)
            .map(|e| e.data.as_str())
            .collect();
        // The send after the user name is the password: it must be redacted.
        let user_at = inputs.iter().position(|i| *i == "ec2-user\r").unwrap();
        assert_eq!(inputs[user_at + 1], "<redacted>", "{name}: {inputs:?}");
        // The lab's generated passwords are 20 letters and digits; no input
        // of that shape appears anywhere.
        assert!(
            !inputs.iter().any(|i| i.trim_end().len() == 20
                && i.trim_end().chars().all(|c| c.is_ascii_alphanumeric())),
            "{name}: {inputs:?}"
        );
    }
}
