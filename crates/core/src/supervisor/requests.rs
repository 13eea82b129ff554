//! Requests from users: what each one does to the records, and its reply.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use taskmaster_config::{diff, keep_fixed_settings, Config, ProgramSpec, Signal};

use super::{
    by_priority, change_state, log, processes_of, Goal, LoadPurpose, Named, Notice, Scope,
    Supervisor, WaitItem, Waiter,
};
use crate::control::{
    Done, Failure, Metrics, Outcome, ProcessInfo, ProcessMetrics, Reply, Request, Ticket,
};
use crate::process::{AfterStop, ExitCause, Process, State};
use crate::time::Time;
use crate::Action;

/// In which order a request acts on the processes it names.
#[derive(Clone, Copy)]
pub(super) enum Order {
    /// What others depend on first (starts).
    DependenciesFirst,
    /// Dependents first (stops, restarts).
    DependentsFirst,
}

/// How many characters of a remote communication event's data its event-log line shows.
const REMOTE_DATA_SHOWN: usize = 200;

impl Supervisor {
    // ---- requests -----------------------------------------------------------------------

    pub(super) fn request(
        &mut self,
        ticket: Option<Ticket>,
        request: Request,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        // A user's command is logged (a request without a ticket comes from a signal, which the
        // runtime logs); so are neither queries nor a shutdown already under way.
        let repeated_shutdown = request == Request::Shutdown && self.shutting_down;
        // Input is not logged either: an `attach` sends a request per line typed.
        // A remote communication event has a line of its own.
        let query = matches!(
            request,
            Request::Status(_)
                | Request::Pid(_)
                | Request::Config
                | Request::DaemonState
                | Request::Metrics
                | Request::Cluster
                | Request::SendStdin { .. }
                | Request::RemoteCommEvent { .. }
                | Request::Note(_)
        );
        if ticket.is_some() && !query && !repeated_shutdown {
            out.push(Action::Log(Notice {
                process: None,
                message: format!("command: {request}"),
            }));
        }
        let reply = match request {
            Request::Status(targets) => {
                let (processes, errors) = if targets.is_empty() {
                    // Every process, straight from the records (no names to look up).
                    let all = self.processes.values().map(|p| self.info_of(p));
                    (all.collect(), Vec::new())
                } else {
                    let (names, errors) = self.resolve_all(&targets);
                    (names.iter().filter_map(|n| self.info(n)).collect(), errors)
                };
                Some(Reply::Status {
                    now,
                    processes,
                    errors,
                    pair: self.pair.clone(),
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
            Request::Start(targets) => self.act_and_wait(
                ticket,
                &targets,
                Order::DependenciesFirst,
                now,
                out,
                |s, n, now, out| s.start_process(n, now, out).map(|()| Goal::Running),
            ),
            Request::Stop(targets) => self.act_and_wait(
                ticket,
                &targets,
                Order::DependentsFirst,
                now,
                out,
                |s, n, now, out| s.stop_in_order(n, now, out).map(|()| Goal::Stopped),
            ),
            Request::Restart(targets) => self.act_and_wait(
                ticket,
                &targets,
                Order::DependentsFirst,
                now,
                out,
                |s, n, now, out| match s.processes.get(n).map(|p| p.state.is_stopped()) {
                    Some(true) => s.start_process(n, now, out).map(|()| Goal::Running),
                    _ => s
                        .stop_in_order(n, now, out)
                        .map(|()| Goal::StoppedThenRunning),
                },
            ),
            Request::Signal { signal, targets } => {
                let mut outcomes = Vec::new();
                for resolved in self.resolve_in_order(&targets) {
                    let Some(Named { name, alone }) = known(resolved, &mut outcomes) else {
                        continue;
                    };
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
            Request::Kill {
                targets,
                restart,
                by: _,
            } => {
                let mut outcomes = Vec::new();
                for resolved in self.resolve_in_order(&targets) {
                    let Some(Named { name, alone }) = known(resolved, &mut outcomes) else {
                        continue;
                    };
                    let result = self.kill_process(&name, restart, out);
                    if result == Err(Failure::NotRunning) && !alone {
                        continue;
                    }
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
            Request::Cluster => Some(Reply::Cluster(self.cluster_info().map(Box::new))),
            Request::DaemonState => Some(Reply::DaemonState {
                shutting_down: self.shutting_down,
            }),
            // The runtime counts the output: it answers first.
            Request::Metrics => {
                if let Some(ticket) = ticket {
                    out.push(Action::CountOutput { ticket });
                }
                None
            }
            Request::Config => Some(Reply::Config {
                active: Box::new(self.config.clone()),
                staged: self.staged.clone().map(Box::new),
            }),
            // Only the runtime knows its backup.
            Request::Handover { .. } if self.shutting_down => Some(Reply::HandoverRefused(
                "taskmaster is shutting down".to_string(),
            )),
            Request::Handover { upgrade } => {
                out.push(Action::Handover { ticket, upgrade });
                None
            }
            Request::ReopenLogs(targets) if targets.is_empty() => {
                out.push(Action::ReopenLogs { ticket, only: None });
                None
            }
            Request::ReopenLogs(targets) => {
                let (names, errors) = self.resolve_all(&targets);
                if errors.is_empty() {
                    let mut files: Vec<PathBuf> = names
                        .iter()
                        .filter_map(|name| self.processes.get(name))
                        .flat_map(|p| [p.spec.stdout.clone(), p.spec.stderr.clone()])
                        .flatten()
                        .collect();
                    files.sort();
                    files.dedup();
                    out.push(Action::ReopenLogs {
                        ticket,
                        only: Some(files),
                    });
                    None
                } else {
                    // A name that matches nothing reopens nothing: the user meant something.
                    let errors = errors.iter().map(Outcome::to_string).collect();
                    Some(Reply::LogsReopened { files: 0, errors })
                }
            }
            Request::SendStdin { targets, data } => self.send_stdin(ticket, &targets, data, out),
            Request::TestAlerts => {
                out.push(Action::TestAlerts { ticket });
                None
            }
            Request::RemoteCommEvent { kind, data } => {
                self.remote_communication_event(&kind, &data, out);
                Some(Reply::Recorded)
            }
            Request::Note(message) => {
                out.push(Action::Log(Notice {
                    process: None,
                    message,
                }));
                Some(Reply::Recorded)
            }
            Request::Shutdown => {
                self.shutdown(now, out);
                Some(Reply::ShuttingDown)
            }
        };
        if let (Some(ticket), Some(reply)) = (ticket, reply) {
            out.push(Action::Reply { ticket, reply });
        }
    }

    /// supervisord's REMOTE_COMMUNICATION event, sent by a client (often a supervised program,
    /// through `supervisor.childutils`): announced to the event listeners, and recorded in the
    /// event log, its data escaped onto one line and cut at [`REMOTE_DATA_SHOWN`] characters.
    fn remote_communication_event(&mut self, kind: &str, data: &str, out: &mut Vec<Action>) {
        let shown: String = data.chars().take(REMOTE_DATA_SHOWN).collect();
        let cut = if shown.len() < data.len() {
            format!("... ({} bytes)", data.len())
        } else {
            String::new()
        };
        out.push(Action::Log(Notice {
            process: None,
            message: format!("remote communication event {kind:?}: {shown:?}{cut}"),
        }));
        out.push(Action::Announce(super::Announcement::RemoteCommunication {
            kind: kind.to_string(),
            data: data.to_string(),
        }));
    }

    /// Applies `act` to every process the targets name, and answers once each has reached the
    /// goal `act` returns (or at once when nobody waits).
    /// A stop by request: at once, or, when a process that depends on this one is stopping
    /// too, once that one has stopped.
    fn stop_in_order(
        &mut self,
        name: &str,
        now: Time,
        out: &mut Vec<Action>,
    ) -> Result<(), Failure> {
        self.refresh_specs();
        let running = self
            .processes
            .get(name)
            .is_some_and(|p| matches!(p.state, State::Starting | State::Running));
        if running && self.stop_must_wait(name) {
            self.held_stops.insert(name.to_string());
            log(
                out,
                name,
                "stop waits for the processes that depend on it".to_string(),
            );
            return Ok(());
        }
        self.stop_process(name, now, out)
    }

    pub(super) fn act_and_wait(
        &mut self,
        ticket: Option<Ticket>,
        targets: &[String],
        order: Order,
        now: Time,
        out: &mut Vec<Action>,
        act: impl Fn(&mut Self, &str, Time, &mut Vec<Action>) -> Result<Goal, Failure>,
    ) -> Option<Reply> {
        let mut items: Vec<WaitItem> = Vec::new();
        // Acted on in dependency order (stable: programs at the same depth keep the order
        // they were named in); answered in the order named.
        let mut resolved: Vec<(usize, Result<Named, Outcome>)> = self
            .resolve_in_order(targets)
            .into_iter()
            .enumerate()
            .collect();
        let depths = self.depths();
        let depth = |(_, r): &(usize, Result<Named, Outcome>)| {
            let program = r.as_ref().ok().and_then(|n| self.processes.get(&n.name));
            program
                .and_then(|p| depths.get(p.program()))
                .copied()
                .unwrap_or(0)
        };
        match order {
            Order::DependenciesFirst => resolved.sort_by_key(depth),
            Order::DependentsFirst => resolved.sort_by_key(|r| std::cmp::Reverse(depth(r))),
        }
        let mut named_at: Vec<usize> = Vec::new();
        for (at, resolved) in resolved {
            let Named { name, alone } = match resolved {
                Ok(named) => named,
                Err(unknown) => {
                    items.push(WaitItem {
                        process: unknown.process.clone(),
                        goal: None,
                        outcomes: vec![unknown],
                        stops_before: 0,
                    });
                    named_at.push(at);
                    continue;
                }
            };
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
            named_at.push(at);
        }
        let mut in_order: Vec<(usize, WaitItem)> = named_at.into_iter().zip(items).collect();
        in_order.sort_by_key(|(at, _)| *at);
        let items = in_order.into_iter().map(|(_, item)| item).collect();
        if let Some(ticket) = ticket {
            self.waiters.push(Waiter { ticket, items });
        }
        None // the reply comes from settle(), possibly within this same event
    }

    /// A reread: compare with what runs, keep it staged, change nothing.
    pub(super) fn config_staged(
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
                self.index.config_changes += 1;
                Reply::Compared(plan)
            }
        };
        if let Some(ticket) = ticket {
            out.push(Action::Reply { ticket, reply });
        }
    }

    /// Adds a program from the staged configuration (or the active one when nothing is
    /// staged), as supervisord's `addProcessGroup`.
    pub(super) fn add_group(
        &mut self,
        name: &str,
        now: Time,
        out: &mut Vec<Action>,
    ) -> Result<Done, Failure> {
        if self.shutting_down {
            return Err(Failure::ShuttingDown);
        }
        // A group's programs: those of a `[group:x]`, or the program of that name.
        let source = self.staged.as_ref().unwrap_or(&self.config);
        let specs: Vec<ProgramSpec> = source
            .programs
            .values()
            .filter(|spec| spec.group_name() == name)
            .cloned()
            .collect();
        if specs.is_empty() {
            return Err(Failure::NoSuchProcess);
        }
        if self.group_members(name).next().is_some() {
            return Err(Failure::AlreadyAdded);
        }
        if let Some(group) = source.groups.get(name).cloned() {
            self.config.groups.insert(name.to_string(), group);
        }
        self.index.config_changes += 1;
        out.push(Action::Log(Notice {
            process: Some(name.to_string()),
            message: "added".to_string(),
        }));
        for spec in by_priority(specs.into_iter()) {
            self.config.programs.insert(spec.name.clone(), spec.clone());
            self.add_program(&spec, now, out);
        }
        Ok(Done::Added)
    }

    /// Removes a group (a `[group:x]`, or a program) whose processes have all stopped, as
    /// supervisord's `removeProcessGroup`.
    pub(super) fn remove_group(
        &mut self,
        name: &str,
        out: &mut Vec<Action>,
    ) -> Result<Done, Failure> {
        let members: Vec<String> = self.group_members(name).map(|p| p.name.clone()).collect();
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
            self.remove_process(&member, out);
        }
        self.config
            .programs
            .retain(|_, spec| spec.group_name() != name);
        self.config.groups.remove(name);
        self.index.config_changes += 1;
        self.waiting_processes
            .retain(|_, waiting| waiting.group_name() != name);
        Ok(Done::Removed)
    }

    pub(super) fn config_loaded(
        &mut self,
        ticket: Option<Ticket>,
        result: Result<Config, Vec<String>>,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let reply = match result {
            Err(errors) => {
                self.reloads.refused += 1;
                for error in &errors {
                    out.push(Action::Log(Notice {
                        process: None,
                        message: format!("reload rejected: {error}"),
                    }));
                }
                Reply::ReloadRejected(errors)
            }
            Ok(_) if self.shutting_down => Reply::ShuttingDown,
            Ok(mut config) => {
                for key in keep_fixed_settings(&self.config, &mut config) {
                    out.push(Action::Log(Notice {
                        process: None,
                        message: format!(
                            "reload: `{key}` changed in the file; it takes effect when \
                             taskmaster restarts (the old value stays in force)"
                        ),
                    }));
                }
                let plan = diff(&self.config, &config);
                self.reloads.applied += 1;
                // An unchanged program keeps the running copy of its settings, which its
                // processes share: none of it is compared again, and the file's copy goes
                // with the old configuration.
                for name in &plan.unchanged {
                    if let (Some(running), Some(read)) = (
                        self.config.programs.get_mut(name),
                        config.programs.get_mut(name),
                    ) {
                        std::mem::swap(running, read);
                    }
                }
                if self.apply(&config, now, out) {
                    self.processes.compact();
                }
                let read = std::mem::take(&mut config.programs);
                config.programs =
                    super::with_entries_of(std::mem::take(&mut self.config.programs), read);
                self.config = config;
                self.index.config_changes += 1;
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

    /// Applies a reload, process by process: a process the new configuration no longer has
    /// stops and goes; one whose settings changed stops and comes back with its new settings;
    /// a new one starts; the rest are not touched. So a pool that grows or shrinks keeps the
    /// processes it still has, and a template that changes restarts only the processes whose
    /// own settings changed. A process of a kept program whose settings did not change takes
    /// the program's new view (its `numprocs`) without a restart. Whether a process was
    /// added or retired.
    pub(super) fn apply(&mut self, config: &Config, now: Time, out: &mut Vec<Action>) -> bool {
        // By name, in the records' order: one pass over both, no program's settings copied
        // and no record looked up, whatever their number.
        let mut wanted: Vec<(String, Arc<ProgramSpec>)> =
            config.programs.values().flat_map(processes_of).collect();
        wanted.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        self.waiting_processes.retain(|name, _| {
            wanted
                .binary_search_by(|(wanted, _)| wanted.as_str().cmp(name))
                .is_ok()
        });
        let mut steps = Vec::new();
        let mut returning = Vec::new();
        let mut arriving = Vec::new();
        let mut records = self.processes.iter().peekable();
        for (name, spec) in wanted {
            while let Some((gone, p)) = records.next_if(|(record, _)| **record < name) {
                if !p.is_retiring() {
                    steps.push(ReloadStep::Retire(gone.clone()));
                }
            }
            let waiting = self.waiting_processes.contains_key(&name);
            match records.next_if(|(record, _)| **record == name) {
                // Still on its way out from an earlier reload: it comes back once gone.
                Some((_, p)) if p.is_retiring() => returning.push((name, spec)),
                Some((_, p)) => {
                    // The very copy it runs with (an unchanged program keeps it): nothing to do.
                    if !Arc::ptr_eq(&p.spec, &spec) {
                        steps.push(ReloadStep::Compare(name.clone(), Arc::clone(&spec)));
                    }
                    if waiting {
                        returning.push((name, spec));
                    }
                }
                None if waiting => returning.push((name, spec)),
                None => arriving.push((name, spec)),
            }
        }
        steps.extend(
            records
                .filter(|(_, p)| !p.is_retiring())
                .map(|(gone, _)| ReloadStep::Retire(gone.clone())),
        );
        let mut records_change = false;
        for step in steps {
            records_change |= match step {
                ReloadStep::Retire(name) => {
                    self.retire_process(&name, now, out);
                    true
                }
                ReloadStep::Compare(name, spec) => self.reconfigure(name, &spec, now, out),
            };
        }
        for (name, spec) in returning {
            self.waiting_processes.insert(name, spec);
        }
        arriving.sort_by(|(a_name, a), (b_name, b)| (a.order(), a_name).cmp(&(b.order(), b_name)));
        records_change |= !arriving.is_empty();
        for (name, spec) in arriving {
            self.add_process(name, spec, now, out);
        }
        records_change
    }

    /// Gives process `name` the settings `spec` the reload read for it: kept as they are if
    /// equal (the record holds the configuration's copy, so that the old one goes, and is not
    /// a change: a backup hears of the processes a reload changed, not of every one), applied
    /// in place if only how taskmaster watches it changed, else it stops and comes back with
    /// them. Whether it was retired.
    fn reconfigure(
        &mut self,
        name: String,
        spec: &Arc<ProgramSpec>,
        now: Time,
        out: &mut Vec<Action>,
    ) -> bool {
        if self.processes.share_equal_spec(&name, spec) {
            return false;
        }
        let Some(p) = self.processes.get_mut(&name) else {
            return false;
        };
        let change = p.spec.changes(spec);
        if change.restart.is_empty() {
            p.spec = Arc::clone(spec);
            self.index.specs = None;
            if !change.in_place.is_empty() {
                let changed = change.in_place.join(", ");
                log(
                    out,
                    &name,
                    format!("{changed} changed in place, no restart"),
                );
            }
            return false;
        }
        let changed = change.restart.join(", ");
        let message = match p.state.is_stopped() {
            true => format!("{changed} changed"),
            false => format!("restarted: {changed} changed"),
        };
        log(out, &name, message);
        self.retire_process(&name, now, out);
        self.waiting_processes.insert(name, Arc::clone(spec));
        true
    }

    /// Stops process `name` and removes it once it has stopped.
    fn retire_process(&mut self, name: &str, now: Time, out: &mut Vec<Action>) {
        // A process at rest answers NotRunning, which is fine: settle() removes it.
        let _ = self.stop_process(name, now, out);
        if let Some(p) = self.processes.get_mut(name) {
            p.after_stop = AfterStop::Remove;
            self.index.no_retiring = false;
        }
    }

    // ---- names --------------------------------------------------------------------------

    /// The processes the targets name, in order and without repeats, and an error outcome for
    /// each target that names none. No target means every process.
    /// Sends to each process named that takes input; a process that does not is an error
    /// when named alone, and skipped when it came with others (`all`, a group).
    fn send_stdin(
        &self,
        ticket: Option<Ticket>,
        targets: &[String],
        data: Vec<u8>,
        out: &mut Vec<Action>,
    ) -> Option<Reply> {
        let mut outcomes = Vec::new();
        let mut writes = Vec::new();
        for resolved in self.resolve_in_order(targets) {
            let Some(Named { name, alone }) = known(resolved, &mut outcomes) else {
                continue;
            };
            match self.stdin_pid(&name) {
                Ok(pid) => writes.push((name, pid)),
                Err(failure) if alone => outcomes.push(Outcome {
                    process: name,
                    result: Err(failure),
                }),
                Err(_) => {}
            }
        }
        if writes.is_empty() {
            return Some(Reply::Outcomes(outcomes));
        }
        out.push(Action::WriteStdin {
            ticket,
            writes,
            data,
            outcomes,
        });
        None
    }

    /// The pid whose stdin pipe takes input for process `name`, as supervisord decides: it
    /// has a child that is not being stopped, and its stdin is a pipe.
    fn stdin_pid(&self, name: &str) -> Result<u32, Failure> {
        let process = self.processes.get(name).ok_or(Failure::NoSuchProcess)?;
        let pid = process
            .pid
            .filter(|_| process.state != State::Stopping)
            .ok_or(Failure::NotRunning)?;
        match process.spec.stdin {
            taskmaster_config::Stdin::Pipe => Ok(pid),
            _ => Err(Failure::NoStdin(
                "its stdin is not a pipe (set `stdin: pipe` in its program)".to_string(),
            )),
        }
    }

    /// The processes the targets name, and a `no such process` outcome for each target that
    /// names none.
    pub(super) fn resolve_all(&self, targets: &[String]) -> (Vec<String>, Vec<Outcome>) {
        let mut names = Vec::new();
        let mut errors = Vec::new();
        for resolved in self.resolve_in_order(targets) {
            match resolved {
                Ok(named) => names.push(named.name),
                Err(unknown) => errors.push(unknown),
            }
        }
        (names, errors)
    }

    /// Each process the targets name, remembering whether it was named alone or came with
    /// others (`all`, a group), and a `no such process` outcome for each target that names
    /// none, in the order the targets were given (as supervisorctl answers them; a process
    /// named twice comes where it was first). No target means every process.
    pub(super) fn resolve_in_order(&self, targets: &[String]) -> Vec<Result<Named, Outcome>> {
        if targets.is_empty() {
            let all = self.processes.keys().cloned();
            return all.map(|name| Ok(Named { name, alone: false })).collect();
        }
        let mut resolved: Vec<Result<Named, Outcome>> = Vec::new();
        // Where each name is in `resolved`: a repeat is found at once, not by a look at every
        // name before it (`all` is every process).
        let mut places: BTreeMap<String, usize> = BTreeMap::new();
        for target in targets {
            let found = self.resolve(target);
            if found.is_empty() {
                resolved.push(Err(Outcome {
                    process: target.clone(),
                    result: Err(Failure::NoSuchProcess),
                }));
            }
            let alone = found.len() == 1 && !target.ends_with(":*") && target != "all";
            for name in found {
                match places.get(&name).and_then(|&at| resolved.get_mut(at)) {
                    Some(Ok(earlier)) => earlier.alone |= alone,
                    _ => {
                        places.insert(name.clone(), resolved.len());
                        resolved.push(Ok(Named { name, alone }));
                    }
                }
            }
        }
        resolved
    }

    /// `all`; `GROUP:*`; `GROUP:PROCESS`; or a bare name: a process, a group, or a process of a
    /// group named without its group. This is the one place where a name becomes processes:
    /// the shell, the JSON API and supervisord's XML-RPC all send their names here.
    pub(super) fn resolve(&self, target: &str) -> Vec<String> {
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
        // A group's processes are found by their names (`GROUP` or `GROUP:...`), not by a look
        // at every process.
        let group_names = |group: &str, keep: &dyn Fn(&Process) -> bool| -> Vec<String> {
            self.group_members(group)
                .filter(|p| keep(p))
                .map(|p| p.name.clone())
                .collect()
        };
        if let Some(group) = target.strip_suffix(":*") {
            return group_names(group, &|_| true);
        }
        if let Some((group, process)) = target.split_once(':') {
            // As supervisord reads it: the process of that group with that name, so `web:web`
            // is also the lone program `web` (whose full name is just `web`).
            return group_names(group, &|p| p.name.rsplit(':').next() == Some(process));
        }
        if self.processes.contains_key(target) {
            return vec![target.to_string()];
        }
        let in_group = group_names(target, &|_| true);
        if !in_group.is_empty() {
            return in_group;
        }
        names(&|p| p.name.rsplit(':').next() == Some(target))
    }

    /// Every process with its counters, and the daemon's; `output` is what the runtime
    /// counted of each process's output.
    pub(super) fn metrics(&self, now: Time, output: &BTreeMap<String, [u64; 2]>) -> Metrics {
        Metrics {
            now,
            processes: self
                .processes
                .values()
                .filter_map(|p| {
                    Some(ProcessMetrics {
                        info: self.info(&p.name)?,
                        restarts: p.respawns,
                        exits: p.exits.clone(),
                        output: output.get(&p.name).copied().unwrap_or_default(),
                    })
                })
                .collect(),
            reloads: self.reloads,
            alerts_sent: self.alerts_sent.clone(),
            takeovers: self
                .pair
                .as_ref()
                .map_or(0, |pair| u64::from(pair.takeovers)),
        }
    }

    pub(super) fn info(&self, name: &str) -> Option<ProcessInfo> {
        Some(self.info_of(self.processes.get(name)?))
    }

    fn info_of(&self, p: &Process) -> ProcessInfo {
        let name = p.name.as_str();
        ProcessInfo {
            name: p.name.clone(),
            program: p.program().to_string(),
            group: p.spec.group_name().to_string(),
            state: p.state,
            pid: p.pid,
            started_at: p.started_at,
            stopped_at: p.stopped_at,
            spawn_error: p.spawn_error.clone(),
            last_exit: p.last_exit.clone(),
            stdout: p.spec.stdout.clone(),
            stderr: p.spec.stderr.clone(),
            stdout_syslog: p.spec.stdout_syslog.is_some(),
            stderr_syslog: p.spec.stderr_syslog.is_some(),
            paused: p.paused,
            status_text: p.status_text.clone(),
            health: p.health.clone(),
            gave_up: p.gave_up.clone(),
            waiting_for: match p.waiting {
                true => self.unmet(name),
                false => Vec::new(),
            },
            cluster: p.spec.singleton.then(|| self.singleton_info(p.program())),
        }
    }

    /// The panic button: SIGKILL to the process group now, no stop signal, no stoptime. The
    /// exit then goes by `autorestart` (`restart`), or leaves the process STOPPED.
    pub(super) fn kill_process(
        &mut self,
        name: &str,
        restart: bool,
        out: &mut Vec<Action>,
    ) -> Result<Done, Failure> {
        let p = self.processes.get_mut(name).ok_or(Failure::NoSuchProcess)?;
        let pid = p.pid.ok_or(Failure::NotRunning)?;
        if p.state == State::Stopping {
            // Already on its way down: the kill only hurries it. What was to follow (a stop's
            // answer, a restart, a removal) still follows, unless it was to come back.
            if !restart && p.after_stop != AfterStop::Remove {
                p.after_stop = AfterStop::Nothing;
            }
        } else {
            change_state(p, State::Stopping, out);
            p.after_stop = if restart {
                AfterStop::Policy
            } else {
                AfterStop::Nothing
            };
        }
        p.deadline = None;
        p.stop_cause = Some(ExitCause::KilledByRequest);
        log(
            out,
            name,
            "kill: sending SIGKILL to its process group".to_string(),
        );
        out.push(Action::Signal {
            pid,
            signal: Signal::KILL,
            scope: Scope::Group,
        });
        Ok(Done::Killed)
    }
}

/// The process a name of a request came to; a name that came to none is its outcome, kept in
/// `outcomes` in its place.
fn known(resolved: Result<Named, Outcome>, outcomes: &mut Vec<Outcome>) -> Option<Named> {
    resolved.map_err(|unknown| outcomes.push(unknown)).ok()
}

/// What a reload does to a process it found running, in the records' order.
enum ReloadStep {
    /// The file no longer has it: it stops and goes.
    Retire(String),
    /// The file has it with settings that are not the copy it runs with.
    Compare(String, Arc<ProgramSpec>),
}
