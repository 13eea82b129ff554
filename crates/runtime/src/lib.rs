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
mod probe;
mod spawn;
mod sys;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustix::process::{pidfd_open, Pid, PidfdFlags};
use taskmaster_config::{Alert, AlertLevel, Config, Probe, ProgramSpec, Stream};
use taskmaster_core::{
    Action, Event, LoadPurpose, Notice, Reply, Request, Scope, Signal, State, Supervisor, Ticket,
};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, mpsc, oneshot};

use eventlog::EventLog;
pub use sys::FileWatch;

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

/// What the daemon's own tasks report back to the loop.
enum TaskEvent {
    /// For the supervisor (a health check or a hook is done).
    Core(Event),
    Alert(alerts::Matched),
    /// A line for the event log.
    Note(String),
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
            EventLog::open(&config.logfile, verbose).map_err(|source| StartError::EventLog {
                path: config.logfile.clone(),
                source,
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
        let notify_path = self.context.notify_socket.clone();
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
        let initial = std::mem::take(&mut self.initial);
        self.carry_out(initial);
        self.reap();
        self.log.flush();

        while !self.exit {
            let next_deadline = self.supervisor.next_deadline();
            tokio::select! {
                biased;
                _ = sigchld.recv() => self.reap(),
                _ = sigterm.recv() => self.signalled("SIGTERM"),
                _ = sigint.recv() => self.signalled("SIGINT"),
                _ = sighup.recv() => {
                    self.log.say("SIGHUP received: reloading the configuration");
                    self.dispatch(Event::Request { ticket: None, request: Request::Reload });
                }
                Some(message) = self.requests.recv() => self.request(message),
                datagram = notify.recv() => self.notified(datagram),
                Some(event) = self.task_results.recv() => self.task_event(event),
                () = sleep_until(next_deadline) => self.dispatch(Event::Timer),
            }
            self.log.flush();
        }
        drop(notify); // which removes its file
        self.log.say("taskmaster exits: every process has stopped");
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
                    // Its last lines go to the file before anyone hears that it exited.
                    for capture in self.captures.remove(&pid).unwrap_or_default() {
                        capture.flush();
                    }
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
                            self.capture(child.pid, child.captures);
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
            TaskEvent::Core(event) => self.dispatch(event),
            TaskEvent::Note(message) => self.log.say(message),
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
            let _ = events.send(TaskEvent::Core(Event::ProbeDone {
                process,
                pid,
                result,
            }));
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
        let done = move |result| {
            let _ = events.send(TaskEvent::Core(Event::HookDone { process, result }));
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
                self.capture(helper, child.captures);
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
            let start = match alerts::Start::now(path) {
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

    /// Drains a child's output pipes into their files, each on a thread of its own; their
    /// errors (a full disk) reach the event log.
    fn capture(&mut self, pid: u32, pipes: Vec<(OwnedFd, Arc<capture::Sink>)>) {
        let captures: Vec<capture::Capture> = pipes
            .into_iter()
            .map(|(pipe, sink)| {
                let events = self.task_events.clone();
                capture::Capture::start(pipe, sink, move |message| {
                    let _ = events.send(TaskEvent::Note(message));
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
