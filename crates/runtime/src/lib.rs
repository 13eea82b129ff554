//! # The runtime: taskmaster's one event loop
//!
//! Theory of operation. [`Daemon`] owns the pure [`Supervisor`] and does, on one
//! single-threaded tokio loop, all the I/O the supervisor asks for. It waits for:
//!
//! - **SIGCHLD**: it then asks `waitpid(-1, WNOHANG | WUNTRACED | WCONTINUED)` until nothing
//!   is left, and tells the supervisor of each exit, and of each child paused by a signal or
//!   resumed (paused is not dead). taskmaster is a child subreaper, so orphaned grandchildren come
//!   back to it and are reaped too: no zombies. (tokio's own process support is not used: it
//!   reaps only the children it spawned and cannot share reaping with a subreaper.)
//! - **the supervisor's next deadline**: a single sleep until then, never a periodic tick.
//! - **requests** from the shell or another thread, through a [`Handle`].
//! - **SIGHUP** (reload) and **SIGTERM/SIGINT** (graceful shutdown).
//! - **the notify socket**: sd_notify datagrams from children, attributed by the kernel's
//!   sender pid (or the nearest ancestor of it that is one of our children).
//! - **its own tasks**: health checks, `on_exit` hooks and output watchers run as tasks on the
//!   same loop and report back through a channel. Command checks and hooks are children too,
//!   reaped with the rest and handed to the task that waits for them.
//!
//! Each event goes to [`Supervisor::handle`]; the actions it returns are carried out in order.
//! A spawn is carried out at once and its result fed straight back, so the supervisor never
//! sees another event between asking for a child and learning its pid.
//!
//! Children are signalled through pidfds, which cannot reach a process that reused a pid; a
//! process group is signalled with killpg while its leader is still ours.

mod adopt;
mod alerts;
mod capture;
mod checks;
mod clock;
mod eventlog;
mod handover;
mod notify;
pub mod pair;
mod probe;
mod spawn;
mod stdin;
mod sys;
mod syslog;
mod tail;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustix::process::{pidfd_open, Pid, PidfdFlags};
use taskmaster_config::{Alert, AlertLevel, Config, Probe, ProgramSpec, Stream};
use taskmaster_core::{
    Action, Done, Event, Failure, LoadPurpose, Notice, Outcome, PairInfo, Reply, Request, Scope,
    Signal, State, Supervisor, Ticket,
};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, mpsc, oneshot};

use eventlog::EventLog;
pub use sys::FileWatch;
pub use tail::Follower;

/// What went wrong starting the daemon.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the event log {path}: {source}")]
    EventLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up the event loop or its signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot open the notify socket {path}: {source}")]
    NotifySocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen for a backup on {path}: {source}")]
    PairSocket {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the notify socket of a daemon whose control socket is `socket` lives: beside it,
/// `taskmaster.sock` giving `taskmaster.notify`.
pub fn notify_socket_path(socket: &Path) -> PathBuf {
    socket.with_extension("notify")
}

/// What subscribers of the daemon's events receive: every state change and every event-log
/// line, as they happen.
#[derive(Debug, Clone, PartialEq)]
pub enum DaemonEvent {
    StateChanged {
        process: String,
        from: State,
        to: State,
        at: SystemTime,
    },
    Log {
        process: Option<String>,
        message: String,
        at: SystemTime,
    },
    /// An output line matched one of the program's `alerts`.
    Alert {
        program: String,
        stream: Stream,
        level: AlertLevel,
        line: String,
        at: SystemTime,
    },
}

/// The primary's view of its process pair.
struct PairState {
    /// The configuration file the backup is started with.
    config: PathBuf,
    verbose: bool,
    /// The supervisor's state changed since the backup last heard it.
    changed: bool,
    /// Children spawned since the backup last heard, whose descriptors it needs.
    new_children: Vec<u32>,
    /// The backup process, while it runs.
    backup_pid: Option<u32>,
    /// When a backup may be started again (restarts are at most one per second).
    next_backup: std::time::Instant,
    /// The executable's file as it was named at start: an upgrade starts the backup from it,
    /// which is the new binary once the file has been replaced.
    exe_file: PathBuf,
    /// A handover asked for, waiting for a backup (a new one, for an upgrade) to be ready.
    handover: Option<PendingHandover>,
    /// This primary handed over and is exiting, every process left running.
    handed_over: bool,
    /// The backup's stream is to be dropped: its backup was replaced.
    reconnect: bool,
}

/// A `takeover` or `upgrade` on its way.
struct PendingHandover {
    ticket: Option<Ticket>,
    /// An upgrade waits for a backup started after the request.
    needs_new_backup: bool,
    /// Given up then, with an answer that says why.
    deadline: std::time::Instant,
}

/// How long a handover waits for a backup to be ready.
const HANDOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How soon a backup that died or never connected is replaced.
const BACKUP_RESPAWN: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits for the backup to connect (its pid), or forever without a link.
async fn accept_backup(link: Option<&mut pair::PrimaryLink>) -> std::io::Result<Option<u32>> {
    match link {
        Some(link) => link.accept().await,
        None => std::future::pending().await,
    }
}

/// What the daemon's own tasks report back to the loop.
enum TaskEvent {
    /// A child adopted in a takeover (not ours to waitpid) ended.
    AdoptedExit(u32, taskmaster_core::ExitStatus),
    /// For the supervisor (a health check or a hook is done). Boxed: an `Event` can hold a
    /// whole `Config`, far bigger than the other reports.
    Core(Box<Event>),
    Alert(alerts::Matched),
    /// A line for the event log.
    Note(String),
    /// A line for the event log about a process.
    ProcessNote(String, String),
}

/// How long a service may take to finish its answers once the daemon is exiting.
pub const SERVICE_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Tells a service that the daemon is about to exit.
#[derive(Clone)]
pub struct Exiting(tokio::sync::watch::Receiver<bool>);

impl Exiting {
    /// Returns once the daemon is exiting.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|exiting| *exiting).await;
    }
}

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BACKLOG: usize = 4096;

/// A request could not be answered: the daemon has exited.
#[derive(Debug, thiserror::Error)]
#[error("taskmaster is no longer running")]
pub struct Gone;

/// Sends requests to a running [`Daemon`] from any thread.
#[derive(Clone)]
pub struct Handle {
    sender: mpsc::UnboundedSender<Message>,
    events: broadcast::Sender<DaemonEvent>,
}

struct Message {
    request: Request,
    reply: oneshot::Sender<Reply>,
}

impl Handle {
    /// Sends a request and blocks until its reply (a start returns once the processes are
    /// RUNNING or have failed). Must not be called from the daemon's own thread.
    pub fn call(&self, request: Request) -> Result<Reply, Gone> {
        self.send(request)?.blocking_recv().map_err(|_| Gone)
    }

    /// Sends a request and waits for its reply without blocking the thread: for tasks running
    /// on the daemon's own loop, such as the API server.
    pub async fn request(&self, request: Request) -> Result<Reply, Gone> {
        self.send(request)?.await.map_err(|_| Gone)
    }

    /// Every state change and event-log line from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.events.subscribe()
    }

    fn send(&self, request: Request) -> Result<oneshot::Receiver<Reply>, Gone> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Message { request, reply })
            .map_err(|_| Gone)?;
        Ok(answer)
    }
}

/// Prepares this process to supervise: a subreaper, with no signal blocked or ignored and no
/// stray descriptors to leak to its children. Call once, first thing, before any thread exists.
pub fn prepare_process() {
    sys::unblock_all_signals();
    sys::reset_ignored_signals();
    sys::ignore_file_size_signal();
    sys::mark_inherited_fds_cloexec();
    // Without it orphaned grandchildren go to pid 1 and we cannot reap them; failing to set it
    // costs only that, so it is not fatal.
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
}

pub struct Daemon {
    supervisor: Supervisor,
    /// Actions returned by `Supervisor::new`, carried out when the loop starts.
    initial: Vec<Action>,
    config_path: PathBuf,
    log: EventLog,
    context: spawn::ChildContext,
    /// Hooks and command checks: children that are not processes.
    helpers: checks::HelperExits,
    /// The log files children's output pipes are drained into.
    sinks: capture::Sinks,
    /// The output pipes of each live child, by pid, to flush when it exits.
    captures: HashMap<u32, Vec<capture::Capture>>,
    /// The stdin pipe of each live child with `stdin: pipe`, by pid.
    stdins: HashMap<u32, stdin::StdinPipe>,
    /// With `--pair`: the backup's side of things.
    pair: Option<PairState>,
    /// Children taken over from a dead primary, to watch once the loop runs.
    adopted: Vec<adopt::Adopted>,
    /// Their stdin pipes, to write to once the loop runs.
    adopted_stdins: Vec<(u32, OwnedFd)>,
    /// This daemon took over from a dead primary, whose sockets it replaces.
    took_over: bool,
    task_events: mpsc::UnboundedSender<TaskEvent>,
    task_results: mpsc::UnboundedReceiver<TaskEvent>,
    /// An output watcher per log file with alerts: the alerts it watches for, and the task.
    alert_watchers: HashMap<PathBuf, (Vec<Alert>, tokio::task::AbortHandle)>,
    /// A pidfd per live child, by pid.
    pidfds: HashMap<u32, OwnedFd>,
    requests: mpsc::UnboundedReceiver<Message>,
    events: broadcast::Sender<DaemonEvent>,
    waiting: HashMap<Ticket, oneshot::Sender<Reply>>,
    next_ticket: u64,
    exit: bool,
}

impl Daemon {
    /// A daemon for `config`, and the handle to send it requests. Nothing starts until
    /// [`Daemon::run`]. `verbose` echoes the event log to stderr.
    pub fn new(config: Config, verbose: bool) -> Result<(Daemon, Handle), StartError> {
        let log =
            EventLog::open(&config.logfile, config.log_rotation, verbose).map_err(|source| {
                StartError::EventLog {
                    path: config.logfile.clone(),
                    source,
                }
            })?;
        let config_path = config.path.clone();
        let context = spawn::ChildContext {
            base_env: std::env::vars_os().collect(),
            notify_socket: notify_socket_path(&config.socket),
            control_socket: config.socket.clone(),
        };
        let (task_events, task_results) = mpsc::unbounded_channel();
        let (supervisor, initial) = Supervisor::new(config, std::process::id(), clock::now());
        let (sender, requests) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let daemon = Daemon {
            supervisor,
            initial,
            config_path,
            log,
            context,
            helpers: checks::HelperExits::default(),
            sinks: capture::Sinks::default(),
            captures: HashMap::new(),
            stdins: HashMap::new(),
            pair: None,
            adopted: Vec::new(),
            adopted_stdins: Vec::new(),
            took_over: false,
            task_events,
            task_results,
            alert_watchers: HashMap::new(),
            pidfds: HashMap::new(),
            requests,
            events: events.clone(),
            waiting: HashMap::new(),
            next_ticket: 0,
            exit: false,
        };
        Ok((daemon, Handle { sender, events }))
    }

    /// Makes this daemon the primary of a process pair: it keeps a hot backup (a copy of this
    /// executable) up to date, which takes over if this one dies. `config` is the file the
    /// backup is started with.
    pub fn with_backup(mut self, config: PathBuf, verbose: bool) -> Daemon {
        // A daemon that took over carries the pair's history on.
        let info = self.supervisor.pair().cloned().unwrap_or_default();
        self.announce_pair(PairInfo {
            primary_pid: std::process::id(),
            backup_pid: None,
            ..info
        });
        self.pair = Some(PairState {
            config,
            verbose,
            changed: true,
            new_children: Vec::new(),
            backup_pid: None,
            next_backup: std::time::Instant::now(),
            exe_file: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
            handover: None,
            handed_over: false,
            reconnect: false,
        });
        self
    }

    /// A daemon that takes over from a dead primary: its last state, its children (same pids,
    /// watched through their pidfds, their output drained into the same files).
    pub fn take_over(
        config: Config,
        takeover: pair::Takeover,
        verbose: bool,
    ) -> Result<(Daemon, Handle), StartError> {
        let (mut daemon, handle) = Daemon::new(config, verbose)?;
        let pair::Takeover {
            mut supervisor,
            children,
            reason,
        } = takeover;
        let now = clock::now();
        daemon.took_over = true;
        daemon.initial = supervisor.take_over(std::process::id(), now);
        let history = supervisor.pair().cloned().unwrap_or_default();
        daemon.supervisor = supervisor;
        daemon.announce_pair(PairInfo {
            primary_pid: std::process::id(),
            backup_pid: None,
            takeovers: history.takeovers + 1,
            last_takeover: Some((now, reason.clone())),
        });
        daemon.log.say(format!(
            "taking over as primary (pid {}): {reason}; {} child(ren) adopted",
            std::process::id(),
            children.len()
        ));
        // A child whose descriptors had not reached the backup yet: its pidfd is opened here,
        // while it is (almost certainly) still the process the state names.
        let mut children = children;
        for pid in daemon.supervisor.processes().filter_map(|p| p.pid) {
            if let (false, Ok(pidfd)) = (children.contains_key(&pid), adopt::pidfd_of(pid)) {
                children.insert(
                    pid,
                    pair::HeldChild {
                        pidfd,
                        outputs: Vec::new(),
                        stdin: None,
                    },
                );
            }
        }
        for (pid, child) in children {
            let process = daemon
                .supervisor
                .processes()
                .find(|p| p.pid == Some(pid))
                .map(|p| (p.name.clone(), Arc::clone(&p.spec)));
            // A child the state does not know (it came just before the primary died) has
            // nowhere known to write: its pipes close.
            let captures = child
                .outputs
                .into_iter()
                .filter_map(|(output, pipe)| {
                    let (name, spec) = process.as_ref()?;
                    let stream = output.stream(spec);
                    let destination =
                        spawn::destination(name, spec, stream, &mut daemon.sinks).ok()??;
                    Some((pipe, stream, destination))
                })
                .collect();
            let owner = process.map_or_else(|| format!("pid {pid}"), |(name, _)| name);
            daemon.capture(pid, &owner, captures);
            daemon
                .adopted_stdins
                .extend(child.stdin.map(|fd| (pid, fd)));
            if let Ok(watched) = child.pidfd.try_clone() {
                daemon.adopted.push(adopt::Adopted::new(pid, watched));
            }
            daemon.pidfds.insert(pid, child.pidfd);
        }
        Ok((daemon, handle))
    }

    /// Runs the loop on the calling thread until every process has stopped after a shutdown
    /// (a `shutdown` request, SIGTERM or SIGINT).
    pub fn run_blocking(self) -> Result<(), StartError> {
        self.run_blocking_with(|_| std::future::pending())
    }

    /// Like [`Daemon::run_blocking`], with a service (the control API) running on the same
    /// loop. When the daemon is about to exit, the service is told through [`Exiting`] and
    /// given [`SERVICE_DRAIN`] to finish what it is answering, such as the reply to the
    /// shutdown itself.
    pub fn run_blocking_with<Service>(
        self,
        service: impl FnOnce(Exiting) -> Service,
    ) -> Result<(), StartError>
    where
        Service: Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StartError::Signals)?;
        runtime.block_on(async {
            let (exiting, told) = tokio::sync::watch::channel(false);
            let service = tokio::spawn(service(Exiting(told)));
            let result = self.run().await;
            let _ = exiting.send(true);
            let _ = tokio::time::timeout(SERVICE_DRAIN, service).await;
            result
        })
    }

    async fn run(mut self) -> Result<(), StartError> {
        // Handlers go in before the first spawn, so that no SIGCHLD can be missed.
        let mut sigchld = signal(SignalKind::child()).map_err(StartError::Signals)?;
        let mut sighup = signal(SignalKind::hangup()).map_err(StartError::Signals)?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;
        let mut sigusr2 = signal(SignalKind::user_defined2()).map_err(StartError::Signals)?;
        let mut sigusr1 = signal(SignalKind::user_defined1()).map_err(StartError::Signals)?;
        let notify_path = self.context.notify_socket.clone();
        if self.took_over {
            // The dead primary's: the kernel may not have released it yet.
            let _ = std::fs::remove_file(&notify_path);
        }
        let notify = notify::NotifySocket::bind(&notify_path).map_err(|source| {
            StartError::NotifySocket {
                path: notify_path.clone(),
                source,
            }
        })?;
        self.log.say(format!(
            "taskmaster started (pid {}, configuration {})",
            std::process::id(),
            self.config_path.display()
        ));
        if self.took_over {
            // The adopted children's output is watched for alerts again, from now on.
            let specs: Vec<Arc<ProgramSpec>> = self
                .supervisor
                .processes()
                .filter(|p| p.pid.is_some())
                .map(|p| Arc::clone(&p.spec))
                .collect();
            for spec in specs {
                self.watch_alerts(&spec);
            }
        }
        for (pid, fd) in std::mem::take(&mut self.adopted_stdins) {
            self.keep_stdin(pid, Some(fd));
        }
        for adopted in std::mem::take(&mut self.adopted) {
            let events = self.task_events.clone();
            tokio::spawn(async move {
                let pid = adopted.pid();
                adopted
                    .watch(|change| {
                        let event = match change {
                            // Which signal stopped it is not known; STOP stands for them all.
                            adopt::Change::Paused => TaskEvent::Core(Box::new(Event::Paused {
                                pid,
                                signal: Signal::STOP,
                            })),
                            adopt::Change::Resumed => {
                                TaskEvent::Core(Box::new(Event::Resumed { pid }))
                            }
                            adopt::Change::Exited(Ok(status)) => {
                                TaskEvent::AdoptedExit(pid, status)
                            }
                            adopt::Change::Exited(Err(unknown)) => {
                                TaskEvent::Note(format!("{unknown}: how it ended is not known"))
                            }
                        };
                        let _ = events.send(event);
                    })
                    .await;
            });
        }
        let mut link = match &self.pair {
            Some(_) => Some(
                pair::PrimaryLink::bind(&self.context.control_socket).map_err(|source| {
                    StartError::PairSocket {
                        path: pair::pair_socket_path(&self.context.control_socket),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        let initial = std::mem::take(&mut self.initial);
        self.carry_out(initial);
        self.reap();
        self.log.flush();

        while !self.exit {
            let next_deadline = self.supervisor.next_deadline();
            let log_deadline = self.log.next_deadline(); // a held-back summary is due
            let backup_connected = link.as_ref().is_none_or(|l| l.is_connected());
            tokio::select! {
                biased;
                _ = sigchld.recv() => self.reap(),
                _ = sigterm.recv() => self.signalled("SIGTERM"),
                _ = sigint.recv() => self.signalled("SIGINT"),
                _ = sigusr1.recv() => {
                    self.log.say("SIGUSR1 received: reopening the log files");
                    self.dispatch(Event::Request {
                        ticket: None,
                        request: Request::ReopenLogs(Vec::new()),
                    });
                }
                _ = sigusr2.recv() => {
                    self.log.say("SIGUSR2 received: handing over to the backup");
                    self.dispatch(Event::Request {
                        ticket: None,
                        request: Request::Handover { upgrade: false },
                    });
                }
                _ = sighup.recv() => {
                    self.log.say("SIGHUP received: reloading the configuration");
                    self.dispatch(Event::Request { ticket: None, request: Request::Reload });
                }
                Some(message) = self.requests.recv() => self.request(message),
                datagram = notify.recv() => self.notified(datagram),
                Some(event) = self.task_results.recv() => self.task_event(event),
                () = sleep_until(next_deadline) => self.dispatch(Event::Timer),
                () = sleep_until(log_deadline) => self.log.window_ends(),
                accepted = accept_backup(link.as_mut()), if !backup_connected => {
                    if let Ok(peer) = accepted {
                        self.backup_connected(link.as_mut(), peer).await;
                    }
                }
                () = tokio::time::sleep(self.supervisor.config().pair.interval), if link.is_some() => {
                    self.tend_backup();
                }
            }
            self.log.flush();
            if let Some(link) = link.as_mut() {
                self.update_backup(link).await;
            }
        }
        let handed_over = self.pair.as_ref().is_some_and(|pair| pair.handed_over);
        if let Some(link) = link.as_mut() {
            if !handed_over {
                link.send_exit().await;
            }
            let connected = link.is_connected();
            // The last word (exit, or the handover) is written before the stream ends.
            link.close().await;
            if !connected && !handed_over {
                self.drop_backup("the pair is shutting down");
            }
        }
        drop(link); // the stream's end is the backup's cue after a handover
        drop(notify); // which removes its file
        self.log.held_back(); // what the event log held back, before its last line
        if handed_over {
            self.log.say("taskmaster exits after its handover");
        } else {
            self.log.say("taskmaster exits: every process has stopped");
        }
        self.log.flush();
        Ok(())
    }

    fn signalled(&mut self, name: &str) {
        self.log.say(format!("{name} received: shutting down"));
        self.dispatch(Event::Request {
            ticket: None,
            request: Request::Shutdown,
        });
    }

    fn request(&mut self, message: Message) {
        self.next_ticket += 1;
        let ticket = Ticket(self.next_ticket);
        self.waiting.insert(ticket, message.reply);
        self.dispatch(Event::Request {
            ticket: Some(ticket),
            request: message.request,
        });
    }

    /// Reaps every child that has ended, notes every one paused or resumed, and tells the
    /// supervisor of each.
    fn reap(&mut self) {
        while let Some(change) = sys::next_child_change() {
            let event = match change {
                sys::ChildChange::Exited(pid, status) => {
                    if self.backup_exited(pid, status) {
                        continue;
                    }
                    // Its last lines go to the file before anyone hears that it exited.
                    for capture in self.captures.remove(&pid).unwrap_or_default() {
                        capture.flush();
                    }
                    self.stdins.remove(&pid);
                    if self.helpers.reaped(pid, status) {
                        continue;
                    }
                    self.pidfds.remove(&pid);
                    Event::Exited { pid, status }
                }
                sys::ChildChange::Paused(pid, _) | sys::ChildChange::Resumed(pid)
                    if self.helpers.contains(pid) =>
                {
                    continue;
                }
                sys::ChildChange::Paused(pid, signal) => Event::Paused { pid, signal },
                sys::ChildChange::Resumed(pid) => Event::Resumed { pid },
            };
            self.dispatch(event);
        }
    }

    fn dispatch(&mut self, event: Event) {
        if let Some(pair) = self.pair.as_mut() {
            pair.changed = true;
        }
        let actions = self.supervisor.handle(event, clock::now());
        self.carry_out(actions);
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            let follow_up = match action {
                Action::Spawn { process, spec } => {
                    self.watch_alerts(&spec);
                    let event = match spawn::spawn(&process, &spec, &self.context, &mut self.sinks)
                    {
                        Ok(child) => {
                            self.track(child.pid);
                            self.capture(child.pid, &process, child.captures);
                            self.keep_stdin(child.pid, child.stdin);
                            if let Some(pair) = self.pair.as_mut() {
                                pair.new_children.push(child.pid);
                            }
                            Event::Spawned {
                                process,
                                pid: child.pid,
                            }
                        }
                        Err(error) => Event::SpawnFailed { process, error },
                    };
                    Some(event)
                }
                Action::Probe { process, pid, spec } => {
                    self.start_probe(process, pid, spec);
                    None
                }
                Action::RunHook { process, spec, env } => {
                    self.start_hook(process, &spec, &env);
                    None
                }
                Action::Signal { pid, signal, scope } => {
                    self.send_signal(pid, signal, scope);
                    None
                }
                Action::LoadConfig { ticket, purpose } => {
                    let result = Config::load(&self.config_path)
                        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect());
                    // Only a configuration that is applied may move the event log.
                    if let (Ok(config), LoadPurpose::Apply) = (&result, purpose) {
                        if let Err(e) = self.log.reopen(&config.logfile) {
                            self.log.say(format!(
                                "cannot open the new event log {}: {e}; keeping this one",
                                config.logfile.display()
                            ));
                        }
                    }
                    Some(Event::ConfigLoaded {
                        ticket,
                        purpose,
                        result,
                    })
                }
                Action::Log(notice) => {
                    self.log.write(&notice);
                    // Nobody may be listening; that is fine.
                    let _ = self.events.send(DaemonEvent::Log {
                        process: notice.process,
                        message: notice.message,
                        at: SystemTime::now(),
                    });
                    None
                }
                Action::StateChanged { process, from, to } => {
                    let _ = self.events.send(DaemonEvent::StateChanged {
                        process,
                        from,
                        to,
                        at: SystemTime::now(),
                    });
                    None
                }
                Action::Reply { ticket, reply } => {
                    // Whoever gets the answer may read the log next: it must hold what led to it.
                    self.log.flush();
                    if let Some(waiting) = self.waiting.remove(&ticket) {
                        let _ = waiting.send(reply); // the asker may have gone; nothing to do
                    }
                    None
                }
                Action::Exit => {
                    self.exit = true;
                    None
                }
                Action::WriteStdin {
                    ticket,
                    writes,
                    data,
                    mut outcomes,
                } => {
                    self.write_stdin(writes, &data, &mut outcomes);
                    if let Some(ticket) = ticket {
                        queue.push_front(Action::Reply {
                            ticket,
                            reply: Reply::Outcomes(outcomes),
                        });
                    }
                    None
                }
                Action::ReopenLogs { ticket, only } => {
                    let reply = self.reopen_logs(only.as_deref());
                    if let Some(ticket) = ticket {
                        queue.push_front(Action::Reply { ticket, reply });
                    }
                    None
                }
                Action::Handover { ticket, upgrade } => {
                    self.begin_handover(ticket, upgrade);
                    None
                }
            };
            if let Some(event) = follow_up {
                queue.extend(self.supervisor.handle(event, clock::now()));
            }
        }
    }

    /// A datagram on the notify socket: attributed to the child that sent it, or to the child
    /// whose descendant (such as `systemd-notify`) did, parsed and handed to the supervisor.
    /// Dropping it closes the descriptors that came with it, which answers a BARRIER.
    fn notified(&mut self, received: std::io::Result<notify::Datagram>) {
        let datagram = match received {
            Ok(datagram) => datagram,
            Err(e) => {
                self.log.say(format!(
                    "notify socket: {}",
                    taskmaster_config::os_reason(&e)
                ));
                return;
            }
        };
        let sender = datagram.pid;
        if datagram.truncated {
            self.log.say(format!(
                "notify: a datagram from pid {sender} is longer than 4096 bytes: ignored"
            ));
            return;
        }
        let Some(child) = notify::ancestry(sender)
            .into_iter()
            .find(|pid| self.pidfds.contains_key(pid))
        else {
            self.log.say(format!(
                "notify: a datagram from pid {sender} (uid {}), which taskmaster does not supervise: dropped",
                datagram.uid
            ));
            return;
        };
        match taskmaster_core::notify::parse(&datagram.payload) {
            Ok(notifications) => self.dispatch(Event::Notified {
                pid: child,
                notifications,
            }),
            Err(why) => self.log.say(format!(
                "notify: a malformed datagram from pid {sender}: {why}; ignored"
            )),
        }
        // Closing the descriptors that came with it answers a BARRIER=1.
        drop(datagram.fds);
    }

    fn task_event(&mut self, event: TaskEvent) {
        match event {
            TaskEvent::AdoptedExit(pid, status) => {
                for capture in self.captures.remove(&pid).unwrap_or_default() {
                    capture.flush();
                }
                self.stdins.remove(&pid);
                self.pidfds.remove(&pid);
                self.dispatch(Event::Exited { pid, status });
            }
            TaskEvent::Core(event) => self.dispatch(*event),
            TaskEvent::Note(message) => self.log.say(message),
            TaskEvent::ProcessNote(process, message) => self.log.write(&Notice {
                process: Some(process),
                message,
            }),
            TaskEvent::Alert(matched) => {
                let message = format!(
                    "alert ({}) on {}: {}",
                    matched.level.name(),
                    matched.stream.name(),
                    matched.line
                );
                self.log.write(&Notice {
                    process: Some(matched.program.clone()),
                    message,
                });
                let _ = self.events.send(DaemonEvent::Alert {
                    program: matched.program,
                    stream: matched.stream,
                    level: matched.level,
                    line: matched.line,
                    at: SystemTime::now(),
                });
            }
        }
    }

    /// Runs the health check of `spec` against `process`'s child `pid`.
    fn start_probe(&mut self, process: String, pid: u32, spec: Arc<ProgramSpec>) {
        let Some(check) = spec.healthcheck.clone() else {
            return;
        };
        let events = self.task_events.clone();
        let done = move |result| {
            let _ = events.send(TaskEvent::Core(Box::new(Event::ProbeDone {
                process,
                pid,
                result,
            })));
        };
        let Probe::Cmd(command) = &check.probe else {
            tokio::spawn(async move {
                if let Some(result) = checks::network_probe(&spec).await {
                    done(result);
                }
            });
            return;
        };
        match spawn::spawn_shell(
            &spec.name,
            &spec,
            &self.context,
            command,
            &[],
            false,
            &mut self.sinks,
        ) {
            Ok(spawn::Spawned { pid: helper, .. }) => {
                let exit = self.helpers.register(helper);
                tokio::spawn(async move {
                    let result = checks::wait_helper(helper, exit, check.timeout).await;
                    done(result.map(|()| "exit status 0".to_string()));
                });
            }
            Err(error) => done(Err(error)),
        }
    }

    /// Runs the `on_exit` hook of `spec` for `process`, with `env` added.
    fn start_hook(&mut self, process: String, spec: &ProgramSpec, env: &[(String, String)]) {
        let Some(hook) = spec.on_exit.clone() else {
            return;
        };
        let events = self.task_events.clone();
        let owner = process.clone();
        let done = move |result| {
            let _ = events.send(TaskEvent::Core(Box::new(Event::HookDone {
                process,
                result,
            })));
        };
        match spawn::spawn_shell(
            &spec.name,
            spec,
            &self.context,
            &hook.cmd,
            env,
            true,
            &mut self.sinks,
        ) {
            Ok(child) => {
                let helper = child.pid;
                self.capture(helper, &owner, child.captures);
                let exit = self.helpers.register(helper);
                tokio::spawn(async move {
                    done(checks::wait_helper(helper, exit, hook.timeout).await);
                });
            }
            Err(error) => done(Err(error)),
        }
    }

    /// Makes sure each log file of `spec` with alerts has a watcher for exactly those alerts,
    /// started before the child is, so that none of its lines is missed.
    fn watch_alerts(&mut self, spec: &ProgramSpec) {
        let files = [
            (Stream::Stdout, spec.stdout.as_ref()),
            (Stream::Stderr, spec.stderr.as_ref()),
        ];
        for (stream, path) in files {
            let Some(path) = path else {
                continue;
            };
            let wanted = alerts::for_stream(&spec.alerts, stream);
            if let Some((current, task)) = self.alert_watchers.get(path) {
                if *current == wanted && !task.is_finished() {
                    continue;
                }
                task.abort();
                self.alert_watchers.remove(path);
            }
            if wanted.is_empty() {
                continue;
            }
            let start = match alerts::start(path) {
                Ok(start) => start,
                Err(why) => {
                    self.log
                        .say(format!("cannot watch for alerts of {}: {why}", spec.name));
                    continue;
                }
            };
            let events = self.task_events.clone();
            let program = spec.name.clone();
            let watched = wanted.clone();
            let task = tokio::spawn(async move {
                let report = |matched| events.send(TaskEvent::Alert(matched)).is_ok();
                if let Err(why) =
                    alerts::watch(program.clone(), stream, start, watched, report).await
                {
                    let _ = events.send(TaskEvent::Note(format!(
                        "alerts of {program} are no longer watched: {why}"
                    )));
                }
            });
            self.alert_watchers
                .insert(path.clone(), (wanted, task.abort_handle()));
        }
    }

    /// Reopens every log file at its path: the programs' and the event log.
    fn reopen_logs(&mut self, only: Option<&[PathBuf]>) -> Reply {
        let (mut files, mut errors) = self.sinks.reopen(only);
        if only.is_none() {
            match self.log.reopen_in_place() {
                Ok(()) => files += 1,
                Err(e) => errors.push(format!(
                    "cannot reopen the event log: {}",
                    taskmaster_config::os_reason(&e)
                )),
            }
        }
        self.log.say(format!(
            "log files reopened: {files}, errors: {}",
            errors.len()
        ));
        for error in &errors {
            self.log.say(error.clone());
        }
        Reply::LogsReopened { files, errors }
    }

    /// Whether `pid` was this primary's backup; if so its end is logged and a new one will be
    /// started.
    fn backup_exited(&mut self, pid: u32, status: taskmaster_core::ExitStatus) -> bool {
        let Some(pair) = self.pair.as_mut() else {
            return false;
        };
        if pair.backup_pid != Some(pid) {
            return false;
        }
        pair.backup_pid = None;
        pair.next_backup = std::time::Instant::now() + BACKUP_RESPAWN;
        self.log
            .say(format!("the backup (pid {pid}) {status}: starting another"));
        self.set_backup_pid(None);
        true
    }

    /// Tells the supervisor (for `status`) who the backup is now.
    fn set_backup_pid(&mut self, backup_pid: Option<u32>) {
        let info = self.supervisor.pair().cloned().unwrap_or_default();
        self.announce_pair(PairInfo { backup_pid, ..info });
    }

    fn announce_pair(&mut self, info: PairInfo) {
        // A pair change only updates what status shows: it asks for nothing.
        let _no_actions = self
            .supervisor
            .handle(Event::PairChanged(info), clock::now());
    }

    /// Starts a backup when there is none (at most one per [`BACKUP_RESPAWN`]).
    fn tend_backup(&mut self) {
        let shutting_down = self.supervisor.is_shutting_down();
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        let too_soon = std::time::Instant::now() < pair.next_backup;
        if pair.backup_pid.is_some() || too_soon || shutting_down {
            return;
        }
        pair.next_backup = std::time::Instant::now() + BACKUP_RESPAWN;
        // The running binary, even if its file was replaced; an upgrade takes the file.
        let upgrading = pair.handover.as_ref().is_some_and(|h| h.needs_new_backup);
        let exe = if upgrading {
            pair.exe_file.clone()
        } else {
            PathBuf::from("/proc/self/exe")
        };
        match pair::spawn_backup(&exe, &pair.config, pair.verbose) {
            Ok(pid) => {
                pair.backup_pid = Some(pid);
                self.log.say(format!("backup started (pid {pid})"));
                self.set_backup_pid(Some(pid));
            }
            Err(e) => self.log.say(format!(
                "cannot start a backup: {}; trying again",
                taskmaster_config::os_reason(&e)
            )),
        }
    }

    /// A backup connected: it gets the state and every child's descriptors.
    async fn backup_connected(&mut self, link: Option<&mut pair::PrimaryLink>, peer: Option<u32>) {
        let Some(link) = link else {
            return;
        };
        // Only the backup this primary started, and still keeps, may connect: one it has
        // replaced (an upgrade) may have been on its way in.
        let expected = self.pair.as_ref().and_then(|pair| pair.backup_pid);
        if peer.is_none() || peer != expected {
            link.disconnect();
            return;
        }
        // The state first: a backup without it cannot take over.
        link.dirty = true;
        link.send_state(&self.supervisor).await;
        let pids: Vec<u32> = self.pidfds.keys().copied().collect();
        for pid in pids {
            self.send_child(link, pid).await;
        }
        if let Some(pair) = self.pair.as_mut() {
            pair.new_children.clear();
            if let Some(handover) = pair.handover.as_mut() {
                handover.needs_new_backup = false;
            }
        }
        if link.is_connected() {
            self.log.say("the backup is connected");
        }
    }

    /// After each turn of the loop: the backup hears of new children and of the new state, or
    /// at least that the primary lives.
    async fn update_backup(&mut self, link: &mut pair::PrimaryLink) {
        if let Some(pair) = self.pair.as_mut() {
            if std::mem::take(&mut pair.reconnect) {
                link.disconnect(); // the old backup's stream: a new backup is coming
            }
        }
        if link.is_broken() {
            link.disconnect();
            self.drop_backup("it stopped listening");
        }
        if !link.is_connected() {
            self.finish_handover(link).await; // which may have to give up waiting
            return;
        }
        self.send_updates(link).await;
        self.finish_handover(link).await;
    }

    /// A `takeover` or `upgrade`: refused without a pair; for an upgrade, the backup is
    /// replaced by one started from the executable's file. The handover itself happens once a
    /// suitable backup is connected ([`Daemon::finish_handover`]).
    fn begin_handover(&mut self, ticket: Option<Ticket>, upgrade: bool) {
        let Some(pair) = self.pair.as_mut() else {
            let refusal = "taskmaster is not running as a pair (start it with run --pair)";
            self.answer(ticket, Reply::HandoverRefused(refusal.to_string()));
            return;
        };
        pair.handover = Some(PendingHandover {
            ticket,
            needs_new_backup: upgrade,
            deadline: std::time::Instant::now() + HANDOVER_WAIT,
        });
        if upgrade {
            self.drop_backup("an upgrade replaces it with the new binary");
            if let Some(pair) = self.pair.as_mut() {
                pair.backup_pid = None;
                pair.next_backup = std::time::Instant::now();
                pair.reconnect = true;
            }
            self.tend_backup();
        }
    }

    /// Hands over when a handover waits and its backup is ready: answers, gives the backup the
    /// last state and the word, and ends the loop; the backup takes over when this process's
    /// stream ends.
    async fn finish_handover(&mut self, link: &mut pair::PrimaryLink) {
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        let Some(handover) = pair.handover.as_ref() else {
            return;
        };
        if handover.needs_new_backup || !link.is_connected() {
            if std::time::Instant::now() > handover.deadline {
                let ticket = handover.ticket;
                pair.handover = None;
                let why = format!("no backup was ready within {HANDOVER_WAIT:?}");
                self.answer(ticket, Reply::HandoverRefused(why));
            }
            return;
        }
        let ticket = handover.ticket;
        let backup = pair.backup_pid.unwrap_or(0);
        pair.handover = None;
        pair.handed_over = true;
        link.dirty = true;
        link.send_state(&self.supervisor).await;
        link.send_handover().await;
        self.log.say(format!(
            "handing over to the backup (pid {backup}); this taskmaster exits, every process left running"
        ));
        self.answer(ticket, Reply::HandedOver(backup));
        self.exit = true;
    }

    fn answer(&mut self, ticket: Option<Ticket>, reply: Reply) {
        if let Some(ticket) = ticket {
            self.carry_out(vec![Action::Reply { ticket, reply }]);
        }
    }

    /// Kills a backup that broke off (a paused or hung one would otherwise come back, find its
    /// stream gone and take over from a live primary); its exit brings a new one.
    fn drop_backup(&mut self, why: &str) {
        let Some(pid) = self.pair.as_ref().and_then(|pair| pair.backup_pid) else {
            return;
        };
        self.log
            .say(format!("the backup (pid {pid}) is dropped: {why}"));
        // It is our child and not yet reaped, so the pid is still its own.
        let _ = sys::kill(pid, Signal::KILL);
    }

    async fn send_updates(&mut self, link: &mut pair::PrimaryLink) {
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        let new_children = std::mem::take(&mut pair.new_children);
        let changed = std::mem::take(&mut pair.changed);
        for pid in new_children {
            self.send_child(link, pid).await;
        }
        if changed {
            link.dirty = true;
        }
        link.send_state(&self.supervisor).await;
        self.tend_backup();
    }

    async fn send_child(&self, link: &mut pair::PrimaryLink, pid: u32) {
        let Some(pidfd) = self.pidfds.get(&pid) else {
            return;
        };
        let outputs: Vec<(Stream, &OwnedFd)> = self
            .captures
            .get(&pid)
            .map(|captures| captures.iter().map(|c| (c.stream(), c.pipe())).collect())
            .unwrap_or_default();
        let stdin = self.stdins.get(&pid).map(stdin::StdinPipe::fd);
        link.send_child(pid, pidfd, &outputs, stdin).await;
    }

    /// Keeps the write end of a child's stdin pipe, for `sendstdin` and `attach`.
    fn keep_stdin(&mut self, pid: u32, fd: Option<OwnedFd>) {
        let Some(fd) = fd else { return };
        match stdin::StdinPipe::start(fd) {
            Ok(pipe) => {
                self.stdins.insert(pid, pipe);
            }
            Err(e) => self
                .log
                .say(format!("cannot keep the stdin pipe of pid {pid}: {e}")),
        }
    }

    /// Queues `data` for each child's stdin and answers with how each went.
    fn write_stdin(
        &mut self,
        writes: Vec<(String, u32)>,
        data: &[u8],
        outcomes: &mut Vec<Outcome>,
    ) {
        for (process, pid) in writes {
            let result = match self.stdins.get(&pid) {
                Some(pipe) => pipe
                    .send(data.to_vec())
                    .map(|()| Done::Sent)
                    .map_err(Failure::NoStdin),
                None => Err(Failure::NoStdin(
                    "taskmaster holds no stdin pipe for it".to_string(),
                )),
            };
            outcomes.push(Outcome { process, result });
        }
    }

    /// Drains child `pid`'s output pipes into their files or to syslog, each on a thread of
    /// its own; their errors (a full disk, syslog gone) reach the event log, about `process`.
    fn capture(
        &mut self,
        pid: u32,
        process: &str,
        pipes: Vec<(OwnedFd, Stream, capture::Destination)>,
    ) {
        let captures: Vec<capture::Capture> = pipes
            .into_iter()
            .map(|(pipe, stream, destination)| {
                let events = self.task_events.clone();
                let process = process.to_string();
                capture::Capture::start(pipe, stream, destination, pid, move |message| {
                    let _ = events.send(TaskEvent::ProcessNote(process.clone(), message));
                })
            })
            .collect();
        if !captures.is_empty() {
            self.captures.insert(pid, captures);
        }
    }

    fn track(&mut self, pid: u32) {
        let pidfd = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()).ok());
        if let Some(pidfd) = pidfd {
            self.pidfds.insert(pid, pidfd);
        }
    }

    fn send_signal(&mut self, pid: u32, signal: Signal, scope: Scope) {
        let result = match (scope, self.pidfds.get(&pid)) {
            (Scope::Group, _) => sys::kill_group(pid, signal),
            (Scope::Process, Some(pidfd)) => sys::pidfd_send_signal(pidfd.as_fd(), signal),
            (Scope::Process, None) => sys::kill(pid, signal),
        };
        // ESRCH is normal: the process (or every member of the group) is already gone.
        if let Err(e) = result {
            if e.raw_os_error() != Some(libc::ESRCH) {
                self.log
                    .say(format!("cannot send {} to {pid}: {e}", signal.name()));
            }
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<taskmaster_core::Time>) {
    match deadline {
        Some(deadline) => tokio::time::sleep(deadline.since(clock::now())).await,
        None => std::future::pending().await,
    }
}
