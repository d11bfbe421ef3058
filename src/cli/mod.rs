//! The command line: argument definitions, logging setup, dispatch, exit codes.
//!
//! Each command's work lives in the module of its layer; this module only
//! parses, sets up logging and the runtime, and turns results into exit codes
//! and messages (`--output human|json`).

mod args;
mod console;
mod doctor;
mod lab;
mod logging;
mod prompt;
mod run;
mod signals;

use std::time::Duration;

use clap::Parser;

pub use args::{
    Cli, Command, Common, DoctorArgs, GatewayArgs, GatewayAuthKind, LabCommand, OutputFormat,
    RunArgs, WsAuthKind,
};

use crate::error::{Error, ExitCode, Result};
use crate::expect::{Session, SessionOptions};
use crate::target::Target;
use crate::transcript::{default_path, Recorder};

/// `ec2-serial-expect … | head` closes our standard output early, and
/// `println!` panics on the broken pipe. Rust ignores SIGPIPE (and it must
/// stay ignored: a closed console socket is an error to report, not a
/// death), so the panic is where it shows: end the way any Unix filter
/// does, killed by SIGPIPE, without a panic message.
///
/// Any other panic is printed with secrets scrubbed (its message may quote
/// console text).
fn end_quietly_when_stdout_is_closed() {
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            use nix::sys::signal::{raise, signal, SigHandler, Signal};
            // SAFETY: restoring the default disposition installs no handler code.
            unsafe {
                let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
            }
            let _ = raise(Signal::SIGPIPE);
        }
        eprintln!("{}", crate::secret::scrub_known(&info.to_string()));
    }));
}

/// No core dump may hold a password: this process never dumps core (and
/// other processes of the same user cannot attach to read its memory).
fn forbid_core_dumps() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls with valid arguments; failures leave the
    // defaults, which only weakens a defence in depth.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    forbid_core_dumps();
    end_quietly_when_stdout_is_closed();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap: 0 for --help/--version, 2 for usage errors, as we want.
            return e.exit_code();
        }
    };
    logging::init(&cli.common);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::Transport.code();
        }
    };
    let output = cli.common.output;
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code.code(),
        Err(e) => {
            report_error(&e, output);
            e.exit_code().code()
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let common = cli.common;
    // `console` relays and handles its own signals (src/interact.rs).
    if matches!(cli.command, Command::Run(_) | Command::Doctor(_)) {
        signals::listen()?;
    }
    match cli.command {
        Command::Run(args) => run::run_command(args, common).await,
        Command::Lint { script } => run::lint_command(&script, &common),
        Command::Console {
            target,
            record_input,
        } => {
            let options = console::ConsoleOptions { record_input };
            console::console_with(&target, &common, options).await
        }
        Command::Play { file, speed } => crate::transcript::play(&file, speed),
        Command::Lab(cmd) => lab::command(cmd, &common).await,
        Command::Doctor(args) => doctor::command(args, common).await,
        Command::Gateway(args) => gateway_command(&args, &common).await,
    }
}

fn report_error(e: &Error, output: OutputFormat) {
    match output {
        OutputFormat::Human => eprintln!("error: {}", crate::secret::scrub_known(&e.to_string())),
        OutputFormat::Json => {
            let message = crate::secret::scrub_known(&e.to_string());
            let v = serde_json::json!({"error": message, "exit_code": e.exit_code().code()});
            println!("{v}");
        }
    }
}

/// Opens a session to `target` with the common flags applied: the timeout,
/// and the transcript (`--transcript`, the default path, or none).
pub async fn open_session(target: &Target, common: &Common, what: &str) -> Result<Session> {
    let transport = crate::connect::open(target, &connect_options(common).await?).await?;
    let replaying = match target {
        Target::Replay { path } => Some(path.as_path()),
        _ => None,
    };
    let recorder = recorder_for(common, what, &transport.describe(), replaying)?;
    if let Some(path) = recorder.path() {
        tracing::info!("recording the session to {}", path.display());
    }
    let mut session = Session::new(transport, recorder, session_options(common)?);
    if let Some(signals) = signals::receiver() {
        session.watch_signals(signals);
    }
    Ok(session)
}

async fn gateway_command(args: &GatewayArgs, common: &Common) -> Result<ExitCode> {
    use crate::gateway::{Auth, GatewayConfig};
    let mut consoles = std::collections::HashMap::new();
    for arg in &args.consoles {
        let (name, target) = crate::gateway::parse_console(arg)?;
        if consoles.insert(name.clone(), target).is_some() {
            return Err(Error::usage(format!("--console {name} is given twice")));
        }
    }
    let auth = match args.auth {
        GatewayAuthKind::None => Auth::None,
        GatewayAuthKind::Token => {
            let var = common
                .token_env
                .as_deref()
                .ok_or_else(|| Error::usage("--auth token needs --token-env VAR"))?;
            let token = crate::secret::SecretSource::Env(var.to_string()).read("token")?;
            Auth::token(token).map_err(|e| Error::usage(format!("--token-env {var}: {e}")))?
        }
        GatewayAuthKind::Sigv4 => {
            let file = args.credentials.as_deref().ok_or_else(|| {
                Error::usage("--auth sigv4 needs --credentials FILE (AWS shared-credentials format, one profile per identity)")
            })?;
            let started = time::OffsetDateTime::now_utc().unix_timestamp();
            Auth::sigv4(
                crate::aws::credentials::read_file(file)?,
                common.region.clone(),
                started,
            )
            .map_err(|e| Error::usage(format!("--credentials {}: {e}", file.display())))?
        }
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
        _ => None,
    };
    let positive = |secs: u64, flag: &str| {
        if secs == 0 {
            Err(Error::usage(format!("{flag} must be at least 1 second")))
        } else {
            Ok(Duration::from_secs(secs))
        }
    };
    let config = GatewayConfig {
        consoles,
        auth,
        record_dir: args.record_dir.clone(),
        idle_timeout: positive(args.idle_timeout, "--idle-timeout")?,
        max_session: positive(args.max_session, "--max-session")?,
        tls,
        public_hosts: args.public_hosts.clone(),
        limits: crate::gateway::Limits {
            max_connections: args
                .max_connections
                .unwrap_or(crate::gateway::Limits::default().max_connections),
            max_per_address: args.max_per_address,
            handshake_timeout: positive(args.handshake_timeout, "--handshake-timeout")?,
        },
        insecure_cleartext_credentials: common.insecure_cleartext_credentials,
        on_disconnect: match args.on_disconnect {
            args::OnDisconnectKind::Logout => crate::gateway::OnDisconnect::Logout,
            args::OnDisconnectKind::Keep => crate::gateway::OnDisconnect::Keep,
        },
        connect: connect_options(common).await?,
    };
    serve_gateway(&args.listen, config).await
}

/// Binds the gateway, says where each console is served, and serves until
/// interrupted.
async fn serve_gateway(listen: &str, config: crate::gateway::GatewayConfig) -> Result<ExitCode> {
    let names: Vec<String> = config.consoles.keys().cloned().collect();
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    let unrecorded = config.record_dir.is_none();
    let (addr, server) = crate::gateway::bind(listen, config).await?;
    if unrecorded {
        tracing::warn!(
            "sessions are NOT recorded: pass --record-dir DIR to keep a transcript of every session"
        );
    }
    for name in &names {
        eprintln!(
            "serving {scheme}://{addr}{}{name}",
            crate::gateway::PATH_PREFIX
        );
    }
    tokio::select! {
        _ = server => {}
        _ = tokio::signal::ctrl_c() => eprintln!("gateway stopping"),
    }
    Ok(ExitCode::Success)
}

/// Whether `a` and `b` name the same existing file (links followed).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// How to reach consoles, from the common flags, checked.
pub async fn connect_options(common: &Common) -> Result<crate::connect::ConnectOptions> {
    Ok(crate::connect::ConnectOptions {
        ws: ws_options(common).await?,
        ec2: ec2_options(common)?,
    })
}

/// The EC2 options the common flags give, checked.
fn ec2_options(common: &Common) -> Result<crate::ec2::Ec2Options> {
    if let Some(endpoint) = &common.serial_endpoint {
        crate::ec2::endpoints::parse_host_port(endpoint)?;
    }
    if let Some(fingerprint) = &common.host_key_fingerprint {
        crate::ec2::endpoints::parse_fingerprint(fingerprint)?;
    }
    Ok(crate::ec2::Ec2Options {
        region: common.region.clone(),
        profile: common.profile.clone(),
        serial_endpoint: common.serial_endpoint.clone(),
        host_key_fingerprint: common.host_key_fingerprint.clone(),
        no_preflight: common.no_preflight,
        wait_for_session: common.wait_for_session.map(Duration::from_secs),
    })
}

/// WebSocket connection options from the common flags.
pub async fn ws_options(common: &Common) -> Result<crate::transport::WsOptions> {
    use crate::transport::WsAuth;
    let kind = common.ws_auth.unwrap_or(if common.token_env.is_some() {
        WsAuthKind::Token
    } else {
        WsAuthKind::None
    });
    let auth = match kind {
        WsAuthKind::None => WsAuth::None,
        WsAuthKind::Token => {
            let var = common
                .token_env
                .as_deref()
                .ok_or_else(|| Error::usage("--ws-auth token needs --token-env VAR naming the variable that holds the token"))?;
            WsAuth::Bearer(crate::secret::SecretSource::Env(var.to_string()).read("token")?)
        }
        WsAuthKind::Sigv4 => ws_sigv4(common).await?,
    };
    Ok(crate::transport::WsOptions {
        auth,
        ca_file: common.ca_file.clone(),
        allow_cleartext_credentials: common.insecure_cleartext_credentials,
    })
}

/// SigV4 signing for `--ws-auth sigv4`, resolved the AWS way (aws-config,
/// as for EC2 targets): an explicit `--profile` wins over environment keys,
/// SSO, `credential_process` and assume-role profiles work, and the
/// profile's Region is used when `--region`/`AWS_REGION` are not given.
async fn ws_sigv4(common: &Common) -> Result<crate::transport::WsAuth> {
    use crate::aws::credentials::Credentials;
    use crate::secret::Secret;
    let ctx = crate::ec2::AwsContext::load(&ec2_options(common)?)
        .await
        .map_err(|e| match e {
            Error::Usage(m) if m.starts_with("no AWS Region") => Error::usage(
                "--ws-auth sigv4 needs a Region: pass --region, set AWS_REGION, or set `region` in the AWS profile",
            ),
            other => other,
        })?;
    let found = ctx.credentials().await?;
    Ok(crate::transport::WsAuth::SigV4 {
        credentials: Credentials {
            access_key_id: found.access_key_id().to_string(),
            secret_access_key: Secret::new("AWS secret access key", found.secret_access_key()),
            session_token: found
                .session_token()
                .map(|t| Secret::new("AWS session token", t)),
            source: common
                .profile
                .clone()
                .unwrap_or_else(|| "the AWS credential chain".into()),
        },
        region: ctx.region,
    })
}

/// Session options from the common flags.
pub fn session_options(common: &Common) -> Result<SessionOptions> {
    let mut options = SessionOptions::default();
    if let Some(secs) = common.timeout {
        if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
            return Err(Error::usage(format!(
                "--timeout {secs}: give a number of seconds between 0 and 86400"
            )));
        }
        options.default_timeout = Duration::from_secs_f64(secs);
    }
    Ok(options)
}

/// The transcript recorder the common flags ask for; never onto the
/// transcript being replayed (`replaying`), which it would destroy.
pub fn recorder_for(
    common: &Common,
    what: &str,
    description: &str,
    replaying: Option<&std::path::Path>,
) -> Result<Recorder> {
    if common.no_transcript {
        return Ok(Recorder::disabled());
    }
    let path = match &common.transcript {
        Some(p) => p.clone(),
        None => default_path(what)?,
    };
    if let Some(input) = replaying {
        if same_file(input, &path) {
            return Err(Error::usage(format!(
                "--transcript {} is the transcript being replayed: recording would overwrite it; \
                 choose another path or pass --no-transcript",
                path.display()
            )));
        }
    }
    Recorder::create(&path, description, crate::transport::PTY_SIZE)
}
