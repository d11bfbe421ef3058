//! The real serial console of a lab VM: recording transcripts (login, failed
//! login, a command, a reboot with its boot log) that replay exactly, with
//! the password nowhere in them; and the harness tearing QEMU down when a
//! test panics.
//!
//! `ESE_LAB_RECORD_FIXTURES=1` writes the recordings into `fixtures/`
//! (replayed by `tests/integration/lab_fixtures_replay.rs` without a VM), reboot
//! included; otherwise they go to a temporary directory and are only checked,
//! and the reboot (minutes under emulation) is left to the committed fixture.

use crate::support::lab as lab_support;

use std::path::{Path, PathBuf};

use ec2_serial_expect::transcript::cast::{Cast, EventCode};
use ec2_serial_expect::Secret;
use lab_support::{flows, LabVm};

fn recording() -> bool {
    std::env::var("ESE_LAB_RECORD_FIXTURES").as_deref() == Ok("1")
}

fn output_dir(tmp: &Path) -> PathBuf {
    if recording() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
    } else {
        tmp.to_path_buf()
    }
}

/// Checks a recording: the password is in no byte of it, the secret send is
/// recorded as `<redacted>`.
fn assert_clean(path: &Path, password: &Secret) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        !text.contains(password.expose()),
        "the password leaked into {}",
        path.display()
    );
    let cast = Cast::read(path).unwrap();
    assert!(
        cast.events
            .iter()
            .any(|e| e.code == EventCode::Input && e.data == "<redacted>"),
        "{}: the password send must be recorded as <redacted>",
        path.display()
    );
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn records_real_console_transcripts_that_replay() {
    let vm = LabVm::boot("record").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = output_dir(tmp.path());
    let password = vm.password();
    let wrong = Secret::new("wrong password", "not-the-password-42");

    let path = dir.join(flows::LOGIN);
    let mut s = vm.console(Some(&path)).await;
    flows::login(&mut s, &password).await.unwrap();
    s.close().await.unwrap();
    assert_clean(&path, &password);
    flows::login(&mut flows::replay(&path).await, &password)
        .await
        .unwrap();

    let path = dir.join(flows::FAILED_LOGIN);
    let mut s = vm.console(Some(&path)).await;
    let refusal = flows::failed_login(&mut s, &wrong, &password)
        .await
        .unwrap();
    s.close().await.unwrap();
    assert!(refusal.to_string().contains("Login incorrect"), "{refusal}");
    assert!(!std::fs::read_to_string(&path)
        .unwrap()
        .contains(wrong.expose()));
    assert_clean(&path, &password);
    flows::failed_login(&mut flows::replay(&path).await, &wrong, &password)
        .await
        .unwrap();

    let path = dir.join(flows::COMMAND);
    let mut s = vm.console(Some(&path)).await;
    let live = flows::command(&mut s, &password).await.unwrap();
    s.close().await.unwrap();
    assert_eq!(live.status, 0);
    assert!(
        live.output
            .contains("700 ec2-user ec2-user /home/ec2-user\n"),
        "{:?}",
        live.output
    );
    assert!(live.output.contains("Linux"), "{:?}", live.output);
    let replayed = flows::command(&mut flows::replay(&path).await, &password)
        .await
        .unwrap();
    assert_eq!(replayed, live);

    // The reboot takes minutes under emulation: recorded only when asked.
    if !recording() {
        return;
    }
    let path = dir.join(flows::REBOOT);
    let mut s = vm.console(Some(&path)).await;
    let boot_log = flows::reboot(&mut s, &password).await.unwrap();
    s.close().await.unwrap();
    assert_clean(&path, &password);
    assert!(
        boot_log.contains("Linux version 6.1"),
        "kernel banner in the boot log"
    );
    assert!(boot_log.contains("login: "));
    let replayed = flows::reboot(&mut flows::replay(&path).await, &password)
        .await
        .unwrap();
    assert_eq!(replayed, boot_log);
}

#[test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
fn a_panicking_test_leaves_no_qemu_behind() {
    let socket = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = socket.clone();
    let crashed = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let vm = LabVm::boot("panic").await;
            *seen.lock().unwrap() = Some(vm.socket());
            assert_eq!(
                lab_support::qemu_processes_mentioning(&vm.socket().to_string_lossy()).len(),
                1
            );
            panic!("a lab test failing on purpose");
        })
    })
    .join();
    assert!(crashed.is_err(), "the thread panicked");
    let socket = socket.lock().unwrap().clone().expect("the VM booted");
    let left = lab_support::qemu_processes_mentioning(&socket.to_string_lossy());
    assert!(left.is_empty(), "QEMU processes left behind: {left:?}");
    assert!(
        !socket.parent().unwrap().exists(),
        "the run directory is removed"
    );
}
