//! The control API on a TCP port, as supervisord's `[inet_http_server]`: the same routes as
//! the socket (JSON, XML-RPC, log tails), so `supervisorctl -s http://HOST:PORT -u USER -p PASS`
//! works from another machine.
//!
//! The unix socket checks who connects (its peer's uid); TCP cannot, so with a username and
//! password every request must carry them (HTTP basic auth, `auth.rs`; `401` with
//! `WWW-Authenticate` otherwise). Without credentials only a loopback address is accepted, and then anyone on
//! the machine can control taskmaster, as with supervisord's `inet_http_server` without a
//! password.

use std::net::SocketAddr;

use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use taskmaster_runtime::{Exiting, Handle};

use crate::auth::{authorize, Credentials, Gate};
use crate::{limits, server};

/// Where and how the API listens on TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSettings {
    pub listen: SocketAddr,
    pub username: Option<String>,
    /// In clear, or `{SHA}` followed by the hex SHA-1 digest of the password.
    pub password: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    #[error(
        "refusing to listen on {0} without a username and password: anyone who can reach it \
         could control taskmaster (only a loopback address may go without)"
    )]
    NoCredentials(SocketAddr),
    #[error("a username needs a password, and a password a username")]
    HalfCredentials,
    #[error("cannot listen on {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The TCP listener, bound and ready.
pub struct ControlTcp {
    listener: std::net::TcpListener,
    credentials: Option<Credentials>,
}

impl ControlTcp {
    /// Binds `settings.listen` (port 0 picks a free port: see [`ControlTcp::local_addr`]).
    pub fn bind(settings: &TcpSettings) -> Result<ControlTcp, TcpError> {
        let credentials = match (&settings.username, &settings.password) {
            (Some(username), Some(password)) => Some(Credentials::new(username, password)),
            (None, None) if settings.listen.ip().is_loopback() => None,
            (None, None) => return Err(TcpError::NoCredentials(settings.listen)),
            _ => return Err(TcpError::HalfCredentials),
        };
        let io = |source| TcpError::Io {
            addr: settings.listen,
            source,
        };
        let listener = std::net::TcpListener::bind(settings.listen).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        Ok(ControlTcp {
            listener,
            credentials,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves the API until the daemon exits, then finishes the answers under way (the
    /// runtime bounds how long). Must run on the daemon's loop.
    pub async fn serve(self, handle: Handle, mut exiting: Exiting) {
        let Ok(listener) = tokio::net::TcpListener::from_std(self.listener) else {
            return;
        };
        let mut app = server::router(handle.clone());
        if let Some(credentials) = self.credentials {
            let gate = Gate::new(credentials, handle.clone());
            app = app.layer(axum::middleware::from_fn_with_state(gate, authorize));
        }
        let graceful = GracefulShutdown::new();
        let connections = limits::Connections::new();
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // Out of descriptors, say: the next accept may work, a moment later.
                    Err(_) => {
                        tokio::time::sleep(limits::ACCEPT_RETRY).await;
                        continue;
                    }
                },
                () = exiting.wait() => break,
            };
            let (stream, address) = stream;
            let Some(permit) = connections.admit() else {
                limits::shed(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let peer = server::Peer(format!("{address} over TCP"));
            let service = TowerToHyperService::new(app.clone().layer(axum::Extension(peer)));
            let connection =
                graceful.watch(limits::http().serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                let _ = connection.await;
                drop(permit);
            });
        }
        graceful.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(listen: &str, user: Option<&str>, pass: Option<&str>) -> TcpSettings {
        TcpSettings {
            listen: listen.parse().expect("address"),
            username: user.map(str::to_string),
            password: pass.map(str::to_string),
        }
    }

    #[test]
    fn a_public_address_needs_credentials() {
        let err = ControlTcp::bind(&settings("0.0.0.0:0", None, None))
            .err()
            .expect("refused");
        assert!(matches!(err, TcpError::NoCredentials(_)), "{err}");
        assert!(matches!(
            ControlTcp::bind(&settings("127.0.0.1:0", Some("u"), None)).err(),
            Some(TcpError::HalfCredentials)
        ));
    }

    #[test]
    fn loopback_may_go_without_credentials() {
        let tcp = ControlTcp::bind(&settings("127.0.0.1:0", None, None)).expect("bound");
        assert!(tcp.credentials.is_none());
        assert_ne!(tcp.local_addr().expect("address").port(), 0);
    }
}
