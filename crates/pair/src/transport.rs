//! Datagrams from the primary to the backup, over a unix socket or UDP.
//!
//! Datagrams only: a connection would end when the primary dies, and its end would tell the
//! backup so. The pair must not rely on that (a paused primary keeps its connections open, a
//! primary on another host has none to close), so it relies on silence alone, and a
//! transport without connections makes that the only signal there is.
//!
//! Heartbeats never wait: one the backup cannot take right now (its queue is full because
//! it is stopped or starved, or no backup listens yet) is dropped, and the primary carries
//! on. A checkpoint waits, a little: over the unix socket it waits up to a patience (see
//! `primary.rs`) for room in the backup's queue, because a checkpoint that never reached the
//! backup makes a takeover repeat more than one unit. UDP has no such wait: a datagram the
//! backup's buffer cannot hold is lost, and only resent.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{PairError, Transport};

/// The largest checkpoint sent over UDP: under the 65,507 bytes of an IPv4 datagram, with
/// room to spare.
pub(crate) const UDP_LIMIT: usize = 60 * 1024;

/// The largest datagram a backup receives over its unix socket, and so the largest
/// checkpoint sent there (the sender's socket buffer may lower it).
const UNIX_RECEIVE_LIMIT: usize = 256 * 1024;

/// The primary's end.
pub(crate) enum Sender {
    Unix {
        /// Non-blocking: heartbeats and resends.
        hasty: UnixDatagram,
        /// Blocking, up to its write timeout, while the backup's queue is full: checkpoints.
        patient: UnixDatagram,
        path: PathBuf,
    },
    Udp {
        socket: UdpSocket,
        peer: SocketAddr,
    },
}

impl Sender {
    /// Sockets that send to the backup of `transport` (whose unix socket is
    /// `backup_socket`); a patient send waits up to `patience`.
    pub fn open(
        transport: &Transport,
        backup_socket: &Path,
        patience: Duration,
    ) -> Result<Sender, PairError> {
        let unix_socket =
            || UnixDatagram::unbound().map_err(|e| PairError::io("open a unix datagram socket", e));
        let setup = |result: io::Result<()>| {
            result.map_err(|e| PairError::io("set up the sending socket", e))
        };
        match transport {
            Transport::Unix => {
                let hasty = unix_socket()?;
                setup(hasty.set_nonblocking(true))?;
                let patient = unix_socket()?;
                setup(patient.set_write_timeout(Some(patience.max(Duration::from_millis(1)))))?;
                Ok(Sender::Unix {
                    hasty,
                    patient,
                    path: backup_socket.to_path_buf(),
                })
            }
            Transport::Udp { peer, .. } => {
                let any: SocketAddr = if peer.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(any)
                    .map_err(|e| PairError::io(format!("bind a UDP socket to {any}"), e))?;
                setup(socket.set_nonblocking(true))?;
                Ok(Sender::Udp {
                    socket,
                    peer: *peer,
                })
            }
        }
    }

    /// Sends one datagram, or fails at once (no backup, a full queue).
    pub fn send(&self, datagram: &[u8]) -> io::Result<()> {
        match self {
            Sender::Unix { hasty, path, .. } => hasty.send_to(datagram, path).map(drop),
            Sender::Udp { socket, peer } => socket.send_to(datagram, peer).map(drop),
        }
    }

    /// Sends one datagram, waiting up to the patience for room in the backup's queue (unix;
    /// UDP never waits). Fails at once when no backup listens, with `WouldBlock` when the
    /// patience ran out.
    pub fn send_patiently(&self, datagram: &[u8]) -> io::Result<()> {
        match self {
            Sender::Unix { patient, path, .. } => {
                let patience = patient.write_timeout()?;
                let started = std::time::Instant::now();
                loop {
                    match patient.send_to(datagram, path) {
                        // A send with a timeout is not restarted after a signal handler, even
                        // under SA_RESTART (signal(7)): the program's own signals must not
                        // cost it a checkpoint.
                        Err(e)
                            if e.kind() == io::ErrorKind::Interrupted
                                && patience.is_none_or(|patience| started.elapsed() < patience) => {
                        }
                        sent => return sent.map(drop),
                    }
                }
            }
            Sender::Udp { .. } => self.send(datagram),
        }
    }

    /// The largest datagram this transport carries, and its name for errors.
    pub fn limit(&self) -> (usize, &'static str) {
        match self {
            Sender::Unix { hasty, .. } => {
                // A unix datagram may be as large as the sender's buffer, less a little
                // bookkeeping (the kernel refuses `len > sndbuf - 32`).
                let buffer = rustix::net::sockopt::socket_send_buffer_size(hasty)
                    .unwrap_or(UNIX_RECEIVE_LIMIT);
                (buffer.saturating_sub(32).min(UNIX_RECEIVE_LIMIT), "unix")
            }
            Sender::Udp { .. } => (UDP_LIMIT, "UDP"),
        }
    }
}

/// The backup's end.
pub(crate) enum Receiver {
    Unix { socket: UnixDatagram, path: PathBuf },
    Udp { socket: UdpSocket },
}

impl Receiver {
    /// Binds the backup's socket. With the unix transport a socket file left by a dead
    /// backup is removed first: the caller holds the backup lock, so no live backup uses it.
    pub fn bind(transport: &Transport, backup_socket: &Path) -> Result<Receiver, PairError> {
        match transport {
            Transport::Unix => {
                match std::fs::remove_file(backup_socket) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        let what = format!("remove the stale socket {}", backup_socket.display());
                        return Err(PairError::io(what, e));
                    }
                }
                let socket = UnixDatagram::bind(backup_socket)
                    .map_err(|e| PairError::io(format!("bind {}", backup_socket.display()), e))?;
                Ok(Receiver::Unix {
                    socket,
                    path: backup_socket.to_path_buf(),
                })
            }
            Transport::Udp { listen, .. } => {
                let socket = UdpSocket::bind(listen)
                    .map_err(|e| PairError::io(format!("bind UDP {listen}"), e))?;
                Ok(Receiver::Udp { socket })
            }
        }
    }

    /// A buffer large enough for any datagram the primary sends.
    pub fn buffer(&self) -> Vec<u8> {
        let size = match self {
            Receiver::Unix { .. } => UNIX_RECEIVE_LIMIT,
            Receiver::Udp { .. } => 64 * 1024,
        };
        vec![0; size]
    }

    /// The next datagram's length in `buffer`, or `None` when `timeout` passes first (or a
    /// signal interrupts the wait: the caller looks at the clock either way).
    pub fn receive(&self, buffer: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        // A zero timeout would mean "forever" to SO_RCVTIMEO.
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        let received = match self {
            Receiver::Unix { socket, .. } => socket
                .set_read_timeout(timeout)
                .and_then(|()| socket.recv(buffer)),
            Receiver::Udp { socket } => socket
                .set_read_timeout(timeout)
                .and_then(|()| socket.recv(buffer)),
        };
        match received {
            Ok(length) => Ok(Some(length)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Stops listening, and removes the unix socket's file so that the next backup binds a
    /// fresh one. Called by a backup taking over, while it still holds the backup lock.
    pub fn release(self) {
        if let Receiver::Unix { socket, path } = self {
            let _ = std::fs::remove_file(&path);
            drop(socket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_millis(50);

    #[test]
    fn a_patient_send_waits_for_room_and_then_gives_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("counter.backup");
        let receiver = Receiver::bind(&Transport::Unix, &path).expect("bind");
        let sender = Sender::open(&Transport::Unix, &path, PATIENCE).expect("sender");
        // Fill the backup's queue: it does not read.
        let mut queued = 0;
        while sender.send(b"heartbeat").is_ok() {
            queued += 1;
            assert!(queued < 100_000, "the queue never fills");
        }
        let started = std::time::Instant::now();
        let error = sender.send_patiently(b"checkpoint").expect_err("no room");
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert!(started.elapsed() >= PATIENCE, "it did not wait");
        // Room again: a patient send goes through.
        let mut buffer = receiver.buffer();
        receiver
            .receive(&mut buffer, Duration::from_secs(5))
            .expect("receive")
            .expect("a datagram");
        sender.send_patiently(b"checkpoint").expect("room for one");
    }

    #[test]
    fn a_datagram_reaches_the_unix_backup_and_silence_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("counter.backup");
        let sender = Sender::open(&Transport::Unix, &path, PATIENCE).expect("sender");
        assert!(sender.send(b"early").is_err(), "nobody listens yet");
        let receiver = Receiver::bind(&Transport::Unix, &path).expect("bind");
        sender.send(b"hello").expect("send");
        let mut buffer = receiver.buffer();
        let length = receiver
            .receive(&mut buffer, Duration::from_secs(5))
            .expect("receive")
            .expect("a datagram");
        assert_eq!(&buffer[..length], b"hello");
        let silence = receiver
            .receive(&mut buffer, Duration::from_millis(10))
            .expect("receive");
        assert_eq!(silence, None);
        receiver.release();
        assert!(!path.exists());
    }

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("counter.backup");
        drop(UnixDatagram::bind(&path).expect("bind"));
        assert!(path.exists());
        let receiver = Receiver::bind(&Transport::Unix, &path).expect("rebind");
        let sender = Sender::open(&Transport::Unix, &path, PATIENCE).expect("sender");
        sender.send(b"again").expect("send");
        let mut buffer = receiver.buffer();
        assert_eq!(
            receiver
                .receive(&mut buffer, Duration::from_secs(5))
                .expect("receive"),
            Some(5)
        );
    }

    #[test]
    fn a_datagram_reaches_the_udp_backup() {
        // A port found free may be taken again before the receiver binds it (other
        // tests' senders bind ephemeral ports too): try a few.
        let (transport, receiver) = (0..20)
            .find_map(|_| {
                let probe = UdpSocket::bind("127.0.0.1:0").expect("probe");
                let address = probe.local_addr().expect("address");
                drop(probe);
                let transport = Transport::Udp {
                    listen: address,
                    peer: address,
                };
                let receiver = Receiver::bind(&transport, Path::new("unused")).ok()?;
                Some((transport, receiver))
            })
            .expect("a free UDP port in twenty tries");
        let sender = Sender::open(&transport, Path::new("unused"), PATIENCE).expect("sender");
        assert_eq!(sender.limit(), (UDP_LIMIT, "UDP"));
        sender.send(b"hello").expect("send");
        let mut buffer = receiver.buffer();
        assert_eq!(
            receiver
                .receive(&mut buffer, Duration::from_secs(5))
                .expect("receive"),
            Some(5)
        );
    }
}
