use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmaster_config::{diff, AutoRestart, Config, ProgramSpec, ReloadPlan, Signal};

use crate::control::{Done, Failure, Outcome, ProcessInfo, Reply, Request, Ticket};
use crate::process::{AfterStop, Deadline, ExitStatus, LastExit, Process, State};
use crate::time::Time;

/// Something that happened, for the supervisor to react to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The runtime carried out [`Action::Spawn`]: the child runs with this pid.
    Spawned { process: String, pid: u32 },
    /// The runtime could not carry out [`Action::Spawn`]; `error` says why.
    SpawnFailed { process: String, error: String },
    /// A child was reaped. The pid may be none of ours (an orphan the subreaper collected).
    Exited { pid: u32, status: ExitStatus },
    /// A child was stopped by a signal (SIGSTOP, SIGTSTP...): paused, not dead.
    Paused { pid: u32, signal: Signal },
    /// A paused child was continued (SIGCONT).
    Resumed { pid: u32 },
    /// The time of [`Supervisor::next_deadline`] has come.
    Timer,
    /// A user asks. With no ticket nobody waits for the reply (a SIGHUP reload).
    Request {
        ticket: Option<Ticket>,
        request: Request,
    },
    /// The runtime carried out [`Action::LoadConfig`]; on error, one message per problem.
    ConfigLoaded {
        ticket: Option<Ticket>,
        purpose: LoadPurpose,
        result: Result<Config, Vec<String>>,
    },
}

/// What a configuration is read again for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadPurpose {
    /// A reload: apply the difference.
    Apply,
    /// A reread (supervisord's `reloadConfig`): compare and keep it staged, change nothing;
    /// groups are then added or removed one by one.
    Stage,
}

/// Whom a signal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// The child alone.
    Process,
    /// The child's whole process group (the child leads it), so that the grandchildren of a
    /// `sh -c` wrapper go too.
    Group,
}

/// Something for the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start a child for `process`, then report [`Event::Spawned`] or [`Event::SpawnFailed`]
    /// before any other event.
    Spawn {
        process: String,
        spec: Arc<ProgramSpec>,
    },
    Signal {
        pid: u32,
        signal: Signal,
        scope: Scope,
    },
    /// Read the configuration file again, then report [`Event::ConfigLoaded`] with the same
    /// ticket and purpose.
    LoadConfig {
        purpose: LoadPurpose,
        ticket: Option<Ticket>,
    },
    /// Write a line to the event log.
    Log(Notice),
    /// A process changed state (for event subscribers; the log has its own lines).
    StateChanged {
        process: String,
        from: State,
        to: State,
    },
    Reply {
        ticket: Ticket,
        reply: Reply,
    },
    /// Every process has stopped after a shutdown: the daemon may exit.
    Exit,
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The process the line is about, if any.
    pub process: Option<String>,
    pub message: String,
}

/// A request waiting for processes to reach their goals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Waiter {
    ticket: Ticket,
    items: Vec<WaitItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WaitItem {
    process: String,
    /// `None` once every outcome for this process is known.
    goal: Option<Goal>,
    outcomes: Vec<Outcome>,
    /// The process's stop count when the request came: a higher one means it has stopped.
    stops_before: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Goal {
    Running,
    Stopped,
    /// Stopped, then started again: a restart.
    StoppedThenRunning,
}

/// A process a request names, and whether it was named alone (not through `all` or a group).
struct Named {
    name: String,
    alone: bool,
}

/// The supervisor: every process record, and the rules that move them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supervisor {
    config: Config,
    /// By name; the order is the order `status` lists them in.
    processes: BTreeMap<String, Process>,
    /// Programs added or changed by a reload whose old processes are still stopping; each
    /// starts once the last of them is gone.
    waiting_programs: BTreeMap<String, Arc<ProgramSpec>>,
    waiters: Vec<Waiter>,
    /// The configuration last reread (not applied): where added groups come from.
    staged: Option<Config>,
    shutting_down: bool,
    exit_sent: bool,
    daemon_pid: u32,
}

impl Supervisor {
    /// A supervisor for `config`, with the actions that start its autostart programs.
    /// `daemon_pid` is what `pid` with no target answers.
    pub fn new(config: Config, daemon_pid: u32, now: Time) -> (Supervisor, Vec<Action>) {
        let mut supervisor = Supervisor {
            config: config.clone(),
            processes: BTreeMap::new(),
            waiting_programs: BTreeMap::new(),
            waiters: Vec::new(),
            staged: None,
            shutting_down: false,
            exit_sent: false,
            daemon_pid,
        };
        let mut out = Vec::new();
        for spec in by_priority(config.programs.into_values()) {
            supervisor.add_program(Arc::new(spec), now, &mut out);
        }
        (supervisor, out)
    }

    /// Reacts to one event and returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Spawned { process, pid } => self.spawned(&process, pid, now, &mut out),
            Event::SpawnFailed { process, error } => {
                self.spawn_failed(&process, error, now, &mut out)
            }
            Event::Exited { pid, status } => self.exited(pid, status, now, &mut out),
            Event::Paused { pid, signal } => self.paused(pid, Some(signal), &mut out),
            Event::Resumed { pid } => self.paused(pid, None, &mut out),
            Event::Timer => self.deadlines_passed(now, &mut out),
            Event::Request { ticket, request } => self.request(ticket, request, now, &mut out),
            Event::ConfigLoaded {
                ticket,
                purpose: LoadPurpose::Apply,
                result,
            } => self.config_loaded(ticket, result, now, &mut out),
            Event::ConfigLoaded {
                ticket,
                purpose: LoadPurpose::Stage,
                result,
            } => self.config_staged(ticket, result, &mut out),
        }
        self.settle(now, &mut out);
        out
    }

    /// The earliest moment something is due; the runtime sends [`Event::Timer`] then.
    pub fn next_deadline(&self) -> Option<Time> {
        self.processes
            .values()
            .filter_map(|p| p.deadline.map(|(at, _)| at))
            .min()
    }

    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.processes.values()
    }

    pub fn process(&self, name: &str) -> Option<&Process> {
        self.processes.get(name)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    // ---- events -------------------------------------------------------------------------

    fn spawned(&mut self, name: &str, pid: u32, now: Time, out: &mut Vec<Action>) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        p.pid = Some(pid);
        log(out, name, format!("spawned with pid {pid}"));
        let starttime = p.spec.starttime;
        if starttime.is_zero() {
            self.enter_running(name, out);
        } else if let Some(p) = self.processes.get_mut(name) {
            p.deadline = Some((now + starttime, Deadline::StartTime));
        }
    }

    fn spawn_failed(&mut self, name: &str, error: String, now: Time, out: &mut Vec<Action>) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        log(out, name, format!("spawn error: {error}"));
        p.spawn_error = Some(error);
        p.pid = None;
        self.start_failed(name, now, out);
    }

    fn exited(&mut self, pid: u32, status: ExitStatus, now: Time, out: &mut Vec<Action>) {
        let Some(name) = self
            .processes
            .values()
            .find(|p| p.pid == Some(pid))
            .map(|p| p.name.clone())
        else {
            return; // an orphan reaped by the subreaper: none of ours
        };
        let shutting_down = self.shutting_down;
        let Some(p) = self.processes.get_mut(&name) else {
            return;
        };
        let expected = matches!(status, ExitStatus::Code(code) if p.spec.is_expected_exit(code));
        p.pid = None;
        p.paused = None;
        p.stopped_at = Some(now);
        p.deadline = None;
        p.last_exit = Some(LastExit { status, expected });
        let up_for = p.started_at.map_or(Duration::ZERO, |at| now.since(at));
        match p.state {
            State::Stopping => {
                change_state(p, State::Stopped, out);
                log(out, &name, format!("stopped ({status})"));
                // The leader is gone; whatever else is left in its group goes too.
                out.push(Action::Signal {
                    pid,
                    signal: Signal::KILL,
                    scope: Scope::Group,
                });
                if p.after_stop == AfterStop::Start {
                    p.after_stop = AfterStop::Nothing;
                    if !shutting_down {
                        self.spawn(&name, now, out);
                    }
                }
            }
            State::Starting if up_for < p.spec.starttime => {
                log(
                    out,
                    &name,
                    format!("{status} after {up_for:.1?}, before its starttime"),
                );
                self.start_failed(&name, now, out);
            }
            State::Starting | State::Running => {
                if p.state == State::Starting {
                    self.enter_running(&name, out);
                }
                self.exited_from_running(&name, status, expected, now, out);
            }
            other => log(out, &name, format!("{status} while {other}")),
        }
    }

    /// Records that a child was paused by `signal`, or resumed (`None`).
    fn paused(&mut self, pid: u32, signal: Option<Signal>, out: &mut Vec<Action>) {
        let Some(p) = self.processes.values_mut().find(|p| p.pid == Some(pid)) else {
            return; // an orphan of ours, or none at all
        };
        if p.paused == signal {
            return;
        }
        p.paused = signal;
        let message = match signal {
            Some(signal) => format!("paused by {signal}"),
            None => "resumed (SIGCONT)".to_string(),
        };
        out.push(Action::Log(Notice {
            process: Some(p.name.clone()),
            message,
        }));
    }

    fn exited_from_running(
        &mut self,
        name: &str,
        status: ExitStatus,
        expected: bool,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let shutting_down = self.shutting_down;
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        change_state(p, State::Exited, out);
        let verdict = if expected { "expected" } else { "not expected" };
        log(out, name, format!("{status} ({verdict})"));
        let restart = match p.spec.autorestart {
            AutoRestart::Always => true,
            AutoRestart::Never => false,
            AutoRestart::Unexpected => !expected,
        };
        if restart && !shutting_down && !p.is_retiring() {
            let why = match p.spec.autorestart {
                AutoRestart::Always => "autorestart is always",
                _ => "the exit was not expected",
            };
            log(out, name, format!("restarting: {why}"));
            self.spawn(name, now, out);
        }
    }

    fn deadlines_passed(&mut self, now: Time, out: &mut Vec<Action>) {
        let due: Vec<(String, Deadline)> = self
            .processes
            .values_mut()
            .filter_map(|p| match p.deadline {
                Some((at, kind)) if at <= now => {
                    p.deadline = None;
                    Some((p.name.clone(), kind))
                }
                _ => None,
            })
            .collect();
        for (name, kind) in due {
            let Some(p) = self.processes.get(&name) else {
                continue;
            };
            match (kind, p.state, p.pid) {
                (Deadline::StartTime, State::Starting, _) => self.enter_running(&name, out),
                (Deadline::Retry, State::Backoff, _) => {
                    log(out, &name, format!("start attempt {}", p.backoff + 1));
                    self.spawn(&name, now, out);
                }
                (Deadline::Kill, State::Stopping, Some(pid)) => {
                    log(
                        out,
                        &name,
                        format!(
                            "still running {:?} after {}: sending SIGKILL",
                            p.spec.stoptime,
                            p.spec.stopsignal.name()
                        ),
                    );
                    out.push(Action::Signal {
                        pid,
                        signal: Signal::KILL,
                        scope: Scope::Group,
                    });
                }
                _ => {}
            }
        }
    }

    // ---- transitions --------------------------------------------------------------------

    /// STOPPED / EXITED / FATAL / BACKOFF -> STARTING: asks the runtime for a child.
    fn spawn(&mut self, name: &str, now: Time, out: &mut Vec<Action>) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        change_state(p, State::Starting, out);
        p.started_at = Some(now);
        p.spawn_error = None;
        p.deadline = None;
        out.push(Action::Spawn {
            process: name.to_string(),
            spec: Arc::clone(&p.spec),
        });
    }

    /// STARTING -> RUNNING: up for `starttime`.
    fn enter_running(&mut self, name: &str, out: &mut Vec<Action>) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        change_state(p, State::Running, out);
        p.backoff = 0;
        p.deadline = None;
        let message = if p.spec.starttime.is_zero() {
            "RUNNING".to_string()
        } else {
            format!("RUNNING: up for {:?} (starttime)", p.spec.starttime)
        };
        log(out, name, message);
    }

    /// STARTING -> BACKOFF, or -> FATAL once `startretries` retries are spent. The n-th retry
    /// waits n seconds, as supervisord's do.
    fn start_failed(&mut self, name: &str, now: Time, out: &mut Vec<Action>) {
        let shutting_down = self.shutting_down;
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        p.stopped_at = Some(now);
        p.deadline = None;
        if shutting_down || p.is_retiring() {
            change_state(p, State::Stopped, out);
            return;
        }
        p.backoff += 1;
        if p.backoff > p.spec.startretries {
            change_state(p, State::Fatal, out);
            let attempts = p.backoff;
            p.backoff = 0;
            log(
                out,
                name,
                format!("gave up: FATAL after {attempts} failed start attempt(s)"),
            );
        } else {
            change_state(p, State::Backoff, out);
            let delay = Duration::from_secs(u64::from(p.backoff));
            p.deadline = Some((now + delay, Deadline::Retry));
            log(
                out,
                name,
                format!(
                    "BACKOFF: start failed ({} of {} retries used); next attempt in {}s",
                    p.backoff,
                    p.spec.startretries,
                    delay.as_secs()
                ),
            );
        }
    }

    /// Starts a process at rest; `Ok` means it is on its way (the outcome comes later).
    fn start_process(
        &mut self,
        name: &str,
        now: Time,
        out: &mut Vec<Action>,
    ) -> Result<(), Failure> {
        if self.shutting_down {
            return Err(Failure::ShuttingDown);
        }
        let p = self.processes.get_mut(name).ok_or(Failure::NoSuchProcess)?;
        if p.is_retiring() {
            return Err(Failure::Removed);
        }
        match p.state {
            State::Starting | State::Running | State::Backoff => Err(Failure::AlreadyStarted),
            State::Stopping => {
                p.after_stop = AfterStop::Start;
                Ok(())
            }
            State::Stopped | State::Exited | State::Fatal | State::Unknown => {
                p.backoff = 0;
                self.spawn(name, now, out);
                Ok(())
            }
        }
    }

    /// Stops a process; `Ok` means it is stopped or on its way.
    fn stop_process(
        &mut self,
        name: &str,
        now: Time,
        out: &mut Vec<Action>,
    ) -> Result<(), Failure> {
        let p = self.processes.get_mut(name).ok_or(Failure::NoSuchProcess)?;
        match (p.state, p.pid) {
            (State::Starting | State::Running, Some(pid)) => {
                change_state(p, State::Stopping, out);
                p.deadline = Some((now + p.spec.stoptime, Deadline::Kill));
                log(
                    out,
                    name,
                    format!("stop requested: sending {}", p.spec.stopsignal.name()),
                );
                out.push(Action::Signal {
                    pid,
                    signal: p.spec.stopsignal,
                    scope: Scope::Group,
                });
                // A paused process would only act on its stop signal at SIGKILL time.
                if p.paused.is_some() {
                    out.push(Action::Signal {
                        pid,
                        signal: Signal::CONT,
                        scope: Scope::Group,
                    });
                }
                Ok(())
            }
            (State::Starting | State::Running | State::Backoff, _) => {
                change_state(p, State::Stopped, out);
                p.deadline = None;
                p.stopped_at = Some(now);
                log(out, name, "stopped (no child was running)".to_string());
                Ok(())
            }
            (State::Stopping, _) => {
                if p.after_stop == AfterStop::Start {
                    p.after_stop = AfterStop::Nothing;
                }
                Ok(())
            }
            (State::Stopped | State::Exited | State::Fatal | State::Unknown, _) => {
                Err(Failure::NotRunning)
            }
        }
    }

    // ---- requests -----------------------------------------------------------------------

    fn request(
        &mut self,
        ticket: Option<Ticket>,
        request: Request,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        // A user's command is logged (a request without a ticket comes from a signal, which the
        // runtime logs); so are neither queries nor a shutdown already under way.
        let repeated_shutdown = request == Request::Shutdown && self.shutting_down;
        let query = matches!(
            request,
            Request::Status(_) | Request::Pid(_) | Request::Config | Request::DaemonState
        );
        if ticket.is_some() && !query && !repeated_shutdown {
            out.push(Action::Log(Notice {
                process: None,
                message: format!("command: {request}"),
            }));
        }
        let reply = match request {
            Request::Status(targets) => {
                let (names, errors) = self.resolve_all(&targets);
                let processes = names.iter().filter_map(|n| self.info(n)).collect();
                Some(Reply::Status {
                    now,
                    processes,
                    errors,
                })
            }
            Request::Pid(targets) if targets.is_empty() => Some(Reply::DaemonPid(self.daemon_pid)),
            Request::Pid(targets) => {
                let (names, errors) = self.resolve_all(&targets);
                let pids = names
                    .into_iter()
                    .map(|n| {
                        let pid = self.processes.get(&n).and_then(|p| p.pid);
                        (n, pid)
                    })
                    .collect();
                Some(Reply::Pids { pids, errors })
            }
            Request::Start(targets) => {
                self.act_and_wait(ticket, &targets, now, out, |s, n, now, out| {
                    s.start_process(n, now, out).map(|()| Goal::Running)
                })
            }
            Request::Stop(targets) => {
                self.act_and_wait(ticket, &targets, now, out, |s, n, now, out| {
                    s.stop_process(n, now, out).map(|()| Goal::Stopped)
                })
            }
            Request::Restart(targets) => {
                self.act_and_wait(ticket, &targets, now, out, |s, n, now, out| {
                    match s.processes.get(n).map(|p| p.state.is_stopped()) {
                        Some(true) => s.start_process(n, now, out).map(|()| Goal::Running),
                        _ => s
                            .stop_process(n, now, out)
                            .map(|()| Goal::StoppedThenRunning),
                    }
                })
            }
            Request::Signal { signal, targets } => {
                let (named, mut outcomes) = self.resolve_named(&targets);
                for Named { name, alone } in named {
                    let pid = self.processes.get(&name).and_then(|p| p.pid);
                    let result = match pid {
                        None if !alone => continue,
                        Some(pid) => {
                            log(out, &name, format!("sending {}", signal.name()));
                            out.push(Action::Signal {
                                pid,
                                signal,
                                scope: Scope::Process,
                            });
                            Ok(Done::Signalled)
                        }
                        None => Err(Failure::NotRunning),
                    };
                    outcomes.push(Outcome {
                        process: name,
                        result,
                    });
                }
                Some(Reply::Outcomes(outcomes))
            }
            Request::Reload => {
                out.push(Action::LoadConfig {
                    purpose: LoadPurpose::Apply,
                    ticket,
                });
                None
            }
            Request::Reread => {
                out.push(Action::LoadConfig {
                    purpose: LoadPurpose::Stage,
                    ticket,
                });
                None
            }
            Request::AddGroup(names) => Some(Reply::Outcomes(
                names
                    .into_iter()
                    .map(|name| {
                        let result = self.add_group(&name, now, out);
                        Outcome {
                            process: name,
                            result,
                        }
                    })
                    .collect(),
            )),
            Request::RemoveGroup(names) => Some(Reply::Outcomes(
                names
                    .into_iter()
                    .map(|name| {
                        let result = self.remove_group(&name, out);
                        Outcome {
                            process: name,
                            result,
                        }
                    })
                    .collect(),
            )),
            Request::DaemonState => Some(Reply::DaemonState {
                shutting_down: self.shutting_down,
            }),
            Request::Config => Some(Reply::Config {
                active: Box::new(self.config.clone()),
                staged: self.staged.clone().map(Box::new),
            }),
            Request::Shutdown => {
                self.shutdown(now, out);
                Some(Reply::ShuttingDown)
            }
        };
        if let (Some(ticket), Some(reply)) = (ticket, reply) {
            out.push(Action::Reply { ticket, reply });
        }
    }

    /// Applies `act` to every process the targets name, and answers once each has reached the
    /// goal `act` returns (or at once when nobody waits).
    fn act_and_wait(
        &mut self,
        ticket: Option<Ticket>,
        targets: &[String],
        now: Time,
        out: &mut Vec<Action>,
        act: impl Fn(&mut Self, &str, Time, &mut Vec<Action>) -> Result<Goal, Failure>,
    ) -> Option<Reply> {
        let (named, errors) = self.resolve_named(targets);
        let mut items: Vec<WaitItem> = errors
            .into_iter()
            .map(|outcome| WaitItem {
                process: outcome.process.clone(),
                goal: None,
                outcomes: vec![outcome],
                stops_before: 0,
            })
            .collect();
        for Named { name, alone } in named {
            let stops_before = self.processes.get(&name).map_or(0, |p| p.stops);
            let item = match act(self, &name, now, out) {
                Ok(goal) => WaitItem {
                    process: name,
                    goal: Some(goal),
                    outcomes: Vec::new(),
                    stops_before,
                },
                // As supervisord's *All and *Group calls do: `stop all` stops what runs and
                // says nothing of the rest; only a process named alone gets "not running".
                Err(Failure::AlreadyStarted | Failure::NotRunning) if !alone => continue,
                Err(failure) => WaitItem {
                    outcomes: vec![Outcome {
                        process: name.clone(),
                        result: Err(failure),
                    }],
                    process: name,
                    goal: None,
                    stops_before,
                },
            };
            items.push(item);
        }
        if let Some(ticket) = ticket {
            self.waiters.push(Waiter { ticket, items });
        }
        None // the reply comes from settle(), possibly within this same event
    }

    /// A reread: compare with what runs, keep it staged, change nothing.
    fn config_staged(
        &mut self,
        ticket: Option<Ticket>,
        result: Result<Config, Vec<String>>,
        out: &mut Vec<Action>,
    ) {
        let reply = match result {
            Err(errors) => {
                for error in &errors {
                    out.push(Action::Log(Notice {
                        process: None,
                        message: format!("reread rejected: {error}"),
                    }));
                }
                Reply::ReloadRejected(errors)
            }
            Ok(config) => {
                let plan = diff(&self.config, &config);
                self.staged = Some(config);
                Reply::Compared(plan)
            }
        };
        if let Some(ticket) = ticket {
            out.push(Action::Reply { ticket, reply });
        }
    }

    /// Adds a program from the staged configuration (or the active one when nothing is
    /// staged), as supervisord's `addProcessGroup`.
    fn add_group(&mut self, name: &str, now: Time, out: &mut Vec<Action>) -> Result<Done, Failure> {
        if self.shutting_down {
            return Err(Failure::ShuttingDown);
        }
        let source = self.staged.as_ref().unwrap_or(&self.config);
        let spec = source
            .programs
            .get(name)
            .cloned()
            .ok_or(Failure::NoSuchProcess)?;
        if self.processes.values().any(|p| p.program() == name) {
            return Err(Failure::AlreadyAdded);
        }
        self.config.programs.insert(name.to_string(), spec.clone());
        out.push(Action::Log(Notice {
            process: Some(name.to_string()),
            message: "added".to_string(),
        }));
        self.add_program(Arc::new(spec), now, out);
        Ok(Done::Added)
    }

    /// Removes a program whose processes have all stopped, as supervisord's
    /// `removeProcessGroup`.
    fn remove_group(&mut self, name: &str, out: &mut Vec<Action>) -> Result<Done, Failure> {
        let members: Vec<String> = self
            .processes
            .values()
            .filter(|p| p.program() == name)
            .map(|p| p.name.clone())
            .collect();
        if members.is_empty() {
            return Err(Failure::NoSuchProcess);
        }
        if members
            .iter()
            .any(|m| self.processes.get(m).is_some_and(|p| !p.state.is_stopped()))
        {
            return Err(Failure::StillRunning);
        }
        for member in members {
            self.processes.remove(&member);
        }
        self.config.programs.remove(name);
        self.waiting_programs.remove(name);
        out.push(Action::Log(Notice {
            process: Some(name.to_string()),
            message: "removed".to_string(),
        }));
        Ok(Done::Removed)
    }

    fn config_loaded(
        &mut self,
        ticket: Option<Ticket>,
        result: Result<Config, Vec<String>>,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let reply = match result {
            Err(errors) => {
                for error in &errors {
                    out.push(Action::Log(Notice {
                        process: None,
                        message: format!("reload rejected: {error}"),
                    }));
                }
                Reply::ReloadRejected(errors)
            }
            Ok(_) if self.shutting_down => Reply::ShuttingDown,
            Ok(config) => {
                let plan = diff(&self.config, &config);
                self.apply(&plan, &config, now, out);
                self.config = config;
                self.staged = None;
                out.push(Action::Log(Notice {
                    process: None,
                    message: format!("reload: {}", plan.summary()),
                }));
                Reply::Reloaded(plan)
            }
        };
        if let Some(ticket) = ticket {
            out.push(Action::Reply { ticket, reply });
        }
    }

    /// Applies a reload: removed programs stop and go; changed ones stop and come back with
    /// their new settings; added ones start; the rest are not touched.
    fn apply(&mut self, plan: &ReloadPlan, config: &Config, now: Time, out: &mut Vec<Action>) {
        for name in &plan.removed {
            self.waiting_programs.remove(name);
            self.retire_program(name, now, out);
        }
        let arriving = plan
            .changed
            .iter()
            .chain(&plan.added)
            .filter_map(|name| config.programs.get(name).cloned());
        for spec in by_priority(arriving) {
            let name = &spec.name;
            let spec = Arc::new(spec.clone());
            if self.processes.values().any(|p| p.program() == name) {
                self.retire_program(name, now, out);
                self.waiting_programs.insert(name.clone(), spec);
            } else {
                self.add_program(spec, now, out);
            }
        }
    }

    fn retire_program(&mut self, program: &str, now: Time, out: &mut Vec<Action>) {
        let names: Vec<String> = self
            .processes
            .values()
            .filter(|p| p.program() == program && !p.is_retiring())
            .map(|p| p.name.clone())
            .collect();
        for name in names {
            // A process at rest answers NotRunning, which is fine: settle() removes it.
            let _ = self.stop_process(&name, now, out);
            if let Some(p) = self.processes.get_mut(&name) {
                p.after_stop = AfterStop::Remove;
            }
        }
    }

    fn add_program(&mut self, spec: Arc<ProgramSpec>, now: Time, out: &mut Vec<Action>) {
        for process_name in spec.process_names() {
            let name = if spec.numprocs == 1 {
                process_name
            } else {
                format!("{}:{process_name}", spec.name)
            };
            self.processes
                .insert(name.clone(), Process::new(name.clone(), Arc::clone(&spec)));
            if spec.autostart && !self.shutting_down {
                self.spawn(&name, now, out);
            }
        }
    }

    fn shutdown(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.waiting_programs.clear();
        out.push(Action::Log(Notice {
            process: None,
            message: "shutting down: stopping every process".to_string(),
        }));
        self.stop_next_level(now, out);
    }

    /// During a shutdown, as supervisord does: once nothing is stopping, stop every process
    /// of the highest priority still running; lower priorities wait until it is down.
    fn stop_next_level(&mut self, now: Time, out: &mut Vec<Action>) {
        loop {
            if self.processes.values().any(|p| p.state == State::Stopping) {
                return;
            }
            let running = |p: &Process| !p.state.is_stopped();
            let Some(level) = self
                .processes
                .values()
                .filter(|p| running(p))
                .map(|p| p.spec.priority)
                .max()
            else {
                return;
            };
            let names: Vec<String> = self
                .processes
                .values()
                .filter(|p| running(p) && p.spec.priority == level)
                .map(|p| p.name.clone())
                .collect();
            for name in names {
                let _ = self.stop_process(&name, now, out);
            }
        }
    }

    /// After every event: answer the requests whose processes have reached their goals, drop
    /// retired records, start programs that were waiting for them, and exit after a shutdown.
    fn settle(&mut self, now: Time, out: &mut Vec<Action>) {
        // First, as it may stop more processes, which the waiters below must see.
        if self.shutting_down {
            self.stop_next_level(now, out);
        }
        let mut waiters = std::mem::take(&mut self.waiters);
        for waiter in &mut waiters {
            for item in &mut waiter.items {
                self.advance(item, now, out);
            }
        }
        for waiter in waiters {
            if waiter.items.iter().all(|item| item.goal.is_none()) {
                let outcomes = waiter.items.into_iter().flat_map(|i| i.outcomes).collect();
                out.push(Action::Reply {
                    ticket: waiter.ticket,
                    reply: Reply::Outcomes(outcomes),
                });
            } else {
                self.waiters.push(waiter);
            }
        }

        let retired: Vec<String> = self
            .processes
            .values()
            .filter(|p| p.is_retiring() && p.state.is_stopped())
            .map(|p| p.name.clone())
            .collect();
        for name in retired {
            self.processes.remove(&name);
            log(out, &name, "removed".to_string());
        }

        let mut ready: Vec<Arc<ProgramSpec>> = self
            .waiting_programs
            .values()
            .filter(|spec| !self.processes.values().any(|p| p.program() == spec.name))
            .cloned()
            .collect();
        ready.sort_by_key(|spec| spec.priority);
        for spec in ready {
            self.waiting_programs.remove(&spec.name);
            self.add_program(spec, now, out);
        }

        if self.shutting_down && !self.exit_sent && self.processes.values().all(|p| p.pid.is_none())
        {
            self.exit_sent = true;
            out.push(Action::Exit);
        }
    }

    /// Moves one waiting item on, recording its outcome once its goal is reached or missed.
    fn advance(&mut self, item: &mut WaitItem, now: Time, out: &mut Vec<Action>) {
        let Some(goal) = item.goal else {
            return;
        };
        let Some(p) = self.processes.get(&item.process) else {
            item.finish(Err(Failure::Removed));
            return;
        };
        match goal {
            Goal::Running => match p.state {
                State::Running => item.finish(Ok(Done::Started)),
                State::Starting | State::Stopping => {}
                _ if self.shutting_down => item.finish(Err(Failure::ShuttingDown)),
                _ => match &p.spawn_error {
                    Some(error) => item.finish(Err(Failure::SpawnError(error.clone()))),
                    None => item.finish(Err(Failure::AbnormalTermination)),
                },
            },
            Goal::Stopped | Goal::StoppedThenRunning
                if !(p.state.is_stopped() || p.stops > item.stops_before) => {}
            Goal::Stopped => item.finish(Ok(Done::Stopped)),
            Goal::StoppedThenRunning => {
                item.record(Ok(Done::Stopped));
                // Someone else's start may already have it on its way up.
                if matches!(p.state, State::Starting | State::Running) {
                    item.goal = Some(Goal::Running);
                } else {
                    match self.start_process(&item.process, now, out) {
                        Ok(()) => item.goal = Some(Goal::Running),
                        Err(failure) => item.finish(Err(failure)),
                    }
                }
            }
        }
    }

    // ---- names --------------------------------------------------------------------------

    /// The processes the targets name, in order and without repeats, and an error outcome for
    /// each target that names none. No target means every process.
    fn resolve_all(&self, targets: &[String]) -> (Vec<String>, Vec<Outcome>) {
        let (named, errors) = self.resolve_named(targets);
        (named.into_iter().map(|n| n.name).collect(), errors)
    }

    /// Like [`Self::resolve_all`], remembering for each process whether it was named alone or
    /// came with others (`all`, a group).
    fn resolve_named(&self, targets: &[String]) -> (Vec<Named>, Vec<Outcome>) {
        if targets.is_empty() {
            let all = self.processes.keys().cloned();
            return (
                all.map(|name| Named { name, alone: false }).collect(),
                Vec::new(),
            );
        }
        let mut named: Vec<Named> = Vec::new();
        let mut errors = Vec::new();
        for target in targets {
            let found = self.resolve(target);
            if found.is_empty() {
                errors.push(Outcome {
                    process: target.clone(),
                    result: Err(Failure::NoSuchProcess),
                });
            }
            let alone = found.len() == 1 && !target.ends_with(":*") && target != "all";
            for name in found {
                match named.iter_mut().find(|n| n.name == name) {
                    Some(earlier) => earlier.alone |= alone,
                    None => named.push(Named { name, alone }),
                }
            }
        }
        (named, errors)
    }

    /// `all`; `GROUP:*`; `GROUP:PROCESS`; or a bare name: a process, a group, or a process of a
    /// group named without its group.
    fn resolve(&self, target: &str) -> Vec<String> {
        let names = |keep: &dyn Fn(&Process) -> bool| -> Vec<String> {
            self.processes
                .values()
                .filter(|p| keep(p))
                .map(|p| p.name.clone())
                .collect()
        };
        if target == "all" {
            return names(&|_| true);
        }
        if let Some(group) = target.strip_suffix(":*") {
            return names(&|p| p.program() == group);
        }
        if self.processes.contains_key(target) {
            return vec![target.to_string()];
        }
        if target.contains(':') {
            return Vec::new();
        }
        let in_group = names(&|p| p.program() == target);
        if !in_group.is_empty() {
            return in_group;
        }
        names(&|p| p.name.rsplit(':').next() == Some(target))
    }

    fn info(&self, name: &str) -> Option<ProcessInfo> {
        let p = self.processes.get(name)?;
        Some(ProcessInfo {
            name: p.name.clone(),
            program: p.program().to_string(),
            state: p.state,
            pid: p.pid,
            started_at: p.started_at,
            stopped_at: p.stopped_at,
            spawn_error: p.spawn_error.clone(),
            last_exit: p.last_exit,
            stdout: p.spec.stdout.clone(),
            stderr: p.spec.stderr.clone(),
            paused: p.paused,
        })
    }
}

impl WaitItem {
    fn record(&mut self, result: Result<Done, Failure>) {
        self.outcomes.push(Outcome {
            process: self.process.clone(),
            result,
        });
    }

    fn finish(&mut self, result: Result<Done, Failure>) {
        self.record(result);
        self.goal = None;
    }
}

/// Moves a process to `state`, announcing the change to whoever follows events.
fn change_state(p: &mut Process, state: State, out: &mut Vec<Action>) {
    if p.state != state {
        if state == State::Stopped {
            p.stops += 1;
        }
        out.push(Action::StateChanged {
            process: p.name.clone(),
            from: p.state,
            to: state,
        });
        p.state = state;
    }
}

fn log(out: &mut Vec<Action>, process: &str, message: String) {
    out.push(Action::Log(Notice {
        process: Some(process.to_string()),
        message,
    }));
}

/// Programs in the order they start: ascending priority, then name.
fn by_priority(specs: impl Iterator<Item = ProgramSpec>) -> Vec<ProgramSpec> {
    let mut specs: Vec<ProgramSpec> = specs.collect();
    specs.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    specs
}
