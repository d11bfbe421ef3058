//! The lab VM's real serial console served through the gateway: log in and
//! run a command over ws:// with each auth mode, and over wss:// with a test
//! CA — the whole path a team would use, end to end.

use crate::support::pki;

use crate::support::lab as lab_support;

use std::path::Path;
use std::time::Duration;

use ec2_serial_expect::aws::credentials;
use ec2_serial_expect::connect::ConnectOptions;
use ec2_serial_expect::gateway::{self, Auth, GatewayConfig, HoldOptions};
use ec2_serial_expect::shell::{LoginSpec, Shell};
use ec2_serial_expect::transport::{WsAuth, WsOptions};
use ec2_serial_expect::{Secret, Target};
use lab_support::LabVm;

const CREDENTIALS: &str =
    "[lab-team]\naws_access_key_id = AKIDLABGATEWAY\naws_secret_access_key = lab/gateway-secret\n";

async fn serve(vm: &LabVm, auth: Auth, tls: Option<&Path>) -> std::net::SocketAddr {
    let target: Target = format!("unix:{}", vm.socket().display()).parse().unwrap();
    let config = GatewayConfig {
        consoles: [("lab".to_string(), target)].into_iter().collect(),
        auth,
        record_dir: None,
        idle_timeout: Duration::from_secs(120),
        max_session: Duration::from_secs(600),
        tls: tls.map(|dir| {
            ec2_serial_expect::tls::server_config(&dir.join("server.pem"), &dir.join("server.key"))
                .unwrap()
        }),
        ..GatewayConfig::default()
    };
    let (addr, server) = gateway::bind("127.0.0.1:0", config).await.unwrap();
    tokio::spawn(server);
    addr
}

/// Logs in over the WebSocket, runs a command, logs out.
async fn login_and_run(url: &str, options: &WsOptions, password: &Secret) {
    let connect = ConnectOptions {
        ws: options.clone(),
        ..ConnectOptions::default()
    };
    // The gateway keeps a console claimed until it has logged out the last
    // client's session: the next one waits for that, as a person would.
    let waited_from = std::time::Instant::now();
    let mut session = loop {
        match crate::support::open_session_with(url, connect.clone()).await {
            Ok(session) => break session,
            Err(e)
                if e.to_string().contains("in use")
                    && waited_from.elapsed() < Duration::from_secs(60) =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("{url}: {e}"),
        }
    };
    let mut shell = Shell::login(&mut session, &LoginSpec::new("ec2-user", password.clone()))
        .await
        .unwrap();
    let out = shell.run("uname -n; id -un").await;
    shell.logout().await.unwrap();
    let out = out.unwrap();
    assert_eq!(out.output, "lab-instance\nec2-user\n", "{url}");
    assert_eq!(out.status, 0);
    session.close().await.unwrap();
}

#[tokio::test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn the_lab_console_over_websocket_with_every_auth_mode() {
    let vm = LabVm::boot("gateway").await;
    let password = vm.password();

    let addr = serve(&vm, Auth::None, None).await;
    login_and_run(
        &format!("ws://{addr}/v1/consoles/lab"),
        &WsOptions::default(),
        &password,
    )
    .await;

    let token = Secret::new("token", "lab-team-token");
    let addr = serve(&vm, Auth::Token(token.clone()), None).await;
    let options = WsOptions {
        auth: WsAuth::Bearer(token),
        trust: Default::default(),
        ..WsOptions::default()
    };
    login_and_run(&format!("ws://{addr}/v1/consoles/lab"), &options, &password).await;

    let identities = credentials::parse(CREDENTIALS).unwrap();
    let sigv4 = || Auth::sigv4(identities.clone(), Some("eu-north-1".into()), 0).unwrap();
    let options = WsOptions {
        auth: WsAuth::SigV4 {
            credentials: identities[0].clone(),
            region: "eu-north-1".into(),
        },
        trust: Default::default(),
        ..WsOptions::default()
    };
    let addr = serve(&vm, sigv4(), None).await;
    login_and_run(&format!("ws://{addr}/v1/consoles/lab"), &options, &password).await;

    let pki = tempfile::tempdir().unwrap();
    pki::make_test_pki(pki.path());
    let addr = serve(&vm, sigv4(), Some(pki.path())).await;
    let options = WsOptions {
        trust: ec2_serial_expect::tls::ClientTrust::new(Some(&pki.path().join("ca.pem"))).unwrap(),
        ..options
    };
    login_and_run(
        &format!("wss://localhost:{}/v1/consoles/lab", addr.port()),
        &options,
        &password,
    )
    .await;

    // Held open (--hold), last: the gateway keeps the console from now on.
    // A client logs in as it always did (what the console printed before
    // is context, not matched), twice: between the two the gateway logs
    // the console out over the connection it holds.
    let records = tempfile::tempdir().unwrap();
    let target: Target = format!("unix:{}", vm.socket().display()).parse().unwrap();
    let config = GatewayConfig {
        consoles: [("lab".to_string(), target)].into_iter().collect(),
        hold: Some(HoldOptions::default()),
        record_dir: Some(records.path().to_path_buf()),
        idle_timeout: Duration::from_secs(120),
        max_session: Duration::from_secs(600),
        ..GatewayConfig::default()
    };
    let (addr, server) = gateway::bind("127.0.0.1:0", config).await.unwrap();
    tokio::spawn(server);
    for _ in 0..2 {
        login_and_run(
            &format!("ws://{addr}/v1/consoles/lab"),
            &WsOptions::default(),
            &password,
        )
        .await;
    }
    let held = std::fs::read_dir(records.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().contains("-held-"))
        .expect("a continuous recording of the held console");
    let recorded = std::fs::read_to_string(held.path()).unwrap();
    assert!(recorded.contains("login:"), "{recorded}");
    assert!(
        !recorded.contains(password.expose()),
        "the password reached the recording"
    );
}
