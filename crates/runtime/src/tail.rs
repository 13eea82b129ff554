//! Following a log file as it grows, across truncation and rotation: what `tail -f` and the
//! alert watchers read.
//!
//! The file is read through a handle opened once, so that what was written to it before a
//! rotation renamed it away is still read to its end; then the follower moves to the new file
//! at the path. An inotify watch wakes it on writes, and on the rename or deletion of the file
//! it follows, never on a timer.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::sys::FileWatch;

/// The most one read takes.
const CHUNK: usize = 64 * 1024;

/// A log file followed from an offset on.
pub struct Follower {
    path: PathBuf,
    file: tokio::fs::File,
    /// The file being read (device, inode): when the path names another, it was rotated.
    identity: (u64, u64),
    position: u64,
    watch: FileWatch,
}

/// How many rotated files (`x.log.1` ...) are searched for the one being followed.
const MOST_BACKUPS: u32 = 1000;

impl Follower {
    /// The rotated file written right after the one being read, opened at its start: if the
    /// file read now is `x.log.N`, that is `x.log.N-1` (`x.log` for N = 1), found by identity
    /// and checked again after the open, since a rotation may shift the names meanwhile.
    /// `None` when the file read now is no longer among them.
    fn successor(&self) -> Option<Follower> {
        let numbered = |n: u32| -> PathBuf {
            if n == 0 {
                return self.path.clone();
            }
            let mut name = self.path.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        let identity_of = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        // A rotation renames the files one by one, so a name may be missing for a moment:
        // the search goes on past a few missing names.
        let index_of_ours = || {
            let mut missing = 0;
            for n in 1..=MOST_BACKUPS {
                match identity_of(&numbered(n)) {
                    Some(identity) if identity == self.identity => return Some(n),
                    Some(_) => missing = 0,
                    None if missing >= 3 => return None,
                    None => missing += 1,
                }
            }
            None
        };
        for _attempt in 0..100 {
            let ours = index_of_ours()?;
            let next = Follower::open(&numbered(ours - 1), 0).ok()?;
            // Still the file written after ours, or did a rotation move the names?
            if index_of_ours() == Some(ours) {
                return Some(next);
            }
        }
        None
    }

    /// Follows `path` from byte `start` on. Must be called on a tokio runtime; it opens the
    /// file at once (an open of a local file does not wait on anything that could hang).
    pub fn open(path: &Path, start: u64) -> std::io::Result<Follower> {
        use std::io::Seek;
        // Watch before reading, so a write between the read and the wait is not missed.
        let watch = FileWatch::new(path)?;
        let mut file = std::fs::File::open(path)?;
        let metadata = file.metadata()?;
        file.seek(SeekFrom::Start(start))?;
        Ok(Follower {
            path: path.to_path_buf(),
            file: tokio::fs::File::from_std(file),
            identity: (metadata.dev(), metadata.ino()),
            position: start,
            watch,
        })
    }

    /// Where the next byte will be read from, in the file now followed.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next bytes written, waiting for them if there are none yet.
    pub async fn next_chunk(&mut self) -> std::io::Result<Vec<u8>> {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = self.file.read(&mut buffer).await?;
            if read > 0 {
                self.position += read as u64;
                buffer.truncate(read);
                return Ok(buffer);
            }
            // Nothing more in this file. Rotated away, truncated, or not written yet?
            match tokio::fs::metadata(&self.path).await {
                Ok(now) if (now.dev(), now.ino()) != self.identity => {
                    // Rotated: everything of this file is read; go on with the one written
                    // after it (several rotations may have happened since the last read).
                    if let Some(next) = self.successor() {
                        let (path, identity) = (self.path.clone(), next.identity);
                        *self = next;
                        self.path = path;
                        self.identity = identity;
                        continue;
                    }
                    *self = Follower::open(&self.path, 0)?;
                    continue;
                }
                Ok(now) if now.len() < self.position => {
                    // Truncated (a `clear`, or no backups kept): start again at the beginning.
                    self.position = 0;
                    self.file.seek(SeekFrom::Start(0)).await?;
                    continue;
                }
                Ok(_) => {}
                // Renamed away and not created again yet: the next write creates it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.watch.changed().await?;
        }
    }
}
