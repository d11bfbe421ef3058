//! Signing in to the web page: the gateway's token, typed once into a
//! form, buys a session held in a cookie.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no
//! other site's page sends it), `Secure` under TLS, and names a random
//! 256-bit session id the gateway keeps in memory with its expiry, so a
//! stolen cookie dies with its session and a restarted gateway forgets
//! them all. Failed attempts are counted per address (per IPv6 /64): past
//! a few a minute, the form is refused until the minute is over, so the
//! token cannot be guessed through the page.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::time::Instant;

use crate::gateway::slots::Source;

/// The session cookie's name.
pub(super) const COOKIE: &str = "ese_session";

/// Failed sign-ins one address may make per [`ATTEMPT_WINDOW`].
const MAX_FAILURES: u32 = 5;
const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);
/// Most sessions kept at once: signing in again and again cannot grow the
/// table without bound (the oldest goes first).
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Clone)]
pub(super) struct WebSession {
    /// Who signed in, as the consoles list and the recordings show it.
    pub identity: String,
    /// The value forms must carry back (sign-out), besides the cookie.
    pub form_key: String,
    expires: Instant,
}

/// Every session, and the failures per address.
pub(super) struct Sessions {
    lifetime: Duration,
    by_id: Mutex<HashMap<String, WebSession>>,
    failures: Mutex<HashMap<Source, (Instant, u32)>>,
}

/// Why a sign-in was not accepted.
pub(super) enum Refused {
    /// The token is wrong.
    Wrong,
    /// Too many wrong tokens from this address; try again after this long.
    TooMany(Duration),
}

impl Sessions {
    pub(super) fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            by_id: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lives.
    pub(super) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Checks a sign-in from `source` (`right`: the token matched) and
    /// returns the new session's id.
    pub(super) fn sign_in(
        &self,
        source: Source,
        right: bool,
        identity: &str,
    ) -> Result<String, Refused> {
        let now = Instant::now();
        {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            failures.retain(|_, (since, _)| now.duration_since(*since) < ATTEMPT_WINDOW);
            if let Some((since, count)) = failures.get(&source) {
                if *count >= MAX_FAILURES {
                    return Err(Refused::TooMany(
                        ATTEMPT_WINDOW - now.duration_since(*since),
                    ));
                }
            }
            if !right {
                failures.entry(source).or_insert((now, 0)).1 += 1;
                return Err(Refused::Wrong);
            }
        }
        let id = random_hex();
        let session = WebSession {
            identity: identity.to_string(),
            form_key: random_hex(),
            expires: now + self.lifetime,
        };
        let mut by_id = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        by_id.retain(|_, s| s.expires > now);
        if by_id.len() >= MAX_SESSIONS {
            let oldest = by_id
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                by_id.remove(&oldest);
            }
        }
        by_id.insert(id.clone(), session);
        Ok(id)
    }

    /// The live session a request's cookie names, if any.
    pub(super) fn find(&self, cookie_header: Option<&str>) -> Option<(String, WebSession)> {
        let id = cookie_value(cookie_header?, COOKIE)?;
        let mut by_id = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let session = by_id.get(id)?;
        if session.expires <= Instant::now() {
            by_id.remove(id);
            return None;
        }
        Some((id.to_string(), session.clone()))
    }

    /// Ends a session.
    pub(super) fn sign_out(&self, id: &str) {
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// The `Set-Cookie` value for a session (`id`: None clears it).
pub(super) fn set_cookie(id: Option<&str>, lifetime: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            lifetime.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// 32 random bytes as hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // The system's random source failing is not something to serve on.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random number generator failed");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        Source::of("192.0.2.7".parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_is_found_by_its_cookie_until_it_expires_or_signs_out() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let id = sessions.sign_in(source(), true, "alice").ok().unwrap();
        let cookie = format!("other=1; {COOKIE}={id}");
        assert_eq!(sessions.find(Some(&cookie)).unwrap().1.identity, "alice");
        assert!(sessions.find(Some("ese_session=not-a-session")).is_none());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(sessions.find(Some(&cookie)).is_none(), "expired");
        let id = sessions.sign_in(source(), true, "bob").ok().unwrap();
        sessions.sign_out(&id);
        assert!(sessions.find(Some(&format!("{COOKIE}={id}"))).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_tokens_from_one_address_are_refused_for_a_minute() {
        let sessions = Sessions::new(Duration::from_secs(60));
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                sessions.sign_in(source(), false, "x"),
                Err(Refused::Wrong)
            ));
        }
        // Even the right token waits now.
        assert!(matches!(
            sessions.sign_in(source(), true, "x"),
            Err(Refused::TooMany(_))
        ));
        let elsewhere = Source::of("198.51.100.1".parse().unwrap());
        assert!(sessions.sign_in(elsewhere, true, "y").is_ok());
        tokio::time::advance(ATTEMPT_WINDOW).await;
        assert!(sessions.sign_in(source(), true, "x").is_ok());
    }
}
