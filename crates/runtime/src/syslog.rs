//! Output lines to the local syslog socket (`stdout: syslog`): how a line becomes a datagram,
//! and the connection that carries it.
//!
//! Each line is one datagram on a unix SOCK_DGRAM socket connected to `syslog_socket`
//! (/dev/log), written the way glibc's syslog(3) writes there: `<PRI>Mmm dd hh:mm:ss TAG[PID]:
//! LINE` (RFC 3164's format, in local time). The facility is `user`, supervisord's (it calls
//! Python's `syslog.syslog` without `openlog`); the severity is `info` for stdout and `err` for
//! stderr; the tag is the process's name and PID its child's.
//!
//! A line ends at a newline, which is not sent. A line that grows past [`MAX_LINE`] bytes without
//! one is sent in pieces of that size, and what is left when the pipe closes is sent as the last
//! line ([`Lines`]).
//!
//! Syslog may be missing (a container without /dev/log) or stop reading; neither may hold a
//! program up. A [`Link`] that cannot deliver a line drops it, says so once in the event log,
//! and tries again with the first line a second later; a send waits at most [`SEND_TIMEOUT`] for
//! room in the socket. When lines get through again, it says how many were dropped.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use taskmaster_config::{os_reason, Stream};

/// The longest line sent whole; a longer one is sent in pieces of this size. Far below what a
/// datagram may carry (the socket's send buffer), and what rsyslog and journald keep.
pub const MAX_LINE: usize = 64 * 1024;

/// How long a send may wait for syslog to make room before the line is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// How long lines are dropped after syslog could not be reached, before the next try.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// syslog's facility `user` (1), shifted as PRI wants it.
const FACILITY_USER: u8 = 1 << 3;
/// syslog's severities.
const SEVERITY_ERR: u8 = 3;
const SEVERITY_INFO: u8 = 6;

/// How one process's lines are written as datagrams.
pub struct Format {
    /// `<PRI>`'s number: facility and severity.
    priority: u8,
    tag: String,
    pid: u32,
}

impl Format {
    /// Lines of `stream`, from the child `pid` of the process named `tag`.
    pub fn new(stream: Stream, tag: &str, pid: u32) -> Format {
        let severity = match stream {
            Stream::Stdout => SEVERITY_INFO,
            Stream::Stderr => SEVERITY_ERR,
        };
        Format {
            priority: FACILITY_USER | severity,
            tag: tag.to_string(),
            pid,
        }
    }

    /// `<PRI>STAMP TAG[PID]: LINE`, `stamp` being [`timestamp`]'s.
    pub fn datagram(&self, stamp: &str, line: &[u8]) -> Vec<u8> {
        let header = format!("<{}>{stamp} {}[{}]: ", self.priority, self.tag, self.pid);
        let mut datagram = Vec::with_capacity(header.len() + line.len());
        datagram.extend_from_slice(header.as_bytes());
        datagram.extend_from_slice(line);
        datagram
    }
}

/// Now, as RFC 3164 and glibc write it: `Jan  5 09:04:02` (local time, the day padded with a
/// space).
pub fn timestamp() -> String {
    jiff::Zoned::now().strftime("%b %e %H:%M:%S").to_string()
}

/// Cuts bytes into lines: each ends at a newline (left out), or is [`MAX_LINE`] bytes long.
#[derive(Debug, Default)]
pub struct Lines {
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
}

impl Lines {
    /// Takes in `bytes`, and gives `line` each line they complete, in order.
    pub fn push(&mut self, mut bytes: &[u8], line: &mut dyn FnMut(&[u8])) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&bytes[..end]);
            self.cut_long(line);
            line(&self.partial);
            self.partial.clear();
            bytes = &bytes[end + 1..];
        }
        self.partial.extend_from_slice(bytes);
        self.cut_long(line);
    }

    /// Gives `line` what is left (the pipe closed before its newline came), if anything.
    pub fn finish(&mut self, line: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() {
            line(&self.partial);
            self.partial.clear();
        }
    }

    /// Sends the pieces of a line longer than [`MAX_LINE`] as they fill.
    fn cut_long(&mut self, line: &mut dyn FnMut(&[u8])) {
        while self.partial.len() > MAX_LINE {
            line(&self.partial[..MAX_LINE]);
            self.partial.drain(..MAX_LINE);
        }
    }
}

/// The way to one syslog socket, shared by every stream that sends there: one connection, one
/// report per outage.
pub struct Link {
    socket: PathBuf,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    /// Connected to the socket; `None` until the first line, and after a failure.
    connection: Option<UnixDatagram>,
    /// Set while syslog cannot be reached.
    outage: Option<Outage>,
}

struct Outage {
    /// Lines are dropped until then.
    retry_at: Instant,
    dropped: u64,
}

impl Link {
    /// A link to `socket`; nothing is connected before the first line.
    pub fn new(socket: &Path) -> Link {
        Link {
            socket: socket.to_path_buf(),
            state: Mutex::new(LinkState::default()),
        }
    }

    /// Sends one datagram, or drops it while syslog cannot be reached. `report` hears when
    /// syslog stops taking lines and when it takes them again.
    pub fn send(&self, datagram: &[u8], report: &dyn Fn(String)) {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        if let Some(outage) = &mut state.outage {
            if now < outage.retry_at {
                outage.dropped += 1;
                return;
            }
        }
        match self.deliver(&mut state.connection, datagram) {
            Ok(()) => {
                if let Some(outage) = state.outage.take() {
                    report(format!(
                        "syslog: {} takes lines again; {} line(s) were dropped meanwhile",
                        self.socket.display(),
                        outage.dropped
                    ));
                }
            }
            Err(e) => {
                state.connection = None;
                let retry_at = now + RETRY_AFTER;
                match &mut state.outage {
                    Some(outage) => {
                        outage.dropped += 1;
                        outage.retry_at = retry_at;
                    }
                    None => {
                        report(format!(
                            "syslog: cannot send to {}: {}; lines for syslog are dropped until it \
                             takes them again (tried every {}s)",
                            self.socket.display(),
                            reason(&e),
                            RETRY_AFTER.as_secs()
                        ));
                        state.outage = Some(Outage {
                            retry_at,
                            dropped: 1,
                        });
                    }
                }
            }
        }
    }

    /// Sends on the connection, made first if there is none. A connection whose other end has
    /// gone (syslog restarted) is made again once, as glibc does.
    fn deliver(&self, connection: &mut Option<UnixDatagram>, datagram: &[u8]) -> io::Result<()> {
        if let Some(connected) = connection.take() {
            match send(&connected, datagram) {
                Ok(_) => {
                    *connection = Some(connected);
                    return Ok(());
                }
                Err(e) if !is_gone(&e) => return Err(e),
                Err(_) => {}
            }
        }
        let connected = UnixDatagram::unbound()?;
        connected.connect(&self.socket)?;
        connected.set_write_timeout(Some(SEND_TIMEOUT))?;
        send(&connected, datagram)?;
        *connection = Some(connected);
        Ok(())
    }
}

/// Sends one datagram on a socket whose send timeout is [`SEND_TIMEOUT`].
pub(crate) fn send(socket: &UnixDatagram, datagram: &[u8]) -> io::Result<()> {
    crate::sys::restarting(Some(SEND_TIMEOUT), || socket.send(datagram)).map(drop)
}

/// Whether a send failed because the socket it was connected to is gone.
fn is_gone(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::ENOTCONN | libc::EPIPE)
    )
}

/// Why a send failed, in words.
fn reason(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::WouldBlock {
        format!("it took no line for {}s", SEND_TIMEOUT.as_secs())
    } else {
        os_reason(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for chunk in chunks {
            lines.push(chunk, &mut |line| out.push(line.to_vec()));
        }
        lines.finish(&mut |line| out.push(line.to_vec()));
        out
    }

    #[test]
    fn lines_end_at_newlines_across_chunks_and_the_rest_ends_with_the_pipe() {
        let out = lines_of(&[b"one\ntw", b"o\n\nthr", b"ee"]);
        assert_eq!(out, [&b"one"[..], b"two", b"", b"three"]);
        assert!(lines_of(&[b"done\n"]).len() == 1);
    }

    #[test]
    fn a_long_line_is_sent_in_pieces_of_max_line() {
        let long = vec![b'x'; 2 * MAX_LINE + 10];
        let mut text = long.clone();
        text.push(b'\n');
        let out = lines_of(&[&text[..1000], &text[1000..]]);
        let sizes: Vec<usize> = out.iter().map(Vec::len).collect();
        assert_eq!(sizes, [MAX_LINE, MAX_LINE, 10]);
        // Exactly MAX_LINE with its newline is one line, with no empty piece after it.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(lines_of(&[&exact]).len(), 1);
    }

    #[test]
    fn datagrams_are_glibcs() {
        let stdout = Format::new(Stream::Stdout, "web", 42);
        assert_eq!(
            stdout.datagram("Jan  5 09:04:02", b"hello"),
            b"<14>Jan  5 09:04:02 web[42]: hello"
        );
        let stderr = Format::new(Stream::Stderr, "web", 42);
        assert!(stderr.datagram("x", b"").starts_with(b"<11>x web[42]: "));
        let stamp = timestamp();
        // `Mmm dd hh:mm:ss`: 15 characters, the day padded to two.
        assert_eq!(stamp.len(), 15, "{stamp:?}");
        assert_eq!(&stamp[3..4], " ");
        assert_eq!(&stamp[6..7], " ");
    }

    #[test]
    fn a_missing_socket_is_reported_once_and_lines_are_dropped_until_it_takes_them() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("log");
        let link = Link::new(&path);
        let reports = std::cell::RefCell::new(Vec::new());
        let report = |message: String| reports.borrow_mut().push(message);
        link.send(b"lost 1", &report);
        link.send(b"lost 2", &report);
        assert_eq!(reports.borrow().len(), 1, "{:?}", reports.borrow());
        assert!(reports.borrow()[0].contains("dropped"), "{:?}", reports);

        let syslog = UnixDatagram::bind(&path).expect("bind the socket");
        // Lines are dropped until the retry; then the next one goes through.
        if let Ok(mut state) = link.state.lock() {
            if let Some(outage) = &mut state.outage {
                outage.retry_at = Instant::now();
            }
        }
        link.send(b"found", &report);
        let mut buffer = [0u8; 64];
        let read = syslog.recv(&mut buffer).expect("a datagram");
        assert_eq!(&buffer[..read], b"found");
        assert_eq!(reports.borrow().len(), 2);
        assert!(
            reports.borrow()[1].contains("2 line(s) were dropped"),
            "{:?}",
            reports
        );
    }
}
