//! The files the pages load, built into the binary: the page works on a
//! machine with no internet, and no CDN sees who uses it.
//!
//! `vendor/` holds xterm.js (with its fit add-on) and asciinema-player as
//! their packages ship them from the npm registry, with their licences;
//! `scripts/build-web.sh` fetches them again from `web/package.json`.
//! `app/` holds this gateway's own script and style.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

/// Every served file: its name under `/assets/`, its type, its bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    ("page.css", CSS, include_bytes!("app/page.css")),
    ("console.js", JS, include_bytes!("app/console.js")),
    ("player.js", JS, include_bytes!("app/player.js")),
    ("xterm.js", JS, include_bytes!("vendor/xterm.js")),
    ("xterm.css", CSS, include_bytes!("vendor/xterm.css")),
    ("addon-fit.js", JS, include_bytes!("vendor/addon-fit.js")),
    (
        "asciinema-player.js",
        JS,
        include_bytes!("vendor/asciinema-player.min.js"),
    ),
    (
        "asciinema-player.css",
        CSS,
        include_bytes!("vendor/asciinema-player.css"),
    ),
    (
        "LICENSE.xterm",
        TEXT,
        include_bytes!("vendor/LICENSE.xterm"),
    ),
    (
        "LICENSE.addon-fit",
        TEXT,
        include_bytes!("vendor/LICENSE.addon-fit"),
    ),
    (
        "LICENSE.asciinema-player",
        TEXT,
        include_bytes!("vendor/LICENSE.asciinema-player"),
    ),
    (
        "LICENSE.solid-js",
        TEXT,
        include_bytes!("vendor/LICENSE.solid-js"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Answers `/assets/NAME`.
pub(super) fn serve(name: &str) -> Response<super::Body> {
    let Some((_, kind, bytes)) = FILES.iter().find(|(file, _, _)| *file == name) else {
        return super::text(StatusCode::NOT_FOUND, "no such file");
    };
    let mut response = Response::new(super::full(Bytes::from_static(bytes)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // The same binary serves the same bytes: cache for a day, then check.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    super::secure_headers(&mut response, super::Policy::Strict);
    response
}
