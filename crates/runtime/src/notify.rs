//! taskmaster's notify socket: systemd's `sd_notify` protocol, so that a program written for
//! systemd (`Type=notify`) reports readiness, status and watchdog pings to taskmaster unchanged.
//!
//! The protocol: a child finds the socket's path in `$NOTIFY_SOCKET` and sends datagrams of
//! newline-separated `KEY=VALUE` lines (`READY=1`, `STATUS=...`, `WATCHDOG=1`...). This module
//! only receives them; what the lines mean is decided elsewhere.
//!
//! Who sent a datagram is what the kernel says, not what the datagram says: the socket has
//! SO_PASSCRED, so every datagram comes with the sender's pid, uid and gid (SCM_CREDENTIALS),
//! which a process cannot forge (only root may claim another existing process's pid). The
//! sender is often not the supervised child itself but a descendant (a shell running
//! `systemd-notify`), so [`ancestry`] walks from the sender's pid up to a child taskmaster
//! knows. The socket is writable by everyone (mode 0666): children may drop privileges, and
//! writing proves nothing anyway; the pid does.
//!
//! `BARRIER=1` comes with a file descriptor: the sender waits until every copy of it is closed,
//! which tells it that everything it sent before was received. Descriptors travel with their
//! [`Datagram`], so dropping the datagram answers the barrier.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use taskmaster_config::os_reason;
use tokio::io::Interest;

use crate::sys;

/// The most payload a datagram may carry; longer ones are cut and marked truncated. systemd's
/// own limit (PIPE_BUF), so what works with systemd works here.
pub const MAX_PAYLOAD: usize = 4096;

/// How far [`ancestry`] walks up, at most.
const MAX_ANCESTRY: usize = 64;

/// The notify socket: a unix datagram socket bound on a path, registered with tokio. The file
/// is removed when the socket is dropped (unless another socket has replaced it since).
pub struct NotifySocket {
    socket: tokio::net::UnixDatagram,
    path: PathBuf,
    /// Device and inode of the socket file we bound, to remove only our own.
    file: (u64, u64),
}

/// One datagram received on the notify socket.
#[derive(Debug)]
pub struct Datagram {
    /// The sender's pid, uid and gid as the kernel saw them (SCM_CREDENTIALS); 0 when absent,
    /// and a pid is 0 too for a sender in a pid namespace taskmaster cannot see.
    pub pid: u32,
    pub uid: u32,
    #[cfg_attr(not(test), allow(dead_code))] // kept for a complete record; only tests read it
    pub gid: u32,
    /// The datagram's bytes, at most [`MAX_PAYLOAD`].
    pub payload: Vec<u8>,
    /// The datagram was longer than [`MAX_PAYLOAD`]; `payload` holds its beginning only.
    pub truncated: bool,
    /// The descriptors that came with it (SCM_RIGHTS), close-on-exec. Dropping the datagram
    /// closes them, which answers a `BARRIER=1`.
    pub fds: Vec<OwnedFd>,
}

impl NotifySocket {
    /// Binds `path`. A socket file left by a taskmaster that died (nobody bound to it) is
    /// replaced; a socket someone is bound to, or a path that is not a socket, is an error
    /// naming it. The socket has SO_PASSCRED, so that every datagram carries the sender's
    /// kernel-checked credentials, and mode 0666 (children may drop privileges; attribution is
    /// by the kernel's pid, not by who can write). Must be called on a tokio runtime.
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        let named = |error: io::Error| {
            io::Error::new(
                error.kind(),
                format!("{}: {}", path.display(), os_reason(&error)),
            )
        };
        remove_stale_socket(path)?;
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .map_err(|e| named(e.into()))?;
        // Before bind: a datagram queued before SO_PASSCRED was set would have no credentials.
        rustix::net::sockopt::set_socket_passcred(&fd, true).map_err(|e| named(e.into()))?;
        let address = SocketAddrUnix::new(path).map_err(|e| named(e.into()))?;
        rustix::net::bind(&fd, &address).map_err(|e| named(e.into()))?;
        let finish = || -> io::Result<NotifySocket> {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
            let metadata = std::fs::symlink_metadata(path)?;
            let socket =
                tokio::net::UnixDatagram::from_std(std::os::unix::net::UnixDatagram::from(fd))?;
            Ok(NotifySocket {
                socket,
                path: path.to_path_buf(),
                file: (metadata.dev(), metadata.ino()),
            })
        };
        finish().map_err(|error| {
            let _ = std::fs::remove_file(path);
            named(error)
        })
    }

    /// The path the socket is bound on: what children get in `$NOTIFY_SOCKET`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next datagram. Never fails on a bad datagram (too long, too many descriptors, no
    /// credentials): only on a socket error. Cancel-safe: a datagram is taken off the socket
    /// only in the poll that returns it, so a `select!` that drops this future loses nothing.
    pub async fn recv(&self) -> io::Result<Datagram> {
        self.recv_with_room_for(sys::MAX_FDS_PER_DATAGRAM).await
    }

    /// [`recv`](Self::recv) with room for at most `max_fds` descriptors per datagram.
    async fn recv_with_room_for(&self, max_fds: u32) -> io::Result<Datagram> {
        let mut payload = vec![0; MAX_PAYLOAD];
        let received = self
            .socket
            .async_io(Interest::READABLE, || {
                sys::recv_with_ancillary(self.socket.as_fd(), &mut payload, max_fds)
            })
            .await?;
        payload.truncate(received.length);
        let (pid, uid, gid) = received
            .credentials
            .map_or((0, 0, 0), |c| (c.pid.unsigned_abs(), c.uid, c.gid));
        // Some descriptors did not fit and were closed by the kernel: the set that arrived is
        // incomplete and means nothing, so close it too (which also answers a barrier).
        let fds = if received.control_truncated {
            Vec::new()
        } else {
            received.fds
        };
        Ok(Datagram {
            pid,
            uid,
            gid,
            payload,
            truncated: received.truncated,
            fds,
        })
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == self.file);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes a socket file at `path` that nobody is bound to. Nothing at `path` is fine; a file
/// that is not a socket, or a socket in use, is an error naming the path.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: exists and is not a socket", path.display()),
        ));
    }
    let probe = std::os::unix::net::UnixDatagram::unbound()?;
    match probe.connect(path) {
        Ok(()) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{}: in use by another process", path.display()),
        )),
        // Nobody is bound to it: left by a process that died.
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("{}: cannot remove: {}", path.display(), os_reason(&error)),
                )
            })
        }
        // A socket of another type that is in use, or one we may not even look at.
        Err(error) => Err(io::Error::new(
            error.kind(),
            format!("{}: {}", path.display(), os_reason(&error)),
        )),
    }
}

/// `pid` and its ancestors, nearest first: `pid`, its parent, its grandparent... up to (not
/// including) pid 1, and at most 64 entries. The walk stops early at a process that is gone or
/// unreadable; `pid` itself is always first (unless it is 0: then the list is empty), so a
/// sender that already exited is still matched against taskmaster's children by its own pid.
pub fn ancestry(pid: u32) -> Vec<u32> {
    let mut chain = Vec::new();
    let mut current = pid;
    while current != 0 && chain.len() < MAX_ANCESTRY {
        chain.push(current);
        match parent_of(current) {
            Some(parent) if parent > 1 => current = parent,
            _ => break,
        }
    }
    chain
}

/// The parent pid of `pid`, from field 4 of /proc/PID/stat. Field 2 is the command name in
/// parentheses, which may itself hold spaces and ')', so the fields are read after the last ')'.
fn parent_of(pid: u32) -> Option<u32> {
    parent_in_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 4 of a /proc/PID/stat line.
fn parent_in_stat(stat: &str) -> Option<u32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // After the name: field 3 (state), then field 4 (ppid).
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Read};
    use std::os::unix::net::{UnixDatagram, UnixStream};
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::time::{Duration, Instant};

    /// Generous: these wait for the kernel and for a tiny process, never for a timer.
    const DEADLINE: Duration = Duration::from_secs(10);
    const SYSTEMD_NOTIFY: &str = "/usr/bin/systemd-notify";

    fn socket_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("notify.sock")
    }

    /// A datagram sent from this process to `path`, with `fds` passed along.
    fn send(path: &Path, payload: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let sender = UnixDatagram::unbound().unwrap();
        sender.connect(path).unwrap();
        let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
        }
        let sent = rustix::net::sendmsg(
            &sender,
            &[io::IoSlice::new(payload)],
            &mut control,
            SendFlags::empty(),
        )
        .unwrap();
        assert_eq!(sent, payload.len());
    }

    async fn next(socket: &NotifySocket) -> Datagram {
        tokio::time::timeout(DEADLINE, socket.recv())
            .await
            .expect("no datagram within the deadline")
            .unwrap()
    }

    /// Waits until `peer`'s other end is closed everywhere: a read then sees end of file.
    fn assert_closed_everywhere(peer: &mut UnixStream) {
        peer.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut byte = [0u8; 1];
        let read = peer.read(&mut byte);
        assert!(
            matches!(read, Ok(0)),
            "the passed descriptor is still open somewhere: {read:?}"
        );
    }

    /// A child process, killed (by its pid) and reaped if the test ends before it does.
    struct ChildGuard(Child);

    impl ChildGuard {
        async fn wait(&mut self, deadline: Duration) -> ExitStatus {
            let until = Instant::now() + deadline;
            loop {
                if let Some(status) = self.0.try_wait().unwrap() {
                    return status;
                }
                assert!(
                    Instant::now() < until,
                    "pid {} did not exit within {deadline:?}",
                    self.0.id()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    impl Drop for ChildGuard {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }

    #[tokio::test]
    async fn datagram_from_this_process_carries_our_pid_uid_and_gid() {
        let dir = tempfile::tempdir().unwrap();
        let socket = NotifySocket::bind(&socket_path(&dir)).unwrap();
        send(socket.path(), b"READY=1\nSTATUS=up", &[]);
        let datagram = next(&socket).await;
        assert_eq!(datagram.pid, std::process::id());
        assert_eq!(datagram.uid, rustix::process::geteuid().as_raw());
        assert_eq!(datagram.gid, rustix::process::getegid().as_raw());
        assert_eq!(datagram.payload, b"READY=1\nSTATUS=up");
        assert!(!datagram.truncated);
        assert!(datagram.fds.is_empty());
    }

    #[tokio::test]
    async fn systemd_notify_exits_once_its_barrier_fd_is_dropped() {
        assert!(
            Path::new(SYSTEMD_NOTIFY).exists(),
            "{SYSTEMD_NOTIFY} is missing: install Debian's `systemd` package (CI installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let socket = NotifySocket::bind(&socket_path(&dir)).unwrap();
        // `; exit $?` keeps the shell from exec'ing systemd-notify: the sender is then a
        // grandchild, as with a real service's start script.
        let mut child = ChildGuard(
            Command::new("sh")
                .arg("-c")
                .arg(format!("{SYSTEMD_NOTIFY} --ready --status=hi; exit $?"))
                .env("NOTIFY_SOCKET", socket.path())
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let child_pid = child.0.id();

        let mut lines = Vec::new();
        for _ in 0..10 {
            let datagram = next(&socket).await;
            // As root, systemd-notify may send with its parent's pid; as a user, with its own.
            let chain = ancestry(datagram.pid);
            assert!(
                chain.contains(&child_pid),
                "datagram from pid {} whose ancestry {chain:?} lacks the child {child_pid}",
                datagram.pid
            );
            let text = String::from_utf8_lossy(&datagram.payload).into_owned();
            let barrier = text.lines().any(|line| line == "BARRIER=1");
            if barrier {
                assert_eq!(datagram.fds.len(), 1, "BARRIER=1 comes with one descriptor");
            }
            lines.extend(text.lines().map(str::to_string));
            drop(datagram);
            if barrier {
                break;
            }
        }
        assert!(lines.iter().any(|l| l == "READY=1"), "{lines:?}");
        assert!(lines.iter().any(|l| l == "STATUS=hi"), "{lines:?}");
        assert!(lines.iter().any(|l| l == "BARRIER=1"), "{lines:?}");
        // systemd-notify gives up on an unanswered barrier after 5 s and fails.
        let status = child.wait(DEADLINE).await;
        assert!(status.success(), "systemd-notify failed: {status}");
    }

    #[tokio::test]
    async fn payload_over_the_limit_is_marked_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let socket = NotifySocket::bind(&socket_path(&dir)).unwrap();
        send(socket.path(), &[b'x'; MAX_PAYLOAD], &[]);
        send(socket.path(), &[b'y'; MAX_PAYLOAD + 1], &[]);
        let at_limit = next(&socket).await;
        assert_eq!(at_limit.payload.len(), MAX_PAYLOAD);
        assert!(!at_limit.truncated);
        let over = next(&socket).await;
        assert_eq!(over.payload.len(), MAX_PAYLOAD);
        assert!(over.truncated);
        assert_eq!(over.pid, std::process::id());
    }

    #[tokio::test]
    async fn passed_descriptors_are_closed_when_the_datagram_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let socket = NotifySocket::bind(&socket_path(&dir)).unwrap();
        let (passed, mut peer) = UnixStream::pair().unwrap();
        send(socket.path(), b"BARRIER=1", &[passed.as_fd()]);
        drop(passed);
        let datagram = next(&socket).await;
        assert_eq!(datagram.fds.len(), 1);
        drop(datagram);
        assert_closed_everywhere(&mut peer);
    }

    #[tokio::test]
    async fn descriptors_beyond_the_room_are_all_closed_and_the_sender_still_known() {
        let dir = tempfile::tempdir().unwrap();
        let socket = NotifySocket::bind(&socket_path(&dir)).unwrap();
        let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        let passed: Vec<_> = pairs.iter().map(|(passed, _)| passed.as_fd()).collect();
        send(socket.path(), b"FDSTORE=1", &passed);
        let mut peers: Vec<_> = pairs.into_iter().map(|(_, peer)| peer).collect();
        // Room for one of the three: MSG_CTRUNC.
        let datagram = tokio::time::timeout(DEADLINE, socket.recv_with_room_for(1))
            .await
            .unwrap()
            .unwrap();
        assert!(datagram.fds.is_empty());
        assert_eq!(datagram.pid, std::process::id());
        assert_eq!(datagram.payload, b"FDSTORE=1");
        drop(datagram);
        for peer in &mut peers {
            assert_closed_everywhere(peer);
        }
    }

    #[test]
    fn ancestry_of_a_grandchild_holds_its_parent_and_grandparent() {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("sleep 60 & echo $!; wait")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        let chain = ancestry(grandchild);
        let _ = crate::sys::kill(grandchild, taskmaster_core::Signal::KILL);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(chain[..2], [grandchild, child.id()], "{chain:?}");
        assert!(chain.contains(&std::process::id()), "{chain:?}");
        assert!(!chain.contains(&1) && !chain.contains(&0), "{chain:?}");
    }

    #[test]
    fn ancestry_of_a_vanished_pid_is_that_pid_and_of_zero_is_empty() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(ancestry(pid), [pid]);
        assert!(ancestry(0).is_empty());
    }

    #[test]
    fn parent_is_read_after_the_last_parenthesis_of_the_name() {
        assert_eq!(
            parent_in_stat("4242 (evil) 9 9) S 17 4242 4242 0 -1"),
            Some(17)
        );
        assert_eq!(parent_in_stat("4242 (plain) S 1 4242"), Some(1));
        assert_eq!(parent_in_stat("garbage"), None);
    }

    #[test]
    fn ancestry_reads_past_a_command_name_with_spaces_and_parentheses() {
        let dir = tempfile::tempdir().unwrap();
        // The kernel names a process after the file it executes.
        let program = dir.path().join("x) 9 9 (y");
        std::os::unix::fs::symlink("/bin/sleep", &program).unwrap();
        let mut child = Command::new(&program).arg("60").spawn().unwrap();
        let pid = child.id();
        // The kernel renames the process during exec, which spawn may return before: wait.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        while comm() != "x) 9 9 (y\n" && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let name = comm();
        let chain = ancestry(pid);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(name, "x) 9 9 (y\n");
        assert_eq!(chain[..2], [pid, std::process::id()], "{chain:?}");
    }

    #[tokio::test]
    async fn a_stale_socket_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(&dir);
        drop(UnixDatagram::bind(&path).unwrap()); // bound once, its owner gone: the file stays
        let socket = NotifySocket::bind(&path).unwrap();
        send(socket.path(), b"READY=1", &[]);
        assert_eq!(next(&socket).await.payload, b"READY=1");
    }

    #[tokio::test]
    async fn a_socket_in_use_is_not_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(&dir);
        let _first = NotifySocket::bind(&path).unwrap();
        let error = NotifySocket::bind(&path).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert!(
            error.to_string().contains(&*path.to_string_lossy()),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_path_that_is_not_a_socket_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(&dir);
        std::fs::write(&path, "precious").unwrap();
        let error = NotifySocket::bind(&path).err().unwrap();
        assert_eq!(
            error.to_string(),
            format!("{}: exists and is not a socket", path.display())
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }

    #[tokio::test]
    async fn the_socket_is_writable_by_everyone_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(&dir);
        let socket = NotifySocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666);
        drop(socket);
        assert!(!path.exists());
    }
}
