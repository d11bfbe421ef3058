//! The doctor's report: JSON as the architecture doc specifies, and a table
//! for people.

use serde::Serialize;

use super::checks::{Finding, Policy, Severity, Status};

/// Everything one doctor run found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The console target (never a secret).
    pub target: String,
    /// The SSH user diagnosed.
    pub user: String,
    /// `check` or `fix`.
    pub mode: &'static str,
    /// The permission policy.
    pub policy: Policy,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Wall time of the whole run.
    pub duration_ms: u128,
    /// What was found, with status.
    pub findings: Vec<Finding>,
    /// With `--fix`: every repaired finding confirmed gone by a second
    /// look; `None` (JSON `null`) in check mode, where nothing was to verify.
    pub verified: Option<bool>,
    /// The transcript path, if recorded.
    pub transcript: Option<String>,
    /// Recent sshd log lines about the login (naming the user, or `[preauth]`
    /// lines about key types and algorithms), oldest first: the evidence.
    pub evidence: Vec<String>,
    /// Commands sent to the console (round trips), login included.
    pub round_trips: u32,
    /// How the root shell was reached.
    pub via: Via,
    /// What could not be checked this way, and why ([`super::Request::not_checked`]).
    pub not_checked: Vec<String>,
    /// Whether the console's answer left something the checks need unread
    /// (a section missing, the key file not read): then the report is never
    /// healthy (exit 1), whatever the findings.
    #[serde(skip)]
    pub incomplete: bool,
}

/// How the doctor reached a root shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Logged in as a password user (then sudo).
    Login,
    /// Booted through GRUB with rescue arguments: no password at all.
    Grub,
}

impl Report {
    /// Whether errors remain (exit code 1).
    pub fn problems_remain(&self) -> bool {
        self.incomplete
            || self.findings.iter().any(|f| {
                f.severity == Severity::Error
                    && matches!(f.status, Status::Open | Status::Failed | Status::Skipped)
            })
    }

    /// A table for the terminal.
    pub fn human(&self) -> String {
        let mut out = format!(
            "doctor {} for user {} (policy {}, {})\n",
            self.target, self.user, self.policy, self.mode
        );
        if self.findings.is_empty() && !self.incomplete {
            out.push_str("no problems found: sshd should accept this user's key\n");
        }
        for f in &self.findings {
            let status = format!("{:?}", f.status).to_lowercase();
            let sev = format!("{:?}", f.severity).to_lowercase();
            out.push_str(&format!("- [{sev}/{status}] {}", f.check));
            if let Some(p) = &f.path {
                out.push_str(&format!(" {p}"));
            }
            if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
                out.push_str(&format!(": expected {e}, found {a}"));
            }
            out.push_str(&format!("\n    why: {}\n", f.why));
            if let Some(r) = &f.repair {
                out.push_str(&format!("    repair: {r}\n"));
            }
        }
        if self.via == Via::Grub {
            out.push_str("reached through GRUB (rescue shell, no password); the instance was rebooted normally after\n");
        }
        for n in &self.not_checked {
            out.push_str(&format!("not checked: {n}\n"));
        }
        if !self.evidence.is_empty() {
            out.push_str("recent sshd log lines about this login, oldest first:\n");
            for l in &self.evidence {
                out.push_str(&format!("    {l}\n"));
            }
        }
        if let Some(verified) = self.verified {
            out.push_str(if verified {
                "verified: every repair confirmed by a second look\n"
            } else {
                "NOT verified: some problems remain\n"
            });
        } else if self
            .findings
            .iter()
            .any(|f| f.repair.is_some() && f.status == Status::Open)
        {
            out.push_str("run again with --fix to apply the repairs shown\n");
        }
        if let Some(t) = &self.transcript {
            out.push_str(&format!("transcript: {t}\n"));
        }
        let plural = if self.round_trips == 1 { "" } else { "s" };
        out.push_str(&format!(
            "took {} ms, {} console round trip{plural}\n",
            self.duration_ms, self.round_trips
        ));
        out
    }
}
