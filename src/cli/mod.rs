//! The command line: argument definitions, logging setup, dispatch, exit codes.
//!
//! Each command's work lives in the module of its layer; this module only
//! parses, sets up logging and the runtime, and turns results into exit codes
//! and messages (`--output human|json`).

mod args;
mod board;
mod console;
mod doctor;
mod doctor_job;
mod fleet_run;
mod lab;
mod logging;
mod manual;
mod prepare;
mod progress;
mod prompt;
mod ready;
mod run;
mod signals;
mod stdout;
mod targets;
mod test;
mod watch;

use std::path::Path;
use std::time::Duration;

pub(crate) use args::{
    Cli, Command, Common, DoctorArgs, FleetArgs, GatewayArgs, GatewayAuthKind, LabBoot, LabCommand,
    OutputFormat, PasswordArgs, PowerCycleArg, PrepareArgs, ReadyArgs, RunArgs, TestArgs, ViaArg,
    WsAuthKind,
};

use crate::connect::Console;
use crate::error::{Error, ErrorKind, ExitCode, Result};
use crate::expect::{Session, SessionOptions};
use crate::target::Target;
use crate::transcript::default_path;

/// A panic's message may quote console text: print it with secrets scrubbed.
fn scrub_panic_messages() {
    std::panic::set_hook(Box::new(move |info| {
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
pub(crate) fn main() -> i32 {
    STARTED.get_or_init(std::time::Instant::now);
    forbid_core_dumps();
    scrub_panic_messages();
    let parsed = args::command()
        .try_get_matches()
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap: 0 for --help/--version, 2 for usage errors, as we want.
            return e.exit_code();
        }
    };
    logging::init(&cli.common);
    let runtime = match runtime_for(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::Transport.code();
        }
    };
    let output = cli.common.output;
    let common = cli.common.clone();
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code.code(),
        Err(e) => {
            stdout::end_if_reader_gone(&e);
            report_error(&e, output, common.noted_transcript());
            e.exit_code().code()
        }
    }
}

/// The async runtime for `command`. A doctor replaying a transcript runs
/// on a virtual clock: the replayed console answers at once, so every wait
/// (quiet periods, timeouts of prompts the recording never shows) would
/// only cost wall time; a paused clock jumps straight to the next timer
/// whenever nothing else can run, so the replay costs only CPU and makes the
/// same decisions in the same order. (Scripts drive their session from a
/// blocking thread, which stops such a clock from advancing, so `run` keeps
/// the real one.) A doctor fleet of replays gets a multi-thread runtime:
/// it hands its targets to paused-clock runtimes of their own, one per core
/// (`fleet_run`).
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let replaying = matches!(command, Command::Doctor(args)
        if targets::only_replays(&args.targets, &args.fleet)
            && !targets::is_many(&args.targets, &args.fleet));
    if replaying {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let common = cli.common;
    // `console` relays and handles its own signals (src/interact.rs).
    if matches!(
        cli.command,
        Command::Run(_) | Command::Doctor(_) | Command::Prepare(_) | Command::Ready(_)
    ) {
        signals::listen()?;
    }
    match cli.command {
        Command::Run(args) => run::run_command(args, common).await,
        Command::Lint { scripts } => run::lint_command(&scripts, &common),
        Command::Test(args) => test::command(args, common).await,
        Command::Console {
            target,
            record_input,
        } => {
            let options = console::ConsoleOptions { record_input };
            console::console_with(&target, &common, options).await
        }
        Command::Play {
            file,
            speed,
            idle_time_limit,
        } => crate::transcript::play(&file, speed, idle_time_limit),
        Command::Completions { shell } => manual::completions(shell),
        Command::Man => manual::man_page(),
        Command::Lab(cmd) => lab::command(cmd, &common).await,
        Command::Doctor(args) => doctor::command(args, common).await,
        Command::Prepare(args) => prepare::command(args, common).await,
        Command::Ready(args) => ready::command(args, common).await,
        Command::Merge { summaries } => fleet_run::merge(&summaries, common.output),
        Command::Gateway(args) => gateway_command(&args, &common).await,
    }
}

/// When the command started, for a failure's `duration_ms`.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
fn report_error(e: &Error, output: OutputFormat, transcript: Option<std::path::PathBuf>) {
    match output {
        OutputFormat::Human => {
            eprintln!(
                "error: {}",
                crate::text::printable_lines(&crate::secret::scrub_known(&e.to_string()))
            );
            if let Some(path) = transcript.filter(|p| p.exists()) {
                eprintln!("transcript: {}", path.display());
            }
        }
        OutputFormat::Json => {
            /// Every failure's document (docs/json.md).
            #[derive(serde::Serialize)]
            struct Failure {
                error: stdout::ErrorJson,
                exit_code: ExitCode,
                transcript: Option<std::path::PathBuf>,
                duration_ms: u128,
            }
            let transcript = transcript.filter(|p| p.exists());
            // Nothing is left to report a failed write to.
            let _ = stdout::json_line(&Failure {
                error: stdout::ErrorJson::of(e),
                exit_code: e.exit_code(),
                transcript,
                duration_ms: STARTED.get().map_or(0, |t| t.elapsed().as_millis()),
            });
        }
    }
}

/// Opens a session to `target` with the common flags applied: how to
/// connect, the timeout, and the transcript (`--transcript`, the default
/// path, or none); signals interrupt it.
pub(crate) async fn open_session(target: &Target, common: &Common, what: &str) -> Result<Session> {
    open_session_over(target, common, what, connect_options(common).await?).await
}

/// [`open_session`] with the connect options already made (the doctor's
/// GRUB rescue reboots an EC2 instance with the same account).
pub(crate) async fn open_session_over(
    target: &Target,
    common: &Common,
    what: &str,
    connect: crate::connect::ConnectOptions,
) -> Result<Session> {
    let progress = progress::Progress::new(common);
    progress.say(&format!("connecting to {target}"));
    let wait = connect.ec2.wait_for_session;
    let on_step = |step| progress.step(step, wait);
    let mut console = Console::open(target)
        .connect(connect)
        .options(session_options(common)?)
        .transcript(transcript_path(common, what)?)
        .on_step(&on_step);
    if common.watch {
        console = console.watch(watch::watcher(common.verbose));
    }
    let session = watched(console).await?;
    common.note_transcript(session.transcript_path());
    Ok(session)
}

/// Opens `console` as a session that signals interrupt, saying where it
/// records (a fleet opens each target's this way).
pub(crate) async fn watched(console: Console<'_>) -> Result<Session> {
    let mut session = console.session().await?;
    if let Some(path) = session.transcript_path() {
        tracing::info!("recording the session to {}", path.display());
    }
    if let Some(signals) = signals::receiver() {
        session.watch_signals(signals);
    }
    Ok(session)
}

/// `--watch` with several targets: their consoles would interleave.
fn watch_is_for_one_target() -> Error {
    Error::usage(
        "--watch shows one console live; with several targets each has its own transcript \
         (--out-dir DIR keeps them side by side): watch one with `play FILE`",
    )
}

impl Common {
    /// Remembers where the command's latest session records, for a
    /// failure's document.
    fn note_transcript(&self, path: Option<&Path>) {
        *self.opened.lock().unwrap_or_else(|e| e.into_inner()) = path.map(Path::to_path_buf);
    }

    /// Where the command's latest session recorded, if it opened one.
    fn noted_transcript(&self) -> Option<std::path::PathBuf> {
        self.opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
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
        limits: {
            let mut limits = match args.max_connections {
                Some(n) => crate::gateway::Limits::for_connections(n),
                None => crate::gateway::Limits::default(),
            };
            if let Some(n) = args.max_per_address {
                limits.max_per_address = n;
            }
            limits.handshake_timeout = positive(args.handshake_timeout, "--handshake-timeout")?;
            limits
        },
        insecure_cleartext_credentials: common.insecure_cleartext_credentials,
        on_disconnect: match args.on_disconnect {
            args::OnDisconnectKind::Logout => crate::gateway::OnDisconnect::Logout,
            args::OnDisconnectKind::Keep => crate::gateway::OnDisconnect::Keep,
        },
        connect: connect_options(common).await?,
        hold: match args.hold {
            false => None,
            true if args.record_max_mib == 0 => {
                return Err(Error::usage("--record-max-mib must be at least 1"))
            }
            true => Some(crate::gateway::HoldOptions {
                record_max_bytes: args.record_max_mib.saturating_mul(1024 * 1024),
            }),
        },
        scrollback: match args.scrollback_kib {
            // History travels as one WebSocket frame (JSON may grow it up
            // to six times), which clients take up to 16 MiB of.
            0..=2048 => args.scrollback_kib * 1024,
            _ => return Err(Error::usage("--scrollback-kib must be at most 2048")),
        },
        web: args.web.then(|| crate::gateway::WebOptions {
            session_lifetime: Duration::from_secs(args.web_session),
        }),
    };
    serve_gateway(&args.listen, config).await
}

/// Binds the gateway, says where each console is served, and serves until
/// interrupted.
async fn serve_gateway(listen: &str, config: crate::gateway::GatewayConfig) -> Result<ExitCode> {
    let names: Vec<String> = config.consoles.keys().cloned().collect();
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    let unrecorded = config.record_dir.is_none();
    let web = config.web.is_some();
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
    if web {
        let scheme = if scheme == "wss" { "https" } else { "http" };
        eprintln!("web page at {scheme}://{addr}/");
    }
    tokio::select! {
        _ = server => {}
        _ = tokio::signal::ctrl_c() => eprintln!("gateway stopping"),
    }
    Ok(ExitCode::Success)
}

/// Whether `a` and `b` name the same existing file (links followed).
/// How to reach consoles, from the common flags, checked.
pub(crate) async fn connect_options(common: &Common) -> Result<crate::connect::ConnectOptions> {
    // Named on the command line: hidden from every program we start
    // (a power-cycle command), whether or not this target reads it.
    if let Some(var) = &common.token_env {
        crate::secret::hide_variable(var);
    }
    // One trust store for every TLS client of the run: read and checked once.
    let trust = crate::tls::ClientTrust::new(common.ca_file.as_deref())?;
    Ok(crate::connect::ConnectOptions {
        ws: ws_options(common, &trust).await?,
        ec2: ec2_options(common, &trust)?,
        size: terminal_size().unwrap_or(crate::transport::PTY_SIZE),
    })
}

/// The size (columns, rows) of the user's terminal, if standard output or
/// standard input is one: a local program gets the same, as under `ssh`.
fn terminal_size() -> Option<(u16, u16)> {
    [libc::STDOUT_FILENO, libc::STDIN_FILENO, libc::STDERR_FILENO]
        .into_iter()
        .find_map(|fd| {
            let mut size = libc::winsize {
                ws_row: 0,
                ws_col: 0,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCGWINSZ writes one winsize into `size`, which lives
            // for the call; on a non-terminal it fails and writes nothing.
            let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
            (ok && size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
        })
}

/// The EC2 options the common flags give, checked.
fn ec2_options(common: &Common, trust: &crate::tls::ClientTrust) -> Result<crate::ec2::Ec2Options> {
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
        ssh_client: match common.ssh_client {
            args::SshClientKind::BuiltIn => crate::ec2::SshClient::BuiltIn,
            args::SshClientKind::Openssh => crate::ec2::SshClient::OpenSsh,
        },
        trust: trust.clone(),
        account: Default::default(),
    })
}

/// WebSocket connection options from the common flags.
pub(crate) async fn ws_options(
    common: &Common,
    trust: &crate::tls::ClientTrust,
) -> Result<crate::transport::WsOptions> {
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
        WsAuthKind::Sigv4 => ws_sigv4(common, trust).await?,
    };
    Ok(crate::transport::WsOptions {
        auth,
        trust: trust.clone(),
        allow_cleartext_credentials: common.insecure_cleartext_credentials,
    })
}

/// SigV4 signing for `--ws-auth sigv4`, resolved the AWS way (aws-config,
/// as for EC2 targets): an explicit `--profile` wins over environment keys,
/// SSO, `credential_process` and assume-role profiles work, and the
/// profile's Region is used when `--region`/`AWS_REGION` are not given.
async fn ws_sigv4(
    common: &Common,
    trust: &crate::tls::ClientTrust,
) -> Result<crate::transport::WsAuth> {
    let ctx = crate::ec2::AwsContext::load(&ec2_options(common, trust)?)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::Usage(m) if m.starts_with("no AWS Region") => Error::usage(
                "--ws-auth sigv4 needs a Region: pass --region, set AWS_REGION, or set `region` in the AWS profile",
            ),
            _ => e,
        })?;
    Ok(crate::transport::WsAuth::SigV4 {
        credentials: ctx.credentials().await?,
        region: ctx.region,
    })
}

/// Session options from the common flags.
pub(crate) fn session_options(common: &Common) -> Result<SessionOptions> {
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

/// Where the common flags say to record: `--transcript`, the default
/// path for `what`, or nowhere (`--no-transcript`).
pub(crate) fn transcript_path(common: &Common, what: &str) -> Result<Option<std::path::PathBuf>> {
    if common.no_transcript {
        return Ok(None);
    }
    match &common.transcript {
        Some(p) => Ok(Some(p.clone())),
        None => default_path(what).map(Some),
    }
}
