//! What a message says, in each destination's form: the webhook's JSON body (versioned), the
//! mail's subject and text, and a syslog line per event with its severity. Pure.

use std::time::SystemTime;

use serde::Serialize;
use taskmaster_config::{AlertEvent, AlertLevel};

/// The JSON body's version: a receiver checks it; a change that breaks readers raises it.
pub const VERSION: u32 = 1;

/// How many of the last lines of a process's stderr a message carries.
pub const STDERR_LINES: usize = 10;

/// One event, as every destination tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Occurrence {
    /// `crashed`, `fatal`, `hung`, `unhealthy`, `restart_storm`, `alert`.
    #[serde(serialize_with = "event_name")]
    pub event: AlertEvent,
    /// The program (its name under `programs:`).
    pub program: String,
    /// The process (`web`, `workers:workers_00`).
    pub process: String,
    /// The pid of its last child, if it had one.
    pub pid: Option<u32>,
    /// The last exit's cause (`crashed`, `spawn_failed`...), when an exit is the story.
    pub cause: Option<String>,
    /// The last exit in words: `crashed: SIGSEGV (core dumped)`.
    pub exit: Option<String>,
    /// What happened, in one line.
    pub message: String,
    /// The last lines of its stderr log file, oldest first (empty without one).
    pub stderr_tail: Vec<String>,
    /// When it happened, RFC 3339 in UTC.
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    /// An output match's level (`alert` only).
    #[serde(skip)]
    pub level: Option<AlertLevel>,
}

fn event_name<S: serde::Serializer>(event: &AlertEvent, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(event.name())
}

fn rfc3339<S: serde::Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&stamp(*at))
}

/// `2025-01-05T09:04:02Z`, to the second.
pub fn stamp(at: SystemTime) -> String {
    match jiff::Timestamp::try_from(at) {
        Ok(at) => at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// A message: one or more events (a batch), or a test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub version: u32,
    /// The machine taskmaster runs on.
    pub host: String,
    /// `true` for `alerts test`'s message, which has no events.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    pub events: Vec<Occurrence>,
}

impl Message {
    pub fn new(host: &str, events: Vec<Occurrence>) -> Message {
        Message {
            version: VERSION,
            host: host.to_string(),
            test: false,
            events,
        }
    }

    pub fn test(host: &str) -> Message {
        Message {
            test: true,
            ..Message::new(host, Vec::new())
        }
    }

    /// The webhook's body.
    pub fn json(&self) -> Vec<u8> {
        // Plain data of strings and numbers: serializing it cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The mail's subject: `[taskmaster] web crashed on host` or `... 3 events on host`.
    pub fn subject(&self) -> String {
        match self.events.as_slice() {
            _ if self.test => format!("[taskmaster] test message from {}", self.host),
            [one] => format!(
                "[taskmaster] {} {} on {}",
                one.process,
                one.event.name().replace('_', " "),
                self.host
            ),
            many => {
                let mut processes: Vec<&str> = many.iter().map(|o| o.process.as_str()).collect();
                processes.dedup();
                format!(
                    "[taskmaster] {} events on {} ({})",
                    many.len(),
                    self.host,
                    processes.join(", ")
                )
            }
        }
    }

    /// The mail's text: each event with its exit and the last lines of its stderr.
    pub fn text(&self) -> String {
        if self.test {
            return format!(
                "This is a test message from taskmaster on {}: alerts reach this address.\n",
                self.host
            );
        }
        let mut text = String::new();
        for o in &self.events {
            text.push_str(&format!(
                "{}: {} on {} at {}\n",
                o.process,
                o.event.name(),
                self.host,
                stamp(o.at)
            ));
            text.push_str(&format!("  program: {}\n", o.program));
            if let Some(pid) = o.pid {
                text.push_str(&format!("  pid: {pid}\n"));
            }
            text.push_str(&format!("  what happened: {}\n", o.message));
            if let Some(exit) = &o.exit {
                text.push_str(&format!("  exit: {exit}\n"));
            }
            if !o.stderr_tail.is_empty() {
                text.push_str("  last lines of stderr:\n");
                for line in &o.stderr_tail {
                    text.push_str(&format!("    | {line}\n"));
                }
            }
            text.push('\n');
        }
        text
    }

    /// One syslog line per event (the test: one), each with its severity.
    pub fn syslog_lines(&self) -> Vec<(u8, String)> {
        if self.test {
            return vec![(SEVERITY_INFO, format!("test message from {}", self.host))];
        }
        self.events
            .iter()
            .map(|o| {
                let severity = severity(o.event, o.level);
                (
                    severity,
                    format!("{}: {}: {}", o.process, o.event.name(), o.message),
                )
            })
            .collect()
    }
}

const SEVERITY_ERR: u8 = 3;
const SEVERITY_WARNING: u8 = 4;
const SEVERITY_INFO: u8 = 6;

/// syslog's severity for an event: crashes and the end of a program are errors, a stop
/// taskmaster made (hung, unhealthy) and a storm are warnings, an output match its level's.
pub fn severity(event: AlertEvent, level: Option<AlertLevel>) -> u8 {
    match event {
        AlertEvent::Crashed | AlertEvent::Fatal => SEVERITY_ERR,
        AlertEvent::Hung | AlertEvent::Unhealthy | AlertEvent::RestartStorm => SEVERITY_WARNING,
        AlertEvent::Alert => match level {
            Some(AlertLevel::Error) => SEVERITY_ERR,
            Some(AlertLevel::Info) => SEVERITY_INFO,
            _ => SEVERITY_WARNING,
        },
    }
}

/// The last `lines` lines of `bytes` (the end of a file), oldest first; a partial first line
/// (the read started mid-line) is left out unless `whole` says the read began at the start.
pub fn last_lines(bytes: &[u8], lines: usize, whole: bool) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut all: Vec<&str> = text.split('\n').collect();
    if all.last() == Some(&"") {
        all.pop();
    }
    if !whole && !all.is_empty() {
        all.remove(0);
    }
    let skip = all.len().saturating_sub(lines);
    all[skip..]
        .iter()
        .map(|line| line.trim_end_matches('\r').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn crash(process: &str) -> Occurrence {
        Occurrence {
            event: AlertEvent::Crashed,
            program: "web".to_string(),
            process: process.to_string(),
            pid: Some(4242),
            cause: Some("crashed".to_string()),
            exit: Some("crashed: SIGSEGV (core dumped)".to_string()),
            message: "crashed: SIGSEGV (core dumped)".to_string(),
            stderr_tail: vec!["about to fail".to_string()],
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_736_067_842),
            level: None,
        }
    }

    #[test]
    fn the_json_body_has_its_version_host_and_events() {
        let body = Message::new("box", vec![crash("web")]).json();
        let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(value["version"], 1);
        assert_eq!(value["host"], "box");
        assert!(value.get("test").is_none());
        let event = &value["events"][0];
        assert_eq!(event["event"], "crashed");
        assert_eq!(event["program"], "web");
        assert_eq!(event["process"], "web");
        assert_eq!(event["pid"], 4242);
        assert_eq!(event["cause"], "crashed");
        assert_eq!(event["exit"], "crashed: SIGSEGV (core dumped)");
        assert_eq!(event["stderr_tail"][0], "about to fail");
        assert_eq!(event["at"], "2025-01-05T09:04:02Z");
        let test: serde_json::Value =
            serde_json::from_slice(&Message::test("box").json()).expect("JSON");
        assert_eq!(test["test"], true);
        assert_eq!(test["events"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn the_mail_names_the_host_the_process_and_its_stderr() {
        let one = Message::new("box", vec![crash("web")]);
        assert_eq!(one.subject(), "[taskmaster] web crashed on box");
        let text = one.text();
        assert!(text.contains("web: crashed on box"), "{text}");
        assert!(text.contains("exit: crashed: SIGSEGV"), "{text}");
        assert!(text.contains("    | about to fail"), "{text}");
        let two = Message::new("box", vec![crash("web"), crash("api")]);
        assert_eq!(two.subject(), "[taskmaster] 2 events on box (web, api)");
    }

    #[test]
    fn syslog_severities_follow_the_event() {
        assert_eq!(severity(AlertEvent::Crashed, None), 3);
        assert_eq!(severity(AlertEvent::Hung, None), 4);
        assert_eq!(severity(AlertEvent::Alert, Some(AlertLevel::Info)), 6);
        let lines = Message::new("box", vec![crash("web")]).syslog_lines();
        assert_eq!(
            lines,
            [(
                3,
                "web: crashed: crashed: SIGSEGV (core dumped)".to_string()
            )]
        );
    }

    #[test]
    fn the_tail_is_the_last_whole_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2, true), ["b", "c"]);
        assert_eq!(last_lines(b"rtial\nb\nc", 10, false), ["b", "c"]);
        assert_eq!(last_lines(b"one\n", 10, true), ["one"]);
        assert!(last_lines(b"", 10, true).is_empty());
    }
}
