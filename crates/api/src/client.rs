//! The client `taskmaster ctl` uses: core requests in, core replies out, HTTP over the unix
//! socket in between. Blocking: it runs a small single-threaded runtime of its own.

use std::io::Write;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use taskmaster_config::os_reason;
use taskmaster_core::{Outcome, ReloadPlan, Reply, Request};

use crate::wire;

mod attach;
pub use attach::Detached;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to taskmaster at {path}: {reason} (is `taskmaster run` running? point at its socket with -s SOCKET, or at its configuration with -c FILE)"
    )]
    Connect { path: PathBuf, reason: String },
    #[error("taskmaster answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the connection to taskmaster failed: {0}")]
    Http(String),
    #[error("cannot understand taskmaster's answer: {0}")]
    Decode(String),
    /// A request the JSON API has no route for; the text says where it is served.
    #[error("{0}")]
    NotInApi(&'static str),
}

/// A connection point to a running taskmaster.
pub struct Client {
    socket: PathBuf,
    /// Made on first use, by what streams (a log followed, events, stdin): a one-shot request
    /// needs none (see [`Client::send`]), so `ctl status` starts no runtime.
    runtime: std::sync::OnceLock<tokio::runtime::Runtime>,
    /// `Authorization: Basic ...`, sent with every request when the socket asks for a
    /// username and password.
    authorization: Option<String>,
}

/// The body of an action on several processes: what it names.
trait Actions: serde::Serialize {
    fn processes(&self) -> &[String];
}

impl Actions for wire::Targets {
    fn processes(&self) -> &[String] {
        &self.processes
    }
}

impl Actions for wire::SignalRequest {
    fn processes(&self) -> &[String] {
        &self.processes
    }
}

impl Actions for wire::KillRequest {
    fn processes(&self) -> &[String] {
        &self.processes
    }
}

/// A raw answer: status and body.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

/// The end of a log, as far as asked.
struct LogWindow {
    bytes: Bytes,
    /// Where `bytes` start in the file.
    offset: u64,
}

/// The first window [`last_lines`] reads: enough for a screenful of ordinary lines.
const FIRST_WINDOW: u64 = 8 << 10;

/// The last `lines` lines of a log whose end `read` gives: `read(window)` answers the last
/// `window` bytes (all of the file if it is smaller) and where they start. A window that holds
/// fewer lines than asked, in a file that has more before it, is asked again twice as big.
/// The lines, and where they end in the file: where to follow from.
pub fn last_lines<E>(
    lines: u64,
    mut read: impl FnMut(u64) -> Result<(Vec<u8>, u64), E>,
) -> Result<(Vec<u8>, u64), E> {
    let mut window = FIRST_WINDOW;
    loop {
        let (mut bytes, offset) = read(window)?;
        let end = offset + bytes.len() as u64;
        let start = match last_lines_start(&bytes, lines) {
            Some(start) => start,
            // The whole file holds fewer lines than asked: all of it, then.
            None if offset == 0 => 0,
            None => {
                // Never more than an offset can say; the API gives at most the whole file.
                window = window.saturating_mul(2).min(i64::MAX as u64);
                continue;
            }
        };
        bytes.drain(..start);
        return Ok((bytes, end));
    }
}

/// Where the last `lines` lines of `text` start: after its `lines`-th newline from the end,
/// a newline that ends `text` not counted (it ends the last line, and a last line without one
/// is a line too). `None` when `text` has fewer newlines than that: the lines may start before
/// it.
pub fn last_lines_start(text: &[u8], lines: u64) -> Option<usize> {
    if lines == 0 {
        return Some(text.len());
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut newlines = 0;
    for (at, &byte) in body.iter().enumerate().rev() {
        if byte == b'\n' {
            newlines += 1;
            if newlines == lines {
                return Some(at + 1);
            }
        }
    }
    None
}

impl Client {
    pub fn new(socket: &Path) -> Result<Client, ClientError> {
        Ok(Client {
            socket: socket.to_path_buf(),
            runtime: std::sync::OnceLock::new(),
            authorization: None,
        })
    }

    /// The runtime the streaming requests run on, made the first time.
    fn runtime(&self) -> Result<&tokio::runtime::Runtime, ClientError> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// The same client, sending `username` and `password` with every request (HTTP basic
    /// auth), for a socket that asks for them (`[unix_http_server] username`).
    pub fn with_credentials(mut self, username: &str, password: &str) -> Client {
        use base64::Engine as _;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        self.authorization = Some(format!("Basic {token}"));
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request, the way `run`'s shell would to its daemon.
    pub fn call(&self, request: Request) -> Result<Reply, ClientError> {
        match request {
            Request::Status(names) => self.status(&names),
            Request::Start(processes) => self.act("start", &wire::Targets { processes }),
            Request::Stop(processes) => self.act("stop", &wire::Targets { processes }),
            Request::Restart(processes) => self.act("restart", &wire::Targets { processes }),
            Request::Signal { signal, targets } => {
                let body = wire::SignalRequest {
                    signal: signal.name().to_string(),
                    processes: targets,
                };
                self.act("signal", &body)
            }
            Request::Kill {
                targets, restart, ..
            } => {
                let body = wire::KillRequest {
                    restart,
                    processes: targets,
                };
                self.act("kill", &body)
            }
            Request::Pid(names) if names.is_empty() => {
                let pid: wire::Pid = self.json(self.send(Method::GET, "/v1/pid", None)?)?;
                Ok(Reply::DaemonPid(pid.pid))
            }
            Request::Pid(names) => match self.status(&names)? {
                Reply::Status {
                    processes, errors, ..
                } => Ok(Reply::Pids {
                    pids: processes.into_iter().map(|p| (p.name, p.pid)).collect(),
                    errors,
                }),
                other => Ok(other),
            },
            Request::Reload => Ok(self
                .plan("/v1/reload")?
                .map_or_else(Reply::ReloadRejected, Reply::Reloaded)),
            Request::Reread => Ok(self
                .plan("/v1/reread")?
                .map_or_else(Reply::ReloadRejected, Reply::Compared)),
            Request::AddGroup(names) => self.groups(Method::POST, &names),
            Request::RemoveGroup(names) => self.groups(Method::DELETE, &names),
            Request::Config => {
                let config: wire::ConfigFiles =
                    self.json(self.send(Method::GET, "/v1/config", None)?)?;
                Ok(Reply::Config {
                    active: Box::new(config.active),
                    staged: config.staged.map(Box::new),
                })
            }
            Request::Cluster => {
                let cluster: wire::Cluster =
                    self.json(self.send(Method::GET, "/v1/cluster", None)?)?;
                Ok(Reply::Cluster(cluster.cluster.map(Box::new)))
            }
            Request::DaemonState => {
                let state: wire::DaemonState =
                    self.json(self.send(Method::GET, "/v1/state", None)?)?;
                Ok(Reply::DaemonState {
                    shutting_down: state.shutting_down,
                })
            }
            Request::ReopenLogs(processes) => {
                let body = serde_json::to_vec(&wire::LogrotateRequest { processes })
                    .map_err(|e| ClientError::Decode(e.to_string()))?;
                let reopened: wire::LogsReopened =
                    self.json(self.send(Method::POST, "/v1/logrotate", Some(body))?)?;
                Ok(Reply::LogsReopened {
                    files: reopened.reopened,
                    errors: reopened.errors,
                })
            }
            Request::Handover { upgrade } => {
                let path = if upgrade {
                    "/v1/upgrade"
                } else {
                    "/v1/takeover"
                };
                let answer = self.send(Method::POST, path, None)?;
                if answer.status == StatusCode::CONFLICT {
                    let error: wire::Error = decode(&answer.body)?;
                    return Ok(Reply::HandoverRefused(error.error));
                }
                let handed: wire::HandedOver = self.json(answer)?;
                Ok(Reply::HandedOver(handed.handed_over_to))
            }
            Request::SendStdin { targets, data } => self.send_stdin(&targets, &data),
            Request::RemoteCommEvent { .. } => Err(ClientError::NotInApi(
                "the JSON API takes no remote communication events: send them with XML-RPC's \
                 supervisor.sendRemoteCommEvent",
            )),
            Request::Note(_) => Err(ClientError::NotInApi(
                "a note for the event log is the daemon's own, not a client's",
            )),
            Request::Metrics => Err(ClientError::NotInApi(
                "the metrics are read as Prometheus text: GET /metrics",
            )),
            Request::TestAlerts => {
                let tested: wire::AlertsTested =
                    self.json(self.send(Method::POST, "/v1/alerts/test", None)?)?;
                Ok(Reply::AlertsTested(tested.into_results()))
            }
            Request::Shutdown => {
                let answer = self.send(Method::POST, "/v1/shutdown", None)?;
                ok(&answer)?;
                Ok(Reply::ShuttingDown)
            }
        }
    }

    fn status(&self, names: &[String]) -> Result<Reply, ClientError> {
        let path = if names.is_empty() {
            "/v1/processes".to_string()
        } else {
            format!("/v1/processes?names={}", names.join(","))
        };
        let status: wire::Status = self.json(self.send(Method::GET, &path, None)?)?;
        Ok(wire::to_reply_status(status))
    }

    /// `POST /v1/processes/{verb}`: one request naming every process (`body` lists them), so
    /// that the daemon acts on them all at once, as it does for `run`'s shell; an empty list
    /// names nothing and asks nothing.
    fn act(&self, verb: &str, body: &impl Actions) -> Result<Reply, ClientError> {
        if body.processes().is_empty() {
            return Ok(Reply::Outcomes(Vec::new()));
        }
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        let answer = self.send(Method::POST, &format!("/v1/processes/{verb}"), Some(body))?;
        // 404 (the names matched nothing) still carries the results.
        if answer.status != StatusCode::NOT_FOUND {
            ok(&answer)?;
        }
        let results: wire::Results = decode(&answer.body)?;
        Ok(Reply::Outcomes(
            results.results.into_iter().map(wire::to_outcome).collect(),
        ))
    }

    /// Writes `data` to each target's stdin, in pieces the server takes (its body limit);
    /// a target's outcome is its first failure, or its last success.
    fn send_stdin(&self, targets: &[String], data: &[u8]) -> Result<Reply, ClientError> {
        const PIECE: usize = crate::server::MAX_BODY / 2;
        let mut outcomes: Vec<Outcome> = Vec::new();
        for target in targets {
            let mut last = Vec::new();
            for piece in data.chunks(PIECE) {
                last = self.runtime()?.block_on(self.post_stdin(target, piece))?;
                if last.iter().any(|o| o.result.is_err()) {
                    break;
                }
            }
            outcomes.extend(last);
        }
        Ok(Reply::Outcomes(outcomes))
    }

    /// POSTs `data` (at most the server's body limit) to the stdin of what `target` names: the
    /// outcome for each process.
    async fn post_stdin(&self, target: &str, data: &[u8]) -> Result<Vec<Outcome>, ClientError> {
        let path = format!("/v1/processes/{}/stdin", segment(target));
        let response = self
            .request_typed(Method::POST, &path, Some(data.to_vec()), OCTETS)
            .await?;
        let answer = collect(response).await?;
        // 404 (the name matched nothing) still carries the results.
        if answer.status != StatusCode::NOT_FOUND {
            ok(&answer)?;
        }
        let results: wire::Results = decode(&answer.body)?;
        Ok(results.results.into_iter().map(wire::to_outcome).collect())
    }

    /// POSTs to a reload or reread endpoint: what changes, or every error of the file (422).
    fn plan(&self, path: &str) -> Result<Result<ReloadPlan, Vec<String>>, ClientError> {
        let answer = self.send(Method::POST, path, None)?;
        if answer.status == StatusCode::UNPROCESSABLE_ENTITY {
            let error: wire::Error = decode(&answer.body)?;
            return Ok(Err(error.errors));
        }
        Ok(Ok(wire::to_plan(self.json(answer)?)))
    }

    /// Adds (POST) or removes (DELETE) each program, in order.
    fn groups(&self, method: Method, names: &[String]) -> Result<Reply, ClientError> {
        let mut outcomes = Vec::new();
        for name in names {
            let answer = self.send(method.clone(), &format!("/v1/groups/{name}"), None)?;
            let results: wire::Results = decode(&answer.body)?;
            outcomes.extend(results.results.into_iter().map(wire::to_outcome));
        }
        Ok(Reply::Outcomes(outcomes))
    }

    /// Writes a process's `stream` (stdout or stderr) to `out`: the last `bytes` bytes, and
    /// then, when `follow`, whatever comes until the connection ends.
    pub fn tail(
        &self,
        name: &str,
        stream: &str,
        bytes: u64,
        follow: bool,
        out: &mut dyn Write,
    ) -> Result<(), ClientError> {
        let path = format!(
            "/v1/processes/{}/log/{stream}?offset=-{bytes}&follow={follow}",
            segment(name)
        );
        self.copy_log(&path, follow, out)
    }

    /// Writes the last `lines` lines of a process's `stream` to `out`, then, when `follow`,
    /// whatever comes until the connection ends (`tail -n LINES`). The lines are cut here, in
    /// windows of the file's end ([`last_lines`]). With `follow`, each window is the start of
    /// a followed answer, and what is followed is the rest of the same answer: one file held
    /// from the window on, so no byte is shown twice or missed, even if the file is rotated
    /// in between (a second request would open the new file at the old one's offset).
    pub fn tail_lines(
        &self,
        name: &str,
        stream: &str,
        lines: u64,
        follow: bool,
        out: &mut dyn Write,
    ) -> Result<(), ClientError> {
        let log = format!("/v1/processes/{}/log/{stream}", segment(name));
        if !follow {
            let (text, _) = last_lines(lines, |window| {
                let answer = self.log_window(&format!("{log}?offset=-{window}"))?;
                Ok((answer.bytes.to_vec(), answer.offset))
            })?;
            return write_out(out, &text);
        }
        let mut followed = None;
        let (text, _) = last_lines(lines, |window| {
            let path = format!("{log}?offset=-{window}&follow=true");
            let (answer, rest) = self.runtime()?.block_on(self.followed_window(&path))?;
            followed = Some(rest);
            Ok((answer.bytes.to_vec(), answer.offset))
        })?;
        write_out(out, &text)?;
        let Some((past_the_window, body)) = followed else {
            return Ok(());
        };
        write_out(out, &past_the_window)?;
        self.runtime()?.block_on(copy_body(body, true, out))
    }

    /// The start of a followed answer: the window it was asked from (from `X-Log-Offset` to
    /// `X-Log-Size`, the file's size when it was opened), and the rest: what came past the
    /// window meanwhile, and the body, for what comes next.
    async fn followed_window(
        &self,
        path: &str,
    ) -> Result<(LogWindow, (Vec<u8>, hyper::body::Incoming)), ClientError> {
        let response = self.request(Method::GET, path, None).await?;
        let status = response.status();
        let number = |name: &str| -> Option<u64> {
            response.headers().get(name)?.to_str().ok()?.parse().ok()
        };
        let (offset, size) = (number("x-log-offset"), number("x-log-size"));
        let mut body = response.into_body();
        if !status.is_success() {
            return Err(refusal(status, body).await);
        }
        let (Some(offset), Some(size)) = (offset, size) else {
            return Err(ClientError::Decode(
                "no X-Log-Offset or X-Log-Size header".to_string(),
            ));
        };
        let window = usize::try_from(size.saturating_sub(offset))
            .map_err(|_| ClientError::Decode(format!("a window of {size} bytes")))?;
        let mut bytes = Vec::with_capacity(window);
        while bytes.len() < window {
            let Some(frame) = body.frame().await else {
                break; // ended early: what came is all there is
            };
            let frame = frame.map_err(|e| ClientError::Http(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                bytes.extend_from_slice(data);
            }
        }
        let rest = bytes.split_off(window.min(bytes.len()));
        let window = LogWindow {
            bytes: Bytes::from(bytes),
            offset,
        };
        Ok((window, (rest, body)))
    }

    /// The end of the event log (its last `bytes`), then, with `follow`, every line written to
    /// it until the daemon exits (`maintail -f`).
    pub fn maintail(
        &self,
        bytes: u64,
        follow: bool,
        out: &mut dyn Write,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/log?offset=-{bytes}&follow={follow}");
        self.copy_log(&path, follow, out)
    }

    /// Copies a log's answer from the API to `out` as it comes. A `follow` ends at Ctrl-C
    /// (SIGINT), as a success: `ctl`'s shell goes back to its prompt, as supervisorctl's does,
    /// and a single `ctl tail -f` exits 0. (From then on SIGINT no longer kills this process:
    /// the runtime keeps its handler.)
    fn copy_log(&self, path: &str, follow: bool, out: &mut dyn Write) -> Result<(), ClientError> {
        self.runtime()?.block_on(async {
            let response = self.request(Method::GET, path, None).await?;
            let status = response.status();
            let body = response.into_body();
            if !status.is_success() {
                return Err(refusal(status, body).await);
            }
            copy_body(body, follow, out).await
        })
    }

    /// A byte range of a log as the API answers `GET .../log...?offset=..`.
    fn log_window(&self, path: &str) -> Result<LogWindow, ClientError> {
        self.runtime()?.block_on(async {
            let response = self.request(Method::GET, path, None).await?;
            let status = response.status();
            let number = |name: &str| -> Option<u64> {
                response.headers().get(name)?.to_str().ok()?.parse().ok()
            };
            let offset = number("x-log-offset");
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?
                .to_bytes();
            if !status.is_success() {
                return Err(refused(status, &bytes));
            }
            let offset =
                offset.ok_or_else(|| ClientError::Decode("no X-Log-Offset header".to_string()))?;
            Ok(LogWindow { bytes, offset })
        })
    }

    fn json<T: DeserializeOwned>(&self, answer: Answer) -> Result<T, ClientError> {
        ok(&answer)?;
        decode(&answer.body)
    }

    /// One request and its whole answer, on a blocking socket of its own: HTTP/1.1 with
    /// `Connection: close`, read to the end. No runtime and no HTTP machinery for what most
    /// commands are, so that a `ctl` command costs little more than its process.
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        use std::io::Read as _;
        let mut stream =
            std::os::unix::net::UnixStream::connect(&self.socket).map_err(|error| {
                ClientError::Connect {
                    path: self.socket.clone(),
                    reason: os_reason(&error),
                }
            })?;
        let body = body.unwrap_or_default();
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: taskmaster\r\nConnection: close\r\n");
        if let Some(authorization) = &self.authorization {
            request.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(&body);
        let mut answer = Vec::new();
        std::io::Write::write_all(&mut stream, &bytes)
            .and_then(|()| stream.read_to_end(&mut answer))
            .map_err(|e| ClientError::Http(format!("the control socket: {}", os_reason(&e))))?;
        parse_answer(&answer)
    }

    /// A request whose body, if any, is JSON.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        self.request_typed(method, path, body, "application/json")
            .await
    }

    async fn request_typed(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|error| ClientError::Connect {
                path: self.socket.clone(),
                reason: os_reason(&error),
            })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(connection);
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "taskmaster");
        if let Some(authorization) = &self.authorization {
            builder = builder.header(hyper::header::AUTHORIZATION, authorization);
        }
        if body.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))
    }
}

/// Copies an answer's body to `out` as it comes, until its end, or with `follow`, Ctrl-C
/// ([`Client::copy_log`]).
async fn copy_body(
    mut body: hyper::body::Incoming,
    follow: bool,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let interrupted = async {
        // Not following, or no handler to be had: only the answer's end ends it.
        if !follow || tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(interrupted);
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            () = &mut interrupted => return Ok(()),
        };
        let Some(frame) = frame else { return Ok(()) };
        let frame = frame.map_err(|e| ClientError::Http(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            write_out(out, data)?;
        }
    }
}

/// Writes `bytes` to `out` at once.
fn write_out(out: &mut dyn Write, bytes: &[u8]) -> Result<(), ClientError> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| ClientError::Http(format!("cannot write the output: {e}")))
}

/// The content type of raw bytes (what a process's stdin is sent as).
const OCTETS: &str = "application/octet-stream";

/// A whole answer: its status and its body.
async fn collect(response: hyper::Response<hyper::body::Incoming>) -> Result<Answer, ClientError> {
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?
        .to_bytes();
    Ok(Answer { status, body })
}

/// A whole HTTP/1.1 answer, as read to the end of its connection: status and body (by its
/// `Content-Length`, de-chunked, or all that follows the headers).
fn parse_answer(bytes: &[u8]) -> Result<Answer, ClientError> {
    let malformed = |why: &str| ClientError::Http(format!("a malformed answer: {why}"));
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_length = match response.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Err(malformed("it ends in its headers")),
        Err(e) => return Err(malformed(&e.to_string())),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| malformed("no status"))?;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    let rest = &bytes[head_length..];
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest).ok_or_else(|| malformed("a broken chunked body"))?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| malformed("Content-Length"))?;
        rest.get(..length)
            .ok_or_else(|| malformed("shorter than its Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer {
        status,
        body: Bytes::from(body),
    })
}

/// A chunked body's data; `None` if it is cut short or malformed.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let httparse::Status::Complete((start, size)) = httparse::parse_chunk_size(rest).ok()?
        else {
            return None;
        };
        let size = usize::try_from(size).ok()?;
        if size == 0 {
            return Some(body);
        }
        let end = start.checked_add(size)?;
        body.extend_from_slice(rest.get(start..end)?);
        rest = rest.get(end.checked_add(2)?..)?;
    }
}

fn ok(answer: &Answer) -> Result<(), ClientError> {
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(refused(answer.status, &answer.body))
    }
}

/// The error a refused answer says, once its body has been read.
async fn refusal(status: StatusCode, body: hyper::body::Incoming) -> ClientError {
    match body.collect().await {
        Ok(collected) => refused(status, &collected.to_bytes()),
        Err(e) => ClientError::Http(e.to_string()),
    }
}

fn refused(status: StatusCode, body: &[u8]) -> ClientError {
    let message = serde_json::from_slice::<wire::Error>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().to_string());
    ClientError::Refused {
        status: status.as_u16(),
        message,
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Decode(e.to_string()))
}

// ---- The event stream: GET /v1/events ---------------------------------------------------

/// One event of the daemon's stream, as [`Client::events`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A process went from one state to another.
    StateChanged {
        process: String,
        from: taskmaster_core::State,
        to: taskmaster_core::State,
        at: std::time::SystemTime,
    },
    /// A line of the event log; `process` is `None` for the daemon's own lines.
    Log {
        process: Option<String>,
        message: String,
        at: std::time::SystemTime,
    },
    /// An output line matched one of the program's `alerts`.
    Alert {
        program: String,
        /// `stdout` or `stderr`.
        stream: String,
        /// `info`, `warning` or `error`.
        level: String,
        line: String,
        at: std::time::SystemTime,
    },
    /// The reader fell behind and `missed` events were dropped; the stream goes on from the
    /// newest. What the reader tracks should be read again (status).
    Lagged { missed: u64 },
}

impl Client {
    /// Subscribes to the daemon's events: every state change and event-log line that happens
    /// after this returns (the daemon subscribes before it answers), as they happen. The stream
    /// has a connection and a runtime of its own, so it can be read on another thread while
    /// this client goes on sending requests.
    pub fn events(&self) -> Result<Events, ClientError> {
        let mut client = Client::new(&self.socket)?;
        client.authorization.clone_from(&self.authorization);
        let body = client.runtime()?.block_on(async {
            let response = client.request(Method::GET, "/v1/events", None).await?;
            let status = response.status();
            if !status.is_success() {
                return Err(refusal(status, response.into_body()).await);
            }
            Ok(response.into_body())
        })?;
        Ok(Events {
            client,
            body,
            unread: Vec::new(),
            ended: false,
        })
    }
}

/// The daemon's events, read as they come (a blocking iterator). It ends when the daemon
/// closes the stream, which it does when it exits.
pub struct Events {
    /// Owns the runtime the connection runs on: it makes progress inside `next` only.
    client: Client,
    body: hyper::body::Incoming,
    /// Bytes received that do not make a whole event yet (an event ends with a blank line).
    unread: Vec<u8>,
    ended: bool,
}

impl Iterator for Events {
    type Item = Result<Event, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            while let Some(block) = take_sse_block(&mut self.unread) {
                if let Some(event) = sse_event(&block) {
                    return Some(event);
                }
            }
            if self.ended {
                return None;
            }
            let runtime = match self.client.runtime() {
                Ok(runtime) => runtime,
                Err(e) => return Some(Err(e)),
            };
            match runtime.block_on(self.body.frame()) {
                None => self.ended = true,
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(ClientError::Http(e.to_string())));
                }
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.unread.extend_from_slice(data);
                    }
                }
            }
        }
    }
}

/// Takes the first whole server-sent event off `unread`: its lines, without line endings, up to
/// the blank line that ends it.
fn take_sse_block(unread: &mut Vec<u8>) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    let mut line_start = 0;
    for (at, _) in unread.iter().enumerate().filter(|(_, &b)| b == b'\n') {
        let line = &unread[line_start..at];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            unread.drain(..=at);
            return Some(lines);
        }
        lines.push(String::from_utf8_lossy(line).into_owned());
        line_start = at + 1;
    }
    None
}

/// The event a block of `field: value` lines holds; `None` for a block that is not one of ours
/// (a comment, a keep-alive, a kind this client does not know).
fn sse_event(lines: &[String]) -> Option<Result<Event, ClientError>> {
    let mut kind = "message";
    let mut data: Vec<&str> = Vec::new();
    for line in lines {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = value,
            "data" => data.push(value),
            _ => {}
        }
    }
    let data = data.join("\n");
    let to_time = |unix_seconds: f64| {
        std::time::Duration::try_from_secs_f64(unix_seconds)
            .map_or(std::time::UNIX_EPOCH, |since| std::time::UNIX_EPOCH + since)
    };
    let event = match kind {
        "state" | "log" | "alert" => match decode::<wire::Event>(data.as_bytes()) {
            Ok(wire::Event::State {
                process,
                from,
                to,
                at,
            }) => Event::StateChanged {
                process,
                from: wire::parse_state(&from),
                to: wire::parse_state(&to),
                at: to_time(at),
            },
            Ok(wire::Event::Log {
                process,
                message,
                at,
            }) => Event::Log {
                process,
                message,
                at: to_time(at),
            },
            Ok(wire::Event::Alert {
                program,
                stream,
                level,
                line,
                at,
            }) => Event::Alert {
                program,
                stream,
                level,
                line,
                at: to_time(at),
            },
            Err(e) => return Some(Err(e)),
        },
        "lagged" => match decode::<wire::Lagged>(data.as_bytes()) {
            Ok(lagged) => Event::Lagged {
                missed: lagged.missed,
            },
            Err(e) => return Some(Err(e)),
        },
        _ => return None,
    };
    Some(Ok(event))
}

#[cfg(test)]
mod event_stream_tests {
    use super::*;

    fn blocks(text: &str) -> Vec<Vec<String>> {
        let mut unread = text.as_bytes().to_vec();
        std::iter::from_fn(|| take_sse_block(&mut unread)).collect()
    }

    #[test]
    fn an_event_ends_at_a_blank_line_whatever_the_line_endings() {
        assert_eq!(
            blocks("event: a\ndata: 1\n\nevent: b\r\ndata: 2\r\n\r\nevent: c\n"),
            [["event: a", "data: 1"], ["event: b", "data: 2"]]
        );
    }

    #[test]
    fn events_are_read_into_core_states_and_times() {
        let state = [
            "event: state".to_string(),
            r#"data: {"type":"state","process":"web","from":"STARTING","to":"RUNNING","at":2.5}"#
                .to_string(),
        ];
        let Some(Ok(Event::StateChanged {
            process,
            from,
            to,
            at,
        })) = sse_event(&state)
        else {
            panic!("not a state change: {:?}", sse_event(&state));
        };
        assert_eq!(process, "web");
        assert_eq!(
            (from, to),
            (
                taskmaster_core::State::Starting,
                taskmaster_core::State::Running
            )
        );
        assert_eq!(
            at,
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(2500)
        );
        let lagged = [
            "event: lagged".to_string(),
            r#"data: {"missed":7}"#.to_string(),
        ];
        assert!(matches!(
            sse_event(&lagged),
            Some(Ok(Event::Lagged { missed: 7 }))
        ));
        assert!(sse_event(&[": keep-alive".to_string()]).is_none());
        let broken = ["event: log".to_string(), "data: {".to_string()];
        assert!(matches!(
            sse_event(&broken),
            Some(Err(ClientError::Decode(_)))
        ));
    }
}

/// What a path segment may not hold as it is: a name such as `<myapp>` (supervisord allows
/// it) is escaped, and the server decodes it back.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A process name or pattern as one segment of a request's path.
fn segment(name: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(name, SEGMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_start_after_the_right_newline() {
        let text = b"one\ntwo\nthree\n";
        assert_eq!(last_lines_start(text, 1), Some(8));
        assert_eq!(last_lines_start(text, 2), Some(4));
        assert_eq!(last_lines_start(text, 3), None);
        assert_eq!(last_lines_start(text, 0), Some(text.len()));
        // A last line without its newline is a line.
        assert_eq!(last_lines_start(b"one\ntwo", 1), Some(4));
        assert_eq!(last_lines_start(b"", 1), None);
    }

    #[test]
    fn windows_double_until_they_hold_the_lines_or_the_file() {
        let file: Vec<u8> = (1..=5000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut asked = Vec::new();
        let mut read = |window: u64| -> Result<(Vec<u8>, u64), ()> {
            asked.push(window);
            let start = (file.len() as u64).saturating_sub(window);
            Ok((file[start as usize..].to_vec(), start))
        };
        let (text, end) = last_lines(3, &mut read).unwrap();
        assert_eq!(text, b"line 4998\nline 4999\nline 5000\n");
        assert_eq!(end, file.len() as u64);
        let (text, _) = last_lines(2000, &mut read).unwrap();
        assert_eq!(text.split(|&b| b == b'\n').count(), 2001);
        assert!(text.starts_with(b"line 3001\n"));
        let (text, _) = last_lines(u64::MAX, &mut read).unwrap();
        assert_eq!(text, file);
        assert_eq!(last_lines(0, &mut read).unwrap().0, b"");
        // 8 KiB, then twice as much until 2000 lines fit (about 21 KiB).
        assert_eq!(asked[..4], [8192, 8192, 16384, 32768]);
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    fn parsed(text: &str) -> Result<(u16, String), String> {
        parse_answer(text.as_bytes())
            .map(|a| (a.status.as_u16(), String::from_utf8_lossy(&a.body).into()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_body_is_read_by_its_length_by_its_chunks_or_to_the_end() {
        let by_length = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parsed(by_length), Ok((200, "hello".into())));
        let chunked =
            "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parsed(chunked), Ok((409, "hello".into())));
        let to_the_end = "HTTP/1.1 200 OK\r\n\r\nhello";
        assert_eq!(parsed(to_the_end), Ok((200, "hello".into())));
    }

    #[test]
    fn a_cut_or_malformed_answer_is_an_error_that_says_so() {
        for (text, why) in [
            ("HTTP/1.1 200 OK\r\ncontent-le", "it ends in its headers"),
            ("garbage\r\n\r\n", "a malformed answer"),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhello",
                "shorter than its Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: many\r\n\r\nhello",
                "Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\nhel",
                "a broken chunked body",
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\nx",
                "a broken chunked body",
            ),
        ] {
            let error = parsed(text).expect_err(text);
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }
}
