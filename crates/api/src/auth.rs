//! HTTP basic authentication, as supervisord's `[inet_http_server]` and `[unix_http_server]`
//! ask for with a `username` and `password`: on TCP (`tcp.rs`) and on the control socket
//! (`listen.rs`) alike. The password may be written as supervisord allows, `{SHA}` and the hex
//! SHA-1 of the real one.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a listener with credentials checks each request against, and where it says who was
/// refused.
#[derive(Clone)]
pub(crate) struct Gate {
    credentials: Credentials,
    handle: taskmaster_runtime::Handle,
    refusals: Arc<Mutex<Refusals>>,
}

impl Gate {
    pub(crate) fn new(credentials: Credentials, handle: taskmaster_runtime::Handle) -> Gate {
        Gate {
            credentials,
            handle,
            refusals: Arc::default(),
        }
    }
}

/// Refused logins since the last line about them: one line at most every
/// [`REFUSALS_LINE_EVERY`], so that a client guessing passwords cannot flood the event log.
#[derive(Default)]
struct Refusals {
    since_line: u64,
    last_line: Option<Instant>,
}

const REFUSALS_LINE_EVERY: Duration = Duration::from_secs(10);

impl Refusals {
    /// One more refusal from `peer`: the line to write now, if one is due.
    fn refused(&mut self, peer: &str, now: Instant) -> Option<String> {
        self.since_line += 1;
        let due = self
            .last_line
            .is_none_or(|last| now.duration_since(last) >= REFUSALS_LINE_EVERY);
        if !due {
            return None;
        }
        let others = self.since_line - 1;
        self.since_line = 0;
        self.last_line = Some(now);
        Some(match others {
            0 => format!("refused a request without the right username and password from {peer}"),
            n => format!(
                "refused a request without the right username and password from {peer} \
                 ({n} more refused since the last line)"
            ),
        })
    }
}

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

/// Lets a request through with the right credentials; `401` otherwise, and a line in the event
/// log naming the peer (at most one every [`REFUSALS_LINE_EVERY`]).
pub(crate) async fn authorize(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given.is_some_and(|given| gate.credentials.admit(given)) {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<crate::server::Peer>()
        .map_or_else(|| "an unknown peer".to_string(), |peer| peer.0.clone());
    let line = match gate.refusals.lock() {
        Ok(mut refusals) => refusals.refused(&peer, Instant::now()),
        Err(poisoned) => poisoned.into_inner().refused(&peer, Instant::now()),
    };
    if let Some(line) = line {
        let handle = gate.handle.clone();
        tokio::spawn(async move {
            let _ = handle.request(taskmaster_core::Request::Note(line)).await;
        });
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

/// Compares in a time that depends neither on where the first difference is nor on the
/// lengths: the digests of both are compared, every byte of them.
fn same(a: &str, b: &str) -> bool {
    let a = sha1_smol::Sha1::from(a).digest().bytes();
    let b = sha1_smol::Sha1::from(b).digest().bytes();
    a.iter()
        .zip(b.iter())
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
    fn refused_logins_are_said_at_most_once_every_ten_seconds_with_a_count() {
        let mut refusals = Refusals::default();
        let start = Instant::now();
        assert!(refusals.refused("127.0.0.1:5000 over TCP", start).is_some());
        for n in 1..=50 {
            let now = start + Duration::from_millis(n * 100);
            assert_eq!(refusals.refused("127.0.0.1:5000 over TCP", now), None);
        }
        let later = refusals.refused("127.0.0.1:5001 over TCP", start + REFUSALS_LINE_EVERY);
        assert_eq!(
            later.as_deref(),
            Some(
                "refused a request without the right username and password from \
                 127.0.0.1:5001 over TCP (50 more refused since the last line)"
            )
        );
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
