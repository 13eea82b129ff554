//! The control socket: where it is made, who may connect, and the accept loop.
//!
//! Who may connect, by default: taskmaster's own user and root, checked on every connection
//! by the peer's uid (the socket is 0600 besides). A configuration that opens the socket to
//! others, as supervisord's `[unix_http_server]` does with `chmod` and `chown`, gets that mode
//! and owner, and then the file's permissions decide who connects; with a `username` and
//! `password` every request must also carry them (HTTP basic auth), as on TCP.

use std::convert::Infallible;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use taskmaster_runtime::{Exiting, Handle};

use crate::auth::{authorize, Credentials, Gate};
use crate::{limits, server};
use taskmaster_config::SocketAccess;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "another taskmaster is already serving {0}; stop it, or give this one another `socket:`"
    )]
    InUse(PathBuf),
    #[error("cannot use {0} for the control socket: it exists and is not a socket")]
    NotASocket(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot give the control socket {path} the owner {owner} (socket_owner, [unix_http_server] chown): {reason}")]
    Owner {
        path: PathBuf,
        owner: String,
        reason: String,
    },
}

/// The unix socket the API is served on, bound and ready. The file is removed when the server
/// stops.
pub struct ControlSocket {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    /// Every request must carry these, when given.
    credentials: Option<Credentials>,
    /// The file's permissions decide who connects, not taskmaster's check of the peer's uid.
    any_peer: bool,
}

impl ControlSocket {
    /// Binds `path` with `access`'s mode and owner (by default 0600, taskmaster's user). A
    /// socket file left by a taskmaster that died (nobody answers on it) is replaced; one that
    /// answers means another taskmaster runs, and is an error.
    pub fn bind(path: &Path, access: &SocketAccess) -> Result<ControlSocket, BindError> {
        let io = |source| BindError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            if !metadata.file_type().is_socket() {
                return Err(BindError::NotASocket(path.to_path_buf()));
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        let listener = std::os::unix::net::UnixListener::bind(path).map_err(io)?;
        // Until this chmod the umask decides; the peer check below covers that moment.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(access.mode)).map_err(io)?;
        if let Some(owner) = &access.owner {
            let refused = |reason: String| {
                let _ = std::fs::remove_file(path);
                BindError::Owner {
                    path: path.to_path_buf(),
                    owner: owner.to_string(),
                    reason,
                }
            };
            let (uid, gid) = taskmaster_runtime::owner_ids(owner).map_err(refused)?;
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
                refused(format!(
                    "{} (only root may give a file to another user, or to a group it is not in)",
                    taskmaster_config::os_reason(&e)
                ))
            })?;
        }
        listener.set_nonblocking(true).map_err(io)?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
            credentials: access
                .credentials
                .as_ref()
                .map(|c| Credentials::new(&c.username, &c.password)),
            any_peer: access.opened_to_others(),
        })
    }

    /// Binds `path` in place of a dead primary's socket (`run --pair`): no check for a live
    /// server, because the primary's socket may still accept for a moment after its death (the
    /// kernel releases a dead process's files asynchronously), and a primary that is only hung
    /// has been killed by its backup before this.
    pub fn take_over(path: &Path, access: &SocketAccess) -> Result<ControlSocket, BindError> {
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            if !metadata.file_type().is_socket() {
                return Err(BindError::NotASocket(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(|source| BindError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        }
        ControlSocket::bind(path, access)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves the API until the daemon exits, then finishes the answers under way (the
    /// runtime bounds how long) and removes the file. Must run on the daemon's loop.
    pub async fn serve(self, handle: Handle, mut exiting: Exiting) {
        let _remove = RemoveOnDrop::new(self.path.clone());
        let Ok(listener) = tokio::net::UnixListener::from_std(self.listener) else {
            return;
        };
        let mut app = server::router(handle.clone());
        if let Some(credentials) = self.credentials {
            let gate = Gate::new(credentials, handle.clone());
            app = app.layer(axum::middleware::from_fn_with_state(gate, authorize));
        }
        let any_peer = self.any_peer;
        let own_uid = rustix::process::getuid().as_raw();
        let graceful = GracefulShutdown::new();
        let connections = limits::Connections::new();
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    // Out of descriptors, say: the next accept may work, a moment later.
                    Err(_) => {
                        tokio::time::sleep(limits::ACCEPT_RETRY).await;
                        continue;
                    }
                },
                () = exiting.wait() => break,
            };
            let Some(permit) = connections.admit() else {
                limits::shed(stream);
                continue;
            };
            let credentials = stream.peer_cred().ok();
            let peer = credentials.map(|c| c.uid());
            let io = TokioIo::new(stream);
            let mut http = limits::http();
            // A client that goes away mid-request is its own business: errors are dropped.
            if any_peer || peer == Some(own_uid) || peer == Some(0) {
                let who = match credentials.and_then(|c| c.pid()) {
                    Some(pid) => format!("uid {} pid {pid}", credentials.map_or(0, |c| c.uid())),
                    None => format!("uid {}", credentials.map_or(0, |c| c.uid())),
                };
                let service =
                    TowerToHyperService::new(app.clone().layer(axum::Extension(server::Peer(who))));
                let connection = graceful.watch(http.serve_connection(io, service));
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(permit);
                });
            } else {
                // Refused through HTTP, after the request is read, so that the client hears
                // why rather than seeing its connection cut.
                let refused =
                    service_fn(move |_| async move { Ok::<_, Infallible>(refusal(peer, own_uid)) });
                let connection =
                    graceful.watch(http.keep_alive(false).serve_connection(io, refused));
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(permit);
                });
            }
        }
        graceful.shutdown().await;
    }
}

/// The answer to every request of a peer that may not connect.
fn refusal(peer: Option<u32>, own_uid: u32) -> hyper::Response<Full<Bytes>> {
    let who = peer.map_or("an unknown uid".to_string(), |uid| format!("uid {uid}"));
    let body = format!(
        "{{\"error\":\"refused: {who} is neither taskmaster's (uid {own_uid}) nor root\"}}\n"
    );
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Removes the socket file at the end, if it is still ours: after a handover (`run --pair`)
/// the path already holds the new primary's socket, which must stay.
struct RemoveOnDrop {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl RemoveOnDrop {
    fn new(path: PathBuf) -> RemoveOnDrop {
        let identity = file_identity(&path);
        RemoveOnDrop { path, identity }
    }
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.identity.is_some() && file_identity(&self.path) == self.identity {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
