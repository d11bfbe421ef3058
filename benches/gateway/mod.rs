//! The gateway's share of the sessions bench (issue 36): what holding a
//! console open costs in memory, and whether read-only viewers slow the
//! writer's echo. Run through `sessions held N` and `sessions viewers V
//! CYCLES` (see `sessions.rs`); each prints one JSON line.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ec2_serial_expect::connect::Console;
use ec2_serial_expect::gateway::{self, GatewayConfig, HoldOptions, OnDisconnect, WebOptions};
use ec2_serial_expect::Target;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{current_rss_kib, report, runtime};

/// Each held console prints this much at start: more than the scrollback,
/// so every backlog is full when memory is read.
const PRINTED: usize = 400 * 1024;

fn config(consoles: HashMap<String, Target>) -> GatewayConfig {
    GatewayConfig {
        consoles,
        on_disconnect: OnDisconnect::Keep,
        idle_timeout: Duration::from_secs(600),
        ..GatewayConfig::default()
    }
}

/// N consoles held open, recorded, each past its scrollback.
pub fn held(n: usize) -> Result<(), String> {
    crate::raise_fd_limit();
    let records = tempfile::tempdir().map_err(|e| e.to_string())?;
    runtime().block_on(async {
        let baseline = current_rss_kib();
        let program =
            format!("exec:sh -c 'head -c {PRINTED} /dev/zero | tr \"\\0\" x; echo; exec cat'");
        let target: Target = program.parse().map_err(|e| format!("{e}"))?;
        let consoles = (0..n).map(|i| (format!("c{i}"), target.clone())).collect();
        let mut config = config(consoles);
        config.hold = Some(HoldOptions::default());
        config.record_dir = Some(records.path().to_path_buf());
        let started = Instant::now();
        let (addr, server) = gateway::bind("127.0.0.1:0", config)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(server);
        // Until every console printed it all: memory stops growing.
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = current_rss_kib();
            if now == last && started.elapsed() > Duration::from_secs(2) {
                break;
            }
            last = now;
        }
        let all_held_kib = current_rss_kib();
        let settled = started.elapsed();
        // Proof every backlog is full: the first client gets the whole
        // scrollback as history.
        for i in [0, n / 2, n - 1] {
            let url: Target = format!("ws://{addr}/v1/consoles/c{i}")
                .parse()
                .map_err(|e| format!("{e}"))?;
            let mut transport = Console::open(&url)
                .transport()
                .await
                .map_err(|e| e.to_string())?;
            let history = transport.take_history().unwrap_or_default();
            if history.len() < gateway::DEFAULT_SCROLLBACK * 9 / 10 {
                return Err(format!(
                    "console c{i} holds only {} bytes of history",
                    history.len()
                ));
            }
            let _ = transport.close().await;
        }
        report(
            "held_consoles",
            &[
                ("consoles", n as f64),
                ("settled_s", settled.as_secs_f64()),
                ("baseline_rss_kib", baseline as f64),
                ("rss_all_held_kib", all_held_kib as f64),
                (
                    "kib_per_console",
                    (all_held_kib - baseline) as f64 / n as f64,
                ),
                (
                    "scrollback_kib",
                    (gateway::DEFAULT_SCROLLBACK / 1024) as f64,
                ),
            ],
        );
        Ok(())
    })
}

/// A writer's echo time with no viewer, then with `v` viewers attached.
pub fn viewers(v: usize, cycles: usize) -> Result<(), String> {
    crate::raise_fd_limit();
    runtime().block_on(async {
        let target: Target = "exec:sh -c 'stty -echo; echo ready; exec cat'"
            .parse()
            .map_err(|e| format!("{e}"))?;
        let mut config = config(HashMap::from([("echo".to_string(), target)]));
        // Loopback with no authentication: the page needs no sign-in.
        config.web = Some(WebOptions::default());
        let (addr, server) = gateway::bind("127.0.0.1:0", config)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(server);
        let url: Target = format!("ws://{addr}/v1/consoles/echo")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let mut writer = Console::open(&url)
            .session()
            .await
            .map_err(|e| e.to_string())?;
        writer
            .expect_exact("ready", Some(Duration::from_secs(10)))
            .await
            .map_err(|e| e.to_string())?;
        let alone = round_trips(&mut writer, cycles, "alone").await?;
        let mut watching = Vec::new();
        for _ in 0..v {
            let mut request = format!("ws://{addr}/consoles/echo/ws?mode=watch")
                .into_client_request()
                .map_err(|e| e.to_string())?;
            let origin = format!("http://{addr}").parse().map_err(|_| "origin")?;
            request.headers_mut().insert("origin", origin);
            let (mut ws, _) = tokio_tungstenite::connect_async(request)
                .await
                .map_err(|e| format!("a viewer could not connect: {e}"))?;
            watching.push(tokio::spawn(async move {
                let mut bytes = 0usize;
                while let Some(Ok(frame)) = ws.next().await {
                    bytes += frame.len();
                }
                bytes
            }));
        }
        let watched = round_trips(&mut writer, cycles, "watched").await?;
        let _ = writer.close().await;
        let (a50, a99) = percentiles(alone);
        let (w50, w99) = percentiles(watched);
        report(
            "viewers_echo",
            &[
                ("viewers", v as f64),
                ("cycles", cycles as f64),
                ("alone_p50_ms", a50),
                ("alone_p99_ms", a99),
                ("watched_p50_ms", w50),
                ("watched_p99_ms", w99),
                ("slower_p50_ms", w50 - a50),
                ("slower_p99_ms", w99 - a99),
            ],
        );
        for viewer in watching {
            viewer.abort();
        }
        Ok(())
    })
}

/// Each round trip's time: send a line, expect it back.
async fn round_trips(
    writer: &mut ec2_serial_expect::Session,
    cycles: usize,
    tag: &str,
) -> Result<Vec<Duration>, String> {
    let mut times = Vec::with_capacity(cycles);
    for i in 0..cycles {
        let line = format!("{tag} ping {i}");
        let sent = Instant::now();
        writer.send_line(&line).await.map_err(|e| e.to_string())?;
        writer
            .expect_exact(&line, Some(Duration::from_secs(10)))
            .await
            .map_err(|e| e.to_string())?;
        times.push(sent.elapsed());
    }
    Ok(times)
}

/// Median and 99th percentile, in milliseconds.
fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}
