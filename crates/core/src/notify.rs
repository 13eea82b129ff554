//! The sd_notify protocol's messages: what a child may tell its supervisor about itself.
//!
//! A datagram is lines of `KEY=VALUE`, as systemd reads them (`man sd_notify`). Keys this
//! module does not know are skipped, as systemd skips them, so that programs written for a
//! newer systemd still work; a line without `=`, or a known key with a bad value, makes the
//! whole datagram malformed, and it is ignored.

use std::time::Duration;

/// One thing a child said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// `READY=1`: start-up is finished.
    Ready,
    /// `RELOADING=1`: it is reloading its configuration.
    Reloading,
    /// `STOPPING=1`: it is shutting down.
    Stopping,
    /// `WATCHDOG=1`: a heartbeat.
    Heartbeat,
    /// `WATCHDOG=trigger`: it asks to be treated as hung.
    WatchdogTrigger,
    /// `STATUS=...`: free text about its state, shown by `status`.
    Status(String),
    /// `MAINPID=N`: the pid it says does the work.
    MainPid(u32),
    /// `EXTEND_TIMEOUT_USEC=N`: it needs this much longer to start or stop, from now.
    ExtendTimeout(Duration),
    /// `WATCHDOG_USEC=N`: a new watchdog period.
    WatchdogPeriod(Duration),
    /// `ERRNO=N`: the error it failed with.
    Errno(i32),
    /// `BARRIER=1`: the sender waits until the file descriptor that came with the datagram is
    /// closed (the runtime closes it).
    Barrier,
}

/// The notifications of one datagram, in order, or why it is malformed.
pub fn parse(datagram: &[u8]) -> Result<Vec<Notification>, String> {
    let text = std::str::from_utf8(datagram).map_err(|_| "not UTF-8 text".to_string())?;
    let mut notifications = Vec::new();
    for line in text.split('\n').filter(|line| !line.is_empty()) {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{line:?} is not KEY=VALUE"))?;
        let bad = || format!("{key}={value:?}: not a valid value");
        let notification = match key {
            "READY" => flag(value).ok_or_else(bad)?.then_some(Notification::Ready),
            "RELOADING" => flag(value)
                .ok_or_else(bad)?
                .then_some(Notification::Reloading),
            "STOPPING" => flag(value)
                .ok_or_else(bad)?
                .then_some(Notification::Stopping),
            "BARRIER" => flag(value)
                .ok_or_else(bad)?
                .then_some(Notification::Barrier),
            "WATCHDOG" => match value {
                "1" => Some(Notification::Heartbeat),
                "trigger" => Some(Notification::WatchdogTrigger),
                _ => return Err(bad()),
            },
            "STATUS" => Some(Notification::Status(value.to_string())),
            "MAINPID" => Some(Notification::MainPid(
                value.parse().ok().filter(|&pid| pid > 0).ok_or_else(bad)?,
            )),
            "EXTEND_TIMEOUT_USEC" => {
                Some(Notification::ExtendTimeout(micros(value).ok_or_else(bad)?))
            }
            "WATCHDOG_USEC" => Some(Notification::WatchdogPeriod(
                micros(value).filter(|d| !d.is_zero()).ok_or_else(bad)?,
            )),
            "ERRNO" => Some(Notification::Errno(value.parse().ok().ok_or_else(bad)?)),
            _ => None,
        };
        notifications.extend(notification);
    }
    Ok(notifications)
}

/// `1` is set and `0` is not, as systemd reads these flags.
fn flag(value: &str) -> Option<bool> {
    match value {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

fn micros(value: &str) -> Option<Duration> {
    value.parse().ok().map(Duration::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_notify_messages_are_understood() {
        let parsed = parse(b"READY=1\nSTATUS=serving 3 clients\nMAINPID=42\n").unwrap();
        assert_eq!(
            parsed,
            vec![
                Notification::Ready,
                Notification::Status("serving 3 clients".into()),
                Notification::MainPid(42),
            ]
        );
        assert_eq!(parse(b"WATCHDOG=1").unwrap(), vec![Notification::Heartbeat]);
        assert_eq!(
            parse(b"WATCHDOG=trigger\nBARRIER=1").unwrap(),
            vec![Notification::WatchdogTrigger, Notification::Barrier]
        );
        assert_eq!(
            parse(b"EXTEND_TIMEOUT_USEC=2500000\nWATCHDOG_USEC=1000000\nERRNO=2").unwrap(),
            vec![
                Notification::ExtendTimeout(Duration::from_millis(2500)),
                Notification::WatchdogPeriod(Duration::from_secs(1)),
                Notification::Errno(2),
            ]
        );
        assert_eq!(
            parse(b"STOPPING=1\nRELOADING=1").unwrap(),
            vec![Notification::Stopping, Notification::Reloading]
        );
    }

    #[test]
    fn unknown_keys_and_unset_flags_are_skipped() {
        assert_eq!(parse(b"FDSTORE=1\nREADY=0\n\n").unwrap(), vec![]);
        assert_eq!(parse(b"").unwrap(), vec![]);
    }

    #[test]
    fn malformed_datagrams_say_why() {
        assert_eq!(parse(b"READY").unwrap_err(), "\"READY\" is not KEY=VALUE");
        assert_eq!(
            parse(b"READY=yes").unwrap_err(),
            "READY=\"yes\": not a valid value"
        );
        assert!(parse(b"MAINPID=0").is_err());
        assert!(parse(b"MAINPID=-3").is_err());
        assert!(parse(b"WATCHDOG=2").is_err());
        assert!(parse(b"WATCHDOG_USEC=0").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());
    }
}
