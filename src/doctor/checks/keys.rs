//! The key file's content: line endings sshd can parse, entries that are
//! keys, and the user's own key among them (added back with `--add-key`).

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
