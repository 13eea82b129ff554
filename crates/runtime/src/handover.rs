//! The channel between a primary taskmaster and its backup (`taskmaster run --pair`).
//!
//! The primary sends its backup, on every change, the supervisor's state and the descriptors
//! the backup needs to carry on after a takeover: a pidfd for every child and the read ends of
//! the children's output pipes. The channel is a unix stream socket carrying messages; each is
//! a header (bytes: the caller's JSON) plus descriptors passed with SCM_RIGHTS.
//!
//! A stream, not datagrams, because a header holds the whole supervisor state and may be
//! megabytes, more than a datagram can carry. A stream has no message boundaries, so each
//! message is framed: an 8-byte prefix, the header's length and the number of descriptors (each
//! a little-endian u32), then the header. The descriptors go in the same `sendmsg` as the
//! frame's first bytes, and the kernel attaches them to those bytes: the receiver gets them
//! with the read that reaches the frame's start, never with another message's bytes, as long
//! as it reads no further than the frame it is in, which [`Channel::recv`] never does. The
//! announced count lets the receiver check that none went missing.
//!
//! Limits: at most [`MAX_FDS_PER_MESSAGE`] descriptors per message (the kernel's SCM_MAX_FD;
//! the caller sends a few per child, one message per child or per handful of children), and a
//! header of at most [`MAX_HEADER`] bytes, so that a corrupt or hostile length cannot make the
//! receiver allocate without bound. The receiver grows its buffer as bytes arrive, so even a
//! length under the limit costs only what is really sent.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::UnixStream;

use crate::sys;

/// The most descriptors one message carries: the kernel's SCM_MAX_FD, the most one `sendmsg`
/// may pass.
pub(crate) const MAX_FDS_PER_MESSAGE: usize = 253;

/// The largest header a message may have: 256 MiB, far above any supervisor state.
pub(crate) const MAX_HEADER: usize = 256 << 20;

/// The frame prefix: header length and descriptor count, each a little-endian u32.
const PREFIX_LEN: usize = 8;

/// The receive buffer starts this big and doubles as bytes arrive, up to the announced length.
const FIRST_HEADER_ROOM: usize = 64 << 10;

/// Room for the control messages of one `recvmsg`: the descriptors of one message at most,
/// since the kernel ends a read at the bytes that carry descriptors.
const CONTROL_ROOM: usize = rustix::cmsg_space!(ScmRights(MAX_FDS_PER_MESSAGE));

/// One end of the channel between a primary and its backup.
///
/// [`Channel::recv`] is cancel-safe: a message partly received stays in the channel, and the
/// next call goes on with it. [`Channel::send`] is not: a send given up half-way leaves half a
/// message in the stream, after which the channel is useless. After any error the stream is out
/// of step; drop the channel.
pub(crate) struct Channel {
    stream: UnixStream,
    incoming: Incoming,
    /// Bytes received so far, of whole messages and of the one in progress.
    bytes_received: u64,
}

impl Channel {
    /// A channel over a connected unix stream socket. The socket must not have SO_PASSCRED set
    /// (none of ours does): the channel expects descriptors only.
    pub(crate) fn new(stream: UnixStream) -> Channel {
        Channel {
            stream,
            incoming: Incoming::default(),
            bytes_received: 0,
        }
    }

    /// Two connected ends (`socketpair`), as a primary creates before spawning its backup.
    #[cfg_attr(not(test), allow(dead_code))] // the tests' way in
    pub(crate) fn pair() -> io::Result<(Channel, Channel)> {
        let (one, other) = UnixStream::pair()?;
        Ok((Channel::new(one), Channel::new(other)))
    }

    /// Sends one message: `header` and `fds`, which the receiver gets as its own descriptors
    /// (the kernel duplicates them into the receiver; ours stay open). Fails with
    /// `InvalidInput` for more than [`MAX_FDS_PER_MESSAGE`] descriptors or a header over
    /// [`MAX_HEADER`], without sending anything.
    #[cfg_attr(not(test), allow(dead_code))] // the primary sends with `send_blocking`
    pub(crate) async fn send(&mut self, header: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut frame = Frame::new(header, fds)?;
        while !frame.is_sent() {
            self.stream
                .async_io(Interest::WRITABLE, || frame.send_some(self.stream.as_fd()))
                .await?;
        }
        Ok(())
    }

    /// Receives the next message: its header and its descriptors (close-on-exec, now ours), or
    /// `None` at the end of the stream (the peer closed it, or died) between two messages. An
    /// end in the middle of a message is an `UnexpectedEof` error; a prefix that announces more
    /// than the limits, or descriptors that do not match the announced count, `InvalidData`.
    pub(crate) async fn recv(&mut self) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        let Channel {
            stream,
            incoming,
            bytes_received,
        } = self;
        loop {
            if incoming.is_complete() {
                return std::mem::take(incoming).into_message().map(Some);
            }
            let step = stream
                .async_io(Interest::READABLE, || incoming.read_some(stream.as_fd()))
                .await;
            match step {
                Ok(Read::Bytes(count)) => *bytes_received += count as u64,
                Ok(Read::End) if incoming.is_empty() => return Ok(None),
                Ok(Read::End) => {
                    *incoming = Incoming::default();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the handover channel in the middle of a message",
                    ));
                }
                Err(error) => {
                    *incoming = Incoming::default();
                    return Err(error);
                }
            }
        }
    }

    /// How many bytes [`Channel::recv`] has received so far, the message in progress's
    /// included: a message that takes long to arrive is still a peer talking.
    pub(crate) fn bytes_received(&self) -> u64 {
        self.bytes_received
    }
}

/// Sends one message as [`Channel::send`] does, on a blocking socket (a thread's own): fails
/// once the socket's send timeout passes without a byte sent, not when a signal interrupts.
pub(crate) fn send_blocking(
    socket: &std::os::unix::net::UnixStream,
    header: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let timeout = socket.write_timeout()?;
    let mut frame = Frame::new(header, fds)?;
    while !frame.is_sent() {
        sys::restarting(timeout, || frame.send_some(socket.as_fd()))?;
    }
    Ok(())
}

/// One message on its way out: what is sent of it so far.
struct Frame<'a> {
    prefix: [u8; PREFIX_LEN],
    header: &'a [u8],
    fds: &'a [BorrowedFd<'a>],
    control_space: Vec<MaybeUninit<u8>>,
    sent: usize,
}

impl<'a> Frame<'a> {
    fn new(header: &'a [u8], fds: &'a [BorrowedFd<'a>]) -> io::Result<Frame<'a>> {
        Ok(Frame {
            prefix: encode_prefix(header.len(), fds.len())?,
            header,
            fds,
            control_space: vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))],
            sent: 0,
        })
    }

    fn is_sent(&self) -> bool {
        self.sent == PREFIX_LEN + self.header.len()
    }

    /// One `sendmsg` of what is left.
    fn send_some(&mut self, socket: BorrowedFd<'_>) -> io::Result<()> {
        let sent = self.sent;
        let (prefix_rest, header_rest) = if sent < PREFIX_LEN {
            (&self.prefix[sent..], self.header)
        } else {
            (&self.prefix[..0], &self.header[sent - PREFIX_LEN..])
        };
        let iov = [IoSlice::new(prefix_rest), IoSlice::new(header_rest)];
        let mut control = SendAncillaryBuffer::new(&mut self.control_space);
        // The descriptors go with the first bytes only. A call that fails sent nothing,
        // descriptors included, so a retry sends them again.
        if sent == 0 && !self.fds.is_empty() {
            let pushed = control.push(SendAncillaryMessage::ScmRights(self.fds));
            debug_assert!(pushed, "control space is sized for the descriptors");
        }
        let written = sendmsg(socket, &iov, &mut control, SendFlags::NOSIGNAL)?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.sent += written;
        Ok(())
    }
}

/// The frame prefix for a header of `header_len` bytes and `fd_count` descriptors.
fn encode_prefix(header_len: usize, fd_count: usize) -> io::Result<[u8; PREFIX_LEN]> {
    if fd_count > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{fd_count} descriptors in one message; the most is {MAX_FDS_PER_MESSAGE}"),
        ));
    }
    if header_len > MAX_HEADER {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a header of {header_len} bytes; the most is {MAX_HEADER}"),
        ));
    }
    let mut prefix = [0; PREFIX_LEN];
    // Both fit in a u32: checked against the limits above.
    prefix[..4].copy_from_slice(&(header_len as u32).to_le_bytes());
    prefix[4..].copy_from_slice(&(fd_count as u32).to_le_bytes());
    Ok(prefix)
}

/// What one `recvmsg` gave.
enum Read {
    /// Some bytes, how many (and perhaps descriptors).
    Bytes(usize),
    /// The end of the stream.
    End,
}

/// The message being received, kept between reads.
#[derive(Default)]
struct Incoming {
    prefix: [u8; PREFIX_LEN],
    prefix_filled: usize,
    /// What the prefix announced, once it is complete.
    announced: Option<Announced>,
    /// The header so far: `header[..header_filled]` is received, the rest is room.
    header: Vec<u8>,
    header_filled: usize,
    fds: Vec<OwnedFd>,
}

#[derive(Clone, Copy)]
struct Announced {
    header_len: usize,
    fd_count: usize,
}

impl Incoming {
    fn is_empty(&self) -> bool {
        self.prefix_filled == 0 && self.fds.is_empty()
    }

    fn is_complete(&self) -> bool {
        self.announced
            .is_some_and(|announced| self.header_filled == announced.header_len)
    }

    /// One `recvmsg` of at most what is left of this message, keeping what arrives.
    /// `WouldBlock` when nothing is there yet.
    fn read_some(&mut self, socket: BorrowedFd<'_>) -> io::Result<Read> {
        let buffer = match self.announced {
            None => &mut self.prefix[self.prefix_filled..],
            Some(announced) => {
                if self.header_filled == self.header.len() {
                    let room = (self.header.len() * 2)
                        .max(FIRST_HEADER_ROOM)
                        .min(announced.header_len);
                    self.header.resize(room, 0);
                }
                &mut self.header[self.header_filled..]
            }
        };
        let mut control_space = [MaybeUninit::uninit(); CONTROL_ROOM];
        let mut control = RecvAncillaryBuffer::new(&mut control_space);
        let received = recvmsg(
            socket,
            &mut [IoSliceMut::new(buffer)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                self.fds.extend(fds);
            }
        }
        if received.flags.contains(ReturnFlags::CTRUNC) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "descriptors were lost: more came with one read than a message may carry",
            ));
        }
        if received.bytes == 0 {
            return Ok(Read::End);
        }
        match self.announced {
            None => {
                self.prefix_filled += received.bytes;
                if self.prefix_filled == PREFIX_LEN {
                    self.announced = Some(decode_prefix(self.prefix)?);
                }
            }
            Some(_) => self.header_filled += received.bytes,
        }
        Ok(Read::Bytes(received.bytes))
    }

    /// The complete message, checked against what its prefix announced.
    fn into_message(mut self) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
        let announced = self.announced.map_or(0, |announced| announced.fd_count);
        if self.fds.len() != announced {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a message announced {announced} descriptors but came with {}",
                    self.fds.len()
                ),
            ));
        }
        self.header.truncate(self.header_filled);
        Ok((self.header, self.fds))
    }
}

/// For the fuzz target: a frame's prefix decoded (a wrong one is an error, never a panic), and
/// what it announces checked against what follows.
pub(crate) fn fuzz_frame(data: &[u8]) {
    let Some(prefix) = data
        .get(..PREFIX_LEN)
        .and_then(|p| <[u8; PREFIX_LEN]>::try_from(p).ok())
    else {
        return;
    };
    if let Ok(announced) = decode_prefix(prefix) {
        let _complete = data.len() - PREFIX_LEN >= announced.header_len;
    }
}

/// The header length and descriptor count a prefix announces, within the limits.
fn decode_prefix(prefix: [u8; PREFIX_LEN]) -> io::Result<Announced> {
    let [a, b, c, d, e, f, g, h] = prefix;
    let header_len = u32::from_le_bytes([a, b, c, d]) as usize;
    let fd_count = u32::from_le_bytes([e, f, g, h]) as usize;
    if header_len > MAX_HEADER || fd_count > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a message announces a header of {header_len} bytes and {fd_count} \
                 descriptors, over the limits ({MAX_HEADER} bytes, {MAX_FDS_PER_MESSAGE} \
                 descriptors): not a handover message, or a corrupt stream"
            ),
        ));
    }
    Ok(Announced {
        header_len,
        fd_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Seek, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use taskmaster_core::Signal;
    use tokio::io::AsyncWriteExt;

    use crate::adopt::pidfd_of;
    use crate::sys;

    /// Generous: these wait for the kernel and a tiny process, never for a timer.
    const DEADLINE: Duration = Duration::from_secs(20);

    async fn recv(channel: &mut Channel) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        tokio::time::timeout(DEADLINE, channel.recv())
            .await
            .expect("a message within the deadline")
    }

    /// A JSON-ish header of `len` bytes whose every byte depends on its position, so that a
    /// lost, repeated or reordered chunk shows.
    fn big_header(len: usize) -> Vec<u8> {
        let mut header = b"{\"state\":\"".to_vec();
        let mut index = 0u64;
        while header.len() + 2 < len {
            header.push(b'a' + (index.wrapping_mul(2654435761) >> 7) as u8 % 26);
            index += 1;
        }
        header.extend_from_slice(b"\"}");
        header
    }

    #[tokio::test]
    async fn a_five_megabyte_header_and_three_descriptors_arrive_intact_and_work() {
        let (mut primary, mut backup) = Channel::pair().expect("socketpair");
        let header = big_header(5 << 20);

        let (pipe_read, pipe_write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
        let mut child = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let pidfd = pidfd_of(child.id()).expect("pidfd");
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(b"file contents").expect("write");

        // Sender and receiver at once: 5 MB is far more than the socket buffer holds.
        let fds = [pipe_read.as_fd(), pidfd.as_fd(), file.as_fd()];
        let (sent, received) = tokio::join!(primary.send(&header, &fds), recv(&mut backup));
        sent.expect("send");
        let (received_header, received_fds) = received.expect("recv").expect("a message");
        assert!(received_header == header, "the header arrived changed");
        let [received_pipe, received_pidfd, received_file]: [OwnedFd; 3] =
            received_fds.try_into().expect("three descriptors");
        for fd in [&received_pipe, &received_pidfd, &received_file] {
            let flags = rustix::io::fcntl_getfd(fd).expect("F_GETFD");
            assert!(
                flags.contains(rustix::io::FdFlags::CLOEXEC),
                "not close-on-exec"
            );
        }

        // The pipe: what we write into our write end comes out of the received read end.
        drop(pipe_read);
        rustix::io::write(&pipe_write, b"through the pipe").expect("write the pipe");
        drop(pipe_write);
        let mut from_pipe = String::new();
        std::fs::File::from(received_pipe)
            .read_to_string(&mut from_pipe)
            .expect("read the pipe");
        assert_eq!(from_pipe, "through the pipe");

        // The pidfd: it refers to the child (signal 0 reaches it; KILL through it ends it).
        drop(pidfd);
        assert!(sys::pidfd_is_unreaped(received_pidfd.as_fd()).expect("signal 0"));
        sys::pidfd_send_signal(received_pidfd.as_fd(), Signal::KILL).expect("KILL by pidfd");
        let status = child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));

        // The file: the same open file, offset included.
        let mut received_file = std::fs::File::from(received_file);
        received_file.rewind().expect("seek");
        let mut contents = String::new();
        received_file.read_to_string(&mut contents).expect("read");
        assert_eq!(contents, "file contents");
    }

    /// Signals handled while a blocking send waits (the daemon's SIGCHLDs; SA_RESTART does not
    /// restart a send with a timeout) do not break it: the message arrives whole.
    #[test]
    fn signals_during_a_blocking_send_do_not_break_it() {
        extern "C" fn nothing(_: libc::c_int) {}
        // SIGWINCH: nothing else in these tests handles it. As tokio installs its handlers.
        // SAFETY: a handler that does nothing is async-signal-safe; the struct is zeroed, then
        // its fields set.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = nothing as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            assert_eq!(
                libc::sigaction(libc::SIGWINCH, &action, std::ptr::null_mut()),
                0
            );
        }
        let (sender, mut receiver) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        sender
            .set_write_timeout(Some(DEADLINE))
            .expect("a send timeout");
        let header = big_header(8 << 20);
        let sending = std::thread::spawn({
            let header = header.clone();
            move || send_blocking(&sender, &header, &[])
        });
        let thread = {
            use std::os::unix::thread::JoinHandleExt;
            sending.as_pthread_t()
        };
        // A signal at the sender before each read, while it mostly waits for room.
        let mut received = Vec::new();
        let mut chunk = vec![0; 16 << 10];
        while received.len() < PREFIX_LEN + header.len() {
            if !sending.is_finished() {
                // SAFETY: the thread is alive (not finished, and joined only below).
                unsafe { libc::pthread_kill(thread, libc::SIGWINCH) };
            }
            let read = receiver.read(&mut chunk).expect("read");
            assert_ne!(read, 0, "the stream ended early");
            received.extend_from_slice(&chunk[..read]);
        }
        sending
            .join()
            .expect("the sender")
            .expect("a send that signals did not break");
        assert!(
            received[PREFIX_LEN..] == header[..],
            "the header arrived changed"
        );
    }

    #[tokio::test]
    async fn a_blocking_sender_frames_as_the_async_one() {
        let (sender, receiver) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        receiver.set_nonblocking(true).expect("nonblocking");
        let mut backup = Channel::new(UnixStream::from_std(receiver).expect("register"));
        let (read, _write) = rustix::pipe::pipe().expect("pipe");
        send_blocking(&sender, b"{\"one\":1}", &[read.as_fd()]).expect("send");
        send_blocking(&sender, b"{\"two\":2}", &[]).expect("send");
        let (header, fds) = recv(&mut backup).await.expect("recv").expect("a message");
        assert_eq!((header.as_slice(), fds.len()), (&b"{\"one\":1}"[..], 1));
        let (header, fds) = recv(&mut backup).await.expect("recv").expect("a message");
        assert_eq!((header.as_slice(), fds.len()), (&b"{\"two\":2}"[..], 0));
    }

    #[tokio::test]
    async fn messages_keep_their_boundaries_and_their_own_descriptors() {
        let (mut primary, mut backup) = Channel::pair().expect("socketpair");
        let (read_a, _write_a) = rustix::pipe::pipe().expect("pipe");
        let (read_b, _write_b) = rustix::pipe::pipe().expect("pipe");
        primary
            .send(b"{\"one\":1}", &[read_a.as_fd()])
            .await
            .expect("send");
        primary.send(b"", &[]).await.expect("send");
        primary
            .send(b"{\"three\":3}", &[read_a.as_fd(), read_b.as_fd()])
            .await
            .expect("send");

        let (header, fds) = recv(&mut backup).await.expect("recv").expect("one");
        assert_eq!((header.as_slice(), fds.len()), (&b"{\"one\":1}"[..], 1));
        let (header, fds) = recv(&mut backup).await.expect("recv").expect("two");
        assert_eq!((header.as_slice(), fds.len()), (&b""[..], 0));
        let (header, fds) = recv(&mut backup).await.expect("recv").expect("three");
        assert_eq!((header.as_slice(), fds.len()), (&b"{\"three\":3}"[..], 2));
        let inode = |fd: &OwnedFd| rustix::fs::fstat(fd).expect("fstat").st_ino;
        assert_eq!(inode(&fds[0]), inode(&read_a));
        assert_eq!(inode(&fds[1]), inode(&read_b));
    }

    #[tokio::test]
    async fn end_of_stream_between_messages_is_none() {
        let (mut primary, mut backup) = Channel::pair().expect("socketpair");
        primary.send(b"{}", &[]).await.expect("send");
        drop(primary);
        assert!(recv(&mut backup).await.expect("recv").is_some());
        assert!(recv(&mut backup).await.expect("recv at the end").is_none());
    }

    #[tokio::test]
    async fn end_of_stream_inside_a_message_is_an_error() {
        let (mut raw, other) = UnixStream::pair().expect("socketpair");
        let mut backup = Channel::new(other);
        let mut partial = encode_prefix(100, 0).expect("prefix").to_vec();
        partial.extend_from_slice(b"only forty bytes of the hundred announced");
        raw.write_all(&partial).await.expect("write");
        drop(raw);
        let error = recv(&mut backup).await.expect_err("a cut message");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_garbage_length_is_an_error_without_a_huge_allocation() {
        let (mut raw, other) = UnixStream::pair().expect("socketpair");
        let mut backup = Channel::new(other);
        raw.write_all(&[0xff; 64]).await.expect("write");
        let error = recv(&mut backup).await.expect_err("garbage");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("4294967295 bytes"), "{error}");
    }

    #[tokio::test]
    async fn a_length_under_the_limit_costs_only_what_arrives() {
        let (mut raw, other) = UnixStream::pair().expect("socketpair");
        let mut backup = Channel::new(other);
        raw.write_all(&encode_prefix(MAX_HEADER, 0).expect("prefix"))
            .await
            .expect("write");
        raw.write_all(b"a few bytes").await.expect("write");
        drop(raw);
        assert_eq!(
            recv(&mut backup).await.expect_err("cut").kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(backup.incoming.header.capacity() < MAX_HEADER / 16);
    }

    /// A message that has only begun to arrive shows in the count (the backup's sign that
    /// its primary is talking), and the whole of it once it is across.
    #[tokio::test]
    async fn bytes_received_counts_a_message_in_progress() {
        let (mut raw, other) = UnixStream::pair().expect("socketpair");
        let mut backup = Channel::new(other);
        raw.write_all(&encode_prefix(20, 0).expect("prefix"))
            .await
            .expect("write");
        raw.write_all(b"ten bytes.").await.expect("write");
        let waited = tokio::time::timeout(Duration::from_millis(50), backup.recv()).await;
        assert!(waited.is_err(), "half a message is not a message");
        assert_eq!(backup.bytes_received(), 18);
        raw.write_all(b"ten more..").await.expect("write");
        let (header, _) = recv(&mut backup).await.expect("recv").expect("a message");
        assert_eq!(header, b"ten bytes.ten more..");
        assert_eq!(backup.bytes_received(), 28);
    }

    #[tokio::test]
    async fn missing_descriptors_are_an_error() {
        let (mut raw, other) = UnixStream::pair().expect("socketpair");
        let mut backup = Channel::new(other);
        raw.write_all(&encode_prefix(2, 1).expect("prefix"))
            .await
            .expect("write");
        raw.write_all(b"{}").await.expect("write");
        let error = recv(&mut backup).await.expect_err("no descriptor came");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn the_limits_are_refused_before_anything_is_sent() {
        let (mut primary, mut backup) = Channel::pair().expect("socketpair");
        let (read_end, _write_end) = rustix::pipe::pipe().expect("pipe");
        let too_many = vec![read_end.as_fd(); MAX_FDS_PER_MESSAGE + 1];
        let error = primary.send(b"{}", &too_many).await.expect_err("254");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let most = vec![read_end.as_fd(); MAX_FDS_PER_MESSAGE];
        primary.send(b"{}", &most).await.expect("253");
        let (_, fds) = recv(&mut backup).await.expect("recv").expect("a message");
        assert_eq!(fds.len(), MAX_FDS_PER_MESSAGE);
    }

    #[tokio::test]
    async fn a_cancelled_recv_loses_nothing() {
        let (mut primary, mut backup) = Channel::pair().expect("socketpair");
        let header = big_header(1 << 20);
        let (read_end, _write_end) = rustix::pipe::pipe().expect("pipe");
        let fds = [read_end.as_fd()];
        let sending = primary.send(&header, &fds);
        tokio::pin!(sending);
        // Alternate: let the sender fill the socket, then start a recv and cancel it after one
        // read, until the whole message is across.
        let mut message = None;
        for _ in 0..100_000 {
            tokio::select! {
                biased;
                sent = &mut sending => { sent.expect("send"); break; }
                () = tokio::task::yield_now() => {}
            }
            tokio::select! {
                biased;
                received = backup.recv() => { message = Some(received); break; }
                () = tokio::task::yield_now() => {}
            }
        }
        let (received, fds) = match message {
            Some(received) => received.expect("recv").expect("a message"),
            None => recv(&mut backup).await.expect("recv").expect("a message"),
        };
        assert!(received == header, "the header arrived changed");
        assert_eq!(fds.len(), 1);
    }
}
