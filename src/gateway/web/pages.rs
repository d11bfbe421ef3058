//! The web page's HTML, rendered on the server: plain pages that work
//! without script except where a terminal or a player must run, every
//! value escaped, no inline script or style (the Content-Security-Policy
//! forbids both), and names a test or a screen reader can find (each
//! console is a link whose text is exactly its name).

use std::fmt::Write as _;
use std::time::SystemTime;

use super::recordings::Listed;

/// Escapes text for HTML content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Who is signed in, as every page's header shows it.
pub(super) struct Viewer<'a> {
    pub identity: &'a str,
    /// The sign-out form's key (none when the gateway has no sign-in).
    pub form_key: Option<&'a str>,
}

/// A whole page: `title`, extra head lines (stylesheets, scripts), body.
fn page(title: &str, head: &str, viewer: Option<&Viewer<'_>>, body: &str) -> String {
    let nav = match viewer {
        Some(v) => {
            let sign_out = match v.form_key {
                Some(key) => format!(
                    r#"<form method="post" action="/sign-out"><input type="hidden" name="form_key" value="{}"><button type="submit">Sign out</button></form>"#,
                    escape(key)
                ),
                None => String::new(),
            };
            format!(
                r#"<nav><a href="/">Consoles</a> <a href="/recordings">Recordings</a> <span class="who">signed in as {}</span>{sign_out}</nav>"#,
                escape(v.identity)
            )
        }
        None => String::new(),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} — ec2-serial-expect gateway</title>
<link rel="stylesheet" href="/assets/page.css">
{head}
</head>
<body>
{nav}
<main>
{body}
</main>
</body>
</html>
"#,
        escape(title)
    )
}

/// The sign-in form, with what went wrong last time.
pub(super) fn sign_in(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!(r#"<p class="problem" role="alert">{}</p>"#, escape(p)))
        .unwrap_or_default();
    page(
        "Sign in",
        "",
        None,
        &format!(
            r#"<h1>Sign in</h1>
{problem}
<form method="post" action="/sign-in">
<p><label for="token">Gateway token</label> <input id="token" name="token" type="password" autocomplete="current-password" required></p>
<p><label for="name">Your name (shown to others on a console)</label> <input id="name" name="name" type="text" maxlength="40" autocomplete="username"></p>
<p><button type="submit">Sign in</button></p>
</form>"#
        ),
    )
}

/// One console as the list shows it.
pub(super) struct ConsoleRow {
    pub name: String,
    pub writer: Option<(String, SystemTime)>,
    pub viewers: usize,
    /// A held console's trouble (not connected, and why).
    pub down: Option<String>,
    pub held: bool,
}

/// The consoles list.
pub(super) fn consoles(viewer: &Viewer<'_>, rows: &[ConsoleRow]) -> String {
    let mut body = String::from(
        "<h1>Consoles</h1>\n<table>\n<thead><tr><th>Console</th><th>State</th><th>Held by</th><th>For</th><th>Viewers</th></tr></thead>\n<tbody>\n",
    );
    for row in rows {
        let name = escape(&row.name);
        let (state, who, since) = match &row.writer {
            Some((who, since)) => ("in use", escape(who), for_how_long(*since)),
            None => ("free", String::new(), String::new()),
        };
        let state = match &row.down {
            Some(why) => format!("not connected ({})", escape(why)),
            None if row.held => format!("{state}, held open"),
            None => state.to_string(),
        };
        let _ = writeln!(
            body,
            r#"<tr><td><a href="/consoles/{name}">{name}</a></td><td>{state}</td><td>{who}</td><td>{since}</td><td>{}</td></tr>"#,
            row.viewers
        );
    }
    body.push_str("</tbody>\n</table>\n");
    page("Consoles", "", Some(viewer), &body)
}

/// "3 min" since `since`.
fn for_how_long(since: SystemTime) -> String {
    let secs = since.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs / 60 % 60),
    }
}

/// A console's page: the terminal, writing or watching.
pub(super) fn console(viewer: &Viewer<'_>, name: &str, watch: bool) -> String {
    let name = escape(name);
    let (mode, note) = if watch {
        (
            "watch",
            format!(
                r#"Watching read-only. <a href="/consoles/{name}">Take the console</a> when it is free."#
            ),
        )
    } else {
        (
            "write",
            format!(r#"Writing. <a href="/consoles/{name}?watch">Watch read-only</a> instead."#),
        )
    };
    page(
        &name,
        r#"<link rel="stylesheet" href="/assets/xterm.css">
<script src="/assets/xterm.js" defer></script>
<script src="/assets/addon-fit.js" defer></script>
<script src="/assets/console.js" defer></script>"#,
        Some(viewer),
        &format!(
            r#"<h1>{name}</h1>
<p class="mode">{note}</p>
<p id="status" role="status">connecting…</p>
<p id="viewers" aria-live="polite"></p>
<div id="terminal" data-console="{name}" data-mode="{mode}"></div>"#
        ),
    )
}

/// The recordings list.
pub(super) fn recordings(viewer: &Viewer<'_>, listed: &[Listed], recorded: bool) -> String {
    let mut body = String::from("<h1>Recordings</h1>\n");
    if !recorded {
        body.push_str(
            "<p>This gateway does not record sessions (it was started without --record-dir).</p>\n",
        );
        return page("Recordings", "", Some(viewer), &body);
    }
    body.push_str("<table>\n<thead><tr><th>File</th><th>Console</th><th>Identity</th><th>Start (UTC)</th><th>Length</th><th></th></tr></thead>\n<tbody>\n");
    for l in listed {
        let file = escape(&l.file);
        let start = l
            .started
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .ok()
            })
            .unwrap_or_default();
        let _ = writeln!(
            body,
            r#"<tr><td><a href="/recordings/{file}">{file}</a></td><td>{}</td><td>{}</td><td>{start}</td><td>{:.1} s</td><td><a href="/recordings/{file}/cast?download" download="{file}">download</a> ({} KiB)</td></tr>"#,
            escape(&l.console),
            escape(&l.identity),
            l.length,
            l.bytes.div_ceil(1024),
        );
    }
    body.push_str("</tbody>\n</table>\n");
    page("Recordings", "", Some(viewer), &body)
}

/// One recording's player.
pub(super) fn player(viewer: &Viewer<'_>, file: &str) -> String {
    let file = escape(file);
    page(
        &file,
        r#"<link rel="stylesheet" href="/assets/asciinema-player.css">
<script src="/assets/asciinema-player.js" defer></script>
<script src="/assets/player.js" defer></script>"#,
        Some(viewer),
        &format!(
            r#"<h1>{file}</h1>
<p><a href="/recordings/{file}/cast?download" download="{file}">Download {file}</a></p>
<div id="player" data-src="/recordings/{file}/cast"></div>"#
        ),
    )
}

/// A page that says something went wrong (a console or recording that
/// does not exist, for a signed-in user).
pub(super) fn problem(viewer: &Viewer<'_>, title: &str, message: &str) -> String {
    page(
        title,
        "",
        Some(viewer),
        &format!(
            r#"<h1>{}</h1><p class="problem" role="alert">{}</p>"#,
            escape(title),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        let viewer = Viewer {
            identity: "<script>x</script>",
            form_key: Some("k\"ey"),
        };
        let html = consoles(
            &viewer,
            &[ConsoleRow {
                name: "a&b".into(),
                writer: Some(("\"bob\"".into(), SystemTime::now())),
                viewers: 1,
                down: None,
                held: false,
            }],
        );
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&lt;script&gt;x") && html.contains("a&amp;b"));
        assert!(html.contains("k&quot;ey") && html.contains("&quot;bob&quot;"));
    }
}
