//! # The control API
//!
//! Theory of operation. A running taskmaster serves HTTP/1.1 on a unix socket (mode 0600; a
//! peer whose uid is neither taskmaster's nor root is refused). The JSON API lives under `/v1`
//! and is documented, with examples, in `docs/api.md`; supervisord's XML-RPC, in the same
//! document's "supervisorctl" section.
//!
//! The server ([`server`]) turns each HTTP request into a core `Request`, sends it to the
//! daemon through a runtime `Handle` (it runs on the daemon's own event loop, so it never
//! blocks it), and turns the core `Reply` into JSON. The client ([`client`]) does the reverse
//! for `taskmaster ctl`: a core `Request` becomes an HTTP request, and the JSON answer becomes
//! a core `Reply` again, so `ctl` renders exactly what `run`'s shell renders.
//!
//! [`wire`] holds the JSON types: this crate is the only one that knows JSON. Core types are
//! not wire types; `wire` maps between them in both directions.
//!
//! [`xmlrpc`] serves supervisord's interface on the same socket (`POST /RPC2`, and
//! `/logtail` and `/mainlogtail` for `tail -f`), so the real `supervisorctl` drives taskmaster
//! unchanged; it is the only part of the crate that knows XML. [`tcp`] serves the same routes
//! on a TCP port, behind HTTP basic auth, as supervisord's `[inet_http_server]`.
//!
//! [`page`] serves a web page at `/` on both, a client of the same JSON routes that follows
//! `/v1/events`; [`origin`] refuses, on every route, a request that changes something when a
//! browser says another site's page sent it.

mod auth;
pub mod client;
mod follow;
pub mod limits;
mod listen;
pub mod metrics;
pub mod origin;
pub mod page;
pub mod server;
pub mod tcp;
pub mod wire;
pub mod xmlrpc;

pub use client::{Client, ClientError};
pub use listen::{BindError, ControlSocket};
pub use tcp::{ControlTcp, TcpError, TcpSettings};

/// Serves the API on the control socket, and on TCP when configured, until the daemon exits.
pub async fn serve(
    socket: ControlSocket,
    tcp: Option<ControlTcp>,
    handle: taskmaster_runtime::Handle,
    exiting: taskmaster_runtime::Exiting,
) {
    match tcp {
        Some(tcp) => {
            let on_socket = socket.serve(handle.clone(), exiting.clone());
            tokio::join!(on_socket, tcp.serve(handle, exiting));
        }
        None => socket.serve(handle, exiting).await,
    }
}
