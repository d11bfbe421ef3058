//! Targets: the one string every command takes to say which console to reach.
//!
//! | form | console |
//! |---|---|
//! | `i-0123456789abcdef0` | EC2 Serial Console of that instance |
//! | `ws://…`, `wss://…` | a console served over WebSocket |
//! | `unix:/path` | a Unix stream socket (QEMU/libvirt serial) |
//! | `tcp:HOST:PORT` | a TCP console (QEMU `-serial tcp:`, ser2net) |
//! | `exec:COMMAND ARGS…` | a local command under a PTY, split like a POSIX shell (no shell run) |
//! | `replay:FILE.cast` | a recorded transcript played back as the console |
//!
//! Parsing is strict: a bad target is a usage error (exit code 2) that shows
//! the accepted forms.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A parsed console target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An EC2 instance id (`i-` followed by hex digits).
    Ec2 {
        /// The instance id as given.
        instance_id: String,
    },
    /// A WebSocket URL (`ws://` or `wss://`).
    WebSocket {
        /// The full URL.
        url: String,
    },
    /// A Unix stream socket.
    Unix {
        /// Path of the socket.
        path: PathBuf,
    },
    /// A TCP console.
    Tcp {
        /// `HOST:PORT` as given.
        address: String,
    },
    /// A local program run under a pseudo-terminal.
    Exec {
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// A recorded transcript replayed as the console.
    Replay {
        /// Path of the `.cast` file.
        path: PathBuf,
    },
}

const FORMS: &str = "i-0123456789abcdef0, ws://HOST:PORT/PATH, wss://…, unix:/path/serial.sock, \
                     tcp:HOST:PORT, exec:COMMAND ARGS…, replay:FILE.cast";

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad =
            |why: &str| Error::usage(format!("bad target {s:?}: {why}; accepted forms: {FORMS}"));
        if let Some(rest) = s.strip_prefix("i-") {
            let id_ok = (8..=30).contains(&rest.len())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            return if id_ok {
                Ok(Target::Ec2 {
                    instance_id: s.to_string(),
                })
            } else {
                Err(bad(
                    "an EC2 instance id is `i-` followed by 8 to 30 lowercase hex digits",
                ))
            };
        }
        if s.starts_with("ws://") || s.starts_with("wss://") {
            let host = s.split_once("://").map(|(_, r)| r).unwrap_or("");
            if host.is_empty() || host.starts_with('/') {
                return Err(bad("the WebSocket URL has no host"));
            }
            return Ok(Target::WebSocket { url: s.to_string() });
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("`unix:` needs the socket path"));
            }
            return Ok(Target::Unix {
                path: PathBuf::from(path),
            });
        }
        if let Some(address) = s.strip_prefix("tcp:") {
            let port_ok = address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !port_ok {
                return Err(bad("`tcp:` needs HOST:PORT with a port from 1 to 65535"));
            }
            return Ok(Target::Tcp {
                address: address.to_string(),
            });
        }
        if let Some(command) = s.strip_prefix("exec:") {
            let argv = shell_words::split(command)
                .map_err(|e| bad(&format!("cannot split the command: {e}")))?;
            if argv.is_empty() {
                return Err(bad("`exec:` needs a command"));
            }
            return Ok(Target::Exec { argv });
        }
        if let Some(path) = s.strip_prefix("replay:") {
            if path.is_empty() {
                return Err(bad("`replay:` needs a transcript path"));
            }
            return Ok(Target::Replay {
                path: PathBuf::from(path),
            });
        }
        Err(bad("unrecognised form"))
    }
}

/// What a target shows in messages, headers, reports and file names: never
/// a credential (a URL's query and userinfo, anywhere in it, `exec:`
/// arguments too) nor a secret the process has read, and no control
/// character (a target list is input: `ESC]0;…` must not reach a terminal).
/// Every printer and every file name goes through this one function.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = match self {
            Target::Ec2 { instance_id } => instance_id.clone(),
            Target::WebSocket { url } => url_without_query(url).to_string(),
            Target::Unix { path } => format!("unix:{}", path.display()),
            Target::Tcp { address } => format!("tcp:{address}"),
            Target::Exec { argv } => format!("exec:{}", shell_words::join(argv)),
            Target::Replay { path } => format!("replay:{}", path.display()),
        };
        f.write_str(&crate::text::printable(&crate::secret::scrub_known(&shown)))
    }
}

/// A presigned URL's query holds a signature, its userinfo a password:
/// never show either.
fn url_without_query(url: &str) -> String {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "i-0123456789abcdef0".parse::<Target>().unwrap(),
            Target::Ec2 {
                instance_id: "i-0123456789abcdef0".into()
            }
        );
        assert!(matches!(
            "ws://127.0.0.1:8080/v1/consoles/lab".parse(),
            Ok(Target::WebSocket { .. })
        ));
        assert!(matches!(
            "unix:/tmp/s.sock".parse(),
            Ok(Target::Unix { .. })
        ));
        assert!(matches!(
            "tcp:localhost:4555".parse(),
            Ok(Target::Tcp { .. })
        ));
        assert_eq!(
            "exec:sh -c 'echo hi; cat'".parse::<Target>().unwrap(),
            Target::Exec {
                argv: vec!["sh".into(), "-c".into(), "echo hi; cat".into()]
            }
        );
        assert!(matches!(
            "replay:fixtures/login.cast".parse(),
            Ok(Target::Replay { .. })
        ));
    }

    #[test]
    fn rejects_bad_targets_with_the_accepted_forms() {
        for bad in [
            "",
            "i-XYZ",
            "i-12",
            "tcp:host",
            "tcp::22",
            "exec:",
            "exec:'unclosed",
            "unix:",
            "ftp://x",
            "ws://",
        ] {
            let err = bad.parse::<Target>().unwrap_err();
            assert_eq!(err.exit_code(), crate::error::ExitCode::Usage, "{bad}");
            assert!(err.to_string().contains("accepted forms"), "{err}");
        }
    }

    #[test]
    fn display_hides_presigned_query() {
        let t: Target = "wss://h/openTunnel?X-Amz-Signature=abc".parse().unwrap();
        assert_eq!(t.to_string(), "wss://h/openTunnel");
    }

    #[test]
    fn display_hides_userinfo_and_urls_in_exec_arguments() {
        let t: Target = "ws://admin:s3cret@h:6083/?token=abc".parse().unwrap();
        assert_eq!(t.to_string(), "ws://h:6083/");
        let t: Target = "exec:virsh -c qemu+ssh://root:pw1234@host/system console vm1"
            .parse()
            .unwrap();
        assert!(!t.to_string().contains("pw1234"), "{t}");
    }

    #[test]
    fn display_never_carries_control_characters() {
        let t: Target = "exec:echo \u{1b}]0;owned\u{7}\u{1b}[2J".parse().unwrap();
        assert!(!t.to_string().chars().any(char::is_control), "{t}");
    }
}
