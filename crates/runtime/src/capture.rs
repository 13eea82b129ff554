//! Output capture: children write into pipes taskmaster holds, and a thread per pipe moves what
//! arrives into the log file with `splice`, inside the kernel. (A file never rotated, with
//! nothing reading the stream on its way, is the child's own instead: see
//! `ProgramSpec::writes_own_file` and `spawn`. Nothing here is involved.)
//!
//! Why pipes rather than giving the child the file itself: taskmaster then holds every byte's
//! way to disk (what rotation, syslog and output events need), and still copies nothing
//! through user space: `splice` moves pages from the pipe to the file, so no byte ever sits in a
//! buffer of ours where a crash could lose it. A thread per pipe blocks in `splice`, never the
//! event loop: a program writing as fast as it can delays nobody's restart or request.
//!
//! `splice` refuses files opened with O_APPEND, so each log file is opened once, without it,
//! as a [`Sink`] shared by every pipe that writes there (the processes of a `numprocs` group
//! share one file); a sink's lock makes each transfer a seek to the end and a splice, as one.
//! A thread waits for data without the lock and splices without blocking on the pipe, so that
//! no pipe waits for another's writer. Where `splice` cannot serve (the file is a terminal or
//! another device), the thread copies with read and write instead.
//!
//! A stream sent to syslog (`stdout: syslog`, `stdout_syslog: true`) needs its bytes in user
//! space, to cut them into lines: [`relay`] is its way.
//!
//! When a child exits, the loop moves what is left in its pipes at once ([`Capture::flush`]),
//! so that its last lines are in the file before anyone hears that it exited.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rustix::pipe::{splice, SpliceFlags};
use taskmaster_config::{Rotation, Stream};

use crate::syslog;

mod observed;
mod protocol;
mod relay;
pub use observed::Heard;
use observed::Observed;
use relay::Relay;

/// How much one splice moves at most, and the size pipes are enlarged to (F_SETPIPE_SZ), so a
/// fast writer rarely blocks.
const PIPE_SIZE: usize = 1 << 20;

/// How long a thread waits before it tries again after the file refused a write (disk full,
/// permissions): meanwhile the child blocks on a full pipe, and no byte is lost.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A log file that pipes drain into, rotated by size.
pub struct Sink {
    path: PathBuf,
    /// The rotation's `maxbytes` and `backups`, which a reload may change while pipes drain
    /// into the file: each write reads them afresh.
    maxbytes: AtomicU64,
    backups: AtomicU32,
    file: Mutex<File>,
}

impl Sink {
    fn rotation(&self) -> Rotation {
        Rotation {
            maxbytes: self.maxbytes.load(Ordering::Relaxed),
            backups: self.backups.load(Ordering::Relaxed),
        }
    }

    fn set_rotation(&self, rotation: Rotation) {
        self.maxbytes.store(rotation.maxbytes, Ordering::Relaxed);
        self.backups.store(rotation.backups, Ordering::Relaxed);
    }
}

/// The open log files, by path, and the links to syslog sockets, by socket, for as long as a
/// pipe writes to them.
#[derive(Default)]
pub struct Sinks {
    files: std::collections::HashMap<PathBuf, Weak<Sink>>,
    syslogs: std::collections::HashMap<PathBuf, Weak<syslog::Link>>,
}

impl Sinks {
    /// The sink for `path`, opened (and created) if no pipe writes there yet. Its rotation is
    /// that of the first program that opened it, until a reload changes it
    /// ([`Sinks::set_rotation`]).
    pub fn open(&mut self, path: &Path, rotation: Rotation) -> std::io::Result<Arc<Sink>> {
        if let Some(sink) = self.files.get(path).and_then(Weak::upgrade) {
            return Ok(sink);
        }
        self.files.retain(|_, sink| sink.strong_count() > 0);
        // Never truncated: what is there stays, and every write goes to the end.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let sink = Arc::new(Sink {
            path: path.to_path_buf(),
            maxbytes: AtomicU64::new(rotation.maxbytes),
            backups: AtomicU32::new(rotation.backups),
            file: Mutex::new(file),
        });
        self.files.insert(path.to_path_buf(), Arc::downgrade(&sink));
        Ok(sink)
    }

    /// Gives the open sink for `path`, if any, the rotation `rotation` from its next write
    /// on: a reload's new sizes, applied without a restart of the processes writing there.
    pub fn set_rotation(&self, path: &Path, rotation: Rotation) {
        if let Some(sink) = self.files.get(path).and_then(Weak::upgrade) {
            sink.set_rotation(rotation);
        }
    }

    /// The link to the syslog socket `socket`, shared by every stream that sends there, so that
    /// an outage is reported once.
    pub fn syslog(&mut self, socket: &Path) -> Arc<syslog::Link> {
        if let Some(link) = self.syslogs.get(socket).and_then(Weak::upgrade) {
            return link;
        }
        self.syslogs.retain(|_, link| link.strong_count() > 0);
        let link = Arc::new(syslog::Link::new(socket));
        self.syslogs
            .insert(socket.to_path_buf(), Arc::downgrade(&link));
        link
    }
}

impl Sinks {
    /// Reopens the open log files at their paths (after an outside `logrotate` renamed them):
    /// `only` those, or every one. How many were, and an error text for each that failed (it
    /// keeps its old file).
    pub fn reopen(&mut self, only: Option<&[PathBuf]>) -> (usize, Vec<String>) {
        let mut reopened = 0;
        let mut errors = Vec::new();
        let chosen = |path: &PathBuf| only.is_none_or(|only| only.contains(path));
        for sink in self
            .files
            .iter()
            .filter(|(path, _)| chosen(path))
            .filter_map(|(_, sink)| sink.upgrade())
        {
            let opened = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&sink.path);
            match opened {
                Ok(file) => {
                    *lock(&sink) = file;
                    reopened += 1;
                }
                Err(e) => errors.push(format!(
                    "cannot reopen {}: {}",
                    sink.path.display(),
                    taskmaster_config::os_reason(&e)
                )),
            }
        }
        (reopened, errors)
    }
}

/// A pipe for one output stream of a child: the child gets `write`, [`drain`] gets `read`.
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

impl Pipe {
    pub fn new() -> std::io::Result<Pipe> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        // A bigger pipe lets a fast writer run ahead of the disk; the default 64 KiB is kept
        // when the system refuses (pipe-max-size, or an unprivileged user's quota).
        let _ = rustix::pipe::fcntl_setpipe_size(&read, PIPE_SIZE);
        Ok(Pipe { read, write })
    }
}

/// Where one output stream of a child goes.
pub enum Destination {
    /// A file, filled inside the kernel.
    File(Arc<Sink>),
    /// Syslog, line by line, and the file too if there is one.
    Syslog {
        file: Option<Arc<Sink>>,
        link: Arc<syslog::Link>,
        /// The process's name, the tag of its lines.
        tag: String,
    },
    /// An event listener's stdout: to the loop, which reads the protocol, and the file too if
    /// there is one.
    Protocol { file: Option<Arc<Sink>> },
    /// A stream event listeners hear of: the file, and the loop's events.
    Observed {
        file: Option<Arc<Sink>>,
        events: taskmaster_config::StreamEvents,
    },
}

/// What a capture thread tells the loop: a listener's protocol bytes, or that an observed
/// stream has news ([`Capture::take_heard`]).
pub enum News {
    Protocol(Vec<u8>),
    Heard,
}

/// How a capture thread reaches the loop.
pub type ToLoop = Arc<dyn Fn(News) + Send + Sync>;

/// One output pipe of a child and where it drains.
#[derive(Clone)]
pub struct Capture(Arc<Drain>);

struct Drain {
    pipe: OwnedFd,
    stream: Stream,
    way: Way,
    /// Every byte read from the pipe, whatever its way (for the metrics).
    counted: Arc<AtomicU64>,
    /// Hears of each error (once until the next success).
    report: Box<dyn Fn(String) + Send + Sync>,
}

/// How a pipe is drained.
enum Way {
    /// Into a file, inside the kernel (`splice`).
    Splice(Arc<Sink>),
    /// Through user space, line by line, to syslog (and the file, if any).
    Lines(Relay),
    /// Through user space to the loop (and the file, if any): a listener's protocol.
    Protocol {
        file: Option<Arc<Sink>>,
        to_loop: ToLoop,
    },
    /// Through user space to the file and the loop's events.
    Observed(Observed),
}

impl Capture {
    /// Starts draining `pipe`, child `pid`'s `stream`, to `destination` on a thread of its own,
    /// until every writer has closed it. `report` hears of each error (once until the next
    /// success); `to_loop` hears what the loop must (a listener's protocol, a stream's events);
    /// `counted` adds up every byte read.
    pub fn start(
        pipe: OwnedFd,
        stream: Stream,
        destination: Destination,
        pid: u32,
        report: impl Fn(String) + Send + Sync + 'static,
        to_loop: ToLoop,
        counted: Arc<AtomicU64>,
    ) -> Capture {
        let (name, way) = match destination {
            Destination::File(sink) => (
                format!("capture {}", sink.path.display()),
                Way::Splice(sink),
            ),
            Destination::Syslog { file, link, tag } => {
                let format = syslog::Format::new(stream, &tag, pid);
                let relay = Relay::new(&pipe, file, link, format, Arc::clone(&counted), &report);
                (format!("syslog {tag} {}", stream.name()), Way::Lines(relay))
            }
            Destination::Protocol { file } => {
                (format!("listener {pid}"), Way::Protocol { file, to_loop })
            }
            Destination::Observed { file, events } => {
                let news = Box::new(move || to_loop(News::Heard));
                let observed =
                    Observed::new(&pipe, file, events, news, Arc::clone(&counted), &report);
                (
                    format!("events {pid} {}", stream.name()),
                    Way::Observed(observed),
                )
            }
        };
        let capture = Capture(Arc::new(Drain {
            pipe,
            stream,
            way,
            counted,
            report: Box::new(report),
        }));
        let drained = capture.clone();
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let Drain {
                pipe,
                way,
                report,
                counted,
                ..
            } = &*drained.0;
            match way {
                Way::Splice(sink) => drain_blocking(pipe, sink, counted, report),
                Way::Lines(relay) => relay.run(pipe, report),
                Way::Protocol { file, to_loop } => {
                    let deliver = |bytes: Vec<u8>| {
                        counted.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        to_loop(News::Protocol(bytes))
                    };
                    protocol::run(pipe, file.as_ref(), &deliver, report)
                }
                Way::Observed(observed) => observed.run(pipe, report),
            }
        });
        if let Err(e) = spawned {
            // Without a thread the child would block once the pipe is full; say so.
            eprintln!("taskmaster: cannot start an output capture thread: {e}");
        }
        capture
    }

    /// The pipe's read end.
    pub fn pipe(&self) -> &OwnedFd {
        &self.0.pipe
    }

    /// The stream it carries.
    pub fn stream(&self) -> Stream {
        self.0.stream
    }

    /// Moves what the pipe holds now into the file, without waiting for more: at most a pipe's
    /// worth, so it is quick enough for the loop. Lines for syslog are sent by the capture's
    /// thread, which this wakes: a slow syslog never holds the loop.
    pub fn flush(&self) {
        match &self.0.way {
            Way::Splice(sink) => {
                let mut file = lock(sink);
                while let Ok(moved) = transfer(&self.0.pipe, sink, &mut file) {
                    if moved == 0 {
                        break;
                    }
                    self.0.counted.fetch_add(moved as u64, Ordering::Relaxed);
                }
            }
            Way::Lines(relay) => relay.flush(&self.0.pipe, &*self.0.report),
            // Its thread reads on until the pipe ends.
            Way::Protocol { .. } => {}
            Way::Observed(observed) => observed.flush(&self.0.pipe, &*self.0.report),
        }
    }

    /// What event listeners are to hear of it since the last time, oldest first.
    pub fn take_heard(&self) -> Vec<Heard> {
        match &self.0.way {
            Way::Observed(observed) => observed.take_heard(),
            _ => Vec::new(),
        }
    }
}

fn lock(sink: &Sink) -> std::sync::MutexGuard<'_, File> {
    match sink.file.lock() {
        Ok(file) => file,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn drain_blocking(pipe: &OwnedFd, sink: &Sink, counted: &AtomicU64, report: &dyn Fn(String)) {
    let mut failing = false;
    loop {
        // Wait for data (or the end) without holding the file.
        let mut ready = [rustix::event::PollFd::new(
            pipe,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut ready, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                report(format!("cannot wait for a child's output: {e}"));
                return;
            }
        }
        let moved = transfer(pipe, sink, &mut lock(sink));
        match moved {
            Ok(0) => return, // every writer is gone
            Ok(moved) => {
                counted.fetch_add(moved as u64, Ordering::Relaxed);
                if failing {
                    report(format!("output goes to {} again", sink.path.display()));
                    failing = false;
                }
            }
            Err(Failed::Write(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {} // flushed meanwhile
            Err(Failed::Write(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A terminal or a device: no seek, no splice.
            Err(Failed::Write(e))
                if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ESPIPE)) =>
            {
                return copy_blocking(pipe, sink, counted, report);
            }
            Err(failed) => {
                if !failing {
                    report(refused(sink, &failed));
                    failing = true;
                }
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
}

/// What a transfer could not do.
enum Failed {
    /// Rotate the file (rename it or its backups, open the new one).
    Rotate(std::io::Error),
    /// Find the file's end or splice into it.
    Write(std::io::Error),
}

impl Failed {
    /// `cannot rotate /var/log/web.log: Permission denied`.
    fn describe(&self, path: &Path) -> String {
        let (what, error) = match self {
            Failed::Rotate(e) => ("rotate", e),
            Failed::Write(e) => ("write output to", e),
        };
        format!(
            "cannot {what} {}: {}",
            path.display(),
            taskmaster_config::os_reason(error)
        )
    }
}

/// One splice from the pipe to the end of the file, never waiting on the pipe; no more than
/// [`room`] allows.
fn transfer(pipe: &OwnedFd, sink: &Sink, file: &mut File) -> Result<usize, Failed> {
    let room = room(sink, file)?;
    splice(
        pipe,
        None,
        &*file,
        None,
        room,
        SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
    )
    .map_err(|e| Failed::Write(e.into()))
}

/// Moves the file's offset to its end, rotating the file first if it holds `maxbytes`: how
/// much may go in before it must rotate again (at most a pipe's worth). The offset is the
/// file's own (no O_APPEND), so it is moved each time: another process may have appended
/// meanwhile. Since nothing goes past `maxbytes`, each rotated file holds exactly that much.
fn room(sink: &Sink, file: &mut File) -> Result<usize, Failed> {
    let mut size = rustix::fs::seek(&*file, rustix::fs::SeekFrom::End(0))
        .map_err(|e| Failed::Write(e.into()))?;
    let rotation = sink.rotation();
    let maxbytes = rotation.maxbytes;
    if maxbytes > 0 && size >= maxbytes {
        rotate(&sink.path, rotation.backups, file).map_err(Failed::Rotate)?;
        size = 0;
    }
    Ok(match maxbytes {
        0 => PIPE_SIZE,
        _ => usize::try_from(maxbytes - size).map_or(PIPE_SIZE, |room| room.min(PIPE_SIZE)),
    })
}

/// Appends `bytes` to the sink's file with [`room`]'s rotation: how many went in, and the
/// error that stopped the rest.
fn append(sink: &Sink, bytes: &[u8]) -> (usize, Option<Failed>) {
    let mut file = lock(sink);
    let mut written = 0;
    while written < bytes.len() {
        let room = match room(sink, &mut file) {
            Ok(room) => room,
            // A terminal or a device: no end to seek to, nothing to rotate.
            Err(Failed::Write(e)) if e.raw_os_error() == Some(libc::ESPIPE) => PIPE_SIZE,
            Err(failed) => return (written, Some(failed)),
        };
        let end = bytes.len().min(written + room);
        match (&*file).write(&bytes[written..end]) {
            Ok(0) => {
                let e = std::io::ErrorKind::WriteZero.into();
                return (written, Some(Failed::Write(e)));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Some(Failed::Write(e))),
        }
    }
    (written, None)
}

/// [`append`] for other modules' tests: `bytes` written as a child's output is, the sink's
/// rotation included.
#[cfg(test)]
pub(crate) fn append_all(sink: &Sink, bytes: &[u8]) -> Result<(), String> {
    match append(sink, bytes) {
        (_, Some(failed)) => Err(failed.describe(&sink.path)),
        (written, None) => {
            assert_eq!(written, bytes.len());
            Ok(())
        }
    }
}

/// The message for a file that refuses output; the writer waits (on its full pipe) meanwhile.
fn refused(sink: &Sink, failed: &Failed) -> String {
    format!(
        "{}; the writer waits until it can (retried every second)",
        failed.describe(&sink.path)
    )
}

/// supervisord's rotation: `x.log.N-1` becomes `x.log.N` ... `x.log` becomes `x.log.1`, and
/// a new `x.log` is opened; with no backups the file is emptied instead. Renames never lose a
/// byte: what was written stays in the renamed file.
pub(crate) fn rotate(path: &Path, backups: u32, file: &mut File) -> std::io::Result<()> {
    if backups == 0 {
        return file.set_len(0);
    }
    let numbered = |n: u32| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    // A file that is gone (deleted by hand to free the disk, or renamed by a rotation that then
    // could not open the new one) has nothing to keep: the backups stay as they are, and only
    // a new file is opened. Renaming it again would fail for ever, and the writer would wait.
    let gone =
        std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if !gone {
        for n in (1..backups).rev() {
            match std::fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(path, numbered(1))?;
    }
    *file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    Ok(())
}

/// The fallback where splice cannot write (a terminal, a device): read and write.
fn copy_blocking(pipe: &OwnedFd, sink: &Sink, counted: &AtomicU64, report: &dyn Fn(String)) {
    let mut pipe = File::from(match pipe.try_clone() {
        Ok(pipe) => pipe,
        Err(e) => {
            report(format!("cannot read a child's output: {e}"));
            return;
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match pipe.read(&mut buffer) {
            Ok(0) => return,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        counted.fetch_add(read as u64, Ordering::Relaxed);
        let _ = (&*lock(sink)).write_all(&buffer[..read]);
    }
}
