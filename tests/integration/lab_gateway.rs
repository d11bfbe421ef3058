//! The lab VM's real serial console served through the gateway: log in and
//! run a command over ws:// with each auth mode, and over wss:// with a test
//! CA — the whole path a team would use, end to end.

use crate::support::pki;

use crate::support::lab as lab_support;

use std::path::Path;
use std::time::Duration;

use ec2_serial_expect::aws::credentials;
use ec2_serial_expect::connect::ConnectOptions;
use ec2_serial_expect::gateway::{self, Auth, GatewayConfig};
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
    let mut session = crate::support::open_session_with(url, connect)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
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
}
