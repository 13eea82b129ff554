//! supervisord's interface, so that supervisorctl and other supervisord clients drive
//! taskmaster unchanged.
//!
//! Theory of operation. supervisorctl talks to supervisord in two ways, both served here on the
//! control socket beside the JSON API:
//!
//! - **XML-RPC** on `POST /RPC2`. [`value`] reads the `methodCall` and writes the
//!   `methodResponse`; `table` is the method table (name, signature, help, handler), whose
//!   handlers ([`methods`]) take typed parameters and return typed answers (`typed`,
//!   supervisord's structs in `structs`), each done with the core's requests
//!   (`supervisor.startProcess` is a `Request::Start`, `supervisor.reloadConfig` a
//!   `Request::Reread`...); names are resolved by the core, as every front end's are.
//!   [`fault`] holds supervisord's fault codes and strings, which supervisorctl turns into its
//!   messages and exit statuses.
//!   Every answer is HTTP 200 with a `methodResponse`, a fault included; a body that is not a
//!   `methodCall` is a fault too (supervisord answers HTTP 400 there).
//! - **Plain HTTP** for `tail -f` and `maintail -f`: `GET /logtail/NAME/STREAM` and
//!   `GET /mainlogtail` answer the last KiB of the file, then what is written to it as it comes,
//!   chunked, until the client goes away.
//!
//! A `shutdown` is sent to the daemon only once its answer has been handed to the connection:
//! the daemon may exit as soon as it has the request, taking an unsent answer with it.

mod command;
pub mod fault;
mod logs;
pub mod methods;
mod structs;
mod table;
mod typed;
pub mod value;

use std::convert::Infallible;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use taskmaster_core::{Reply, Request};
use taskmaster_runtime::{Follower, Handle};

use self::fault::{Code, Fault};
use self::methods::Rpc;

/// How much of a file `tail -f` shows before what comes next: supervisord's 1 KiB.
const TAIL_HEAD: u64 = 1024;

/// The routes of supervisord's interface: `/RPC2`, `/logtail/...` and `/mainlogtail`.
pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/RPC2", post(rpc2))
        .route("/logtail/{*path}", get(logtail))
        .route("/mainlogtail", get(mainlogtail))
        .with_state(Rpc::new(handle))
}

async fn rpc2(State(rpc): State<Rpc>, body: Bytes) -> Response {
    let result = match value::parse_call(&body) {
        Ok(call) => rpc.call(&call.method, call.params).await,
        Err(why) => Err(Fault::with(
            Code::IncorrectParameters,
            format!("not an XML-RPC methodCall: {why}"),
        )),
    };
    let xml = value::response(&result);
    let headers = [(header::CONTENT_TYPE, "text/xml")];
    if rpc.take_shutdown() {
        let shutdown = then(xml, rpc.handle().clone(), Request::Shutdown);
        return (headers, shutdown).into_response();
    }
    (headers, xml).into_response()
}

/// A body of `text` that sends `request` to the daemon once the connection has taken the text.
fn then(text: String, handle: Handle, request: Request) -> Body {
    enum Step {
        Text(String, Handle, Request),
        Request(Handle, Request),
    }
    let stream =
        futures_util::stream::unfold(Some(Step::Text(text, handle, request)), |step| async move {
            match step? {
                Step::Text(text, handle, request) => Some((
                    Ok::<Bytes, Infallible>(Bytes::from(text)),
                    Some(Step::Request(handle, request)),
                )),
                Step::Request(handle, request) => {
                    // Asked for more, the connection holds the text; it writes it out before
                    // this task runs, as the loop runs one task at a time.
                    tokio::spawn(async move {
                        let _ = handle.request(request).await;
                    });
                    None
                }
            }
        });
    Body::from_stream(stream)
}

/// `GET /logtail/NAME[/STREAM]`: a process's stdout (default) or stderr file, followed.
async fn logtail(State(rpc): State<Rpc>, Path(path): Path<String>) -> Response {
    let (name, stream) = path.split_once('/').unwrap_or((&path, "stdout"));
    let Ok((_, info)) = rpc.process(name).await else {
        return not_found();
    };
    let file = match stream {
        "stdout" => info.stdout,
        "stderr" => info.stderr,
        _ => None,
    };
    follow(file).await
}

/// `GET /mainlogtail`: the event log, followed.
async fn mainlogtail(State(rpc): State<Rpc>) -> Response {
    match rpc.handle().request(Request::Config).await {
        Ok(Reply::Config { active, .. }) => follow(Some(active.logfile)).await,
        _ => not_found(),
    }
}

/// The file from its last KiB on, and what is written to it next; 404 when there is none, as
/// supervisord answers (the file may appear later: a process that never ran has none).
async fn follow(file: Option<PathBuf>) -> Response {
    let Some(file) = file else {
        return not_found();
    };
    let Ok(follower) = Follower::open(&file, |size| size.saturating_sub(TAIL_HEAD)) else {
        return not_found();
    };
    let headers = [
        (header::CONTENT_TYPE, "text/plain;charset=utf-8"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    (headers, Body::from_stream(crate::follow::follow(follower))).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
