//! Carrying out what the supervisor asks: each [`Action`] becomes I/O, and an action with a
//! result reports it back as an [`Event`] before anything else happens. Only the supervisor
//! answers a request: a stdin write, a log reopening or a handover is reported as an event,
//! and the supervisor replies.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use taskmaster_config::{Config, Stream};
use taskmaster_core::ProgramSpec;
use taskmaster_core::{Action, Event, Reply, Scope, Signal};

use crate::children::Child;
use crate::daemon::Daemon;
use crate::handle::DaemonEvent;
use crate::{spawn, sys};

/// At most this many consecutive spawns are launched together: a pair's primary beats
/// between batches.
const SPAWN_BATCH: usize = 16;

/// Takes out of `queue` the spawns that come next (at most [`SPAWN_BATCH`] - 1), to be
/// launched with the one before them. A start of many processes asks for each one's state
/// change and log line, then its spawn: the spawns may pass those (the state changes are
/// still told in order, before the spawned processes' next ones), never another action.
fn take_spawns_ahead(queue: &mut VecDeque<Action>) -> Vec<SpawnAsked> {
    let mut ahead = Vec::new();
    // Each spawn comes with a few reports: a long run of reports ends the look.
    for (index, action) in queue.iter().enumerate().take(4 * SPAWN_BATCH) {
        if ahead.len() + 1 == SPAWN_BATCH {
            break;
        }
        match action {
            Action::Spawn { .. } => ahead.push(index),
            Action::StateChanged { .. } | Action::Log(_) => {}
            _ => break,
        }
    }
    // From the back, so that each index still points at its spawn.
    let mut spawns: Vec<SpawnAsked> = ahead
        .into_iter()
        .rev()
        .filter_map(|index| queue.remove(index).and_then(SpawnAsked::from_action))
        .collect();
    spawns.reverse();
    spawns
}

/// What an [`Action::Spawn`] asks for.
struct SpawnAsked {
    process: String,
    spec: Arc<ProgramSpec>,
    fencing_token: Option<i64>,
}

impl SpawnAsked {
    /// The spawn `action` asks for, if it is one.
    fn from_action(action: Action) -> Option<SpawnAsked> {
        match action {
            Action::Spawn {
                process,
                spec,
                fencing_token,
            } => Some(SpawnAsked {
                process,
                spec,
                fencing_token,
            }),
            _ => None,
        }
    }
}

/// A child to spawn, with the FastCGI socket it is given (or why that could not be had).
struct SpawnRequest {
    process: String,
    spec: Arc<ProgramSpec>,
    fcgi_socket: Result<Option<Arc<crate::fcgi::ListeningSocket>>, String>,
}

impl Daemon {
    /// Carries out `actions` in order, with the actions that their results lead to.
    pub(crate) fn carry_out(&mut self, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            // A `start all` of thousands is a long turn: the backup still hears the primary.
            if let Some(primary) = self.primary.as_mut() {
                primary.beat_if_due();
            }
            let results = match action {
                Action::Spawn {
                    process,
                    spec,
                    fencing_token,
                } => {
                    let mut spawns = vec![SpawnAsked {
                        process,
                        spec,
                        fencing_token,
                    }];
                    spawns.extend(take_spawns_ahead(&mut queue));
                    self.spawn_all(spawns)
                }
                action => self.carry_out_one(action).into_iter().collect(),
            };
            for result in results {
                queue.extend(self.handle_event(result));
            }
        }
    }

    /// Carries out one action; what it led to, if the supervisor must hear it at once.
    fn carry_out_one(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Spawn {
                process,
                spec,
                fencing_token,
            } => self
                .spawn_all(vec![SpawnAsked {
                    process,
                    spec,
                    fencing_token,
                }])
                .pop(),
            Action::Contend { program } => {
                self.tell_cluster(taskmaster_cluster::Command::Contend(program));
                None
            }
            Action::Withdraw { program } => {
                self.tell_cluster(taskmaster_cluster::Command::Withdraw(program));
                None
            }
            Action::Fence { kill_at } => {
                self.fence(kill_at);
                None
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
            Action::WatchGroup { pgid } => {
                self.watch_group(pgid);
                None
            }
            Action::LoadConfig { ticket, purpose } => {
                self.load_config(ticket, purpose);
                None
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
            Action::StateChanged {
                process,
                from,
                to,
                pid,
                tries,
                expected,
            } => {
                self.alert_state_change(&process, from, to);
                self.publish_state_change(&crate::announce::StateChange {
                    process: &process,
                    from,
                    to,
                    pid,
                    tries,
                    expected,
                });
                let _ = self.events.send(DaemonEvent::StateChanged {
                    process,
                    from,
                    to,
                    at: SystemTime::now(),
                });
                None
            }
            Action::Announce(announcement) => {
                self.publish_announcement(announcement);
                None
            }
            Action::Reply { ticket, reply } => {
                self.reply(ticket, reply);
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
                outcomes,
            } => {
                let written = writes
                    .into_iter()
                    .map(|(process, pid)| {
                        let result = match self.children.stdin(pid) {
                            Some(pipe) => pipe.send(data.clone()),
                            None => Err("taskmaster holds no stdin pipe for it".to_string()),
                        };
                        (process, result)
                    })
                    .collect();
                Some(Event::StdinWritten {
                    ticket,
                    outcomes,
                    written,
                })
            }
            Action::CountOutput { ticket } => {
                let load = |count: &std::sync::atomic::AtomicU64| {
                    count.load(std::sync::atomic::Ordering::Relaxed)
                };
                let counts = self
                    .output_counts
                    .iter()
                    .map(|(name, [stdout, stderr])| (name.clone(), [load(stdout), load(stderr)]))
                    .collect();
                Some(Event::OutputCounted { ticket, counts })
            }
            Action::ReopenLogs { ticket, only } => {
                let (files, errors) = self.reopen_logs(only.as_deref());
                Some(Event::LogsReopened {
                    ticket,
                    files,
                    errors,
                })
            }
            Action::TestAlerts { ticket } => self.test_alerts(ticket),
            Action::Handover { ticket, upgrade } => match self.primary.as_mut() {
                Some(primary) => {
                    primary.begin_handover(ticket, upgrade, &mut self.log);
                    None
                }
                None => Some(Event::HandoverDone {
                    ticket,
                    result: Err(
                        "taskmaster is not running as a pair (start it with run --pair)"
                            .to_string(),
                    ),
                }),
            },
        }
    }

    /// Spawns a child for each of `spawns` (spawns asked for in a row), launched
    /// together on two threads; the results, in order, are for the supervisor at once.
    fn spawn_all(&mut self, spawns: Vec<SpawnAsked>) -> Vec<Event> {
        let requests: Vec<SpawnRequest> = spawns
            .into_iter()
            .map(|asked| self.spawn_request(asked))
            .collect();
        let prepared = requests
            .iter()
            .map(|request| {
                let socket = request.fcgi_socket.as_ref().map_err(Clone::clone)?;
                let socket = socket.as_deref().map(crate::fcgi::ListeningSocket::fd);
                spawn::prepare(
                    &request.process,
                    &request.spec,
                    socket,
                    &self.context,
                    &mut self.sinks,
                )
            })
            .collect();
        let launched = spawn::launch_all(prepared);
        requests
            .into_iter()
            .zip(launched)
            .map(|(request, launched)| self.spawned(request, launched))
            .collect()
    }

    /// What spawning `process` needs of the daemon before its child is prepared.
    fn spawn_request(&mut self, asked: SpawnAsked) -> SpawnRequest {
        let SpawnAsked {
            process,
            spec,
            fencing_token,
        } = asked;
        self.watch_alerts(&spec);
        let spec = match fencing_token {
            Some(token) => crate::cluster::with_fencing_token(&spec, token),
            None => spec,
        };
        let fcgi_socket = spec
            .fcgi_socket
            .as_ref()
            .map(|socket| self.fcgi_sockets.acquire(&spec.name, socket))
            .transpose();
        SpawnRequest {
            process,
            spec,
            fcgi_socket,
        }
    }

    /// Records the child launched for `request` (or why it was not): the event for the
    /// supervisor.
    fn spawned(
        &mut self,
        request: SpawnRequest,
        launched: Result<spawn::Spawned, String>,
    ) -> Event {
        let SpawnRequest {
            process,
            spec,
            fcgi_socket,
        } = request;
        let child = match launched {
            Ok(child) => child,
            Err(error) => return Event::SpawnFailed { process, error },
        };
        let pid = child.pid;
        let captures = self.start_captures(pid, &process, child.captures);
        let stdin = child.stdin.and_then(|fd| self.stdin_pipe(pid, fd));
        self.children.insert(
            pid,
            Child {
                program: true,
                pidfd: None,
                captures,
                stdin,
                fcgi_socket: fcgi_socket.ok().flatten(),
            },
        );
        if let Some(primary) = self.primary.as_mut() {
            primary.child_spawned(pid);
        }
        if spec.listener.is_some() {
            self.listeners.started(pid, &spec.name, &process);
        }
        if spec.singleton {
            self.guard_child(&process, pid);
        }
        Event::Spawned { process, pid }
    }

    /// A configuration with more processes than the open files limit allows for raises it
    /// (see [`crate::startup::raise_own_nofile`]); once raised it stays so.
    pub(crate) fn raise_nofile_for(&mut self, config: &Config) {
        if self.context.children_nofile.is_some() {
            return;
        }
        self.context.children_nofile = crate::startup::raise_own_nofile(config);
    }

    /// Sends the reply to whoever waits for `ticket`.
    fn reply(&mut self, ticket: taskmaster_core::Ticket, reply: Reply) {
        // Whoever gets the answer may read the log next: it must hold what led to it.
        self.log.flush();
        if let Some(waiting) = self.waiting.remove(&ticket) {
            let _ = waiting.send(reply); // the asker may have gone; nothing to do
        }
    }

    /// A reload's rotation sizes, given to the log files open now: the processes writing
    /// there keep running (the supervisor applies `rotation` in place), and the next write
    /// rotates by the new sizes. A process the reload restarts gets them too.
    pub(crate) fn apply_rotations(&self, config: &Config) {
        for program in config.programs.values() {
            for process in &program.processes {
                for stream in [Stream::Stdout, Stream::Stderr] {
                    if let Some(path) = process.spec.file(stream) {
                        self.sinks.set_rotation(path, process.spec.rotation(stream));
                    }
                }
            }
        }
    }

    /// Reopens log files at their paths: `only` these, or every one, the event log included.
    /// How many were reopened, and what failed.
    fn reopen_logs(&mut self, only: Option<&[PathBuf]>) -> (usize, Vec<String>) {
        let (mut files, mut errors) = self.sinks.reopen(only);
        self.warn_of_files_processes_hold(only);
        if only.is_none() {
            match self.log.reopen_in_place() {
                Ok(()) => files += 1,
                Err(e) => errors.push(format!(
                    "cannot reopen the event log: {}",
                    taskmaster_config::os_reason(&e)
                )),
            }
        }
        (files, errors)
    }

    /// Says which of the files `only` names (or of every file) the running processes write
    /// themselves: taskmaster cannot reopen those (the process holds its descriptor), so an
    /// outside logrotate that renamed one has the process writing on into the renamed file.
    fn warn_of_files_processes_hold(&mut self, only: Option<&[PathBuf]>) {
        let mut held: Vec<String> = Vec::new();
        for process in self.supervisor.processes().filter(|p| p.pid.is_some()) {
            for stream in [Stream::Stdout, Stream::Stderr] {
                let Some(path) = process.spec.file(stream) else {
                    continue;
                };
                let chosen = only.is_none_or(|only| only.iter().any(|p| p == path));
                let text = path.display().to_string();
                if chosen && process.spec.writes_own_file(stream) && !held.contains(&text) {
                    held.push(text);
                }
            }
        }
        if !held.is_empty() {
            self.log.warn(format!(
                "logrotate: {} written by the processes themselves (never rotated by taskmaster): \
                 not reopened; an outside logrotate needs copytruncate for them",
                held.join(", ")
            ));
        }
    }

    fn send_signal(&mut self, pid: u32, signal: Signal, scope: Scope) {
        let result = match scope {
            Scope::Group => sys::kill_group(pid, signal),
            Scope::Process => self.children.signal(pid, signal),
        };
        if self.log.writes(taskmaster_config::LogLevel::Debug) {
            let whom = match scope {
                Scope::Group => "the process group of",
                Scope::Process => "pid",
            };
            let outcome = match &result {
                Ok(()) => "sent".to_string(),
                Err(e) => format!("not sent: {e}"),
            };
            self.log
                .debug(format!("{} to {whom} {pid}: {outcome}", signal.name()));
        }
        // ESRCH is normal: the process (or every member of the group) is already gone.
        if let Err(e) = result {
            if e.raw_os_error() != Some(libc::ESRCH) {
                self.log
                    .warn(format!("cannot send {} to {pid}: {e}", signal.name()));
            }
        }
    }
}
