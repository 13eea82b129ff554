//! Following a log file as it grows, across truncation and rotation: what `tail -f` and the
//! alert watchers read.
//!
//! The file is read through a handle opened once, so that what was written to it before a
//! rotation renamed it away is still read to its end; then the follower goes on with the file
//! written after it. An inotify watch of the file itself (through its descriptor, so it is the
//! file held, whatever its name) and of its folder wakes it on writes, on the file's rename
//! or deletion and on new files and renames beside it, never on a timer (but for a rotation
//! caught half done, below).
//!
//! **A file is left only once a read found its end after it was known to be complete.**
//! Capture rotates under its sink's lock: the last bytes go into `x.log`, it is renamed
//! `x.log.1` and a new `x.log` is opened, and nothing is written to the old one afterwards. So
//! once the path names another file, the file held is complete, and the next read that finds
//! its end has read all of it. An end found *before* that proves nothing: between that read
//! and the look at the path, the writer may have filled the file and rotated it.
//!
//! **The file written after the one held is found by identity.** If the one held is now
//! `x.log.N`, its successor is `x.log.N-1` (`x.log` for N = 1). Rotations shift the names
//! while the follower looks, one rename at a time, the highest first; so the follower opens
//! `x.log.N-1`, then looks for its own file again: still at N, then no rotation moved it in
//! between, and none moved `x.log.N-1` either (it is renamed after `x.log.N`): the file opened
//! is the successor. Otherwise it looks again. `x.log.N-1` missing while the file held stays
//! at N is a rotation under way, between renaming the file held to N and the next one to N-1 (or
//! opening the new `x.log`): the follower waits for that rename, looking again every few
//! milliseconds; a name missing for seconds was removed by hand (a gap, below: the follower
//! goes on with the oldest file left below it).
//!
//! **What cannot be found is said.** A file held that is no longer among `x.log.N` was either
//! renamed elsewhere (an outside logrotate's own names: the new `x.log` comes after it, and
//! nothing is missing), or deleted: rotated past the backups kept (or removed by hand) before
//! the follower got to it. Then the files written after it cannot be told apart from the older
//! ones by name; the follower goes on with the oldest file modified after it, and says that
//! output may be missing there (a [`Gap`]) rather than skip silently.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::sys::FileWatch;

/// The most one read takes.
const CHUNK: usize = 64 * 1024;

/// How many rotated files (`x.log.1` ...) are searched for the one being followed: the most
/// backups a configuration may keep.
const MOST_BACKUPS: u32 = 1000;

/// How many times in a row the follower looks for the successor while rotations keep moving the
/// names, before it waits for the next change (and looks again then).
const ATTEMPTS: u32 = 100;

/// While the name below the file read is missing (a rotation under way: see [`Moved::Hole`]),
/// how often the follower looks again, whether or not a change woke it.
const HOLE_RECHECK: std::time::Duration = std::time::Duration::from_millis(10);

/// How long that name may stay missing before it is taken for a file removed by hand: a
/// rotation fills it with its very next rename.
const HOLE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// A log file followed from an offset on, and the files that take its place.
pub struct Follower {
    /// The log's path (`x.log`), whichever of its files is read.
    path: PathBuf,
    /// The file being read.
    file: tokio::fs::File,
    /// The file being read (device, inode): when the path names another, it was rotated.
    identity: (u64, u64),
    position: u64,
    /// Nothing more will be written to the file being read (another file took its place):
    /// once a read finds its end, the follower moves on to its successor.
    complete: bool,
    /// Since when the name below the file read has been missing ([`Moved::Hole`]).
    hole_since: Option<tokio::time::Instant>,
    /// Where the file read was last seen: N of `x.log.N`, 0 for `x.log`. Rotations only move
    /// it up, so the search for it starts there.
    seen_at: u32,
    watch: FileWatch,
    /// What a test does between the follower's steps.
    #[cfg(test)]
    hook: Option<Box<dyn FnMut(Step) + Send>>,
}

/// What a follower read next.
#[derive(Debug, PartialEq, Eq)]
pub enum Followed {
    /// The next bytes written.
    Bytes(Vec<u8>),
    /// Output may be missing here: see [`Gap`]. The next bytes are those of the oldest file
    /// left that was written after the one read so far.
    Gap(Gap),
}

/// The file being read was deleted (rotated past the backups kept, or removed by hand) before
/// the follower could find the file written after it: what was written between them may be
/// lost. Said, never skipped silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The log followed.
    pub path: PathBuf,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "output of {} may be missing here: files of it were deleted (rotated past the \
             backups kept, or removed) before they could be read",
            self.path.display()
        )
    }
}

/// The moments between a follower's steps, where a test may rotate or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
enum Step {
    /// A read found the end of the file, which is not known to be complete yet; the path is
    /// looked at next.
    End,
    /// The file read was found at `x.log.N`; its successor is opened next.
    Found(u32),
    /// The successor was opened (or found missing); the file read is looked for again next.
    Opened(u32),
    /// Nothing to read: the follower waits for a change next.
    Wait,
}

/// How the follower moved on from a complete file.
enum Moved {
    /// To its successor.
    On,
    /// To the oldest file left after it, past files deleted before they were read.
    Past(Gap),
    /// Not yet: rotations keep moving the names, or `x.log` was renamed and the new one is
    /// not there yet. Looked at again at the next change.
    NotYet,
    /// Not yet: the file read is `x.log.N` (N > 1) and there is no `x.log.N-1`. A rotation
    /// under way: it renamed the file read from N-1 to N, and renames the successor into N-1
    /// next. Looked at again soon, change or not.
    Hole,
}

impl Follower {
    /// Follows `path` from byte `start(its length)` on. Must be called on a tokio runtime; it
    /// opens the file at once (an open of a local file does not wait on anything that could
    /// hang). The start is chosen from the length of the very file opened, so a rotation
    /// meanwhile cannot make it an offset in another file.
    pub fn open(path: &Path, start: impl FnOnce(u64) -> u64) -> std::io::Result<Follower> {
        use std::io::Seek;
        let mut file = std::fs::File::open(path)?;
        let metadata = file.metadata()?;
        let start = start(metadata.len());
        // Watch before reading, so a write between the read and the wait is not missed.
        let watch = FileWatch::new(&file, path)?;
        file.seek(SeekFrom::Start(start))?;
        Ok(Follower {
            path: path.to_path_buf(),
            file: tokio::fs::File::from_std(file),
            identity: (metadata.dev(), metadata.ino()),
            position: start,
            complete: false,
            hole_since: None,
            seen_at: 0,
            watch,
            #[cfg(test)]
            hook: None,
        })
    }

    /// Where the next byte will be read from, in the file now followed.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next bytes written, waiting for them if there are none yet; or a [`Gap`].
    pub async fn next_chunk(&mut self) -> std::io::Result<Followed> {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = self.file.read(&mut buffer).await?;
            if read > 0 {
                self.position += read as u64;
                buffer.truncate(read);
                return Ok(Followed::Bytes(buffer));
            }
            if self.complete {
                // All of it is read: on to the file written after it.
                match self.move_on()? {
                    Moved::On => continue,
                    Moved::Past(gap) => return Ok(Followed::Gap(gap)),
                    Moved::NotYet => {}
                    Moved::Hole => {
                        self.step(Step::Wait);
                        // The rename that fills it wakes the watch; a timer bounds the wait.
                        let _ = tokio::time::timeout(HOLE_RECHECK, self.watch.changed()).await;
                        continue;
                    }
                }
            } else {
                // Nothing more in this file for now. Rotated away, truncated, or not written
                // yet?
                self.step(Step::End);
                match tokio::fs::metadata(&self.path).await {
                    Ok(now) if (now.dev(), now.ino()) != self.identity => {
                        // Rotated: nothing more will be written to it, but more may have been
                        // since the read above. Read it to its end again before moving on.
                        self.complete = true;
                        continue;
                    }
                    Ok(now) if now.len() < self.position => {
                        // Truncated (a `clear`, or no backups kept): start again at the
                        // beginning.
                        self.position = 0;
                        self.file.seek(SeekFrom::Start(0)).await?;
                        continue;
                    }
                    Ok(_) => {}
                    // Renamed away and not created again yet: the next write creates it.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            self.step(Step::Wait);
            self.watch.changed().await?;
        }
    }

    /// `x.log.N`, `x.log` for 0.
    fn numbered(&self, n: u32) -> PathBuf {
        if n == 0 {
            return self.path.clone();
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Where the file being read is now among the rotated files: N of `x.log.N`, or `None`
    /// when it is not among them. Looked for from where it was last seen (rotations only move
    /// it up), then, if need be (names moved by hand), from `x.log.1`.
    fn index_of_ours(&mut self) -> Option<u32> {
        let from = self.seen_at.max(1);
        let found = self
            .search_from(from)
            .or_else(|| (from > 1).then(|| self.search_from(1)).flatten())?;
        self.seen_at = found;
        Some(found)
    }

    /// Where the file being read is among `x.log.FROM`, `x.log.FROM+1`... A rotation renames
    /// the files one by one, so a name may be missing for a moment: the search goes on past a
    /// few missing names.
    fn search_from(&self, from: u32) -> Option<u32> {
        let mut missing = 0;
        for n in from..=MOST_BACKUPS {
            match std::fs::metadata(self.numbered(n)) {
                Ok(m) if (m.dev(), m.ino()) == self.identity => return Some(n),
                Ok(_) => missing = 0,
                Err(_) if missing >= 3 => return None,
                Err(_) => missing += 1,
            }
        }
        None
    }

    /// Moves on from the file read, which is complete and read to its end, to the file written
    /// after it (see the module's documentation).
    fn move_on(&mut self) -> std::io::Result<Moved> {
        for _attempt in 0..ATTEMPTS {
            // Not found: looked for once more, since rotations might have outrun the search
            // (each would need a rotation per name looked at).
            let Some(ours) = self.index_of_ours().or_else(|| self.index_of_ours()) else {
                return self.past_a_gap();
            };
            self.step(Step::Found(ours));
            let next = match std::fs::File::open(self.numbered(ours - 1)) {
                Ok(file) => Some(file),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            self.step(Step::Opened(ours - 1));
            // Still at N: then what was opened was at N-1 all along, the successor.
            if self.index_of_ours() != Some(ours) {
                continue; // the names moved: look again
            }
            let Some(file) = next else {
                // A rotation under way, most likely: it fills the name next.
                if ours == 1 {
                    // `x.log` renamed, and the new one not opened yet: its creation wakes us.
                    return Ok(Moved::NotYet);
                }
                let now = tokio::time::Instant::now();
                let since = *self.hole_since.get_or_insert(now);
                if now.duration_since(since) > HOLE_PATIENCE {
                    // Still missing: removed by hand.
                    return self.past_a_hole(ours);
                }
                return Ok(Moved::Hole);
            };
            self.switch_to(file, ours - 1)?;
            return Ok(Moved::On);
        }
        Ok(Moved::NotYet)
    }

    /// Moves on from the file read, `x.log.OURS`, when `x.log.OURS-1` has long been missing:
    /// to the oldest file left below it, past the missing one.
    fn past_a_hole(&mut self, ours: u32) -> std::io::Result<Moved> {
        for n in (0..ours - 1).rev() {
            if let Some(file) = open_if_there(&self.numbered(n))? {
                self.switch_to(file, n)?;
                return Ok(Moved::Past(Gap {
                    path: self.path.clone(),
                }));
            }
        }
        Ok(Moved::NotYet)
    }

    /// Moves on from the file read, which is no longer among the rotated files (see the
    /// module's documentation).
    fn past_a_gap(&mut self) -> std::io::Result<Moved> {
        let ours = rustix::fs::fstat(&self.file)?;
        if ours.st_nlink > 0 {
            // Renamed out of the rotated names, not deleted: the new file at the path comes
            // next, and nothing is missing.
            return match open_if_there(&self.path)? {
                Some(file) => {
                    self.switch_to(file, 0)?;
                    Ok(Moved::On)
                }
                None => Ok(Moved::NotYet),
            };
        }
        // Deleted: every file left was written after it or before; the oldest one modified
        // later than it is certainly after it (one modified in the same clock tick is not
        // told apart, and skipped: the gap says so).
        let modified = |m: &std::fs::Metadata| (m.mtime(), m.mtime_nsec());
        let ours_modified = (ours.st_mtime, ours.st_mtime_nsec as i64);
        let mut oldest_after = 0;
        let mut missing = 0;
        for n in 1..=MOST_BACKUPS {
            match std::fs::metadata(self.numbered(n)) {
                Ok(m) => {
                    missing = 0;
                    if modified(&m) > ours_modified {
                        oldest_after = n;
                    }
                }
                Err(_) if missing >= 3 => break,
                Err(_) => missing += 1,
            }
        }
        match open_if_there(&self.numbered(oldest_after))? {
            Some(file) => {
                self.switch_to(file, oldest_after)?;
                Ok(Moved::Past(Gap {
                    path: self.path.clone(),
                }))
            }
            // Moved or not created yet: look again at the next change.
            None => Ok(Moved::NotYet),
        }
    }

    /// Reads `file`, seen at `x.log.AT` (`x.log` for 0), from its start from now on. A rotated
    /// file (AT > 0) is complete: nothing more will be written to it.
    fn switch_to(&mut self, file: std::fs::File, at: u32) -> std::io::Result<()> {
        let metadata = file.metadata()?;
        self.watch = FileWatch::new(&file, &self.path)?;
        self.file = tokio::fs::File::from_std(file);
        self.identity = (metadata.dev(), metadata.ino());
        self.position = 0;
        self.complete = at > 0;
        self.seen_at = at;
        self.hole_since = None;
        Ok(())
    }

    /// Has `hook` called between the follower's steps.
    #[cfg(test)]
    fn between_steps(&mut self, hook: impl FnMut(Step) + Send + 'static) {
        self.hook = Some(Box::new(hook));
    }

    #[cfg(test)]
    fn step(&mut self, step: Step) {
        if let Some(hook) = &mut self.hook {
            hook(step);
        }
    }

    #[cfg(not(test))]
    fn step(&mut self, _step: Step) {}
}

/// `path` opened for reading, or `None` if there is no such file.
fn open_if_there(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    match std::fs::File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use taskmaster_config::Rotation;

    use super::*;
    use crate::capture::{self, Sinks};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }

    /// `line FIRST\n` ... `line LAST\n`.
    fn lines(range: std::ops::RangeInclusive<u32>) -> Vec<u8> {
        range
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect()
    }

    /// Where `got` first differs from `want`, with a little of both around it.
    fn difference(got: &[u8], want: &[u8]) -> String {
        let at = got
            .iter()
            .zip(want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        let around = |bytes: &[u8]| {
            let from = at.saturating_sub(30);
            String::from_utf8_lossy(&bytes[from..(at + 30).min(bytes.len())]).into_owned()
        };
        format!(
            "{} bytes, {} expected; first difference at {at}: got {:?}, want {:?}",
            got.len(),
            want.len(),
            around(got),
            around(want)
        )
    }

    /// A writer appending lines through capture's own code (so rotating exactly as capture
    /// does: tiny files, hundreds of rotations), in bursts as fast as it can, while several
    /// followers read and a thread keeps a CPU busy: every follower must get every byte, once,
    /// in order. The writer never runs more than `LEAD` ahead of the slowest follower, so no
    /// file is deleted (past `backups`) before it is read.
    #[test]
    fn followers_get_every_byte_across_rapid_rotations_under_load() {
        const LINES: u32 = 6_000;
        const FOLLOWERS: usize = 6;
        const HOGS: usize = 1;
        const MAXBYTES: u64 = 100;
        const BACKUPS: u32 = 64;
        // Files the writer may be ahead of the slowest follower: well under `BACKUPS`.
        const LEAD: u64 = 48 * MAXBYTES;
        let deadline = Instant::now() + Duration::from_secs(120);

        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("x.log");
        let mut sinks = Sinks::default();
        let rotation = Rotation {
            maxbytes: MAXBYTES,
            backups: BACKUPS,
        };
        let sink = sinks.open(&path, rotation).expect("open the sink");
        let want = Arc::new(lines(1..=LINES));

        // What each follower got right so far (u64::MAX once it went wrong: nobody waits
        // for it then).
        let progress: Arc<Vec<AtomicU64>> =
            Arc::new((0..FOLLOWERS).map(|_| AtomicU64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let hogs: Vec<_> = (0..HOGS)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();

        let rt = runtime();
        let followers: Vec<_> = (0..FOLLOWERS)
            .map(|_| {
                rt.block_on(async { Follower::open(&path, |_| 0) })
                    .expect("follow")
            })
            .collect();

        let writer = {
            let (progress, stop, want) = (progress.clone(), stop.clone(), want.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut written = 0u64;
                let mut burst_left = 0;
                for i in 1..=LINES {
                    // In bursts of 1 to 40 files or so, each started once every follower
                    // has caught up: followers at the end of the file (a rotation between
                    // their read and their look at the path) and followers behind (rotations
                    // while they look for the next file).
                    let lead = if burst_left == 0 { 0 } else { LEAD };
                    while progress
                        .iter()
                        .map(|p| p.load(Ordering::Relaxed))
                        .min()
                        .is_some_and(|slowest| written.saturating_sub(slowest) > lead)
                    {
                        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                            return Err(format!("the followers stopped at {written} bytes"));
                        }
                        std::thread::yield_now();
                    }
                    if burst_left == 0 {
                        burst_left = (i * 37) % 400 + 1;
                    }
                    burst_left -= 1;
                    let line = format!("line {i}\n");
                    capture::append_all(&sink, line.as_bytes())?;
                    written += line.len() as u64;
                }
                assert_eq!(written, want.len() as u64);
                Ok(())
            })
        };

        let results: Vec<Result<(), String>> = rt.block_on(async {
            let tasks: Vec<_> = followers
                .into_iter()
                .enumerate()
                .map(|(n, mut follower)| {
                    let (progress, want) = (progress.clone(), want.clone());
                    tokio::spawn(async move {
                        let mut got = Vec::new();
                        let outcome = loop {
                            if got.len() == want.len() {
                                break Ok(());
                            }
                            let left = deadline.saturating_duration_since(Instant::now());
                            let chunk =
                                match tokio::time::timeout(left, follower.next_chunk()).await {
                                    Ok(Ok(Followed::Bytes(chunk))) => chunk,
                                    Ok(Ok(Followed::Gap(gap))) => {
                                        break Err(format!("follower {n}: {gap}"))
                                    }
                                    Ok(Err(e)) => break Err(format!("follower {n}: {e}")),
                                    Err(_) => break Err(format!("follower {n}: timed out")),
                                };
                            got.extend_from_slice(&chunk);
                            if !want.starts_with(&got) {
                                break Err(format!("follower {n}: {}", difference(&got, &want)));
                            }
                            progress[n].store(got.len() as u64, Ordering::Relaxed);
                        };
                        if outcome.is_err() {
                            progress[n].store(u64::MAX, Ordering::Relaxed);
                        }
                        outcome
                    })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap_or_else(|e| Err(e.to_string())));
            }
            results
        });
        stop.store(true, Ordering::Relaxed);
        let wrote = writer.join().expect("the writer");
        for hog in hogs {
            hog.join().expect("a hog");
        }
        let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        assert!(failures.is_empty(), "{failures:#?}");
        wrote.expect("the writer wrote every line");
    }

    /// A log rotated by hand with capture's own `rotate` (or half of it, renamed exactly in
    /// its order), written through a handle of its own.
    struct Log {
        path: PathBuf,
        backups: u32,
        file: std::fs::File,
    }

    impl Log {
        fn new(dir: &Path, backups: u32) -> Log {
            let path = dir.join("x.log");
            let file = std::fs::File::create(&path).expect("create x.log");
            Log {
                path,
                backups,
                file,
            }
        }

        fn write(&mut self, bytes: &str) {
            use std::io::Write;
            self.file.write_all(bytes.as_bytes()).expect("write");
        }

        fn numbered(&self, n: u32) -> PathBuf {
            PathBuf::from(format!("{}.{n}", self.path.display()))
        }

        fn rotate(&mut self) {
            capture::rotate(&self.path, self.backups, &mut self.file).expect("rotate");
        }

        /// The first renames of a rotation, as `rotate` does them (the highest first), down
        /// to `x.log.LOWEST` renamed `x.log.LOWEST+1`.
        fn rename_down_to(&self, lowest: u32) {
            for n in (lowest..self.backups).rev() {
                match std::fs::rename(self.numbered(n), self.numbered(n + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("rename: {e}"),
                    _ => {}
                }
            }
        }

        /// The rest of that rotation: the renames below `x.log.LOWEST`, then `x.log`'s, then the
        /// new file.
        fn finish_rotation_below(&mut self, lowest: u32) {
            for n in (1..lowest).rev() {
                std::fs::rename(self.numbered(n), self.numbered(n + 1)).expect("rename");
            }
            std::fs::rename(&self.path, self.numbered(1)).expect("rename x.log");
            self.file = std::fs::File::create(&self.path).expect("create x.log");
        }
    }

    /// Everything a follower reads until `done` says it is enough, gaps said as `[gap]`;
    /// within 10 seconds.
    fn read_until(follower: &mut Follower, done: impl Fn(&str) -> bool) -> String {
        runtime().block_on(async {
            let mut got = String::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !done(&got) {
                match tokio::time::timeout_at(deadline, follower.next_chunk()).await {
                    Ok(Ok(Followed::Bytes(bytes))) => {
                        got.push_str(&String::from_utf8_lossy(&bytes))
                    }
                    Ok(Ok(Followed::Gap(_))) => got.push_str("[gap]"),
                    Ok(Err(e)) => panic!("follower failed after {got:?}: {e}"),
                    Err(_) => panic!("timed out; read so far: {got:?}"),
                }
            }
            got
        })
    }

    /// A follower of `log` from its start, made on a runtime of its own (which the reads do
    /// not need: they block on another).
    fn follow(path: &Path) -> Follower {
        runtime()
            .block_on(async { Follower::open(path, |_| 0) })
            .expect("follow")
    }

    /// The follower reads to the end of `x.log`; before it looks at the path, the writer fills
    /// the file and rotates it (through capture's own code). The last bytes of the rotated
    /// file must still be read, before the new file's.
    #[test]
    fn bytes_written_between_the_end_read_and_the_rotation_seen_are_read() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("x.log");
        let mut sinks = Sinks::default();
        let rotation = Rotation {
            maxbytes: 4,
            backups: 10,
        };
        let sink = sinks.open(&path, rotation).expect("open the sink");
        capture::append_all(&sink, b"a\n").expect("append");
        let mut follower = follow(&path);
        let mut once = true;
        follower.between_steps(move |step| {
            if step == Step::End && std::mem::take(&mut once) {
                // Fills x.log (4 bytes), then rotates it for "c\n".
                capture::append_all(&sink, b"b\nc\n").expect("append");
            }
        });
        let got = read_until(&mut follower, |got| got.ends_with("c\n") || got.len() > 6);
        assert_eq!(got, "a\nb\nc\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("x.log.1"))
                .ok()
                .as_deref(),
            Some("a\nb\n")
        );
    }

    /// Rotations between finding the file read among `x.log.N` and opening the next one: the
    /// follower must notice the names moved and look again.
    #[test]
    fn rotations_while_the_successor_is_opened_are_noticed() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut log = Log::new(dir.path(), 10);
        log.write("0\n");
        let mut follower = follow(&log.path);
        log.rotate();
        log.write("1\n");
        let mut once = true;
        follower.between_steps(move |step| {
            if matches!(step, Step::Found(_)) && std::mem::take(&mut once) {
                for n in 2..5 {
                    log.rotate();
                    log.write(&format!("{n}\n"));
                }
            }
        });
        let got = read_until(&mut follower, |got| got.ends_with("4\n") || got.len() > 10);
        assert_eq!(got, "0\n1\n2\n3\n4\n");
    }

    /// A rotation half done when the successor is opened: `x.log.N` (the file read) and
    /// `x.log.N-1` already renamed up, `x.log.N-2` not yet, so `x.log.N-1` is missing for a
    /// moment. The follower must look again, not jump to the newest file.
    #[test]
    fn a_name_missing_in_a_rotation_under_way_is_looked_for_again() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut log = Log::new(dir.path(), 10);
        log.write("0\n");
        let mut follower = follow(&log.path);
        for n in 1..4 {
            log.rotate();
            log.write(&format!("{n}\n"));
        }
        // 0 is x.log.3 now; the follower reads it, and finds it there.
        let mut step_seen = None;
        follower.between_steps(move |step| match (step, step_seen) {
            (Step::Found(n), None) => {
                assert_eq!(n, 3);
                log.rename_down_to(n - 1);
                step_seen = Some(n);
            }
            (Step::Opened(_), Some(n)) if n > 0 => {
                log.finish_rotation_below(n - 1);
                log.write("4\n");
                step_seen = Some(0);
            }
            _ => {}
        });
        let got = read_until(&mut follower, |got| got.ends_with("4\n") || got.len() > 10);
        assert_eq!(got, "0\n1\n2\n3\n4\n");
    }

    /// A rotation under way renamed the file read from `x.log.N-1` to `x.log.N`, and has not
    /// renamed the next one into `x.log.N-1` yet: the follower finds its file at N and nothing
    /// at N-1 for a moment. That is no gap: it must wait for the rename, not jump ahead.
    #[test]
    fn the_name_below_the_file_read_missing_in_a_rotation_under_way_is_waited_for() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut log = Log::new(dir.path(), 10);
        log.write("0\n");
        let mut follower = follow(&log.path);
        for n in 1..3 {
            log.rotate();
            log.write(&format!("{n}\n"));
        }
        // 0 is x.log.2, 1 x.log.1, 2 x.log.
        let mut stage = 0;
        follower.between_steps(move |step| match (step, stage) {
            (Step::End, 0) => {
                // The next rotation, up to 0 renamed x.log.3: nothing at x.log.2.
                log.rename_down_to(2);
                stage = 1;
            }
            (Step::Wait, 1) => {
                log.finish_rotation_below(2);
                log.write("3\n");
                stage = 2;
            }
            _ => {}
        });
        let got = read_until(&mut follower, |got| got.ends_with("3\n") || got.len() > 8);
        assert_eq!(got, "0\n1\n2\n3\n");
    }

    /// `x.log` renamed `x.log.1` and the new one not there yet, when the follower finishes
    /// the file read: it waits for the new one.
    #[test]
    fn the_new_file_of_a_rotation_under_way_is_waited_for() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut log = Log::new(dir.path(), 10);
        log.write("0\n");
        let mut follower = follow(&log.path);
        log.rotate();
        log.write("1\n");
        let mut stage = 0;
        follower.between_steps(move |step| match (step, stage) {
            (Step::Found(1), 0) => {
                // The next rotation, half done: 0 is x.log.2, 1 is x.log.1, no x.log.
                log.rename_down_to(1);
                std::fs::rename(&log.path, log.numbered(1)).expect("rename x.log");
                stage = 1;
            }
            (Step::Wait, 1) => {
                log.file = std::fs::File::create(&log.path).expect("create x.log");
                log.write("2\n");
                stage = 2;
            }
            _ => {}
        });
        let got = read_until(&mut follower, |got| got.ends_with("2\n") || got.len() > 6);
        assert_eq!(got, "0\n1\n2\n");
    }

    /// The file read is rotated past the backups kept before the follower finds the next one:
    /// the follower says so, then goes on with files written after it, never before.
    #[test]
    fn a_file_rotated_past_the_backups_is_a_gap_said() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut log = Log::new(dir.path(), 2);
        log.write("a\n");
        let mut follower = follow(&log.path);
        let mut once = true;
        follower.between_steps(move |step| {
            if step == Step::End && std::mem::take(&mut once) {
                log.write("b\n");
                for line in ["c\n", "d\n", "e\n"] {
                    log.rotate();
                    log.write(line);
                }
            }
        });
        let got = read_until(&mut follower, |got| got.ends_with("e\n") || got.len() > 20);
        let (before, after) = got
            .split_once("[gap]")
            .unwrap_or_else(|| panic!("no gap said: {got:?}"));
        assert_eq!(before, "a\nb\n");
        assert!("c\nd\ne\n".ends_with(after), "{got:?}");
    }

    /// An outside logrotate renames the file to a name of its own and creates a new one: the
    /// follower reads the old file to its end, then the new one, and nothing is missing.
    #[test]
    fn a_file_renamed_out_of_the_rotated_names_is_followed_by_the_new_one() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut log = Log::new(dir.path(), 10);
        log.write("a\n");
        let mut follower = follow(&log.path);
        let mut once = true;
        follower.between_steps(move |step| {
            if step == Step::End && std::mem::take(&mut once) {
                log.write("b\n");
                let elsewhere = log.path.with_file_name("x.log-20250101");
                std::fs::rename(&log.path, elsewhere).expect("rename");
                log.file = std::fs::File::create(&log.path).expect("create x.log");
                log.write("c\n");
            }
        });
        let got = read_until(&mut follower, |got| got.ends_with("c\n") || got.len() > 10);
        assert_eq!(got, "a\nb\nc\n");
    }
}
