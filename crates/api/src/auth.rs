//! HTTP basic authentication, as supervisord's `[inet_http_server]` and `[unix_http_server]`
//! ask for with a `username` and `password`: on TCP (`tcp.rs`) and on the control socket
//! (`listen.rs`) alike. The password may be written as supervisord allows, `{SHA}` and the hex
//! SHA-1 of the real one.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

/// A username and password that requests must carry.
#[derive(Clone)]
pub(crate) struct Credentials {
    username: String,
    password: Password,
}

#[derive(Clone)]
enum Password {
    Clear(String),
    /// The lowercase hex SHA-1 digest of the password.
    Sha1(String),
}

impl Credentials {
    /// `password` in clear, or `{SHA}` and the hex SHA-1 digest of the real one.
    pub(crate) fn new(username: &str, password: &str) -> Credentials {
        let password = match password.strip_prefix("{SHA}") {
            Some(hex) => Password::Sha1(hex.trim().to_ascii_lowercase()),
            None => Password::Clear(password.to_string()),
        };
        Credentials {
            username: username.to_string(),
            password,
        }
    }

    /// Whether an `Authorization` header value carries these credentials.
    fn admit(&self, authorization: &str) -> bool {
        let Some(encoded) = authorization.trim().strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Some((username, password)) = std::str::from_utf8(&decoded)
            .ok()
            .and_then(|text| text.split_once(':'))
        else {
            return false;
        };
        let password_ok = match &self.password {
            Password::Clear(expected) => same(password, expected),
            Password::Sha1(expected) => same(
                &sha1_smol::Sha1::from(password).digest().to_string(),
                expected,
            ),
        };
        // Both compared, whatever the first says.
        same(username, &self.username) & password_ok
    }
}

/// How much of a refused request's body is read before the answer.
const REFUSED_BODY_LIMIT: usize = 1 << 20;

/// Lets a request through with the right credentials; `401` otherwise.
pub(crate) async fn authorize(
    State(credentials): State<Credentials>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given.is_some_and(|given| credentials.admit(given)) {
        return next.run(request).await;
    }
    // The body is read before the refusal, as supervisord reads a whole request: a client
    // that sends it after its headers (Python's http.client does) would otherwise find the
    // connection closed under it, and report a broken pipe instead of the 401.
    let _ = axum::body::to_bytes(request.into_body(), REFUSED_BODY_LIMIT).await;
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"taskmaster\"")],
        "{\"error\":\"a username and password are required (taskmaster ctl -u USER -p \
         PASSWORD, or the configuration's [supervisorctl] username and password)\"}\n",
    )
        .into_response()
}

/// Compares in a time that does not depend on where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn basic_auth_needs_both_username_and_password() {
        let credentials = Credentials::new("admin", "s3cret");
        assert!(credentials.admit(&basic("admin:s3cret")));
        assert!(!credentials.admit(&basic("admin:s3cre")));
        assert!(!credentials.admit(&basic("admin:s3crett")));
        assert!(!credentials.admit(&basic("root:s3cret")));
        assert!(!credentials.admit(&basic("admins3cret")));
        assert!(!credentials.admit("Bearer x"));
        assert!(!credentials.admit("Basic %%%"));
    }

    #[test]
    fn a_sha_password_is_compared_by_its_digest() {
        // printf s3cret | sha1sum
        let digest = "fef341f85d87439e7d91a2d465b9871ef66b5e98";
        let credentials = Credentials::new("admin", &format!("{{SHA}}{}", digest.to_uppercase()));
        assert!(credentials.admit(&basic("admin:s3cret")));
        assert!(!credentials.admit(&basic(&format!("admin:{{SHA}}{digest}"))));
        assert!(!credentials.admit(&basic("admin:wrong")));
    }
}
