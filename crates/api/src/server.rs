//! The HTTP routes of `/v1`: each turns a request into a core `Request`, asks the daemon, and
//! turns the `Reply` into JSON. Bad input of every kind gets a 4xx with `{"error": ...}`.
//! supervisord's routes (`/RPC2`, `/logtail`, `/mainlogtail`) come from [`crate::xmlrpc`].

use std::convert::Infallible;
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use taskmaster_core::{Failure, Reply, Request, Signal};
use taskmaster_runtime::{DaemonEvent, Follower, Handle};
use tokio::sync::broadcast;

use crate::wire;

/// The largest request body accepted; every valid one is far smaller.
pub const MAX_BODY: usize = 64 * 1024;

pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/v1/processes", get(list))
        // POST names the action, the processes in the body: `POST /v1/processes/start`.
        .route("/v1/processes/{name}", get(one).post(act_on_several))
        .route("/v1/processes/{name}/start", post(start))
        .route("/v1/processes/{name}/stop", post(stop))
        .route("/v1/processes/{name}/restart", post(restart))
        .route("/v1/processes/{name}/signal", post(signal))
        .route("/v1/processes/{name}/kill", post(kill))
        .route("/v1/processes/{name}/stdin", post(stdin))
        .route("/v1/processes/{name}/log/{stream}", get(log))
        .route("/v1/log", get(main_log))
        .route("/v1/reload", post(reload))
        .route("/v1/reread", post(reread))
        .route("/v1/config", get(config))
        .route("/v1/groups/{name}", post(add_group).delete(remove_group))
        .route("/v1/shutdown", post(shutdown))
        .route("/v1/takeover", post(takeover))
        .route("/v1/logrotate", post(logrotate))
        .route("/v1/alerts/test", post(test_alerts))
        .route("/v1/upgrade", post(upgrade))
        .route("/v1/pid", get(pid))
        .route("/v1/state", get(state))
        .route("/v1/cluster", get(cluster))
        .route("/v1/events", get(events))
        .route("/metrics", get(metrics))
        .route("/", get(crate::page::page))
        .with_state(handle.clone())
        // supervisord's XML-RPC and log-tail routes, for supervisorctl.
        .merge(crate::xmlrpc::router(handle))
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Outermost: another site's page is refused before any route reads its request.
        .layer(axum::middleware::from_fn(crate::origin::same_site_only))
}

/// An error answer: a status and `{"error": ...}`.
struct ApiError(StatusCode, wire::Error);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(
            status,
            wire::Error {
                error: message.into(),
                errors: Vec::new(),
            },
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

/// A JSON body, whose rejections (malformed, too large, wrong content type) answer with
/// `{"error": ...}` like every other error.
struct JsonBody<T>(T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        from_json(value).map(JsonBody)
    }
}

/// A JSON body read into its type: `422` naming what is wrong when it is not of that shape.
fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    // serde would take `["HUP"]` for `{"signal": "HUP"}`; every body here is an object.
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be a JSON object",
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}

/// A JSON body that may be left out: a request without a Content-Type has none.
impl<T, S> axum::extract::OptionalFromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Option<Self>, ApiError> {
        if !request
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
        {
            return Ok(None);
        }
        <Self as axum::extract::FromRequest<S>>::from_request(request, state)
            .await
            .map(Some)
    }
}

async fn ask(handle: &Handle, request: Request) -> Result<Reply, ApiError> {
    handle
        .request(request)
        .await
        .map_err(|gone| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, gone.to_string()))
}

fn unexpected(reply: Reply) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("unexpected reply from the supervisor: {reply:?}"),
    )
}

#[derive(Deserialize)]
struct NamesQuery {
    /// Comma-separated names, as the shell takes them; absent means all.
    names: Option<String>,
}

async fn list(
    State(handle): State<Handle>,
    Query(query): Query<NamesQuery>,
) -> Result<Response, ApiError> {
    let names = query
        .names
        .map(|names| {
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    match ask(&handle, Request::Status(names)).await? {
        Reply::Status {
            now,
            processes,
            errors,
            pair,
        } => Ok(json_sized(
            &wire::status(now, &processes, &errors, pair.as_ref()),
            processes.len(),
        )),
        other => Err(unexpected(other)),
    }
}

/// A JSON answer of about `items` processes, written into a buffer sized for them at once:
/// a list of 10,000 processes is some 3.5 MB, which a buffer growing from nothing would copy
/// over and over.
fn json_sized(value: &impl serde::Serialize, items: usize) -> Response {
    let mut body = Vec::with_capacity(512 + items * 400);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn one(
    State(handle): State<Handle>,
    Path(name): Path<String>,
) -> Result<Json<wire::Process>, ApiError> {
    match ask(&handle, Request::Status(vec![name.clone()])).await? {
        Reply::Status { now, processes, .. } => match processes.as_slice() {
            [process] if process.name == name || processes.len() == 1 => {
                Ok(Json(wire::process(&wire::Clock::new(now), process)))
            }
            [] => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no such process: {name}"),
            )),
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "{name} names {} processes; list them with /v1/processes?names={name}",
                    processes.len()
                ),
            )),
        },
        other => Err(unexpected(other)),
    }
}

/// Runs an action and answers with every process's result: 404 when the name matched
/// nothing, 200 otherwise (each result says whether it reached its goal).
async fn act(handle: &Handle, request: Request) -> Result<Response, ApiError> {
    match ask(handle, request).await? {
        Reply::Outcomes(outcomes) => {
            let nothing_matched = !outcomes.is_empty()
                && outcomes
                    .iter()
                    .all(|o| o.result == Err(Failure::NoSuchProcess));
            let status = if nothing_matched {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            Ok((status, Json(wire::results(&outcomes))).into_response())
        }
        other => Err(unexpected(other)),
    }
}

async fn start(
    State(handle): State<Handle>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    act(&handle, Request::Start(vec![name])).await
}

async fn stop(
    State(handle): State<Handle>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    act(&handle, Request::Stop(vec![name])).await
}

async fn restart(
    State(handle): State<Handle>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    act(&handle, Request::Restart(vec![name])).await
}

async fn signal(
    State(handle): State<Handle>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<wire::SignalRequest>,
) -> Result<Response, ApiError> {
    named_by_path(&body.processes)?;
    let signal = parse_signal(&body.signal)?;
    act(
        &handle,
        Request::Signal {
            signal,
            targets: vec![name],
        },
    )
    .await
}

fn parse_signal(signal: &str) -> Result<Signal, ApiError> {
    signal
        .parse()
        .map_err(|e: String| ApiError::new(StatusCode::BAD_REQUEST, e))
}

/// A route with a name in its path takes no `processes` in its body.
fn named_by_path(processes: &[String]) -> Result<(), ApiError> {
    if processes.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "the path names the process; to name several, POST to /v1/processes/ACTION with \
         {\"processes\": [...]}",
    ))
}

/// `POST /v1/processes/{action}`: starts, stops, restarts, signals or kills every process the
/// body's `processes` names, as one request to the core: they all start (or stop) at once, and
/// the answer comes once every one has reached its goal, with one result per process and step.
async fn act_on_several(
    State(handle): State<Handle>,
    Path(action): Path<String>,
    peer: Option<axum::Extension<Peer>>,
    body: Option<JsonBody<serde_json::Value>>,
) -> Result<Response, ApiError> {
    if !matches!(
        action.as_str(),
        "start" | "stop" | "restart" | "signal" | "kill"
    ) {
        return Err(no_such_endpoint());
    }
    let Some(JsonBody(body)) = body else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body names the processes: {\"processes\": [\"web\", \"workers:*\"]}",
        ));
    };
    let request = match action.as_str() {
        "signal" => {
            let body: wire::SignalRequest = from_json(body)?;
            Request::Signal {
                signal: parse_signal(&body.signal)?,
                targets: several(body.processes)?,
            }
        }
        "kill" => {
            let body: wire::KillRequest = from_json(body)?;
            Request::Kill {
                targets: several(body.processes)?,
                restart: body.restart,
                by: caller(peer),
            }
        }
        verb => {
            let targets = several(from_json::<wire::Targets>(body)?.processes)?;
            match verb {
                "start" => Request::Start(targets),
                "stop" => Request::Stop(targets),
                _ => Request::Restart(targets),
            }
        }
    };
    act(&handle, request).await
}

/// The processes of a body, at least one: an empty list names nothing (`all` names every one).
fn several(processes: Vec<String>) -> Result<Vec<String>, ApiError> {
    if processes.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`processes` is empty: name at least one process (`all` for every one)",
        ));
    }
    Ok(processes)
}

/// Who is on the other end of a connection, in words for the event log: `uid 1000 pid 4242`
/// on the unix socket (the kernel's credentials), the address over TCP.
#[derive(Debug, Clone)]
pub struct Peer(pub String);

/// The panic button: SIGKILL to the process group now. Body (optional):
/// `{"restart": false}` to leave it stopped; by default it is restarted by its policy.
async fn kill(
    State(handle): State<Handle>,
    Path(name): Path<String>,
    peer: Option<axum::Extension<Peer>>,
    body: Option<JsonBody<wire::KillRequest>>,
) -> Result<Response, ApiError> {
    let (restart, processes) = body.map_or((true, Vec::new()), |JsonBody(body)| {
        (body.restart, body.processes)
    });
    named_by_path(&processes)?;
    act(
        &handle,
        Request::Kill {
            targets: vec![name],
            restart,
            by: caller(peer),
        },
    )
    .await
}

/// Who pressed the kill button, for the event log.
fn caller(peer: Option<axum::Extension<Peer>>) -> String {
    peer.map_or_else(|| "an unknown peer".to_string(), |p| p.0 .0)
}

/// Writes the request's body, as it is, to the stdin pipe of the process (`stdin: pipe`).
async fn stdin(
    State(handle): State<Handle>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body is empty: it is what is written to the process's stdin",
        ));
    }
    act(
        &handle,
        Request::SendStdin {
            targets: vec![name],
            data: body.to_vec(),
        },
    )
    .await
}

/// `422` for a configuration file with errors, listing every one.
fn rejected(errors: &[String]) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, wire::rejected(errors))
}

async fn reload(State(handle): State<Handle>) -> Result<Response, ApiError> {
    match ask(&handle, Request::Reload).await? {
        Reply::Reloaded(plan) => Ok(Json(wire::reloaded(&plan)).into_response()),
        Reply::ReloadRejected(errors) => Err(rejected(&errors)),
        Reply::ShuttingDown => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
        )),
        other => Err(unexpected(other)),
    }
}

/// What `reload` would change, changing nothing; the file read is staged for `add`.
async fn reread(State(handle): State<Handle>) -> Result<Response, ApiError> {
    match ask(&handle, Request::Reread).await? {
        Reply::Compared(plan) => Ok(Json(wire::reloaded(&plan)).into_response()),
        Reply::ReloadRejected(errors) => Err(rejected(&errors)),
        other => Err(unexpected(other)),
    }
}

async fn config(State(handle): State<Handle>) -> Result<Json<wire::ConfigFiles>, ApiError> {
    match ask(&handle, Request::Config).await? {
        Reply::Config { active, staged } => Ok(Json(wire::ConfigFiles {
            active: *active,
            staged: staged.map(|s| *s),
        })),
        other => Err(unexpected(other)),
    }
}

/// Prometheus' scrape: every process and taskmaster itself, in the text format the `Accept`
/// header asks for.
async fn metrics(
    State(handle): State<Handle>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let Reply::Metrics(metrics) = ask(&handle, Request::Metrics).await? else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected reply",
        ));
    };
    let clock = wire::Clock::new(metrics.now);
    let families = crate::metrics::families(&metrics, |at| clock.wall(at));
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::metrics::Format::accepted(accept);
    let text = crate::metrics::write(&families, format);
    Ok((
        [(header::CONTENT_TYPE, crate::metrics::content_type(format))],
        text,
    )
        .into_response())
}

async fn add_group(
    State(handle): State<Handle>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    act(&handle, Request::AddGroup(vec![name])).await
}

async fn remove_group(
    State(handle): State<Handle>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    act(&handle, Request::RemoveGroup(vec![name])).await
}

async fn shutdown(State(handle): State<Handle>) -> Result<Response, ApiError> {
    match ask(&handle, Request::Shutdown).await? {
        Reply::ShuttingDown => Ok((
            StatusCode::ACCEPTED,
            Json(wire::DaemonState {
                shutting_down: true,
            }),
        )
            .into_response()),
        other => Err(unexpected(other)),
    }
}

/// `POST /v1/logrotate`: reopen every log file at its path.
async fn logrotate(
    State(handle): State<Handle>,
    body: Option<JsonBody<wire::LogrotateRequest>>,
) -> Result<Response, ApiError> {
    let names = body
        .map(|JsonBody(body)| body.processes)
        .unwrap_or_default();
    match ask(&handle, Request::ReopenLogs(names)).await? {
        Reply::LogsReopened { files, errors } => Ok(Json(wire::LogsReopened {
            reopened: files,
            errors,
        })
        .into_response()),
        other => Err(unexpected(other)),
    }
}

/// `POST /v1/alerts/test`: a test message to every alert destination; what each answered.
async fn test_alerts(State(handle): State<Handle>) -> Result<Response, ApiError> {
    match ask(&handle, Request::TestAlerts).await? {
        Reply::AlertsTested(results) => {
            Ok(Json(wire::AlertsTested::from_results(&results)).into_response())
        }
        other => Err(unexpected(other)),
    }
}

/// `POST /v1/takeover`: the primary of a pair hands over to its backup and exits.
async fn takeover(State(handle): State<Handle>) -> Result<Response, ApiError> {
    handover(&handle, false).await
}

/// `POST /v1/upgrade`: the same, to a backup freshly started from the executable's file.
async fn upgrade(State(handle): State<Handle>) -> Result<Response, ApiError> {
    handover(&handle, true).await
}

async fn handover(handle: &Handle, upgrade: bool) -> Result<Response, ApiError> {
    match ask(handle, Request::Handover { upgrade }).await? {
        Reply::HandedOver(pid) => Ok(Json(wire::HandedOver {
            handed_over_to: pid,
        })
        .into_response()),
        Reply::HandoverRefused(why) => Err(ApiError::new(StatusCode::CONFLICT, why)),
        other => Err(unexpected(other)),
    }
}

async fn pid(State(handle): State<Handle>) -> Result<Json<wire::Pid>, ApiError> {
    match ask(&handle, Request::Pid(Vec::new())).await? {
        Reply::DaemonPid(pid) => Ok(Json(wire::Pid { pid })),
        other => Err(unexpected(other)),
    }
}

/// `{"shutting_down": false}`: whether the daemon is on its way out.
async fn state(State(handle): State<Handle>) -> Result<Json<wire::DaemonState>, ApiError> {
    match ask(&handle, Request::DaemonState).await? {
        Reply::DaemonState { shutting_down } => Ok(Json(wire::DaemonState { shutting_down })),
        other => Err(unexpected(other)),
    }
}

/// `{"cluster": {...}}`: the nodes alive, what each holds, each singleton's holder; `null`
/// outside a cluster.
async fn cluster(State(handle): State<Handle>) -> Result<Json<wire::Cluster>, ApiError> {
    match ask(&handle, Request::Cluster).await? {
        Reply::Cluster(cluster) => Ok(Json(wire::Cluster {
            cluster: cluster.map(|c| *c),
        })),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    /// Where to start: a byte offset, or from the end when negative (`-1000`: the last 1000
    /// bytes). Default: the start.
    offset: Option<i64>,
    /// How many bytes at most. Default: to the end.
    length: Option<u64>,
    /// Keep the answer open and send what the process writes next (`tail -f`).
    #[serde(default)]
    follow: bool,
}

/// A process's stdout or stderr file: a byte range of it, or all of it that comes.
async fn log(
    State(handle): State<Handle>,
    Path((name, stream)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let path = log_path(&handle, &name, &stream).await?;
    read_log(path, &query).await
}

/// The event log, as [`log`] reads a process's.
async fn main_log(
    State(handle): State<Handle>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let Reply::Config { active, .. } = ask(&handle, Request::Config).await? else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected reply",
        ));
    };
    read_log(active.logfile.clone(), &query).await
}

/// A byte range of a log file, or everything from an offset on as it comes. The size, the
/// offset and the bytes are all of one opened file (the follower's first), so a rotation
/// meanwhile cannot shift them.
async fn read_log(path: PathBuf, query: &LogQuery) -> Result<Response, ApiError> {
    // A log not written yet (a process never started) is not there: 404, not a server fault.
    let cannot_read = |e: std::io::Error| {
        let status = match e.kind() {
            std::io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, format!("cannot read {}: {e}", path.display()))
    };
    let start_in = |size: u64| match query.offset {
        None => 0,
        Some(offset) if offset < 0 => size.saturating_sub(offset.unsigned_abs()),
        Some(offset) => offset.unsigned_abs().min(size),
    };
    let headers = |start: u64, size: u64| {
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::HeaderName::from_static("x-log-offset"),
                start.to_string(),
            ),
            (
                header::HeaderName::from_static("x-log-size"),
                size.to_string(),
            ),
        ]
    };
    if query.follow {
        let mut size = 0;
        let follower = Follower::open(&path, |length| {
            size = length;
            start_in(length)
        })
        .map_err(cannot_read)?;
        let start = follower.position();
        let body = Body::from_stream(crate::follow::follow(follower));
        return Ok((headers(start, size), body).into_response());
    }
    let (file, size) = crate::follow::open(&path).await.map_err(cannot_read)?;
    let start = start_in(size);
    let end = query
        .length
        .map_or(size, |length| start.saturating_add(length).min(size));
    let bytes = crate::follow::read_range(file, start, end)
        .await
        .map_err(cannot_read)?;
    Ok((headers(start, size), bytes).into_response())
}

/// The file a process's `stream` goes to, or why there is none.
async fn log_path(handle: &Handle, name: &str, stream: &str) -> Result<PathBuf, ApiError> {
    let stream = match stream {
        "stdout" => taskmaster_config::Stream::Stdout,
        "stderr" => taskmaster_config::Stream::Stderr,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("no stream {stream:?}: it is stdout or stderr"),
            ))
        }
    };
    let Reply::Status { processes, .. } =
        ask(handle, Request::Status(vec![name.to_string()])).await?
    else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected reply",
        ));
    };
    let [process] = processes.as_slice() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no single process named {name}"),
        ));
    };
    process
        .log_file(stream)
        .map(std::path::Path::to_path_buf)
        .map_err(|why| ApiError::new(StatusCode::NOT_FOUND, why))
}

/// `GET /v1/events`: a server-sent-events stream of every state change (`event: state`) and
/// every event-log line (`event: log`), as they happen.
async fn events(
    State(handle): State<Handle>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = handle.subscribe();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            let event = match receiver.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let Ok(data) = serde_json::to_string(&wire::Lagged { missed }) else {
                        continue;
                    };
                    let event = SseEvent::default().event("lagged").data(data);
                    return Some((Ok(event), receiver));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            let (kind, data) = match event {
                DaemonEvent::StateChanged {
                    process,
                    from,
                    to,
                    at,
                } => (
                    "state",
                    wire::Event::State {
                        process,
                        from: from.name().to_string(),
                        to: to.name().to_string(),
                        at: wire::unix(at),
                    },
                ),
                DaemonEvent::Log {
                    process,
                    message,
                    at,
                } => (
                    "log",
                    wire::Event::Log {
                        process,
                        message,
                        at: wire::unix(at),
                    },
                ),
                DaemonEvent::Alert {
                    program,
                    stream,
                    level,
                    line,
                    at,
                } => (
                    "alert",
                    wire::Event::Alert {
                        program,
                        stream: stream.name().to_string(),
                        level: level.name().to_string(),
                        line,
                        at: wire::unix(at),
                    },
                ),
            };
            if let Ok(json) = serde_json::to_string(&data) {
                return Some((Ok(SseEvent::default().event(kind).data(json)), receiver));
            }
        }
    });
    Sse::new(stream)
}

async fn no_route() -> ApiError {
    no_such_endpoint()
}

fn no_such_endpoint() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; the API is described in docs/api.md",
    )
}
