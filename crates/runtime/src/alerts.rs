//! Output watching: lines of a program's log files that match its `alerts`.
//!
//! A watcher follows one log file from where it ended when the watcher started, reading what
//! the children append (from the page cache, after they wrote it: capture itself is never
//! slowed), and reports each complete line that contains an alert's text. It runs as a task on
//! the loop and reads through tokio's file API, which does the reads on its blocking pool.

use std::path::{Path, PathBuf};

use taskmaster_config::{os_reason, Alert, AlertLevel, Stream};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::sys::FileWatch;

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

/// Where a watch starts: the file, its length then, and an inotify watch on it, all taken
/// before the child that writes it is spawned, so that not a line is missed.
pub struct Start {
    pub path: PathBuf,
    pub offset: u64,
    pub watch: FileWatch,
}

impl Start {
    /// Creates the log file if it is missing. Must be called on the loop.
    pub fn now(path: &Path) -> Result<Start, String> {
        let describe = |e: std::io::Error| format!("{}: {}", path.display(), os_reason(&e));
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(describe)?;
        let offset = file.metadata().map_err(describe)?.len();
        let watch = FileWatch::new(path).map_err(describe)?;
        Ok(Start {
            path: path.to_path_buf(),
            offset,
            watch,
        })
    }
}

/// Follows a log file (the `stream` file of `program`) from `start` and reports every line
/// that matches one of `alerts`, until `report` says nobody listens. An error ends the watch
/// and is returned, for the event log.
pub async fn watch(
    program: String,
    stream: Stream,
    start: Start,
    alerts: Vec<Alert>,
    report: impl Fn(Matched) -> bool,
) -> Result<(), String> {
    let Start {
        path,
        mut offset,
        watch,
    } = start;
    let describe = |e: std::io::Error| format!("{}: {}", path.display(), os_reason(&e));
    let mut file = tokio::fs::File::open(&path).await.map_err(describe)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(describe)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        watch.changed().await.map_err(describe)?;
        let length = file.metadata().await.map_err(describe)?.len();
        if length < offset {
            // Truncated (or rotated in place): follow from the new start.
            offset = 0;
            pending.clear();
            file.seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(describe)?;
        }
        loop {
            let read = file.read(&mut chunk).await.map_err(describe)?;
            if read == 0 {
                break;
            }
            offset += read as u64;
            pending.extend_from_slice(&chunk[..read]);
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
}

/// The alerts of `alerts` that watch `stream`.
pub fn for_stream(alerts: &[Alert], stream: Stream) -> Vec<Alert> {
    alerts
        .iter()
        .filter(|alert| alert.stream.is_none_or(|s| s == stream))
        .cloned()
        .collect()
}
