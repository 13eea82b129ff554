//! Reading a process's log file: a byte range, or everything from an offset on as it is
//! written (`tail -f`). Following waits on inotify, never on a timer, and starts again from the
//! beginning of a file that was truncated under it.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use futures_util::Stream;
use taskmaster_runtime::FileWatch;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The most a single read takes (and a followed chunk holds).
const CHUNK: u64 = 64 * 1024;

/// The bytes of `path` from `start` up to `end`.
pub async fn read_range(path: &Path, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(SeekFrom::Start(start)).await?;
    let mut bytes = Vec::new();
    file.take(end.saturating_sub(start))
        .read_to_end(&mut bytes)
        .await?;
    Ok(bytes)
}

/// Everything written to `path` from `start` on, as it comes; ends on an error.
pub fn follow(path: PathBuf, start: u64) -> impl Stream<Item = std::io::Result<Bytes>> {
    let state = Following {
        path,
        position: start,
        watch: None,
    };
    futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next_chunk().await {
            Ok(chunk) => Some((Ok(chunk), Some(state))),
            // Report the error, then end the stream.
            Err(e) => Some((Err(e), None)),
        }
    })
}

struct Following {
    path: PathBuf,
    position: u64,
    /// Wakes us when the file is written to; made on first need.
    watch: Option<FileWatch>,
}

impl Following {
    async fn next_chunk(&mut self) -> std::io::Result<Bytes> {
        loop {
            if self.watch.is_none() {
                // Watch before reading, so a write between the read and the wait is not missed.
                self.watch = Some(FileWatch::new(&self.path)?);
            }
            let chunk = read_range(&self.path, self.position, self.position + CHUNK).await?;
            if !chunk.is_empty() {
                self.position += chunk.len() as u64;
                return Ok(Bytes::from(chunk));
            }
            if tokio::fs::metadata(&self.path).await?.len() < self.position {
                // Truncated (a `clear`): what comes next is written from the start.
                self.position = 0;
                continue;
            }
            if let Some(watch) = &self.watch {
                watch.changed().await?;
            }
        }
    }
}
