//! The listening sockets of FastCGI programs (supervisord's `[fcgi-program:x]`, a program
//! with `socket`): taskmaster opens the socket for the first process it starts and gives it
//! to every process as its stdin (fd 0), where FastCGI servers (php-cgi, flup...) look for
//! it. Each live child's record holds a reference; once the last child is gone the socket is
//! closed (and a Unix socket's file removed), as supervisord's reference count does, so a
//! stopped program frees its port.

use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use taskmaster_config::{os_reason, FcgiSocket, SocketAddress};

/// A listening socket; a Unix socket's file is removed when it closes.
pub(crate) struct ListeningSocket {
    fd: OwnedFd,
    unix_path: Option<PathBuf>,
}

impl ListeningSocket {
    /// The descriptor each process gets as its stdin.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for ListeningSocket {
    fn drop(&mut self) {
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path); // already gone: nothing to remove
        }
    }
}

/// The sockets open now, by program, with the settings each was opened with.
#[derive(Default)]
pub(crate) struct FcgiSockets(HashMap<String, (FcgiSocket, Weak<ListeningSocket>)>);

impl FcgiSockets {
    /// `program`'s socket: the one its live processes hold, or a new one opened as `config`
    /// says. The error says what failed, for the process's status.
    pub fn acquire(
        &mut self,
        program: &str,
        config: &FcgiSocket,
    ) -> Result<Arc<ListeningSocket>, String> {
        if let Some((opened_as, open)) = self.0.get(program) {
            if let Some(socket) = open.upgrade().filter(|_| opened_as == config) {
                return Ok(socket);
            }
        }
        let socket = Arc::new(
            open(config)
                .map_err(|why| format!("cannot open the socket {}: {why}", config.address))?,
        );
        self.0.insert(
            program.to_string(),
            (config.clone(), Arc::downgrade(&socket)),
        );
        Ok(socket)
    }
}

/// Binds and listens, as supervisord does: `SO_REUSEADDR` for TCP; for a Unix socket, a
/// stale file removed first, then its owner and mode set.
fn open(config: &FcgiSocket) -> Result<ListeningSocket, String> {
    let backlog = config
        .backlog
        .map_or(libc::SOMAXCONN, |n| i32::try_from(n).unwrap_or(i32::MAX));
    let io = |e: std::io::Error| os_reason(&e);
    let socket = match &config.address {
        SocketAddress::Tcp { host, port } => {
            // An address, or a name such as localhost from /etc/hosts.
            let address = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(io)?
                .next()
                .ok_or_else(|| format!("{host} has no address"))?;
            let family = match address {
                std::net::SocketAddr::V4(_) => AddressFamily::INET,
                std::net::SocketAddr::V6(_) => AddressFamily::INET6,
            };
            let fd =
                rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)
                    .map_err(|e| io(e.into()))?;
            rustix::net::sockopt::set_socket_reuseaddr(&fd, true).map_err(|e| io(e.into()))?;
            rustix::net::bind(&fd, &address).map_err(|e| io(e.into()))?;
            ListeningSocket {
                fd,
                unix_path: None,
            }
        }
        SocketAddress::Unix(path) => {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(format!(
                        "cannot remove the old {}: {}",
                        path.display(),
                        io(e)
                    ))
                }
            }
            let address = SocketAddrUnix::new(path.as_path()).map_err(|e| io(e.into()))?;
            let fd = rustix::net::socket_with(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::CLOEXEC,
                None,
            )
            .map_err(|e| io(e.into()))?;
            rustix::net::bind(&fd, &address).map_err(|e| io(e.into()))?;
            // From here on, dropping it removes the file.
            let socket = ListeningSocket {
                fd,
                unix_path: Some(path.clone()),
            };
            if let Some(owner) = &config.owner {
                let (uid, gid) = crate::startup::owner_ids(owner)?;
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io)?;
            }
            let mode = std::os::unix::fs::PermissionsExt::from_mode(config.mode);
            std::fs::set_permissions(path, mode).map_err(io)?;
            socket
        }
    };
    rustix::net::listen(&socket.fd, backlog).map_err(|e| io(e.into()))?;
    Ok(socket)
}
