//! Reading a process's log file: a byte range, or everything from an offset on as it is
//! written (`tail -f`), which the runtime's [`Follower`] does: on inotify, never on a timer,
//! across truncation and rotation.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use futures_util::Stream;
use taskmaster_runtime::Follower;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

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

/// Everything written to `path` from `start` on, as it comes, across truncations and
/// rotations ([`Follower`]); ends on an error.
pub fn follow(path: PathBuf, start: u64) -> impl Stream<Item = std::io::Result<Bytes>> {
    enum Following {
        NotYet(PathBuf, u64),
        At(Box<Follower>),
        Over,
    }
    futures_util::stream::unfold(Following::NotYet(path, start), |state| async move {
        let mut follower = match state {
            Following::NotYet(path, start) => match Follower::open(&path, start) {
                Ok(follower) => Box::new(follower),
                Err(e) => return Some((Err(e), Following::Over)),
            },
            Following::At(follower) => follower,
            Following::Over => return None,
        };
        match follower.next_chunk().await {
            Ok(chunk) => Some((Ok(Bytes::from(chunk)), Following::At(follower))),
            // Report the error, then end the stream.
            Err(e) => Some((Err(e), Following::Over)),
        }
    })
}
