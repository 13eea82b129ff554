//! Cross-site requests refused: a page on another site must not drive taskmaster through a
//! visitor's browser (CSRF). A browser sends cached basic-auth credentials with a form posted
//! from any site, and a page may `fetch` the loopback listener that needs none, so a request
//! that changes something (every method but `GET`, `HEAD` and `OPTIONS`) is refused with
//! `403` when the browser says it comes from elsewhere:
//!
//! - its `Origin` header is present and is not the request's own `Host` (a page of
//!   `http://evil.example` posting to `http://127.0.0.1:9001`; `Origin: null`, a sandboxed or
//!   opaque origin, is never ours either);
//! - or its `Sec-Fetch-Site` says `cross-site` or `same-site` (another port or subdomain).
//!
//! A request without either header passes: curl, supervisorctl's XML-RPC, `taskmaster ctl`
//! and every other program send none, and a browser always sends `Origin` with a `POST` or
//! `DELETE` from a page. Reading routes are left alone: the browser does not let another
//! site's page read their answers (no CORS header is ever sent).
//!
//! The check runs on the router itself, so the control socket and the TCP listener keep the
//! same rule. A reverse proxy in front must pass the `Host` the browser used.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::wire;

/// Why a request is refused, or `None` when it may go on.
pub fn refusal(method: &Method, headers: &HeaderMap) -> Option<String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if let Some(site @ ("cross-site" | "same-site")) = site.as_deref() {
        return Some(format!(
            "cross-site request refused: Sec-Fetch-Site is {site}; a page may only act on the \
             taskmaster that served it"
        ));
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("(not text)");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if host.is_some_and(|host| same_origin(origin, host)) {
        return None;
    }
    Some(format!(
        "cross-site request refused: Origin {origin} is not this server ({}); a page may only \
         act on the taskmaster that served it",
        host.unwrap_or("no Host header")
    ))
}

/// Whether `origin` (`scheme://host[:port]`) names the server a request was sent to as `host`
/// (`host[:port]`): the same host and port, a scheme's default port written or not.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let normal = |authority: &str| {
        let authority = authority.to_ascii_lowercase();
        match authority.strip_suffix(&format!(":{default_port}")) {
            Some(bare) => bare.to_string(),
            None => authority,
        }
    };
    !authority.is_empty() && !authority.contains('/') && normal(authority) == normal(host)
}

/// The middleware: `403` with `{"error": ...}` for a cross-site request, the router otherwise.
pub async fn same_site_only(request: Request, next: Next) -> Response {
    match refusal(request.method(), request.headers()) {
        None => next.run(request).await,
        Some(error) => (
            StatusCode::FORBIDDEN,
            Json(wire::Error {
                error,
                errors: Vec::new(),
            }),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("a header value"));
        }
        map
    }

    fn refused(method: Method, pairs: &[(&'static str, &str)]) -> bool {
        refusal(&method, &headers(pairs)).is_some()
    }

    #[test]
    fn programs_that_send_no_origin_pass() {
        assert!(!refused(Method::POST, &[("host", "taskmaster")]));
        assert!(!refused(Method::POST, &[]));
        assert!(!refused(Method::DELETE, &[("host", "127.0.0.1:9001")]));
    }

    #[test]
    fn a_page_of_the_same_origin_passes() {
        let ours = [
            ("host", "127.0.0.1:9001"),
            ("origin", "http://127.0.0.1:9001"),
        ];
        assert!(!refused(Method::POST, &ours));
        let fetched = [
            ("host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert!(!refused(Method::POST, &fetched));
        // The default port, written on one side only; names in any case.
        assert!(!refused(
            Method::POST,
            &[("host", "Example.org"), ("origin", "http://example.org:80")]
        ));
        assert!(!refused(
            Method::POST,
            &[
                ("host", "example.org:443"),
                ("origin", "https://example.org")
            ]
        ));
    }

    #[test]
    fn another_origin_is_refused() {
        let evil = [
            ("host", "127.0.0.1:9001"),
            ("origin", "http://evil.example"),
        ];
        assert!(refused(Method::POST, &evil));
        assert!(refused(Method::DELETE, &evil));
        // Another port of the same host is another origin.
        let port = [
            ("host", "127.0.0.1:9001"),
            ("origin", "http://127.0.0.1:8000"),
        ];
        assert!(refused(Method::POST, &port));
        // Port 80 is http's default, not https's.
        assert!(refused(
            Method::POST,
            &[
                ("host", "example.org:80"),
                ("origin", "https://example.org")
            ]
        ));
        assert!(refused(Method::POST, &[("host", "x"), ("origin", "null")]));
        assert!(refused(Method::POST, &[("origin", "http://x")]));
        assert!(refused(
            Method::POST,
            &[("host", "x"), ("origin", "http://x/path")]
        ));
    }

    #[test]
    fn the_browsers_own_word_is_enough() {
        for site in ["cross-site", "same-site", "Cross-Site"] {
            assert!(refused(
                Method::POST,
                &[("host", "x"), ("sec-fetch-site", site)]
            ));
        }
        for site in ["same-origin", "none"] {
            assert!(!refused(
                Method::POST,
                &[("host", "x"), ("sec-fetch-site", site)]
            ));
        }
    }

    #[test]
    fn reading_is_never_refused() {
        let evil = [
            ("host", "127.0.0.1:9001"),
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ];
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!refused(method, &evil));
        }
    }
}
