//! The key file's content: line endings sshd can parse, entries that are
//! keys, the user's own key among them (added back with `--add-key`), and
//! key types sshd's `PubkeyAcceptedAlgorithms` lets sign.

use super::{CheckId, Finding, Request, Severity};
use crate::doctor::facts::Facts;
use crate::doctor::repair::Repair;

pub(super) fn key_content(facts: &Facts, req: &Request, ak: &str, out: &mut Vec<Finding>) {
    // A missing file (its own finding, created empty by the repair) holds no
    // key either: say so, so that --add-key puts the key in the new file.
    let exists = facts.paths.contains_key(ak);
    if exists && facts.crlf_lines > 0 {
        out.push(
            Finding::new(
                CheckId::AuthorizedKeysCrlf,
                Severity::Error,
                "lines end in CR LF (edited on Windows?): sshd cannot parse those keys",
            )
            .at(ak)
            .values(
                "LF line endings",
                format!("{} CRLF line(s)", facts.crlf_lines),
            )
            .fix(Repair::StripCr { path: ak.into() }),
        );
    }
    if exists && facts.bad_lines > 0 {
        out.push(
            Finding::new(CheckId::AuthorizedKeysMalformed, Severity::Warning, "some lines are not key entries (a key wrapped over several lines?): sshd ignores them; rejoin each key onto one line")
                .at(ak)
                .values("one key per line", format!("{} unparseable line(s)", facts.bad_lines)),
        );
    }
    let wanted = req.fingerprint.clone().or_else(|| {
        req.public_key
            .as_deref()
            .and_then(crate::doctor::repair::fingerprint_of)
    });
    if let Some(fp) = wanted {
        if !facts.keys.iter().any(|(have, _)| *have == fp) {
            let mut f = Finding::new(
                CheckId::AuthorizedKeysKeyMissing,
                Severity::Error,
                "the key you connect with is not in authorized_keys",
            )
            .at(ak)
            .values(fp.as_str(), format!("{} other key(s)", facts.keys.len()));
            match (&req.public_key, req.add_key) {
                (Some(key), true) => {
                    f = f.fix(Repair::AppendKey {
                        path: ak.into(),
                        key: key.clone(),
                    })
                }
                _ => f
                    .why
                    .push_str(": pass --public-key FILE --add-key to append it"),
            }
            // The key elsewhere: the user may have the wrong name (or
            // another account has the right key file).
            if let Some(holders) = super::account::holders_text(facts, req.user.as_str()) {
                f.why.push_str(&format!("; {holders}"));
            }
            out.push(f);
        }
    } else if exists && facts.keys.is_empty() {
        out.push(
            Finding::new(
                CheckId::AuthorizedKeysEmpty,
                Severity::Error,
                "authorized_keys holds no valid key",
            )
            .at(ak)
            .values("at least one key", "none"),
        );
    }
}

/// What a key of each type (as `ssh-keygen -l` names it) can sign with, as
/// `PubkeyAcceptedAlgorithms` names it; certificates aside.
fn algorithms_of(key_type: &str) -> &'static [&'static str] {
    match key_type {
        "RSA" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        "DSA" => &["ssh-dss"],
        "ECDSA" => &[
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
        ],
        "ED25519" => &["ssh-ed25519"],
        "ECDSA-SK" => &["sk-ecdsa-sha2-nistp256@openssh.com"],
        "ED25519-SK" => &["sk-ssh-ed25519@openssh.com"],
        _ => &[],
    }
}

/// The key to advise: the strongest type this sshd accepts.
fn advised_key(accepted: &[&str]) -> &'static str {
    if accepted.contains(&"ssh-ed25519") {
        "an ed25519 key (ssh-keygen -t ed25519)"
    } else if accepted.iter().any(|a| a.starts_with("ecdsa-sha2-")) {
        "an ECDSA key (ssh-keygen -t ecdsa -b 384)"
    } else {
        "an RSA key used by a current client (ssh-keygen -t rsa -b 3072)"
    }
}

/// The `ssh-keygen -l` type of a public key line's key.
fn type_of_line(line: &str) -> Option<&'static str> {
    let word = line
        .split_whitespace()
        .find(|w| w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-"))?;
    Some(match word {
        "ssh-rsa" => "RSA",
        "ssh-dss" => "DSA",
        "ssh-ed25519" => "ED25519",
        "sk-ssh-ed25519@openssh.com" => "ED25519-SK",
        "sk-ecdsa-sha2-nistp256@openssh.com" => "ECDSA-SK",
        w if w.starts_with("ecdsa-sha2-") => "ECDSA",
        _ => return None,
    })
}

/// Keys whose type sshd lets sign with nothing (an error: a DSA key on
/// OpenSSH 7.0 or later), and RSA keys on a server that refuses SHA-1
/// `ssh-rsa` signatures (OpenSSH 8.8 or later, crypto policies): a warning,
/// since current clients sign with rsa-sha2-256/512, and an error when
/// sshd's log shows the refusal. Judged for the key the user connects with
/// when it is given, else for every key in the file.
pub(super) fn key_algorithm(facts: &Facts, req: &Request, ak: &str, out: &mut Vec<Finding>) {
    // OpenSSH before 8.5 names the setting PubkeyAcceptedKeyTypes.
    let Some(accepted) = facts
        .sshd
        .get("pubkeyacceptedalgorithms")
        .or_else(|| facts.sshd.get("pubkeyacceptedkeytypes"))
    else {
        return;
    };
    let accepted: Vec<&str> = accepted.split(',').map(str::trim).collect();
    let judged: Vec<(String, String)> = match (req.sought(), &req.public_key) {
        (Some(fp), line) => {
            let in_file = facts.keys.iter().find(|(have, _)| have == fp.as_str());
            let key_type = in_file
                .map(|(_, t)| t.clone())
                .or_else(|| line.as_deref().and_then(type_of_line).map(str::to_string));
            key_type
                .map(|t| vec![(fp.as_str().to_string(), t)])
                .unwrap_or_default()
        }
        (None, _) => facts.keys.clone(),
    };
    let refused: Vec<String> = judged
        .iter()
        .filter(|(_, t)| {
            let algs = algorithms_of(t);
            !algs.is_empty() && !algs.iter().any(|a| accepted.contains(a))
        })
        .map(|(fp, t)| format!("{t} key {fp}"))
        .collect();
    let new_key = advised_key(&accepted);
    if !refused.is_empty() {
        out.push(
            Finding::new(
                CheckId::AuthorizedKeysKeyAlgorithm,
                Severity::Error,
                format!("sshd accepts no signature this key type can make (PubkeyAcceptedAlgorithms): it refuses the key whatever the client; make {new_key} and add it with --public-key NEW.pub --add-key"),
            )
            .at(ak)
            .values(format!("a key type in: {}", accepted.join(",")), refused.join(", ")),
        );
    }
    let sha1_only: Vec<String> = judged
        .iter()
        .filter(|(_, t)| t == "RSA" && !accepted.contains(&"ssh-rsa"))
        .filter(|_| accepted.iter().any(|a| a.starts_with("rsa-sha2-")))
        .map(|(fp, _)| format!("RSA key {fp}"))
        .collect();
    if !sha1_only.is_empty() {
        let seen = facts
            .log
            .iter()
            .any(|l| l.contains("ssh-rsa") && l.contains("not in PubkeyAcceptedAlgorithms"));
        let (severity, seen_text) = if seen {
            (
                Severity::Error,
                "sshd's log shows it refusing an ssh-rsa signature: ",
            )
        } else {
            (Severity::Warning, "")
        };
        out.push(
            Finding::new(
                CheckId::AuthorizedKeysKeyAlgorithm,
                severity,
                format!("{seen_text}this sshd refuses SHA-1 ssh-rsa signatures (the default since OpenSSH 8.8, and crypto policies): the RSA key works only from clients that sign with rsa-sha2-256/512. PuTTY before 0.75, OpenSSH before 7.2, paramiko before 2.9 and other old libraries sign with SHA-1 alone and get \"Server refused our key\". Fix the client: upgrade it, or make {new_key} (or with PuTTYgen) and add it with --public-key NEW.pub --add-key. Allowing ssh-rsa again on the server (PubkeyAcceptedAlgorithms +ssh-rsa in sshd_config) also works but weakens every login, so the doctor never does it"),
            )
            .at(ak)
            .values("rsa-sha2-256/512 signatures (or an ed25519 key)", sha1_only.join(", ")),
        );
    }
}
