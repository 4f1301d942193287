//! The console's files, compiled into the binary so that `cargo run`
//! serves them with no Node.js, npm or network. Each answer carries a
//! content security policy that runs only these scripts: nothing a user
//! stores can become markup that executes.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

macro_rules! asset {
    ($file:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $file))
    };
}

/// `(path below /console/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", asset!("app.js")),
    ("app.css", "text/css; charset=utf-8", asset!("app.css")),
    (
        "vendor/editor.js",
        "text/javascript; charset=utf-8",
        asset!("vendor/editor.js"),
    ),
    (
        "vendor/uplot.js",
        "text/javascript; charset=utf-8",
        asset!("vendor/uplot.js"),
    ),
    (
        "vendor/uplot.css",
        "text/css; charset=utf-8",
        asset!("vendor/uplot.css"),
    ),
    (
        "vendor/LICENSES.txt",
        "text/plain; charset=utf-8",
        asset!("vendor/LICENSES.txt"),
    ),
];

const INDEX: &[u8] = asset!("index.html");

/// Scripts and styles from this server only; inline style attributes are
/// allowed because the editor and the chart position their parts with
/// them; no frames, no plugins, no form posts elsewhere.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

fn answer(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the page.
pub async fn index() -> Response {
    answer("text/html; charset=utf-8", INDEX)
}

/// `GET /console/{*file}`: one of the page's files.
pub async fn file(Path(path): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => answer(content_type, body),
        None => (StatusCode::NOT_FOUND, "no such console file").into_response(),
    }
}
