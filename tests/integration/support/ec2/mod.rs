//! A local stand-in for the EC2 Serial Console, built from real parts.
//!
//! - `standin.py`: moto (server mode) as the EC2 API, with the serial console
//!   access calls moto lacks, and an EC2 Instance Connect endpoint that checks
//!   SigV4 with botocore and records each pushed key with its time;
//! - a real OpenSSH sshd on a loopback port with its own host key, which
//!   accepts `<instance-id>.port0` only with a key pushed within its TTL (an
//!   `AuthorizedKeysCommand` reading what the stand-in recorded), allows one
//!   session per instance (a `flock` the stand-in also checks) and connects
//!   the session to a console: a small getty-like script, or any command
//!   (e.g. `socat - UNIX-CONNECT:<lab serial socket>`).
//!
//! The users `i-….port0` exist only for that sshd, through nss_wrapper
//! (`libnss-wrapper`): nothing is added to the system's user database.
//! Needs root (sshd), python3 and network access to PyPI the first time (moto
//! is installed into a venv under `target/`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The Region the stand-in plays.
pub const REGION: &str = "us-east-1";
/// The test credentials (the stand-in verifies signatures made with them).
pub const ACCESS_KEY: &str = "AKIASTANDIN000000000";
/// The test secret key; tests check it never appears in any artifact.
pub const SECRET_KEY: &str = "standin-secret-KEY-never-printed-0123456789";
const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ec2-serial-expect")
}

fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ec2-moto-venv/bin/python")
}

/// moto in a venv under target/, installed on first use.
pub fn python() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let python = venv_python();
        let ok = |p: &Path| {
            Command::new(p)
                .args(["-c", "import moto.server, boto3, botocore"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ok(&python) {
            let venv = python.parent().unwrap().parent().unwrap();
            let made = Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(venv)
                .status();
            assert!(
                made.is_ok_and(|s| s.success()),
                "cannot create the venv {} with python3 -m venv",
                venv.display()
            );
            let pip = Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "moto[server]"])
                .status();
            assert!(
                pip.is_ok_and(|s| s.success()) && ok(&python),
                "cannot install moto[server] into {} (needs PyPI); the EC2 stand-in tests need it",
                venv.display()
            );
        }
        python
    })
}

fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/support/ec2")
}

/// What the sshd's session runs as the instance's console.
#[derive(Debug, Clone)]
pub enum Console {
    /// A getty-like script: banner, `login: `, `Password: `, a shell prompt.
    FakeGetty,
    /// The same login, then a real bash as root (`doctor --login-user
    /// root` examines this machine read-only through it).
    RootShell,
    /// Any shell command line, run as root (e.g. `socat` to a VM's serial socket).
    Command(String),
}

/// The running stand-in: EC2 API, EC2 Instance Connect, sshd.
pub struct StandIn {
    /// State: keys file, locks, sshd config and host key, home, logs.
    pub dir: tempfile::TempDir,
    /// The EC2 API (moto) URL, for setting the stand-in up.
    pub ec2_url: String,
    /// The EC2 API as the tool reaches it: a front that records requests and
    /// can answer queued errors before moto.
    pub ec2_front_url: String,
    /// The EC2 Instance Connect URL.
    pub eic_url: String,
    eic_port: u16,
    /// sshd's loopback port.
    pub ssh_port: u16,
    /// sshd's host-key fingerprint (SHA256:…).
    pub fingerprint: String,
    console_uid: u32,
    standin: Child,
    standin_stdin: Option<ChildStdin>,
    sshd: Child,
}

impl StandIn {
    /// Starts everything; panics with the reason when a part is missing.
    pub fn start(console: Console) -> StandIn {
        assert!(
            nix_is_root(),
            "the EC2 stand-in runs a real sshd and needs root (run the tests as root)"
        );
        assert!(
            Path::new(NSS_WRAPPER).exists(),
            "the EC2 stand-in needs nss_wrapper for its i-….port0 users: apt-get install libnss-wrapper"
        );
        let dir = tempfile::Builder::new()
            .prefix("ec2-standin-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (mut standin, ports) = start_services(dir.path());
        let standin_stdin = standin.stdin.take();
        let ec2_port = ports["ec2"].as_u64().unwrap();
        let eic_port = ports["eic"].as_u64().unwrap() as u16;
        let front_port = ports["ec2front"].as_u64().unwrap();
        let (sshd, ssh_port, fingerprint) = start_sshd(dir.path(), &console);
        let console_uid = match console {
            Console::FakeGetty => 65534,
            Console::RootShell | Console::Command(_) => 0,
        };
        StandIn {
            dir,
            ec2_url: format!("http://127.0.0.1:{ec2_port}"),
            ec2_front_url: format!("http://127.0.0.1:{front_port}"),
            eic_url: format!("http://127.0.0.1:{eic_port}"),
            eic_port,
            ssh_port,
            fingerprint,
            console_uid,
            standin,
            standin_stdin,
            sshd,
        }
    }

    /// Runs `ec2ctl.py COMMAND ARGS` (boto3 against moto) and returns its output.
    pub fn ec2ctl(&self, args: &[&str]) -> String {
        let out = Command::new(python())
            .arg(support_dir().join("ec2ctl.py"))
            .arg(&self.ec2_url)
            .arg(REGION)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ec2ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Launches an instance of `instance_type` (running) and lets sshd know its user.
    pub fn run_instance(&self, instance_type: &str) -> String {
        self.run_instances(instance_type, 1, None).remove(0)
    }

    /// Launches `count` instances (running, each its own reservation),
    /// tagged `KEY=VALUE` when given, and lets sshd know their users.
    pub fn run_instances(
        &self,
        instance_type: &str,
        count: usize,
        tag: Option<&str>,
    ) -> Vec<String> {
        let count = count.to_string();
        let mut args = vec!["run", instance_type, &count];
        args.extend(tag);
        let ids: Vec<String> = self.ec2ctl(&args).lines().map(str::to_string).collect();
        let mut passwd = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("passwd"))
            .unwrap();
        for id in &ids {
            let entry = format!(
                "{id}.port0:x:{uid}:{uid}:serial console:{}:/bin/sh\n",
                self.dir.path().join("home").display(),
                uid = self.console_uid
            );
            passwd.write_all(entry.as_bytes()).unwrap();
        }
        ids
    }

    /// Changes the stand-in's behaviour: `{"queue": [...], "ttl": secs}`.
    pub fn control(&self, json: &str) {
        http(self.eic_port, "POST", "/_control", json);
    }

    /// Every EC2 Query request the tool sent (action, User-Agent, the
    /// error queued for it if any).
    pub fn ec2_requests(&self) -> Vec<serde_json::Value> {
        let body = http(self.eic_port, "GET", "/_ec2_requests", "");
        serde_json::from_str(&body).unwrap()
    }

    /// How many `RebootInstances` calls the EC2 API received.
    pub fn reboots(&self) -> usize {
        self.ec2_requests()
            .iter()
            .filter(|r| r["action"] == "RebootInstances")
            .count()
    }

    /// Every key push the EC2 Instance Connect stand-in received.
    pub fn pushes(&self) -> Vec<serde_json::Value> {
        let body = http(self.eic_port, "GET", "/_pushes", "");
        serde_json::from_str(&body).unwrap()
    }

    /// The CLI with the stand-in's environment and `--serial-endpoint` /
    /// `--host-key-fingerprint` pointing at its sshd.
    pub fn command(&self) -> Command {
        let mut cmd = self.base_command();
        cmd.arg("--serial-endpoint")
            .arg(self.serial_endpoint())
            .arg("--host-key-fingerprint")
            .arg(&self.fingerprint);
        cmd
    }

    /// `127.0.0.1:PORT` of the sshd.
    pub fn serial_endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.ssh_port)
    }

    /// The CLI with the stand-in's environment only: credentials, Region,
    /// endpoint URLs, a private HOME and TMPDIR.
    pub fn base_command(&self) -> Command {
        let home = self.dir.path().join("client-home");
        std::fs::create_dir_all(&home).unwrap();
        for empty in ["aws-config", "aws-credentials"] {
            std::fs::write(home.join(empty), "").unwrap();
        }
        let mut cmd = Command::new(binary());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("TMPDIR", self.dir.path().join("client-tmp"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL_EC2", &self.ec2_front_url)
            .env("AWS_ENDPOINT_URL_EC2_INSTANCE_CONNECT", &self.eic_url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", home.join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"));
        std::fs::create_dir_all(self.dir.path().join("client-tmp")).unwrap();
        cmd
    }

    /// What sshd logged so far.
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        drop(self.standin_stdin.take());
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.standin.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.standin.kill();
        let _ = self.standin.wait();
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn start_services(dir: &Path) -> (Child, serde_json::Value) {
    let mut child = Command::new(python())
        .arg(support_dir().join("standin.py"))
        .args([dir.to_str().unwrap(), ACCESS_KEY, SECRET_KEY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("standin.log")).unwrap())
        .spawn()
        .expect("start the EC2 stand-in (python)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ports: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "the EC2 stand-in did not start: {}",
            std::fs::read_to_string(dir.join("standin.log")).unwrap_or_default()
        )
    });
    std::fs::set_permissions(dir.join("locks"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    (child, ports)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn start_sshd(dir: &Path, console: &Console) -> (Child, u16, String) {
    std::fs::create_dir_all("/run/sshd").unwrap();
    std::fs::create_dir_all(dir.join("home")).unwrap();
    std::fs::set_permissions(dir.join("home"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let host_key = dir.join("host_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .status()
        .unwrap();
    assert!(made.success());
    let fingerprint = fingerprint_of(&host_key.with_extension("pub"));
    std::fs::write(
        dir.join("passwd"),
        std::fs::read_to_string("/etc/passwd").unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("group"),
        std::fs::read_to_string("/etc/group").unwrap(),
    )
    .unwrap();
    write_exec(
        &dir.join("authorized_keys.sh"),
        &format!(
            "#!/bin/sh\n# Keys pushed for this instance within their TTL.\nid=\"${{1%.port0}}\"\n\
             awk -v id=\"$id\" -v now=\"$(date +%s)\" '$3 == id && now - $1 < $2 {{ print $4 \" \" $5 }}' {}\n",
            dir.join("pushed_keys").display()
        ),
    );
    write_exec(&dir.join("getty.sh"), &format!("{LOGIN}{GETTY}"));
    write_exec(&dir.join("root-getty.sh"), &format!("{LOGIN}{ROOT_GETTY}"));
    let console_command = match console {
        Console::FakeGetty => format!("/bin/sh {}", dir.join("getty.sh").display()),
        Console::RootShell => format!("/bin/sh {}", dir.join("root-getty.sh").display()),
        Console::Command(c) => c.clone(),
    };
    write_exec(
        &dir.join("console.sh"),
        &format!(
            "#!/bin/sh\n# One session per instance: hold its lock while the console runs.\n\
             id=\"${{USER%.port0}}\"\nexec flock -n \"{}/$id.lock\" {console_command}\n",
            dir.join("locks").display()
        ),
    );
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "ListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAuthorizedKeysFile none\n\
             AuthorizedKeysCommand /bin/sh {} %u\nAuthorizedKeysCommandUser root\n\
             ForceCommand /bin/sh {}\nStrictModes no\nPermitTTY yes\nPrintMotd no\nPrintLastLog no\n\
             LogLevel DEBUG1\nAllowUsers *.port0\nMaxStartups 50\nPermitRootLogin {}\n",
            host_key.display(),
            dir.join("sshd.pid").display(),
            dir.join("authorized_keys.sh").display(),
            dir.join("console.sh").display(),
            if console_runs_as_root(console) { "yes" } else { "no" },
        ),
    )
    .unwrap();
    let port = free_port();
    let sshd = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .arg("-p")
        .arg(port.to_string())
        .env("LD_PRELOAD", NSS_WRAPPER)
        .env("NSS_WRAPPER_PASSWD", dir.join("passwd"))
        .env("NSS_WRAPPER_GROUP", dir.join("group"))
        .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
        .spawn()
        .expect("start /usr/sbin/sshd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "sshd did not listen: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (sshd, port, fingerprint)
}

fn console_runs_as_root(console: &Console) -> bool {
    matches!(console, Console::Command(_) | Console::RootShell)
}

/// `ssh-keygen -lf KEY.pub` → `SHA256:…`.
pub fn fingerprint_of(public_key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

/// A getty's login: what an instance's ttyS0 shows, minus the kernel,
/// taking any user name and password.
const LOGIN: &str = r#"#!/bin/sh
printf '\r\nDebian GNU/Linux 12 lab-instance ttyS0\r\n\r\nlab-instance login: '
IFS= read -r user
stty -echo 2>/dev/null
printf 'Password: '
IFS= read -r password
stty echo 2>/dev/null
"#;

/// After [`LOGIN`], a getty-like console's pretend shell.
const GETTY: &str = r#"printf '\r\nLinux lab-instance 6.1.0 x86_64\r\n%s@lab-instance:~$ ' "$user"
while IFS= read -r line; do
  case "$line" in
    exit|logout) printf 'logout\r\n'; exit 0 ;;
    *) printf 'ran: %s\r\n%s@lab-instance:~$ ' "$line" "$user" ;;
  esac
done
"#;

/// After [`LOGIN`], a real shell as root with a plain environment.
const ROOT_GETTY: &str = r#"printf '\r\n'
cd /
exec env -i TERM=vt100 PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  PS1='root@lab-instance:/# ' bash --norc --noprofile -i
"#;

fn http(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}
