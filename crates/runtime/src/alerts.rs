//! Output watching: lines of a program's log files that match its `alerts`.
//!
//! A watcher follows one log file from where it ended when the watcher started, reading what
//! the children append (from the page cache, after they wrote it: capture itself is never
//! slowed), and reports each complete line that contains an alert's text. It runs as a task on
//! the loop and reads through tokio's file API, which does the reads on its blocking pool.

use std::path::Path;

use taskmaster_config::{os_reason, Alert, AlertLevel, Stream};

use crate::tail::{Followed, Follower};

/// A line that matched an alert.
#[derive(Debug, Clone)]
pub struct Matched {
    pub program: String,
    pub stream: Stream,
    pub level: AlertLevel,
    pub line: String,
}

/// A longer line is cut here: an alert needs its start, not megabytes of it.
const LONGEST_LINE: usize = 64 * 1024;

/// Where a watch starts: a follower of the file from its length then, taken before the child
/// that writes it is spawned, so that not a line is missed. Creates the file if it is missing.
/// Must be called on the loop.
pub fn start(path: &Path) -> Result<Follower, String> {
    let describe = |e: std::io::Error| format!("{}: {}", path.display(), os_reason(&e));
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(describe)?;
    drop(file);
    // From the length of the file the follower holds: a rotation meanwhile cannot shift it.
    Follower::open(path, |length| length).map_err(describe)
}

/// Follows a log file (the `stream` file of `program`) and reports every line that matches
/// one of `alerts`, until `report` says nobody listens; across rotations. Output skipped
/// (its files deleted by rotations before they were read) is told to `skipped`, for the event
/// log. An error ends the watch and is returned, for the event log.
pub async fn watch(
    program: String,
    stream: Stream,
    mut follower: Follower,
    alerts: Vec<Alert>,
    report: impl Fn(Matched) -> bool,
    skipped: impl Fn(String),
) -> Result<(), String> {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let followed = follower
            .next_chunk()
            .await
            .map_err(|e| format!("{program}'s {}: {}", stream.name(), os_reason(&e)))?;
        let chunk = match followed {
            Followed::Bytes(chunk) => chunk,
            Followed::Gap(gap) => {
                skipped(format!("alerts on {}: {gap}", stream.name()));
                // The start of a line whose end is lost is no line.
                pending.clear();
                continue;
            }
        };
        pending.extend_from_slice(&chunk);
        let complete = pending
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        for line in pending[..complete].split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            for alert in alerts.iter().filter(|a| line.contains(&a.text)) {
                let matched = Matched {
                    program: program.clone(),
                    stream,
                    level: alert.level,
                    line: line.to_string(),
                };
                if !report(matched) {
                    return Ok(());
                }
            }
        }
        pending.drain(..complete);
        if pending.len() > LONGEST_LINE {
            pending.clear();
        }
    }
}

/// The alerts of `alerts` that watch `stream`.
pub fn for_stream(alerts: &[Alert], stream: Stream) -> Vec<Alert> {
    alerts
        .iter()
        .filter(|alert| alert.stream.is_none_or(|s| s == stream))
        .cloned()
        .collect()
}
