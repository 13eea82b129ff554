//! The web page at `/` and the rule that guards it: a request that changes something is
//! refused when a browser says another site's page sent it, on the control socket and on the
//! TCP listener alike. (The page itself, in a browser, is tested by `tests/browser/`, which
//! `.ci/run` runs in headless Chromium.)

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::unix_http::{Answer, Api};
use crate::support::{config, fixture_cmd, program, wait_until, Sandbox, Taskmaster, TIMEOUT};

/// What only the page has: its body's id.
const MARKER: &str = "id=\"taskmaster-page\"";

fn idle() -> String {
    program(
        "idle",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0", "autostart: false"],
    )
}

fn state(api: &Api, name: &str) -> String {
    api.process(name)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn assert_is_the_page(answer: &Answer) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(answer.body.contains(MARKER), "{}", answer.body);
    let policy = answer.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    // The nonce of the policy is the one on the page's script.
    let nonce = policy
        .split("script-src 'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no script nonce in {policy}"));
    assert!(
        answer.body.contains(&format!("<script nonce=\"{nonce}\">")),
        "the script does not carry the policy's nonce {nonce}"
    );
}

#[test]
fn the_page_is_served_on_the_control_socket() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[idle()]));
    let _tm = Taskmaster::start(&sandbox, &["--no-shell"]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    let first = api.get("/");
    assert_is_the_page(&first);
    // A fresh nonce each time.
    let second = api.get("/");
    assert_ne!(
        first.header("content-security-policy"),
        second.header("content-security-policy")
    );
}

#[test]
fn a_cross_site_post_on_the_socket_is_refused_and_changes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[idle()]));
    let _tm = Taskmaster::start(&sandbox, &["--no-shell"]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    let start = "/v1/processes/idle/start";

    let evil = api.send_with("POST", start, &[("Origin", "http://evil.example")], None);
    assert_eq!(evil.status, 403, "{evil:?}");
    assert!(
        evil.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("cross-site request refused")),
        "{evil:?}"
    );
    let told = api.send_with("POST", start, &[("Sec-Fetch-Site", "cross-site")], None);
    assert_eq!(told.status, 403, "{told:?}");
    // The same goes for the routes that take their names in a body.
    let body = r#"{"processes": ["idle"]}"#;
    let several = api.send_with(
        "POST",
        "/v1/processes/start",
        &[("Origin", "http://evil.example")],
        Some(body),
    );
    assert_eq!(several.status, 403, "{several:?}");
    assert_eq!(state(&api, "idle"), "STOPPED");

    // Reading stays open (the browser keeps another site from reading the answer).
    let read = api.send_with(
        "GET",
        "/v1/processes",
        &[("Origin", "http://evil.example")],
        None,
    );
    assert_eq!(read.status, 200, "{read:?}");

    // The page's own POST names the server it came from: it passes.
    let ours = api.send_with(
        "POST",
        start,
        &[
            ("Origin", "http://taskmaster"),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        None,
    );
    assert_eq!(ours.status, 200, "{ours:?}");
    assert_eq!(ours.json()["results"][0]["result"], "started");
    assert_eq!(state(&api, "idle"), "RUNNING");
}

/// `method target` over TCP with `headers` (and no body): the whole answer.
fn over_tcp(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the listener");
    stream.set_read_timeout(Some(TIMEOUT)).expect("a timeout");
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: 0\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    Answer::parse(&raw)
}

#[test]
fn over_tcp_the_page_needs_the_password_and_a_cross_site_post_is_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "http:\n  listen: 127.0.0.1:{port}\n  username: admin\n  password: s3cret\n{}",
        config(&[idle()])
    ));
    let _tm = Taskmaster::start(&sandbox, &["--no-shell"]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    // The socket is bound before the TCP listener.
    wait_until("the TCP listener", TIMEOUT, || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    // base64("admin:s3cret")
    let auth = ("Authorization", "Basic YWRtaW46czNjcmV0");

    let anonymous = over_tcp(port, "GET", "/", &[]);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_is_the_page(&over_tcp(port, "GET", "/", &[auth]));

    let start = "/v1/processes/idle/start";
    // Right credentials (a browser sends those it has with another site's form), wrong origin.
    let evil = over_tcp(
        port,
        "POST",
        start,
        &[auth, ("Origin", "http://evil.example")],
    );
    assert_eq!(evil.status, 403, "{evil:?}");
    let same_site = over_tcp(
        port,
        "POST",
        start,
        &[
            auth,
            ("Origin", "http://localhost:8000"),
            ("Sec-Fetch-Site", "same-site"),
        ],
    );
    assert_eq!(same_site.status, 403, "{same_site:?}");
    assert_eq!(state(&api, "idle"), "STOPPED");

    let origin = format!("http://127.0.0.1:{port}");
    let ours = over_tcp(port, "POST", start, &[auth, ("Origin", &origin)]);
    assert_eq!(ours.status, 200, "{ours:?}");
    assert_eq!(state(&api, "idle"), "RUNNING");
}
