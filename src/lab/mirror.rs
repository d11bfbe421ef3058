//! Which Debian mirror debootstrap downloads from: the one this machine's apt
//! already uses.
//!
//! Hard-coding a mirror breaks on machines that can only reach their own
//! (a proxy, a snapshot, a local mirror), so the lab reads apt's sources:
//! deb822 `*.sources` files first, then one-line `sources.list` entries.
//! `$ESE_LAB_MIRROR` overrides both.

use std::path::Path;

use crate::error::{Error, Result};

/// Environment variable that overrides the mirror.
pub const MIRROR_ENV: &str = "ESE_LAB_MIRROR";

/// The mirror URL for `suite`, from the environment or the apt sources.
pub fn find(suite: &str) -> Result<String> {
    if let Some(url) = std::env::var(MIRROR_ENV).ok().filter(|u| !u.is_empty()) {
        return Ok(url);
    }
    let mut entries = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files {
            entries.extend(read_entries(&file));
        }
    }
    entries.extend(read_entries(Path::new("/etc/apt/sources.list")));
    choose(&entries, suite).ok_or_else(|| {
        Error::usage(format!(
            "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; \
             set {MIRROR_ENV}=http://deb.debian.org/debian (or your local mirror)"
        ))
    })
}

/// One `deb` source: its URL and suites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The repository URL.
    pub uri: String,
    /// The suites it serves (`bookworm`, `bookworm-updates`, …).
    pub suites: Vec<String>,
}

fn read_entries(path: &Path) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("sources") => parse_deb822(&text),
        _ => parse_one_line(&text),
    }
}

/// The first binary (`deb`) source serving exactly `suite`; else any http(s)
/// binary source that is not a security archive (it has the other suites).
pub fn choose(entries: &[Entry], suite: &str) -> Option<String> {
    let exact = entries.iter().find(|e| e.suites.iter().any(|s| s == suite));
    let plain = || {
        entries
            .iter()
            .find(|e| e.uri.starts_with("http") && !e.uri.contains("security"))
    };
    exact
        .or_else(plain)
        .map(|e| e.uri.trim_end_matches('/').to_string())
}

/// Parses deb822 stanzas (`Types:`, `URIs:`, `Suites:`), keeping `deb` ones.
pub fn parse_deb822(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| -> Vec<String> {
            stanza
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find_map(|l| {
                    let (key, value) = l.split_once(':')?;
                    key.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| value.split_whitespace().map(String::from).collect())
                })
                .unwrap_or_default()
        };
        let disabled = field("Enabled").first().is_some_and(|v| v == "no");
        if disabled || !field("Types").iter().any(|t| t == "deb") {
            continue;
        }
        let suites = field("Suites");
        for uri in field("URIs") {
            entries.push(Entry {
                uri,
                suites: suites.clone(),
            });
        }
    }
    entries
}

/// Parses `deb [options] URI SUITE COMPONENTS…` lines.
pub fn parse_one_line(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let rest = line.strip_prefix("deb ")?.trim_start();
            // Skip a `[arch=amd64 signed-by=…]` options block.
            let rest = match rest.strip_prefix('[') {
                Some(r) => r.split_once(']')?.1.trim_start(),
                None => rest,
            };
            let mut words = rest.split_whitespace();
            let uri = words.next()?.to_string();
            let suite = words.next()?.to_string();
            Some(Entry {
                uri,
                suites: vec![suite],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
        URIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
        Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n";

    #[test]
    fn deb822_gives_the_main_archive_not_security() {
        let entries = parse_deb822(DEB822);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            choose(&entries, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn one_line_sources_with_options() {
        let text = "# comment\ndeb-src http://src.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n";
        let entries = parse_one_line(text);
        assert_eq!(
            entries,
            vec![Entry {
                uri: "http://m.example/debian".into(),
                suites: vec!["bookworm".into()]
            }]
        );
    }

    #[test]
    fn disabled_and_source_only_stanzas_are_skipped() {
        let text = "Types: deb-src\nURIs: http://a/\nSuites: bookworm\n\n\
                    Enabled: no\nTypes: deb\nURIs: http://b/\nSuites: bookworm\n";
        assert!(parse_deb822(text).is_empty());
    }
}
