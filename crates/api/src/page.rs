//! `GET /`: the web page to watch and control taskmaster. One HTML file with its CSS and
//! JavaScript inline (`page/index.html`), built into the binary: no build step, nothing loaded
//! from anywhere else. The page is a client of the JSON API like any other: it lists
//! `/v1/processes` once, then follows `/v1/events` and asks again only for the processes an
//! event names; its buttons are the API's `POST`s, which [`crate::origin`] refuses to other
//! sites' pages.
//!
//! The answer carries a strict Content-Security-Policy: nothing but this server for requests
//! (`connect-src 'self'`), no frames around it (`frame-ancestors 'none'`: its buttons cannot be
//! clicked through another site), and only the page's own inline script and style, each
//! marked with a nonce drawn afresh for every answer. A nonce rather than a hash, so that the
//! file can be edited without a digest to keep in step; rather than `'unsafe-inline'`, so that
//! text that ever slipped into the page as markup could not run.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

/// The page, with `{{NONCE}}` where each answer's nonce goes.
const PAGE: &str = include_str!("page/index.html");

/// What every answer of the page says besides its body, but the policy.
const HEADERS: [(header::HeaderName, &str); 4] = [
    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    (header::CACHE_CONTROL, "no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// The Content-Security-Policy of an answer whose script and style carry `nonce`.
pub fn policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// The page with `nonce` on its script and style.
pub fn render(nonce: &str) -> String {
    PAGE.replace("{{NONCE}}", nonce)
}

/// 128 random bits from the kernel, in base64: `None` if the kernel gave none.
fn nonce() -> Option<String> {
    let mut bytes = [0u8; 16];
    let filled = rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()).ok()?;
    (filled == bytes.len()).then(|| base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `GET /`.
pub async fn page() -> Response {
    let Some(nonce) = nonce() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no random bytes for the page's nonce; the API under /v1 still answers\n",
        )
            .into_response();
    };
    let Ok(csp) = HeaderValue::from_str(&policy(&nonce)) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = render(&nonce).into_response();
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_marks_the_only_script_and_style() {
        let page = render("abc123");
        assert!(!page.contains("{{NONCE}}"));
        assert_eq!(page.matches("<script").count(), 1);
        assert_eq!(page.matches("<style").count(), 1);
        assert!(page.contains("<script nonce=\"abc123\">"));
        assert!(page.contains("<style nonce=\"abc123\">"));
        // Inline handlers and style attributes would be refused by the policy: none.
        assert!(!page.contains(" onclick="));
        assert!(!page.contains(" style=\""));
    }

    #[test]
    fn nothing_is_loaded_from_elsewhere() {
        let page = render("n");
        for outside in ["http://", "https://", "//cdn", "src=\"", "href=\"http"] {
            assert!(!page.contains(outside), "the page names {outside}");
        }
    }

    #[test]
    fn each_answer_has_its_own_nonce() {
        let (a, b) = (nonce().expect("a nonce"), nonce().expect("a nonce"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(policy(&a).contains(&format!("script-src 'nonce-{a}'")));
    }
}
