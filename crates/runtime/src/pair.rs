//! taskmaster as a process pair (`taskmaster run --pair`): a primary that supervises, and a hot
//! backup that holds a copy of everything and takes over when the primary dies.
//!
//! The primary listens on `taskmaster.pair` beside its control socket and spawns the backup (a
//! copy of its own executable, `run --pair --backup`, in a process group of its own so that a
//! terminal's Ctrl-C reaches only the primary). Over that stream it sends:
//! - the whole supervisor state after every loop iteration that changed it
//!   ([`Message::State`]; the state is plain data, and CLOCK_MONOTONIC, which its deadlines are
//!   read on, is the same for both processes);
//! - for every child, as it is spawned, its pidfd and the read ends of its output pipes, over
//!   SCM_RIGHTS ([`Message::Child`]);
//! - a heartbeat every `pair.interval` of the configuration (200 ms) when nothing else was
//!   sent.
//!
//! The backup does nothing but listen. After `pair.misses` intervals without a message (1 s),
//! or when the stream
//! ends (the primary died, SIGKILL included), it takes over: the state becomes its own
//! ([`Supervisor::take_over`]), every child goes on under it (same pids: it watches their
//! pidfds, and their pipes drain into the same files), it serves the control socket at the same
//! path, and it spawns a backup of its own.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmaster_config::{ProgramSpec, Stream};
use taskmaster_core::Supervisor;

use crate::handover::{send_blocking, Channel};

/// After a silence, how long the backup looks for what waits in the stream (already there if
/// the backup itself was the one paused) before it calls the primary silent.
const PAUSED_GRACE: Duration = Duration::from_millis(2);

/// How long a silent primary that is busy (on a CPU, its CPU time growing: a turn of the loop
/// that stops thousands of processes at once) is waited for before it counts as hung anyway.
const BUSY_PRIMARY_WAIT: Duration = Duration::from_secs(30);

/// At the end, how long the writer may go without finishing a message before the stream is
/// closed anyway.
const CLOSE_PATIENCE: Duration = Duration::from_secs(5);

/// How often [`PrimaryLink::close`] looks whether the writer is done.
const CLOSE_POLL: Duration = Duration::from_millis(5);

/// How long one write to the backup may wait before the backup counts as broken: long enough
/// for a backup that is busy reading a large state on a loaded machine (it stops reading while
/// it applies one), short enough that a hung backup is replaced soon.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the primary of a daemon whose control socket is `socket` listens for its backup.
pub fn pair_socket_path(socket: &Path) -> PathBuf {
    socket.with_extension("pair")
}

/// What the primary tells its backup.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Message {
    /// The whole supervisor state.
    State(Box<Supervisor>),
    /// What changed in the state since the last `State` or `Changes` (a backup older than
    /// this message ignores it; the primary it hears is then older too).
    Changes(Box<taskmaster_core::Changes>),
    /// A new child. The descriptors come with the message: its pidfd, then the read end of
    /// each output pipe, whose streams are `outputs`, in the same order, then with `stdin` the
    /// write end of its stdin pipe.
    Child {
        pid: u32,
        outputs: Vec<HandedOutput>,
        #[serde(default)]
        stdin: bool,
    },
    /// Still alive.
    Beat,
    /// The primary is exiting by request (a shutdown): the pair is over, nothing to take over.
    Exit,
    /// The primary hands over (`takeover`, `upgrade`): it exits once its answers are out, and
    /// the backup takes over when the stream ends, without killing it.
    Handover,
}

/// Which stream of a child an output pipe carries. A primary before `stdout: syslog` named
/// the pipe's file instead, and a backup that `upgrade` started from a newer executable still
/// hears such a primary: the file is then matched against the program's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HandedOutput {
    Stream(Stream),
    File(PathBuf),
}

impl HandedOutput {
    /// The stream, for a child of program `spec`.
    pub fn stream(&self, spec: &ProgramSpec) -> Stream {
        match self {
            HandedOutput::Stream(stream) => *stream,
            HandedOutput::File(file) if spec.stdout.as_ref() == Some(file) => Stream::Stdout,
            HandedOutput::File(_) => Stream::Stderr,
        }
    }
}

/// A child the backup holds the descriptors of.
pub struct HeldChild {
    pub pidfd: OwnedFd,
    /// Each output pipe's stream and read end; where it goes is the child's program's
    /// business.
    pub outputs: Vec<(HandedOutput, OwnedFd)>,
    /// The write end of its stdin pipe (`stdin: pipe`).
    pub stdin: Option<OwnedFd>,
}

/// What a backup takes over with: the last state its primary sent, and its children.
pub struct Takeover {
    pub supervisor: Supervisor,
    pub children: HashMap<u32, HeldChild>,
    /// Why: the stream ended, or the primary fell silent.
    pub reason: String,
}

/// Why a backup could not even begin.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot reach the primary at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the primary died before it sent its state")]
    NoState,
    /// Not an error for the user: the primary shut down, and its backup goes with it.
    #[error("the primary shut down")]
    PrimaryExited,
    #[error("cannot set up the backup's event loop: {0}")]
    Runtime(std::io::Error),
}

/// Runs as the backup of the primary whose control socket is `socket`, until it must take
/// over; blocks the calling thread. `silence` is how long the primary may say nothing.
pub fn wait_as_backup(socket: &Path, silence: Duration) -> Result<Takeover, BackupError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BackupError::Runtime)?;
    runtime.block_on(listen(pair_socket_path(socket), silence))
}

async fn listen(path: PathBuf, silence: Duration) -> Result<Takeover, BackupError> {
    // The primary is this backup's parent. Its pidfd, taken now, can only ever reach it.
    let parent = rustix::process::getppid();
    let primary = parent.and_then(|parent| {
        rustix::process::pidfd_open(parent, rustix::process::PidfdFlags::empty()).ok()
    });
    let mut busy = BusyWatch::new(parent.map(|p| p.as_raw_nonzero().get()));
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .map_err(|source| BackupError::Connect {
            path: path.clone(),
            source,
        })?;
    let mut channel = Channel::new(stream);
    let mut supervisor: Option<Supervisor> = None;
    let mut children: HashMap<u32, HeldChild> = HashMap::new();
    let mut handed_over = false;
    let mut bytes_heard = 0;
    let reason = loop {
        let mut received = tokio::time::timeout(silence, channel.recv()).await;
        if received.is_err() {
            // The silence may be this backup's own (it was paused): what the primary sent
            // meanwhile is waiting in the stream. Only a stream with nothing in it is silence.
            received = tokio::time::timeout(PAUSED_GRACE, channel.recv()).await;
        }
        // Part of a long message (the state of thousands of processes, slow to write on a
        // loaded machine) is a word too: only a stream that brought nothing is silence.
        let still_arriving = channel.bytes_received() != bytes_heard;
        bytes_heard = channel.bytes_received();
        let received = match received {
            Err(_) if still_arriving => {
                busy.heard();
                continue;
            }
            // Silent but working: not hung. Said once per silence, since a primary's long
            // turns are meant to keep it talking (its heartbeats go out mid-turn).
            Err(_) if busy.still_working().await => {
                if !busy.said_silent {
                    busy.said_silent = true;
                    eprintln!(
                        "taskmaster backup (pid {}): the primary has said nothing for {silence:?} but is working: not taking over",
                        std::process::id()
                    );
                }
                continue;
            }
            Err(_) => break format!("no word from the primary for {silence:?}"),
            Ok(Ok(None)) if handed_over => break "the primary handed over".to_string(),
            Ok(Ok(None)) => break "the primary's stream ended".to_string(),
            Ok(Err(e)) => break format!("the primary's stream failed: {e}"),
            Ok(Ok(Some(received))) => received,
        };
        busy.heard();
        let (header, fds) = received;
        match serde_json::from_slice::<Message>(&header) {
            Ok(Message::State(state)) => {
                // Children the state no longer has a pid for are gone: drop their descriptors.
                let live: std::collections::HashSet<u32> =
                    state.processes().filter_map(|p| p.pid).collect();
                children.retain(|pid, _| live.contains(pid));
                supervisor = Some(*state);
            }
            Ok(Message::Changes(changes)) => {
                if let Some(supervisor) = supervisor.as_mut() {
                    // The children of the records changed that no longer have them are gone.
                    let before: Vec<(String, u32)> = changes
                        .names()
                        .filter_map(|name| Some((name.to_string(), supervisor.process(name)?.pid?)))
                        .collect();
                    supervisor.apply_changes(*changes);
                    for (name, pid) in before {
                        if supervisor.process(&name).and_then(|p| p.pid) != Some(pid) {
                            children.remove(&pid);
                        }
                    }
                }
            }
            Ok(Message::Child {
                pid,
                outputs,
                stdin,
            }) => {
                let mut fds = fds.into_iter();
                if let Some(pidfd) = fds.next() {
                    let outputs = outputs.iter().cloned().zip(fds.by_ref()).collect();
                    let stdin = if stdin { fds.next() } else { None };
                    children.insert(
                        pid,
                        HeldChild {
                            pidfd,
                            outputs,
                            stdin,
                        },
                    );
                }
            }
            Ok(Message::Beat) => {}
            Ok(Message::Exit) => return Err(BackupError::PrimaryExited),
            Ok(Message::Handover) => handed_over = true,
            Err(_) => {} // a newer primary's message this backup does not know: ignored
        }
    };
    // Silent is not always dead: a primary that is paused or hung would come back to a world
    // with two primaries. It is killed first (a no-op when it is dead already).
    if let (Some(primary), false) = (&primary, handed_over) {
        let _ = crate::sys::pidfd_send_signal(primary.as_fd(), taskmaster_core::Signal::KILL);
    }
    let supervisor = supervisor.ok_or(BackupError::NoState)?;
    Ok(Takeover {
        supervisor,
        children,
        reason,
    })
}

/// Whether a silent primary is busy rather than hung: over [`BUSY_LOOK`], it is running or
/// waiting for a CPU (state R) or in the kernel (D: a loaded machine's page faults, its disk),
/// or its CPU time (utime + stime, from /proc) grows; for at most [`BUSY_PRIMARY_WAIT`] after
/// its last word. A paused primary (SIGSTOP, state T) or one stuck waiting (S, D) uses no CPU,
/// and is taken over as before, [`BUSY_LOOK`] later.
struct BusyWatch {
    pid: Option<i32>,
    last_word: std::time::Instant,
    /// The current silence was reported.
    said_silent: bool,
}

/// How long a silent primary is watched for signs of work.
const BUSY_LOOK: Duration = Duration::from_millis(250);

impl BusyWatch {
    fn new(pid: Option<i32>) -> BusyWatch {
        BusyWatch {
            pid,
            last_word: std::time::Instant::now(),
            said_silent: false,
        }
    }

    /// The primary spoke.
    fn heard(&mut self) {
        self.last_word = std::time::Instant::now();
        self.said_silent = false;
    }

    /// After a silence: whether the primary works (see [`BusyWatch`]).
    async fn still_working(&mut self) -> bool {
        if self.last_word.elapsed() >= BUSY_PRIMARY_WAIT {
            return false;
        }
        let Some((running_before, before)) = self.look() else {
            return false;
        };
        tokio::time::sleep(BUSY_LOOK).await;
        let Some((running_after, after)) = self.look() else {
            return false;
        };
        running_before || running_after || after > before
    }

    /// Whether the primary is on a CPU, waiting for one or in the kernel, and its CPU time in
    /// clock ticks.
    fn look(&self) -> Option<(bool, u64)> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // Fields after the command name (which may hold spaces): state is field 3, utime 14.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let running = matches!(*fields.first()?, "R" | "D");
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((running, utime + stime))
    }
}

/// The primary's end: the listener its backup connects to, and the stream once it has.
pub(crate) struct PrimaryLink {
    listener: tokio::net::UnixListener,
    path: PathBuf,
    /// The stream's writer task, while a backup is connected: the loop only queues messages,
    /// so a slow backup never holds it up.
    writer: Option<Writer>,
    /// Messages queued on this stream, and how many must be written before the backup holds
    /// what it needs to take over (the state and every child's descriptors): until then a
    /// primary that dies leaves a backup with nothing.
    queued: u64,
    ready_after: u64,
}

/// What the loop gives the writer: a message and the descriptors that go with it (the writer
/// serializes it: a state of thousands of processes costs the loop nothing), or a heartbeat.
enum Outgoing {
    Message { message: Message, fds: Vec<OwnedFd> },
    Beat,
}

/// The thread that writes to the backup's stream, in order. A thread, not a task on the
/// loop: what the loop queues goes out while the loop is busy, so a heartbeat asked for in
/// the middle of a long turn (see [`crate::primary::Primary::beat_if_due`]) reaches the
/// backup on time, and even while the thread serializes a large message (what a turn changed
/// in thousands of processes): the stream is idle then, and a heartbeat goes out between two
/// of the serializer's writes.
struct Writer {
    queue: std::sync::mpsc::Sender<Outgoing>,
    /// Shared with the thread: whether it failed, what it sent, whether a beat is asked for.
    shared: std::sync::Arc<WriterState>,
    /// The stream, to shut down: a send stuck in the thread fails at once.
    stream: std::os::unix::net::UnixStream,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct WriterState {
    /// Set by the thread when a send failed or timed out: the backup is gone or not listening.
    broken: AtomicBool,
    /// Messages written so far: how [`PrimaryLink::close`] tells a writer that is getting on
    /// from one that is stuck.
    sent: AtomicU64,
    /// The loop asked for a heartbeat that has not gone out yet.
    beat: AtomicBool,
}

/// While a message is serialized, how many bytes between two looks at whether a heartbeat is
/// asked for.
const BEAT_LOOK_BYTES: usize = 64 << 10;

impl Writer {
    fn start(stream: tokio::net::UnixStream) -> std::io::Result<Writer> {
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        stream.set_write_timeout(Some(SEND_TIMEOUT))?;
        let own_stream = stream.try_clone()?;
        let (queue, outgoing) = std::sync::mpsc::channel::<Outgoing>();
        let shared = std::sync::Arc::new(WriterState::default());
        let state = std::sync::Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("pair-writer".into())
            .spawn(move || {
                if write_all(&own_stream, &outgoing, &state).is_err() {
                    state.broken.store(true, Ordering::SeqCst);
                }
            })?;
        Ok(Writer {
            queue,
            shared,
            stream,
            thread,
        })
    }

    fn is_broken(&self) -> bool {
        self.shared.broken.load(Ordering::SeqCst) || self.thread.is_finished()
    }

    /// Asks for a heartbeat: sent after what is queued, or in the middle of serializing it.
    fn beat(&self) {
        self.shared.beat.store(true, Ordering::SeqCst);
        let _ = self.queue.send(Outgoing::Beat);
    }

    /// Ends the stream now, whatever is still queued: the thread's send fails, and it exits.
    fn abort(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// The writer thread's work: every message queued, in order, until the queue closes.
fn write_all(
    stream: &std::os::unix::net::UnixStream,
    outgoing: &std::sync::mpsc::Receiver<Outgoing>,
    state: &WriterState,
) -> std::io::Result<()> {
    let send_beat_if_asked = || -> std::io::Result<()> {
        if state.beat.swap(false, Ordering::SeqCst) {
            send_blocking(stream, BEAT_HEADER, &[])?;
        }
        Ok(())
    };
    for outgoing in outgoing {
        let Outgoing::Message { message, fds } = outgoing else {
            send_beat_if_asked()?;
            continue;
        };
        let mut header = Serialized {
            bytes: Vec::new(),
            next_look: BEAT_LOOK_BYTES,
            look: &send_beat_if_asked,
        };
        // Every message is plain data: it serializes unless a heartbeat's send failed.
        serde_json::to_writer(&mut header, &message).map_err(std::io::Error::other)?;
        let fds: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
        send_blocking(stream, &header.bytes, &fds)?;
        state.sent.fetch_add(1, Ordering::SeqCst);
        // A large message (the state of thousands of processes) leaves its buffers free in
        // this thread's own arena, which the allocator would keep.
        if header.bytes.len() >= TRIM_AFTER_BYTES {
            drop((header, message));
            crate::sys::release_free_memory();
        }
    }
    Ok(())
}

/// After a message this large, the writer gives the memory it used back to the kernel.
const TRIM_AFTER_BYTES: usize = 1 << 20;

/// A heartbeat's header: [`Message::Beat`] as JSON.
const BEAT_HEADER: &[u8] = b"\"Beat\"";

/// A message's header as it is serialized, with a look at whether a heartbeat is asked for
/// every [`BEAT_LOOK_BYTES`].
struct Serialized<'a> {
    bytes: Vec<u8>,
    next_look: usize,
    look: &'a dyn Fn() -> std::io::Result<()>,
}

impl std::io::Write for Serialized<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(bytes);
        if self.bytes.len() >= self.next_look {
            self.next_look = self.bytes.len() + BEAT_LOOK_BYTES;
            (self.look)()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl PrimaryLink {
    /// Listens on the pair socket of `socket` (a stale file is replaced). On the loop.
    pub fn bind(socket: &Path) -> std::io::Result<PrimaryLink> {
        let path = pair_socket_path(socket);
        let _ = std::fs::remove_file(&path); // only the live control socket's owner gets here
        let listener = tokio::net::UnixListener::bind(&path)?;
        Ok(PrimaryLink {
            listener,
            path,
            writer: None,
            queued: 0,
            ready_after: u64::MAX,
        })
    }

    /// A backup is connected and its stream works, as far as is known.
    pub fn is_connected(&self) -> bool {
        self.writer
            .as_ref()
            .is_some_and(|writer| !writer.is_broken())
    }

    /// A backup is connected and everything queued before [`PrimaryLink::mark_ready`] (the
    /// state, the children) is written: it could take over now.
    pub fn is_ready(&self) -> bool {
        self.is_connected()
            && self
                .writer
                .as_ref()
                .is_some_and(|writer| writer.shared.sent.load(Ordering::SeqCst) >= self.ready_after)
    }

    /// What is queued so far is what the backup needs to take over.
    pub fn mark_ready(&mut self) {
        self.ready_after = self.queued;
    }

    /// A backup was connected, and its stream failed since.
    pub fn is_broken(&self) -> bool {
        self.writer.as_ref().is_some_and(Writer::is_broken)
    }

    /// Waits for a backup to connect; the stream is kept, and the peer's pid (the kernel's
    /// word) returned, so that the caller can tell its backup from a stale one.
    pub async fn accept(&mut self) -> std::io::Result<Option<u32>> {
        let (stream, _) = self.listener.accept().await?;
        let peer = stream
            .peer_cred()
            .ok()
            .and_then(|c| c.pid())
            .and_then(|pid| u32::try_from(pid).ok());
        self.disconnect();
        self.writer = Some(Writer::start(stream)?);
        (self.queued, self.ready_after) = (0, u64::MAX);
        Ok(peer)
    }

    /// Forgets the stream (its backup is gone, or being replaced).
    pub fn disconnect(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
    }

    /// Lets the writer finish what is queued (the last word to the backup) for as long as it
    /// gets on (a message written every [`CLOSE_PATIENCE`] at least: with many processes, what
    /// a shutdown changed is long to write, and for the backup to read), then closes the
    /// stream. A backup that
    /// missed the last word would take over from a primary that shut down.
    pub async fn close(&mut self) {
        let Some(Writer {
            queue,
            shared,
            stream,
            thread,
        }) = self.writer.take()
        else {
            return;
        };
        drop(queue);
        let mut last_sent = shared.sent.load(Ordering::SeqCst);
        let mut last_progress = std::time::Instant::now();
        while !thread.is_finished() {
            tokio::time::sleep(CLOSE_POLL).await;
            let now_sent = shared.sent.load(Ordering::SeqCst);
            if now_sent != last_sent {
                (last_sent, last_progress) = (now_sent, std::time::Instant::now());
            } else if last_progress.elapsed() >= CLOSE_PATIENCE {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                break;
            }
        }
    }

    /// Queues a message, with descriptors (duplicated: the caller keeps its own).
    pub fn send(&mut self, message: Message, fds: &[std::os::fd::BorrowedFd<'_>]) {
        let Some(writer) = self.writer.as_ref() else {
            return;
        };
        let Ok(fds) = fds.iter().map(|fd| fd.try_clone_to_owned()).collect() else {
            return;
        };
        if writer
            .queue
            .send(Outgoing::Message { message, fds })
            .is_ok()
        {
            self.queued += 1;
        }
    }

    /// Tells the backup that the pair is over (a shutdown), so that it exits rather than take
    /// over.
    pub fn send_exit(&mut self) {
        self.send(Message::Exit, &[]);
    }

    /// Tells the backup to take over once this primary's stream ends.
    pub fn send_handover(&mut self) {
        self.send(Message::Handover, &[]);
    }

    /// Sends the whole state.
    pub fn send_state(&mut self, supervisor: &Supervisor) {
        self.send(Message::State(Box::new(supervisor.clone())), &[]);
    }

    /// Sends what changed in the state since the last time.
    pub fn send_changes(&mut self, changes: taskmaster_core::Changes) {
        self.send(Message::Changes(Box::new(changes)), &[]);
    }

    /// Says that the primary lives.
    pub fn send_beat(&mut self) {
        if let Some(writer) = self.writer.as_ref() {
            writer.beat();
        }
    }

    /// Sends a new child's pidfd, output pipes and stdin pipe.
    pub fn send_child(&mut self, pid: u32, child: &crate::children::Descriptors<'_>) {
        let mut fds = vec![child.pidfd.as_fd()];
        fds.extend(child.outputs.iter().map(|(_, fd)| fd.as_fd()));
        fds.extend(child.stdin.map(|fd| fd.as_fd()));
        let message = Message::Child {
            pid,
            outputs: child
                .outputs
                .iter()
                .map(|(stream, _)| HandedOutput::Stream(*stream))
                .collect(),
            stdin: child.stdin.is_some(),
        };
        self.send(message, &fds);
    }
}

impl Drop for PrimaryLink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Starts the backup: the executable `exe` (this one, or the file it was started from, for an
/// upgrade), as `run --pair --backup`, in a process group of its own. Returns its pid.
/// `nofile` is the RLIMIT_NOFILE taskmaster was started with (before it raised its own): the
/// backup starts with it too, so that when it takes over it gives its children the same.
pub(crate) fn spawn_backup(
    exe: &Path,
    config: &Path,
    verbose: bool,
    nofile: Option<rustix::process::Rlimit>,
) -> std::io::Result<u32> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(exe);
    if let Some(limit) = nofile {
        // SAFETY: setrlimit is async-signal-safe, and the closure allocates nothing.
        unsafe {
            command.pre_exec(move || {
                rustix::process::setrlimit(rustix::process::Resource::Nofile, limit)
                    .map_err(std::io::Error::from)
            });
        }
    }
    command
        .arg("run")
        .arg("-c")
        .arg(config)
        .arg("--no-shell")
        .arg("--pair")
        .arg("--backup")
        .stdin(std::process::Stdio::null())
        .process_group(0);
    if verbose {
        command.arg("-v");
    }
    Ok(command.spawn()?.id())
}

#[cfg(test)]
mod handed_output_tests {
    use super::*;

    #[test]
    fn the_writers_heartbeat_is_a_beat_message() {
        assert_eq!(
            serde_json::to_vec(&Message::Beat).expect("serialize"),
            BEAT_HEADER
        );
    }

    #[test]
    fn an_older_primarys_child_names_files_and_a_newer_ones_streams() {
        let old = r#"{"Child":{"pid":7,"outputs":["/srv/web.out","/srv/web.err"]}}"#;
        let Ok(Message::Child {
            pid,
            outputs,
            stdin,
        }) = serde_json::from_str::<Message>(old)
        else {
            panic!("an older primary's Child message is not read");
        };
        assert_eq!((pid, stdin), (7, false));
        let mut spec = taskmaster_config::Config::parse(
            "programs:\n  web: {cmd: x, stdout: /srv/web.out, stderr: /srv/web.err}\n",
            std::path::Path::new("/srv/t.yaml"),
        )
        .expect("a configuration")
        .programs
        .remove("web")
        .expect("web");
        let streams: Vec<Stream> = outputs.iter().map(|o| o.stream(&spec)).collect();
        assert_eq!(streams, [Stream::Stdout, Stream::Stderr]);
        spec.stdout = None;
        let new = Message::Child {
            pid: 7,
            outputs: vec![HandedOutput::Stream(Stream::Stdout)],
            stdin: true,
        };
        let json = serde_json::to_string(&new).expect("serialize");
        let Ok(Message::Child { outputs, stdin, .. }) = serde_json::from_str::<Message>(&json)
        else {
            panic!("{json} is not read back");
        };
        assert_eq!(outputs[0].stream(&spec), Stream::Stdout);
        assert!(stdin);
    }
}
