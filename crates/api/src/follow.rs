//! Reading a process's log file: a byte range, or everything from an offset on as it is
//! written (`tail -f`), which the runtime's [`Follower`] does: on inotify, never on a timer,
//! across truncation and rotation.
//!
//! Each answer reads one opened file: its size, the offset asked and the bytes all come from
//! it, so a rotation between a look at the size and the read cannot make an offset of one file
//! a place in another.

use std::io::SeekFrom;
use std::path::Path;

use axum::body::Bytes;
use futures_util::Stream;
use taskmaster_runtime::{Followed, Follower};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// `path` opened, and its size then.
pub async fn open(path: &Path) -> std::io::Result<(tokio::fs::File, u64)> {
    let file = tokio::fs::File::open(path).await?;
    let size = file.metadata().await?.len();
    Ok((file, size))
}

/// The bytes of `file` from `start` up to `end`.
pub async fn read_range(
    mut file: tokio::fs::File,
    start: u64,
    end: u64,
) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(start)).await?;
    let mut bytes = Vec::new();
    file.take(end.saturating_sub(start))
        .read_to_end(&mut bytes)
        .await?;
    Ok(bytes)
}

/// Everything `follower` reads, as it comes, across truncations and rotations; ends on an
/// error. Output the follower had to skip (its files deleted by rotations before they could be
/// read) is said in a line of its own, `[taskmaster: ...]`, where it is missing.
pub fn follow(follower: Follower) -> impl Stream<Item = std::io::Result<Bytes>> {
    /// The follower, and whether what was sent so far ends a line.
    struct Following(Box<Follower>, bool);
    let state = Some(Following(Box::new(follower), true));
    futures_util::stream::unfold(state, |state| async move {
        let Following(mut follower, line_ended) = state?;
        match follower.next_chunk().await {
            Ok(Followed::Bytes(chunk)) => {
                let line_ended = chunk.last() == Some(&b'\n');
                let next = Following(follower, line_ended);
                Some((Ok(Bytes::from(chunk)), Some(next)))
            }
            Ok(Followed::Gap(gap)) => {
                // On a line of its own, even after the start of a line whose end is lost.
                let before = if line_ended { "" } else { "\n" };
                let text = format!("{before}[taskmaster: {gap}]\n");
                Some((Ok(Bytes::from(text)), Some(Following(follower, true))))
            }
            // Report the error, then end the stream.
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    /// A file followed is rotated past the one backup kept before the follower gets to the
    /// file after it: the stream says so on a line of its own, then goes on with what is left,
    /// never with what came before.
    #[test]
    fn output_skipped_is_said_on_a_line_of_its_own() {
        /// A folder of its own, removed when dropped.
        struct Folder(std::path::PathBuf);
        impl Drop for Folder {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = std::env::temp_dir().join(format!("taskmaster-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let dir = Folder(dir);
        let path = dir.0.join("x.log");
        let backup = dir.0.join("x.log.1");
        std::fs::write(&path, "a").expect("write");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let got = runtime.block_on(async {
            let follower = Follower::open(&path, |_| 0).expect("follow");
            let stream = follow(follower);
            tokio::pin!(stream);
            let mut got = Vec::new();
            let first = stream.next().await.expect("a chunk").expect("bytes");
            got.extend_from_slice(&first);
            // Two rotations as capture does them, with one backup kept: the file read is gone.
            for next in ["b\n", "c\n"] {
                std::fs::rename(&path, &backup).expect("rename");
                std::fs::write(&path, next).expect("write");
            }
            while !got.ends_with(b"c\n") {
                let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
                    .await
                    .expect("in time")
                    .expect("a chunk")
                    .expect("bytes");
                got.extend_from_slice(&chunk);
            }
            String::from_utf8(got).expect("text")
        });
        let said = format!(
            "a\n[taskmaster: output of {} may be missing here: ",
            path.display()
        );
        assert!(got.starts_with(&said), "{got:?}");
        let (_, after) = got.split_once("]\n").expect("the line ends");
        assert!("b\nc\n".ends_with(after), "{got:?}");
    }
}
