//! A small raw HTTP/1.1 client of taskmaster's control socket, for the tests that need the
//! API's JSON (exit causes, health, `gave_up`) or its event stream beside the shell on pipes.
//! Include it with `#[path = "support/unix_http.rs"] mod unix_http;`.
//!
//! It is deliberately not the project's own `Client`: a test of the daemon should not depend
//! on the code under test to read the daemon's answers. Every read has a deadline.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::support::{wait_until_or_none, TIMEOUT};

/// One answer: its status, its headers, and its body de-chunked.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Each header's name, in lowercase, and value.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// A whole answer as read from a connection (over TCP too); fails the test when it is not
    /// HTTP.
    pub fn parse(raw: &[u8]) -> Answer {
        let (status, chunked, rest) = parse_head(raw)
            .unwrap_or_else(|| panic!("not an HTTP answer: {:?}", String::from_utf8_lossy(raw)));
        let body = if chunked {
            dechunk(rest).0
        } else {
            rest.to_vec()
        };
        Answer {
            status,
            headers: parse_headers(raw),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// The value of the header `name` (any case), if the answer has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; fails the test when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): HTTP {} {}", self.status, self.body))
    }
}

/// A client of one daemon's control socket.
#[derive(Debug, Clone)]
pub struct Api {
    pub socket: PathBuf,
}

impl Api {
    /// A client of `socket`, once the daemon takes connections on it.
    pub fn connect(socket: PathBuf) -> Api {
        if wait_until_or_none(TIMEOUT, || UnixStream::connect(&socket).ok()).is_none() {
            panic!("{} never took a connection", socket.display());
        }
        Api { socket }
    }

    pub fn get(&self, target: &str) -> Answer {
        self.send("GET", target, None)
    }

    /// `GET target` with `accept` as its `Accept` header.
    pub fn get_accepting(&self, target: &str, accept: &str) -> Answer {
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: taskmaster\r\nConnection: close\r\n\
             Accept: {accept}\r\n\r\n"
        );
        self.exchange(request.as_bytes(), "GET", target)
    }

    /// `POST target`, with `body` as JSON if given.
    pub fn post(&self, target: &str, body: Option<&str>) -> Answer {
        self.send("POST", target, body)
    }

    /// `method target` with more headers (`("Origin", "http://evil.example")`), and `body` as
    /// JSON if given.
    pub fn send_with(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let mut request =
            format!("{method} {target} HTTP/1.1\r\nHost: taskmaster\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        match body {
            Some(body) => request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )),
            None => request.push_str("Content-Length: 0\r\n\r\n"),
        }
        self.exchange(request.as_bytes(), method, target)
    }

    /// `POST target` with `body` as it is (`application/octet-stream`).
    pub fn post_bytes(&self, target: &str, body: &[u8]) -> Answer {
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: taskmaster\r\nConnection: close\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.exchange(&request, "POST", target)
    }

    /// `GET /v1/processes/NAME`, which must answer 200.
    pub fn process(&self, name: &str) -> Value {
        let answer = self.get(&format!("/v1/processes/{name}"));
        assert_eq!(answer.status, 200, "GET /v1/processes/{name}: {answer:?}");
        answer.json()
    }

    /// Asks for `name` until `pred` holds for it, and returns it; fails the test, showing the
    /// last answer, past [`TIMEOUT`].
    pub fn wait_for_process(&self, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        wait_until_or_none(TIMEOUT, || {
            last = self.process(name);
            pred(&last).then(|| last.clone())
        })
        .unwrap_or_else(|| panic!("{name}: no {what} within {TIMEOUT:?}; last: {last}"))
    }

    fn send(&self, method: &str, target: &str, body: Option<&str>) -> Answer {
        let mut request =
            format!("{method} {target} HTTP/1.1\r\nHost: taskmaster\r\nConnection: close\r\n");
        if let Some(body) = body {
            request.push_str("Content-Type: application/json\r\n");
            request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        } else if method == "POST" {
            request.push_str("Content-Length: 0\r\n\r\n");
        } else {
            request.push_str("\r\n");
        }
        self.exchange(request.as_bytes(), method, target)
    }

    /// Sends a whole request and reads the whole answer.
    fn exchange(&self, request: &[u8], method: &str, target: &str) -> Answer {
        let mut stream = connect(&self.socket);
        stream
            .write_all(request)
            .unwrap_or_else(|e| panic!("send {method} {target}: {e}"));
        let raw = read_until(&mut stream, |_| false);
        Answer::parse(&raw)
    }
}

/// `GET /v1/events`, read as it comes.
pub struct Events {
    stream: UnixStream,
    /// Everything received so far, head included, still chunked.
    raw: Vec<u8>,
}

impl Events {
    /// Subscribes, and returns once the answer's head is in: what happens after that is seen.
    pub fn subscribe(api: &Api) -> Events {
        let mut stream = connect(&api.socket);
        let request = "GET /v1/events HTTP/1.1\r\nHost: taskmaster\r\nConnection: close\r\n\r\n";
        stream
            .write_all(request.as_bytes())
            .expect("send GET /v1/events");
        let raw = read_until(&mut stream, |raw| parse_head(raw).is_some());
        let (status, _, _) = parse_head(&raw).expect("read until it parses");
        assert_eq!(status, 200, "{:?}", String::from_utf8_lossy(&raw));
        Events { stream, raw }
    }

    /// The whole events received so far: (`event:` name, `data:` as JSON).
    pub fn events(&self) -> Vec<(String, Value)> {
        let Some((_, chunked, body)) = parse_head(&self.raw) else {
            return Vec::new();
        };
        let body = if chunked {
            dechunk(body).0
        } else {
            body.to_vec()
        };
        sse_events(&String::from_utf8_lossy(&body))
    }

    /// Reads until the events so far satisfy `pred`, and returns them; fails the test past
    /// [`TIMEOUT`] or when the stream ends first.
    pub fn wait_for(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&[(String, Value)]) -> bool,
    ) -> Vec<(String, Value)> {
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            let events = self.events();
            if pred(&events) {
                return events;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the event stream did not bring {what} within {TIMEOUT:?}; got: {events:?}"
            );
            self.stream
                .set_read_timeout(Some(left))
                .expect("set a timeout");
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the event stream ended before {what}; got: {events:?}"),
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("reading the event stream: {e}"),
            }
        }
    }
}

fn connect(socket: &Path) -> UnixStream {
    let stream = UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", socket.display()));
    stream
        .set_write_timeout(Some(TIMEOUT))
        .expect("set a write timeout");
    stream
}

/// Reads until `done` holds for what was read, or the peer closes; fails past [`TIMEOUT`].
fn read_until(stream: &mut UnixStream, mut done: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + TIMEOUT;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if done(&raw) {
            return raw;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no complete answer within {TIMEOUT:?}; read so far: {:?}",
            String::from_utf8_lossy(&raw)
        );
        stream.set_read_timeout(Some(left)).expect("set a timeout");
        match stream.read(&mut buf) {
            Ok(0) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset is an end too: what was read before it counts.
            Err(_) => return raw,
        }
    }
}

/// The status, whether the body is chunked, and the bytes after the head; `None` until the
/// head is whole.
fn parse_head(raw: &[u8]) -> Option<(u16, bool, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head
        .lines()
        .any(|line| line.starts_with("transfer-encoding:") && line.contains("chunked"));
    Some((status, chunked, &raw[end + 4..]))
}

/// The headers of a whole answer's head: each name in lowercase, and its value.
fn parse_headers(raw: &[u8]) -> Vec<(String, String)> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end])
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect()
}

/// The data of the complete chunks of a chunked body, and whether its last chunk was seen.
pub fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    // Bounded: each round consumes a chunk or returns.
    loop {
        let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return (data, false);
        };
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            panic!("bad chunk size {size_text:?}");
        };
        if size == 0 {
            return (data, true);
        }
        let start = line_end + 2;
        if raw.len() < start + size + 2 {
            return (data, false);
        }
        data.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

/// The whole events of a server-sent-events text: (`event:` name, `data:` as JSON).
fn sse_events(text: &str) -> Vec<(String, Value)> {
    let Some(complete) = text.rfind("\n\n") else {
        return Vec::new();
    };
    text[..complete]
        .split("\n\n")
        .filter_map(|block| {
            let mut kind = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    kind = Some(name.trim().to_string());
                } else if let Some(line) = line.strip_prefix("data:") {
                    data.push_str(line.trim_start());
                }
            }
            // A block of comments only (a keep-alive) is no event.
            let kind = kind?;
            let data = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data:?}"));
            Some((kind, data))
        })
        .collect()
}
