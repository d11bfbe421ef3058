//! Command-line arguments (clap derive), as in the architecture doc.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Drive serial consoles the way Expect does: the EC2 Serial Console, WebSocket
/// consoles, QEMU/libvirt sockets and local commands, with every session recorded.
///
/// Exit codes: 0 success · 1 problems remain · 2 bad usage or input ·
/// 3 connection/transport/AWS error · 4 login failed · 5 timed out.
#[derive(Debug, Parser)]
#[command(name = "ec2-serial-expect", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub common: Common,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results and errors are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum OutputFormat {
    /// Sentences for people.
    #[default]
    Human,
    /// One JSON document on standard output.
    Json,
}

/// Flags shared by every command, under their own headings in every
/// command's help (after the command's own options).
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "Global options")]
pub(crate) struct Common {
    /// Where the command's one session records, once it is open: the
    /// failure document names it (a fleet's targets carry their own). Not a
    /// flag: shared state of this one invocation, set by `open_session`.
    #[arg(skip)]
    pub opened: std::sync::Arc<std::sync::Mutex<Option<PathBuf>>>,
    /// Show the session live on stderr (`run --watch`, `doctor --watch`):
    /// set by those commands from their own flag, not a global one.
    #[arg(skip)]
    pub watch: bool,
    /// Write the session transcript (asciicast v2, mode 0600) to FILE.
    /// Default: a timestamped file under the data dir
    /// (~/.local/share/ec2-serial-expect/transcripts/).
    #[arg(
        long,
        global = true,
        value_name = "FILE.cast",
        conflicts_with = "no_transcript"
    )]
    pub transcript: Option<PathBuf>,
    /// Let tokens and signed URLs cross a network in clear text: a client
    /// sending them over ws:// to another machine, a gateway taking them
    /// without TLS off loopback. Anyone on the path can read them.
    #[arg(long, global = true)]
    pub insecure_cleartext_credentials: bool,
    /// Do not record a transcript.
    #[arg(long, global = true)]
    pub no_transcript: bool,
    /// Seconds each expect waits when the script names no timeout [default: 30].
    #[arg(long, global = true, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// AWS Region (else AWS_REGION, the profile, IMDS).
    #[arg(long, global = true, help_heading = "AWS and EC2 targets (global)")]
    pub region: Option<String>,
    /// AWS profile (else AWS_PROFILE).
    #[arg(long, global = true, help_heading = "AWS and EC2 targets (global)")]
    pub profile: Option<String>,
    /// How to authenticate to a ws:// or wss:// console: `sigv4` (a presigned
    /// URL from your AWS credentials), `token` (a bearer token from --token-env)
    /// or `none`. Default: token when --token-env is given, else none.
    #[arg(
        long,
        global = true,
        help_heading = "WebSocket and TLS (global)",
        value_enum
    )]
    pub ws_auth: Option<WsAuthKind>,
    /// Environment variable holding the bearer token for a WebSocket console.
    #[arg(
        long,
        global = true,
        help_heading = "WebSocket and TLS (global)",
        value_name = "VAR"
    )]
    pub token_env: Option<String>,
    /// PEM file of a private CA to trust, besides the system's roots
    /// (SSL_CERT_FILE honoured): for wss:// consoles and every AWS call.
    #[arg(
        long,
        global = true,
        help_heading = "WebSocket and TLS (global)",
        value_name = "FILE"
    )]
    pub ca_file: Option<PathBuf>,
    /// EC2 targets: skip the preflight checks (serial console access, instance
    /// running, Nitro type), e.g. when IAM grants only the key push.
    #[arg(long, global = true, help_heading = "AWS and EC2 targets (global)")]
    pub no_preflight: bool,
    /// EC2 targets: when another session holds the instance's serial console,
    /// wait up to SECS for it to end instead of failing.
    #[arg(
        long,
        global = true,
        help_heading = "AWS and EC2 targets (global)",
        value_name = "SECS"
    )]
    pub wait_for_session: Option<u64>,
    /// EC2 targets: SSH to HOST[:PORT] instead of the Region's published serial
    /// endpoint (new Regions, test stand-ins); needs --host-key-fingerprint.
    #[arg(
        long,
        global = true,
        help_heading = "AWS and EC2 targets (global)",
        value_name = "HOST[:PORT]"
    )]
    pub serial_endpoint: Option<String>,
    /// EC2 targets: the endpoint's host-key fingerprint (SHA256:…) instead of
    /// the one AWS publishes for the Region.
    #[arg(
        long,
        global = true,
        help_heading = "AWS and EC2 targets (global)",
        value_name = "SHA256:…"
    )]
    pub host_key_fingerprint: Option<String>,
    /// EC2 targets: the SSH client that opens the serial console. `built-in`
    /// needs no program but cannot send a break; `openssh` runs the system's
    /// `ssh` (OpenSSH client) and sends breaks (`~B` in `console`,
    /// `send_break()` in scripts), e.g. to start a Magic SysRq.
    #[arg(
        long,
        global = true,
        help_heading = "AWS and EC2 targets (global)",
        value_enum,
        default_value_t = SshClientKind::BuiltIn,
        value_name = "CLIENT"
    )]
    pub ssh_client: SshClientKind,
}

/// `--ssh-client` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum SshClientKind {
    /// russh, inside this program.
    #[default]
    BuiltIn,
    /// The system's `ssh` under a pseudo-terminal.
    Openssh,
}

/// WebSocket client authentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WsAuthKind {
    /// A SigV4-presigned URL (service ec2-instance-connect, 60 s).
    Sigv4,
    /// `Authorization: Bearer` from --token-env.
    Token,
    /// No authentication.
    None,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a console script (Rhai) against TARGET.
    ///
    /// TARGET is one of: i-0123456789abcdef0, ws://HOST:PORT/PATH, wss://…,
    /// unix:/path/serial.sock, tcp:HOST:PORT, exec:COMMAND ARGS…, replay:FILE.cast
    Run(RunArgs),
    /// Replay console tests: each SCRIPT.rhai against its recordings
    /// (SCRIPT.cast, SCRIPT.VARIANT.cast) in one process, side by side.
    ///
    /// A recording's expectations (the --var values it was recorded with, the
    /// exit code, the fail() text) go in SCRIPT[.VARIANT].expect beside it; see
    /// docs/testing.md. Exit 0 only if every test passes.
    Test(TestArgs),
    /// Check scripts without connecting: syntax, unknown functions and
    /// argument counts, pattern literals that cannot compile, numbers out of
    /// range, in-place string methods used for a value; each error shows
    /// file:line:column. Exit 0 when every script is clean, else 2.
    Lint {
        /// The script files.
        #[arg(required = true, num_args = 1..)]
        scripts: Vec<PathBuf>,
    },
    /// Interactive pass-through to TARGET; type `~.` after a newline to leave.
    Console {
        /// The console target.
        target: String,
        /// Record what you type as `i` events. Off by default: passwords are
        /// typed in console mode and it cannot tell them apart.
        #[arg(long)]
        record_input: bool,
    },
    /// Print a shell completion script on stdout, e.g.
    /// `ec2-serial-expect completions bash > ~/.local/share/bash-completion/completions/ec2-serial-expect`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `ec2-serial-expect man | man -l -`.
    Man,
    /// Show a transcript in the terminal with its timing.
    Play {
        /// The transcript (asciicast v2 or v3).
        file: PathBuf,
        /// Playback speed factor (2 = twice as fast).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Play pauses longer than SECS as SECS (default: the file's
        /// idle_time_limit, else 2).
        #[arg(short = 'i', long, value_name = "SECS")]
        idle_time_limit: Option<f64>,
    },
    /// Log in over the console, find why sshd refuses USER's key, repair with --fix,
    /// verify, log out. Exit 0 healthy or repaired, 1 problems remain.
    Doctor(DoctorArgs),
    /// Make an instance rescuable while it can still be reached: a password
    /// user with sudo, GRUB's menu on the serial console (docs/rescue.md).
    /// --check shows the changes; a second run changes nothing.
    Prepare(PrepareArgs),
    /// Say which rescue paths each target has, changing nothing: EC2 access,
    /// Nitro, the reboot permission; with --login-user also the rescue user
    /// and GRUB on the serial console. Exit 0 when all are there.
    Ready(ReadyArgs),
    /// Add up the summary.json of several `doctor --shard K/N --out-dir` runs
    /// into one summary (and its exit code), as if one run had done it all.
    Merge {
        /// summary.json files, or the --out-dir directories holding them.
        #[arg(required = true, value_name = "SUMMARY")]
        summaries: Vec<PathBuf>,
    },
    /// Serve consoles over WebSocket at /v1/consoles/NAME, one client per console,
    /// every session recorded.
    Gateway(GatewayArgs),
    /// The local practice VM with a real serial console.
    #[command(subcommand)]
    Lab(LabCommand),
}

/// Arguments of `doctor`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DoctorArgs {
    /// The console target; several are examined side by side (see --jobs).
    #[arg(value_name = "TARGET", required_unless_present_any = ["targets_file", "filters"])]
    pub targets: Vec<String>,
    /// Several targets at once: where more come from, how many at a time,
    /// where their reports go.
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// The SSH user whose key is refused.
    #[arg(long)]
    pub user: String,
    /// The password-based user that logs in on the console (default: --user).
    #[arg(long, value_name = "NAME")]
    pub login_user: Option<String>,
    /// Show the console's output live on stderr, secrets redacted (one
    /// target); with -vv also what is sent and each match.
    #[arg(long)]
    pub watch: bool,
    /// Apply the repairs, then verify them.
    #[arg(long)]
    pub fix: bool,
    /// `aws`: the article's exact modes; `sshd`: only what StrictModes refuses.
    #[arg(long, value_enum, default_value_t = PolicyArg::Aws)]
    pub policy: PolicyArg,
    /// The public key you connect with (checked present; appended with --add-key).
    #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
    pub public_key: Option<PathBuf>,
    /// The SHA256 fingerprint of the key you connect with.
    #[arg(long, value_name = "SHA256:…")]
    pub fingerprint: Option<String>,
    /// Append --public-key to authorized_keys when it is missing (with --fix).
    #[arg(long, requires = "public_key")]
    pub add_key: bool,
    /// With --fix: re-create --user when it was deleted (its leftover home
    /// adopted, its old user id when free, the sudo/wheel group); never implied.
    #[arg(long, requires = "fix")]
    pub create_user: bool,
    /// With --fix: also run the repairs that loosen security (unlock the
    /// account, widen a mode) where the finding does not refuse the key;
    /// without it they are only reported, with their command.
    #[arg(long, requires = "fix")]
    pub loosen: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Give up logging in on the console after SECS (waiting for the login
    /// prompt included: a console may still be booting).
    #[arg(long, value_name = "SECS", default_value_t = 90,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub login_timeout: u64,
    /// How to reach a root shell: `login` (the password user, then sudo),
    /// or `grub` when there is no password user: restart the machine, edit
    /// the kernel line in GRUB, repair in the rescue shell, boot normally
    /// (docs/rescue.md).
    #[arg(long, value_enum, default_value_t = ViaArg::Login, help_heading = "Rescue without a password")]
    pub via: ViaArg,
    /// With --via grub: what restarts the machine, run without a shell
    /// (e.g. `virsh reset vm1`, `ec2-serial-expect lab reset --name N`);
    /// `{target}` in it is replaced by each target as given (required with
    /// several targets). EC2 instances need none: they reboot through the
    /// EC2 API.
    #[arg(long, value_name = "CMD", help_heading = "Rescue without a password")]
    pub power_cycle_command: Option<String>,
    /// With --via grub: `none` to restart the machine yourself when told.
    #[arg(
        long,
        value_enum,
        value_name = "none",
        conflicts_with = "power_cycle_command",
        help_heading = "Rescue without a password"
    )]
    pub power_cycle: Option<PowerCycleArg>,
    /// With --via grub: the kernel arguments that give a root shell
    /// (`rd.break` on dracut systems: RHEL, Amazon Linux 2023).
    #[arg(long, value_name = "ARGS", default_value = crate::rescue::DEFAULT_RESCUE_ARGS,
          help_heading = "Rescue without a password")]
    pub rescue_args: String,
    /// With --via grub: the longest wait for each boot (GRUB's menu, the
    /// rescue shell, `login:` after the normal boot).
    #[arg(long, value_name = "SECS", default_value_t = 300, help_heading = "Rescue without a password",
          value_parser = clap::value_parser!(u64).range(10..=3600))]
    pub boot_timeout: u64,
    /// Where the login password comes from.
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// Where a console login's password comes from (never argv).
#[derive(Debug, Clone, Args)]
pub(crate) struct PasswordArgs {
    /// Read the login password from this environment variable.
    #[arg(long, value_name = "VAR", group = "password")]
    pub password_env: Option<String>,
    /// Read the login password from the first line of FILE.
    #[arg(long, value_name = "FILE", group = "password")]
    pub password_file: Option<PathBuf>,
    /// Read the login password from the first line of standard input.
    #[arg(long, group = "password")]
    pub password_stdin: bool,
}

impl PasswordArgs {
    /// True when a source was named.
    pub(crate) fn given(&self) -> bool {
        self.password_env.is_some() || self.password_file.is_some() || self.password_stdin
    }
}

/// `ready`'s arguments.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReadyArgs {
    /// The consoles to look at.
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
    /// Also log in as NAME (a password user with sudo) and look inside,
    /// read-only.
    #[arg(long, value_name = "NAME")]
    pub login_user: Option<String>,
    /// The rescue user whose presence is checked.
    #[arg(long, value_name = "NAME", default_value = "rescue")]
    pub rescue_user: String,
    /// Give up logging in on a console after SECS.
    #[arg(long, value_name = "SECS", default_value_t = 90,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub login_timeout: u64,
    /// Where the login password comes from.
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `prepare`'s arguments.
#[derive(Debug, Clone, Args)]
pub(crate) struct PrepareArgs {
    /// The console to prepare (or `exec:ssh -tt …` to a machine that still
    /// takes SSH); with --account alone, none.
    #[arg(value_name = "TARGET", required_unless_present = "account")]
    pub target: Option<String>,
    /// Show what would change (GRUB's lines as a diff) and change nothing.
    #[arg(long)]
    pub check: bool,
    /// The password user to create when missing (with sudo).
    #[arg(long, value_name = "NAME", default_value = "rescue")]
    pub rescue_user: String,
    /// Write the new rescue user's password to FILE (mode 0600); without
    /// it the password is shown once on the terminal.
    #[arg(long, value_name = "FILE")]
    pub rescue_password_file: Option<PathBuf>,
    /// Who logs in on the console (a password user with sudo); omit when
    /// TARGET already shows a shell (`exec:ssh -tt …`).
    #[arg(long, value_name = "NAME")]
    pub login_user: Option<String>,
    /// Give up logging in on the console after SECS.
    #[arg(long, value_name = "SECS", default_value_t = 90,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub login_timeout: u64,
    /// Where the login password comes from.
    #[command(flatten)]
    pub password: PasswordArgs,
    /// EC2: also turn on serial console access for the account in the
    /// Region (EnableSerialConsoleAccess; with --check a DryRun).
    #[arg(long)]
    pub account: bool,
}

/// How `lab up` boots the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LabBoot {
    /// QEMU starts the kernel itself.
    Direct,
    /// Through GRUB 2 on the serial console.
    Grub,
}

/// How `doctor` reaches a root shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ViaArg {
    /// Log in as the password user, then sudo.
    Login,
    /// No password: through GRUB's editor and a rescue shell.
    Grub,
}

/// `--power-cycle`: restarting the machine without a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PowerCycleArg {
    /// You restart the machine yourself when told.
    None,
}

/// What any command that takes many targets accepts (`doctor`, `run`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Several targets")]
pub(crate) struct FleetArgs {
    /// Also the targets listed in FILE: one per line, `#` comments.
    #[arg(long = "targets", value_name = "FILE")]
    pub targets_file: Option<PathBuf>,
    /// Also every EC2 instance matching Name=NAME,Values=V[,V…], as
    /// `aws ec2 describe-instances --filters` reads it (e.g.
    /// Name=tag:Role,Values=web); repeatable, an instance must match all.
    #[arg(long = "filter", value_name = "Name=…,Values=…")]
    pub filters: Vec<String>,
    /// With --filter: instances asked for per DescribeInstances page (5 to 1000).
    #[arg(long, value_name = "N", default_value_t = crate::ec2::inventory::MAX_PAGE,
          requires = "filters",
          value_parser = clap::value_parser!(u32).range(
              crate::ec2::inventory::MIN_PAGE as i64..=crate::ec2::inventory::MAX_PAGE as i64))]
    pub page_size: u32,
    /// With several targets: how many consoles at once (at most 10000, and
    /// as many as the open-file limit allows: each takes a few files).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub jobs: u16,
    /// With several targets: one transcript and one JSON report per target
    /// in DIR (named after the target), and summary.json.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Only slice K of N of the targets (K counts from 0), so that a
    /// batch system's array job spreads a fleet over machines (docs/fleet.md).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
}

/// `doctor --policy` choices (the doctor's own [`crate::doctor::Policy`]
/// knows nothing of the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// AWS's recommended modes, exactly (the default).
    Aws,
    /// Only what sshd's StrictModes enforces.
    Sshd,
}

impl From<PolicyArg> for crate::doctor::Policy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Aws => crate::doctor::Policy::Aws,
            PolicyArg::Sshd => crate::doctor::Policy::Sshd,
        }
    }
}

/// Gateway authentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GatewayAuthKind {
    /// SigV4-presigned URLs, verified against --credentials.
    Sigv4,
    /// A bearer token read from --token-env.
    Token,
    /// No authentication (only on a loopback address).
    None,
}

/// Arguments of `gateway`.
#[derive(Debug, Clone, Args)]
pub(crate) struct GatewayArgs {
    /// Address to listen on, e.g. 127.0.0.1:8022 (port 0 picks a free one).
    #[arg(long)]
    pub listen: String,
    /// A console to serve, NAME=TARGET (e.g. lab=unix:/run/lab/serial.sock); repeatable.
    #[arg(long = "console", value_name = "NAME=TARGET", required = true)]
    pub consoles: Vec<String>,
    /// How clients authenticate.
    #[arg(long, value_enum)]
    pub auth: GatewayAuthKind,
    /// AWS shared-credentials file of the identities allowed (--auth sigv4).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Directory for the server-side session transcripts.
    #[arg(long, value_name = "DIR")]
    pub record_dir: Option<PathBuf>,
    /// Close a session after this many seconds without client input.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub idle_timeout: u64,
    /// Close a session after this many seconds in all.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub max_session: u64,
    /// PEM certificate chain for wss:// (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for wss:// (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A HOST[:PORT] clients reach this gateway by (as in their URL), which
    /// SigV4 signatures must be made for; repeatable (default: the
    /// listening address, and localhost:PORT on loopback).
    #[arg(long = "public-host", value_name = "HOST[:PORT]")]
    pub public_hosts: Vec<String>,
    /// Most connections at once (default: a quarter of the open-file
    /// limit, at most 1024). When all are taken, a new one closes the
    /// oldest connection still in its handshake; sessions are never closed
    /// for it, and when all are sessions the new one is refused.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most connections from one IP address (one IPv6 /64) still in their
    /// handshake; a new one closes that address's oldest (default: a
    /// sixteenth of --max-connections, at least 4). Sessions do not count:
    /// a fleet from one host is not limited.
    #[arg(long, value_name = "N")]
    pub max_per_address: Option<usize>,
    /// Seconds a client has for the TLS and WebSocket handshakes.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub handshake_timeout: u64,
    /// What a client's leaving does to a console that outlives the session
    /// (unix:, tcp:, EC2): `logout` brings it back to its login prompt and
    /// proves it (a console it cannot log out is refused to the next client
    /// until it can), so no client inherits a logged-in shell; `keep`
    /// leaves it as it was.
    #[arg(long, value_enum, default_value = "logout")]
    pub on_disconnect: OnDisconnectKind,
    /// Also serve a web page on the same address (and TLS): sign in with
    /// the token (--auth token; none on loopback), the consoles list, a
    /// terminal per console (one writer, any number of read-only viewers),
    /// and the recordings of --record-dir with a player.
    #[arg(long)]
    pub web: bool,
    /// Seconds a web sign-in lasts.
    #[arg(long, value_name = "SECS", default_value_t = 8 * 3600, requires = "web")]
    pub web_session: u64,
    /// Keep every console connected from the start (reconnecting when it
    /// goes away), recorded into --record-dir all the time, so what a
    /// machine prints while nobody is attached (a panic at boot) is kept
    /// and shown first to the next client.
    #[arg(long)]
    pub hold: bool,
    /// With --hold: a console's continuous recording is closed and a new
    /// one begun past this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, requires = "hold")]
    pub record_max_mib: u64,
    /// KiB (at most 2048) of each console's latest output kept: what a client of a held
    /// console sees first, and what a viewer joining late catches up on.
    #[arg(long, value_name = "KIB", default_value_t = 256)]
    pub scrollback_kib: usize,
}

/// `gateway --on-disconnect` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnDisconnectKind {
    /// Log the console out, proven by its login prompt.
    Logout,
    /// Leave the console as the client left it.
    Keep,
}

/// Arguments of `run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// The console targets, then the script file (.rhai): with several
    /// targets (or --targets, --filter) the script runs on each, side by
    /// side (see --jobs).
    #[arg(value_name = "TARGET… SCRIPT.rhai", required = true, num_args = 1..)]
    operands: Vec<String>,
    /// Several targets at once: where more come from, how many at a time,
    /// where their reports go.
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// A script variable, read with var("name"); repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Show the console's output live on stderr, secrets redacted, as
    /// Expect's log_user does (one target); with -vv also what the script
    /// sends and each match.
    #[arg(long)]
    pub watch: bool,
    /// A named secret for send_secret()/login(): NAME=env:VAR, NAME=file:PATH,
    /// NAME=stdin (the next line of standard input) or NAME=prompt.
    #[arg(long = "secret", value_name = "NAME=SOURCE")]
    pub secrets: Vec<String>,
}

impl RunArgs {
    /// The targets named on the command line (all operands but the last).
    pub(crate) fn targets(&self) -> &[String] {
        &self.operands[..self.operands.len().saturating_sub(1)]
    }

    /// The script (the last operand).
    pub(crate) fn script(&self) -> PathBuf {
        PathBuf::from(self.operands.last().map_or("", String::as_str))
    }
}

/// Arguments of `test`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TestArgs {
    /// Scripts, or directories searched for *.rhai (default: the current directory).
    pub paths: Vec<PathBuf>,
    /// Look for the recordings in DIR instead of beside each script.
    #[arg(long, value_name = "DIR")]
    pub recordings: Option<PathBuf>,
    /// Tests replayed at once (default: the number of CPUs).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Also write the results as JUnit XML to FILE (for CI systems).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Re-record the selected tests against the live console --target, one at a
    /// time; a recording is replaced only when the new run ends as expected.
    #[arg(long, requires = "target")]
    pub update: bool,
    /// The live console --update records from.
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,
    /// A named secret for the live run of --update: NAME=env:VAR, NAME=file:PATH,
    /// NAME=stdin or NAME=prompt (replays need none).
    #[arg(long = "secret", value_name = "NAME=SOURCE", requires = "update")]
    pub secrets: Vec<String>,
    /// A script variable (repeatable): with --update it is recorded into the
    /// recording's .expect file; on a replay it overrides the .expect's value.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Only the tests whose name (SCRIPT or SCRIPT.VARIANT) or script path
    /// contains PATTERN.
    #[arg(short = 'k', value_name = "PATTERN")]
    pub filter: Option<String>,
}

/// The `lab` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum LabCommand {
    /// Build the image if needed, boot the VM, wait for `login:`, print how to reach it.
    Up {
        /// VM name (several may run at once).
        #[arg(long, default_value = "default")]
        name: String,
        /// `direct`: QEMU starts the kernel (fastest); `grub`: through a real
        /// GRUB 2 with its menu on the serial console, for the rescue path.
        #[arg(long, value_enum, default_value_t = LabBoot::Direct)]
        boot: LabBoot,
    },
    /// Press the VM's reset button: it reboots at once (no shutdown), as a
    /// power cycle would; the serial console shows the boot from the start.
    Reset {
        /// VM name.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Stop the VM.
    Down {
        /// VM name.
        #[arg(long, default_value = "default")]
        name: String,
        /// Stop every lab VM.
        #[arg(long, conflicts_with = "name")]
        all: bool,
    },
    /// Show running VMs.
    Status,
    /// Put the running VM into a known "Server refused our key" state.
    Break {
        /// The scenario (see --list).
        scenario: Option<String>,
        /// List the scenarios.
        #[arg(long)]
        list: bool,
        /// VM name.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Repair a scenario by hand over the serial console (its documented repair).
    Repair {
        /// The scenario (see `lab break --list`).
        scenario: String,
        /// VM name.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Boot, break, repair over the serial console, show SSH working again.
    Demo {
        /// VM name.
        #[arg(long, default_value = "demo")]
        name: String,
        /// Leave the VM running afterwards (stop it with `lab down --name demo`).
        #[arg(long)]
        keep: bool,
        /// Repair with the scenario's scripted console repair instead of `doctor --fix`.
        #[arg(long, conflicts_with = "no_password")]
        scripted: bool,
        /// Boot through GRUB, lock every password too (as on an AWS AMI), and
        /// repair with no password: `doctor --via grub --fix` (docs/rescue.md).
        #[arg(long)]
        no_password: bool,
    },
}

/// The global options that open and record a session.
const SESSION_OPTIONS: &[&str] = &["transcript", "no_transcript", "timeout"];
/// The global options that reach consoles over WebSocket and TLS.
const CONNECT_OPTIONS: &[&str] = &[
    "insecure_cleartext_credentials",
    "ws_auth",
    "token_env",
    "ca_file",
];
/// The global options of EC2 targets.
const AWS_OPTIONS: &[&str] = &[
    "region",
    "profile",
    "no_preflight",
    "wait_for_session",
    "serial_endpoint",
    "host_key_fingerprint",
    "ssh_client",
];

/// The command line as it is parsed and documented: clap's definitions,
/// with each subcommand's help showing only the global options that apply
/// to it (`lab status` opens no console, so it lists no AWS or WebSocket
/// option). A subcommand gets a hidden copy of each such option before the
/// command is built, and clap gives a subcommand a global option only when
/// it has none of that name: the option still parses (a script that passes
/// it everywhere keeps working), it is only left out of the help.
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory;
    let command = Cli::command();
    let everything: Vec<&str> = [SESSION_OPTIONS, CONNECT_OPTIONS, AWS_OPTIONS].concat();
    let no_console: Vec<&str> = [CONNECT_OPTIONS, AWS_OPTIONS].concat();
    let hidden_copies = |ids: &[&str]| -> Vec<clap::Arg> {
        command
            .get_arguments()
            .filter(|a| a.is_global_set() && ids.contains(&a.get_id().as_str()))
            .map(|a| a.clone().hide(true))
            .collect()
    };
    let (all_hidden, console_hidden, session_hidden) = (
        hidden_copies(&everything),
        hidden_copies(&no_console),
        hidden_copies(SESSION_OPTIONS),
    );
    let transcript_hidden = hidden_copies(&["transcript", "no_transcript"]);
    let mut command = command;
    for name in ["lint", "completions", "man", "play", "merge"] {
        command = command.mut_subcommand(name, |sub| sub.args(all_hidden.clone()));
    }
    command = command.mut_subcommand("gateway", |sub| sub.args(transcript_hidden.clone()));
    // Of the lab's commands only `demo` and `repair` open a console.
    command.mut_subcommand("lab", |lab| {
        let quiet: Vec<String> = lab
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .filter(|name| name != "demo" && name != "repair")
            .collect();
        let lab = lab.args(console_hidden.clone());
        quiet.into_iter().fold(lab, |lab, name| {
            lab.mut_subcommand(name, |sub| sub.args(session_hidden.clone()))
        })
    })
}
