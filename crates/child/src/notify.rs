//! The sd_notify protocol: one datagram of `KEY=value` lines to the socket `NOTIFY_SOCKET`
//! names.
//!
//! Every function here is a no-op outside a supervisor, like libsystemd's `sd_notify`: with
//! `NOTIFY_SOCKET` unset (or empty) nothing is sent and the answer is `Ok(false)`, so a program
//! calls them unconditionally and runs the same by hand, under taskmaster and under systemd.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

/// The variable that names the notification socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The variable that gives the watchdog interval, in microseconds.
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The variable that names the process the watchdog is for.
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// A notification socket, named the way `NOTIFY_SOCKET` names it: an absolute path, or `@`
/// followed by the name of a socket in the abstract namespace (systemd's form).
#[derive(Debug, Clone)]
pub struct NotifySocket {
    address: SocketAddr,
}

impl NotifySocket {
    /// The socket named `name`: `/run/x/notify` or `@x/notify`.
    ///
    /// # Errors
    /// `InvalidInput` when `name` is neither an absolute path nor `@name` (as libsystemd, a
    /// relative path is refused), or is too long for a socket address.
    pub fn new(name: impl AsRef<OsStr>) -> io::Result<NotifySocket> {
        let name = name.as_ref();
        let address = match name.as_bytes() {
            [b'/', ..] => SocketAddr::from_pathname(Path::new(name))?,
            [b'@', abstract_name @ ..] => SocketAddr::from_abstract_name(abstract_name)?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{NOTIFY_SOCKET}={name:?}: expected an absolute path, or @ and the name \
                         of an abstract socket"
                    ),
                ))
            }
        };
        Ok(NotifySocket { address })
    }

    /// The socket `NOTIFY_SOCKET` names; `None` when it is unset or empty.
    pub fn from_env() -> io::Result<Option<NotifySocket>> {
        match std::env::var_os(NOTIFY_SOCKET) {
            Some(name) if !name.is_empty() => NotifySocket::new(name).map(Some),
            _ => Ok(None),
        }
    }

    /// Sends `state`, one or more `KEY=value` lines, as one datagram.
    pub fn send(&self, state: &str) -> io::Result<()> {
        // A fresh unbound socket per message, as sd_notify does: nothing to keep open, and the
        // receiver learns our pid from the kernel (SO_PASSCRED), not from an address.
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(state.as_bytes(), &self.address)?;
        Ok(())
    }
}

/// Sends `state` (`"READY=1\nSTATUS=up"`) to the socket `NOTIFY_SOCKET` names: `Ok(true)` when
/// sent, `Ok(false)` when `NOTIFY_SOCKET` is unset (not supervised: nothing to do).
pub fn notify(state: &str) -> io::Result<bool> {
    match NotifySocket::from_env()? {
        Some(socket) => socket.send(state).map(|()| true),
        None => Ok(false),
    }
}

/// `READY=1`: the program is up. With `ready: notify`, taskmaster counts it RUNNING from now.
pub fn ready() -> io::Result<bool> {
    notify("READY=1")
}

/// `STATUS=text`: a line saying what the program is doing. A newline would end the field, so
/// each becomes a space.
pub fn status(text: &str) -> io::Result<bool> {
    notify(&status_field(text))
}

/// `STOPPING=1`: the program is shutting down.
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

/// `RELOADING=1`: the program is reloading its configuration; send [`ready`] when done.
pub fn reloading() -> io::Result<bool> {
    notify("RELOADING=1")
}

/// `WATCHDOG=1`: the program is alive. [`Watchdog`](crate::Watchdog) sends it on a thread.
pub fn heartbeat() -> io::Result<bool> {
    notify("WATCHDOG=1")
}

/// `WATCHDOG=trigger`: the program knows it is broken; the supervisor acts as if the watchdog
/// had expired.
pub fn watchdog_trigger() -> io::Result<bool> {
    notify("WATCHDOG=trigger")
}

/// `STATUS=` and `text` on one line.
fn status_field(text: &str) -> String {
    format!("STATUS={}", text.replace('\n', " "))
}

/// How often the supervisor wants [`heartbeat`]s at the least: `WATCHDOG_USEC`, as
/// `sd_watchdog_enabled` reads it. `None` when it is unset, empty, 0 or not a number, or when
/// `WATCHDOG_PID` is set and names another process (the variables were inherited from a
/// parent, and are not for us).
pub fn watchdog_interval() -> Option<Duration> {
    interval_for(
        std::env::var_os(WATCHDOG_USEC),
        std::env::var_os(WATCHDOG_PID),
        std::process::id(),
    )
}

/// [`watchdog_interval`] for the given values of the variables and our pid.
fn interval_for(usec: Option<OsString>, pid: Option<OsString>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid.filter(|pid| !pid.is_empty()) {
        let pid: u32 = pid.to_str()?.parse().ok()?;
        if pid != own_pid {
            return None;
        }
    }
    let usec: u64 = usec?.to_str()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
        interval_for(usec.map(OsString::from), pid.map(OsString::from), 42)
    }

    #[test]
    fn watchdog_interval_is_read_as_sd_watchdog_enabled_reads_it() {
        let two_seconds = Some(Duration::from_secs(2));
        assert_eq!(interval(Some("2000000"), None), two_seconds);
        assert_eq!(interval(Some("2000000"), Some("42")), two_seconds);
        assert_eq!(interval(Some("2000000"), Some("")), two_seconds);
        assert_eq!(interval(Some("2000000"), Some("43")), None, "another pid's");
        assert_eq!(
            interval(Some("2000000"), Some("x")),
            None,
            "a pid that is not one"
        );
        assert_eq!(interval(None, None), None);
        assert_eq!(interval(Some("0"), None), None);
        assert_eq!(interval(Some(""), None), None);
        assert_eq!(interval(Some("-5"), None), None);
        assert_eq!(interval(Some("2s"), None), None);
    }

    #[test]
    fn status_text_stays_on_one_line() {
        assert_eq!(status_field("a\nb\n"), "STATUS=a b ");
    }

    #[test]
    fn a_socket_is_an_absolute_path_or_an_abstract_name() {
        assert!(NotifySocket::new("/run/notify").is_ok());
        assert!(NotifySocket::new("@taskmaster/notify").is_ok());
        for wrong in ["notify", "./notify", "", "vsock:2:1"] {
            let error = NotifySocket::new(wrong).expect_err(wrong);
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{wrong}");
        }
        assert!(NotifySocket::new(format!("/{}", "x".repeat(200))).is_err());
    }
}
