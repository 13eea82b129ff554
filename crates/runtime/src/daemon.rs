//! The [`Daemon`]: what it holds, and the three ways to make one (alone, as the primary of a
//! pair, and as a backup taking over from a dead primary).

use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use taskmaster_config::Config;
use taskmaster_core::{Action, Event, PairInfo, Supervisor, Ticket};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::children::{Child, Children};
use crate::eventlog::EventLog;
use crate::handle::{DaemonEvent, Exiting, Handle, Message, EVENT_BACKLOG, SERVICE_DRAIN};
use crate::primary::{Primary, PrimarySettings};
use crate::tasks::{AlertWatchers, TaskEvent};
use crate::{
    adopt, capture, checks, clock, notify_socket_path, pair, spawn, startup, stdin, sys, StartError,
};

/// How long after a start, a reload or the last request the memory they used goes back: by then
/// the processes started have mostly settled (supervisord's default `startsecs` is 1 s).
const IDLE_RELEASE_DELAY: std::time::Duration = std::time::Duration::from_secs(3);

/// A process's output counters: stdout's, then stderr's, shared with its captures' threads.
pub(crate) type OutputCounts = [std::sync::Arc<std::sync::atomic::AtomicU64>; 2];

pub struct Daemon {
    pub(crate) supervisor: Supervisor,
    /// Actions returned by `Supervisor::new` (or `take_over`), carried out when the loop
    /// starts.
    pub(crate) initial: Vec<Action>,
    pub(crate) config_path: PathBuf,
    pub(crate) log: EventLog,
    pub(crate) context: spawn::ChildContext,
    /// Every live child: its pidfd, output captures and stdin pipe.
    pub(crate) children: Children,
    /// The bytes each process has written on stdout and stderr since this taskmaster started,
    /// by process name (its health checks' and hooks' too): the metrics' output counters.
    pub(crate) output_counts: std::collections::HashMap<String, OutputCounts>,
    /// Hooks and command checks: children that are not processes, and the tasks awaiting
    /// their exits.
    pub(crate) helpers: checks::HelperExits,
    /// The log files children's output pipes are drained into.
    pub(crate) sinks: capture::Sinks,
    /// The listening sockets of FastCGI programs, while a process holds them.
    pub(crate) fcgi_sockets: crate::fcgi::FcgiSockets,
    /// The event listeners' pools, their buffers, and where each listener is in the protocol.
    pub(crate) listeners: crate::listeners::Listeners,
    /// The supervisor's configuration generation the pools were last configured from.
    pub(crate) listeners_configured: Option<u64>,
    /// With `--pair`, what the primary needs, until the loop binds its link.
    pub(crate) pair_settings: Option<PrimarySettings>,
    /// With `--pair`, once the loop runs: the backup's keeper.
    pub(crate) primary: Option<Primary>,
    /// Children taken over from a dead primary, to watch once the loop runs.
    pub(crate) adopted: Vec<adopt::Adopted>,
    /// Their stdin pipes, to write to once the loop runs.
    pub(crate) adopted_stdins: Vec<(u32, OwnedFd)>,
    /// This daemon took over from a dead primary, whose sockets it replaces.
    pub(crate) took_over: bool,
    pub(crate) task_events: mpsc::UnboundedSender<TaskEvent>,
    pub(crate) task_results: mpsc::UnboundedReceiver<TaskEvent>,
    pub(crate) alert_watchers: AlertWatchers,
    pub(crate) requests: mpsc::UnboundedReceiver<Message>,
    pub(crate) events: broadcast::Sender<DaemonEvent>,
    pub(crate) waiting: std::collections::HashMap<Ticket, oneshot::Sender<crate::Reply>>,
    pub(crate) next_ticket: u64,
    pub(crate) exit: bool,
    /// A configuration was read this turn: free memory goes back to the system at its end.
    pub(crate) release_memory: bool,
    /// When the memory a start, a reload or a request used goes back (see
    /// [`Daemon::release_unused_memory_soon`]).
    pub(crate) idle_release_at: Option<tokio::time::Instant>,
    /// Reads of the configuration file for reloads and rereads.
    pub(crate) config_loads: crate::config_load::ConfigLoads,
    /// Opened when the control service may start answering: at once, or, after a takeover,
    /// once the new backup is connected (so that whoever sees the takeover sees a pair).
    pub(crate) service_gate: Option<oneshot::Sender<()>>,
    /// The pid file, once written.
    pub(crate) pidfile: Option<startup::PidFile>,
    /// The AUTO log files of every configuration read (a reload can drop a program), removed
    /// at exit unless `nocleanup`.
    pub(crate) auto_logs: std::collections::BTreeSet<PathBuf>,
    /// `alerting:` in force, and the way to the task that delivers alerts.
    pub(crate) alerting: crate::alerting::Alerting,
    /// With `cluster:`, once the loop runs: the store client and the singletons' guards.
    pub(crate) cluster: Option<crate::cluster::ClusterLink>,
}

impl Daemon {
    /// A daemon for `config`, and the handle to send it requests. Nothing starts until
    /// [`Daemon::run_blocking`]. `verbose` echoes the event log to stderr.
    pub fn new(config: Config, verbose: bool) -> Result<(Daemon, Handle), StartError> {
        let mut log = EventLog::open(
            &config.logfile,
            config.log_rotation,
            config.daemon.loglevel,
            verbose,
        )
        .map_err(|source| StartError::EventLog {
            path: config.logfile.clone(),
            source,
        })?;
        // Limits, umask and directory, before the first child.
        match startup::apply(&config.daemon) {
            Ok(done) => {
                for line in done {
                    log.say(line);
                }
            }
            Err(why) => {
                log.say_at(taskmaster_config::LogLevel::Critical, why.clone());
                log.flush();
                return Err(StartError::Settings(why));
            }
        }
        let auto_logs = config.daemon.auto_logs.clone();
        let config_path = config.path.clone();
        let children_nofile = startup::raise_own_nofile(&config);
        let context = spawn::ChildContext {
            children_nofile,
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
            children: Children::default(),
            output_counts: std::collections::HashMap::new(),
            helpers: checks::HelperExits::default(),
            sinks: capture::Sinks::default(),
            fcgi_sockets: crate::fcgi::FcgiSockets::default(),
            listeners: crate::listeners::Listeners::default(),
            listeners_configured: None,
            pair_settings: None,
            primary: None,
            adopted: Vec::new(),
            adopted_stdins: Vec::new(),
            took_over: false,
            task_events,
            task_results,
            alert_watchers: AlertWatchers::default(),
            requests,
            events: events.clone(),
            waiting: std::collections::HashMap::new(),
            next_ticket: 0,
            exit: false,
            // The configuration was read at start.
            release_memory: true,
            idle_release_at: None,
            config_loads: Default::default(),
            service_gate: None,
            pidfile: None,
            auto_logs,
            alerting: Default::default(),
            cluster: None,
        };
        Ok((daemon, Handle { sender, events }))
    }

    /// Writes the configuration's warnings to the event log (at `warn`), as supervisord logs
    /// its parse warnings at start.
    pub fn config_warnings(&mut self, warnings: &[taskmaster_config::ConfigWarning]) {
        for warning in warnings {
            self.log.warn(format!("configuration: {warning}"));
        }
    }

    /// Makes this daemon the primary of a process pair: it keeps a hot backup (a copy of this
    /// executable) up to date, which takes over if this one dies. `config` is the file the
    /// backup is started with. The first backup is started as soon as the loop runs.
    pub fn with_backup(mut self, config: PathBuf, verbose: bool) -> Daemon {
        // A daemon that took over carries the pair's history on.
        let info = self.supervisor.pair().cloned().unwrap_or_default();
        self.announce_pair(PairInfo {
            primary_pid: std::process::id(),
            backup_pid: None,
            backup_connected: false,
            ..info
        });
        self.pair_settings = Some(PrimarySettings {
            config,
            verbose,
            nofile: self.context.children_nofile,
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
            mut children,
            reason,
        } = takeover;
        let now = clock::now();
        daemon.took_over = true;
        daemon.initial = supervisor.take_over(std::process::id(), now);
        let history = supervisor.pair().cloned().unwrap_or_default();
        daemon.supervisor = supervisor;
        daemon.listeners_configured = None;
        daemon.announce_pair(PairInfo {
            primary_pid: std::process::id(),
            backup_pid: None,
            backup_connected: false,
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
        for (pid, held) in children {
            daemon.adopt(pid, held);
        }
        Ok((daemon, handle))
    }

    /// Takes child `pid` on from a dead primary: its output drains into its files again, its
    /// stdin pipe is kept, and its pidfd is watched (the child is not ours to waitpid).
    fn adopt(&mut self, pid: u32, held: pair::HeldChild) {
        let process = self
            .supervisor
            .processes()
            .find(|p| p.pid == Some(pid))
            .map(|p| (p.name.clone(), Arc::clone(&p.spec)));
        // A child the state does not know (it came just before the primary died) has nowhere
        // known to write: its pipes close.
        let pipes = held
            .outputs
            .into_iter()
            .filter_map(|(output, pipe)| {
                let (name, spec) = process.as_ref()?;
                let stream = output.stream(spec);
                let destination =
                    spawn::destination(name, spec, stream, &mut self.sinks).ok()??;
                Some((pipe, stream, destination))
            })
            .collect();
        let owner = process.map_or_else(|| format!("pid {pid}"), |(name, _)| name);
        let captures = self.start_captures(pid, &owner, pipes);
        let pidfd = std::sync::Arc::new(held.pidfd);
        self.adopted
            .push(adopt::Adopted::new(pid, std::sync::Arc::clone(&pidfd)));
        // Its stdin pipe's writer is a task: it starts with the loop (`keep_adopted_stdins`).
        let child = Child {
            program: true,
            pidfd: Some(pidfd),
            captures,
            stdin: None,
            // A FastCGI socket is not handed over: the children hold it; the next spawn opens
            // it again (a Unix one anew; a TCP port once they are gone).
            fcgi_socket: None,
        };
        self.children.insert(pid, child);
        if let Some(fd) = held.stdin {
            self.adopted_stdins.push((pid, fd));
        }
    }

    /// Runs the loop on the calling thread until every process has stopped after a shutdown
    /// (a `shutdown` request, SIGTERM or SIGINT).
    pub fn run_blocking(self) -> Result<u8, StartError> {
        self.run_blocking_with(|_| std::future::pending())
    }

    /// Like [`Daemon::run_blocking`], with a service (the control API) running on the same
    /// loop. When the daemon is about to exit, the service is told through [`Exiting`] and
    /// given [`SERVICE_DRAIN`] to finish what it is answering, such as the reply to the
    /// shutdown itself.
    pub fn run_blocking_with<Service>(
        mut self,
        service: impl FnOnce(Exiting) -> Service,
    ) -> Result<u8, StartError>
    where
        Service: Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StartError::Signals)?;
        runtime.block_on(async {
            let (exiting, told) = tokio::sync::watch::channel(false);
            let (gate, opened) = oneshot::channel();
            self.service_gate = Some(gate);
            let serving = service(Exiting(told));
            let service = tokio::spawn(async move {
                if opened.await.is_ok() {
                    serving.await;
                }
            });
            let result = self.run().await;
            let _ = exiting.send(true);
            let _ = tokio::time::timeout(SERVICE_DRAIN, service).await;
            result
        })
    }

    /// Switches taskmaster to its configuration's `user` (top-level, `[supervisord] user`) when
    /// that is another than the one it runs as: once its sockets and event log are open,
    /// before its first child. Children without a `user` of their own then get that user's
    /// `HOME`, `USER`, `LOGNAME` and `SHELL` too. Naming its own user (root as root) does
    /// nothing.
    pub(crate) fn switch_user(&mut self) -> Result<(), StartError> {
        let Some(user) = self.supervisor.config().user.clone() else {
            return Ok(());
        };
        if sys::effective_uid() == user.uid {
            return Ok(());
        }
        sys::become_user(&spawn::ids(&user)).map_err(|source| StartError::User {
            name: user.name.clone(),
            source,
        })?;
        let login = spawn::user_environment(&user);
        let env = &mut self.context.base_env;
        env.retain(|(name, _)| login.iter().all(|(set, _)| set != name));
        env.extend(login);
        self.log.say(format!(
            "running as {} (uid {}, gid {}) from now on",
            user.name, user.uid, user.gid
        ));
        Ok(())
    }

    /// Lets the control service answer (the clients that connected meanwhile waited in the
    /// socket's queue).
    pub(crate) fn open_service_gate(&mut self) {
        if let Some(gate) = self.service_gate.take() {
            let _ = gate.send(());
        }
    }

    /// Gives back, [`IDLE_RELEASE_DELAY`] from now unless called again meanwhile, the memory
    /// not in use: pages of code and read-only data (see [`crate::sys::release_unused_code`])
    /// and malloc's free memory. After a start, a reload or a request, once the daemon is idle
    /// again, what they ran and allocated goes.
    pub(crate) fn release_unused_memory_soon(&mut self) {
        self.idle_release_at = Some(tokio::time::Instant::now() + IDLE_RELEASE_DELAY);
    }

    /// Hands `event` to the supervisor and carries out what it asks.
    pub(crate) fn dispatch(&mut self, event: Event) {
        let actions = self.handle_event(event);
        self.carry_out(actions);
    }

    /// Hands `event` to the supervisor: the one place its state changes, so the backup hears
    /// of every change.
    pub(crate) fn handle_event(&mut self, event: Event) -> Vec<Action> {
        self.release_guards(&event);
        if let Some(primary) = self.primary.as_mut() {
            primary.state_changed();
            primary.beat_if_due();
        }
        self.supervisor.handle(event, clock::now())
    }

    /// Tells the supervisor (for `status`) about the pair. A pair change asks for nothing.
    pub(crate) fn announce_pair(&mut self, info: PairInfo) {
        let _no_actions = self.handle_event(Event::PairChanged(info));
    }

    /// Keeps the pair's backup, as `status` shows it, in step with the primary's view.
    pub(crate) fn sync_pair_info(&mut self) {
        let Some((backup_pid, backup_connected)) = self.primary.as_ref().map(Primary::backup)
        else {
            return;
        };
        let info = self.supervisor.pair().cloned().unwrap_or_default();
        if (info.backup_pid, info.backup_connected) != (backup_pid, backup_connected) {
            self.announce_pair(PairInfo {
                backup_pid,
                backup_connected,
                ..info
            });
        }
    }

    /// Keeps the write end of a child's stdin pipe, for `sendstdin` and `attach`: a task
    /// writes what is queued, so it must run on the loop.
    pub(crate) fn stdin_pipe(&mut self, pid: u32, fd: OwnedFd) -> Option<stdin::StdinPipe> {
        match stdin::StdinPipe::start(fd) {
            Ok(pipe) => Some(pipe),
            Err(e) => {
                self.log
                    .warn(format!("cannot keep the stdin pipe of pid {pid}: {e}"));
                None
            }
        }
    }
}
