//! The loop: wait for the next thing that happens, hand it to the supervisor, carry out what
//! it asks, write the event log, and let the pair's primary do its duties.
//!
//! What it waits for: SIGCHLD (reap), SIGTERM and SIGINT (shut down), SIGUSR1 (reopen the
//! logs), SIGUSR2 (hand over), SIGHUP (reload), the supervisor's next deadline, the primary's
//! next duty, the event log's next summary, a request, a datagram on the notify socket, a report from one of its own tasks,
//! a backup connecting. When several are ready tokio picks one at random, so that nothing
//! ready all the time (the SIGCHLD of a crash loop) can starve the rest. Deadlines and duties
//! are absolute times, and the end of every turn does whatever of them is due: a turn spent
//! on something else never moves them later.

use std::sync::Arc;
use std::time::SystemTime;

use taskmaster_config::{LogLevel, ProgramSpec};
use taskmaster_core::{Event, Notice, Request, Ticket};
use tokio::signal::unix::{signal, SignalKind};

use crate::daemon::Daemon;
use crate::handle::{DaemonEvent, Message};
use crate::primary::Primary;
use crate::tasks::TaskEvent;
use crate::{clock, notify, pair, startup, sys, StartError};

/// After a takeover, how long the control socket waits for the new backup before it answers
/// anyway.
const TAKEOVER_SERVICE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Daemon {
    /// Runs until every process has stopped after a shutdown; the status to exit with.
    pub(crate) async fn run(mut self) -> Result<u8, StartError> {
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
        self.write_pidfile();
        self.resume_adopted();
        if let Some(settings) = self.pair_settings.take() {
            let socket = &self.context.control_socket;
            let interval = self.supervisor.config().pair.interval;
            let primary = Primary::bind(socket, settings, interval).map_err(|source| {
                StartError::PairSocket {
                    path: pair::pair_socket_path(socket),
                    source,
                }
            })?;
            self.primary = Some(primary);
        }
        // Every socket and file taskmaster opens at start is open by now.
        self.switch_user()?;
        self.configure_alerting();
        self.start_cluster();
        let initial = std::mem::take(&mut self.initial);
        self.carry_out(initial);
        self.reap();
        // After a takeover, the control socket answers once the new backup is connected: a
        // client that sees the takeover sees a pair again. Not for long without one, though.
        let mut gate_deadline = None;
        if self.took_over && self.primary.is_some() {
            gate_deadline = Some(tokio::time::Instant::now() + TAKEOVER_SERVICE_WAIT);
        } else {
            self.open_service_gate();
        }
        self.end_turn().await;
        self.release_unused_memory_soon();

        while !self.exit {
            let deadline = self.supervisor.next_deadline().map(clock::instant_of);
            let log_deadline = self.log.next_deadline().map(clock::instant_of);
            let shutting_down = self.supervisor.is_shutting_down();
            let duty = self
                .primary
                .as_ref()
                .and_then(|primary| primary.next_duty(shutting_down))
                .map(tokio::time::Instant::from_std);
            let tick = self.listeners.next_tick(SystemTime::now()).map(|at| {
                let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                tokio::time::Instant::now() + wait
            });
            let awaiting_backup = self
                .primary
                .as_ref()
                .is_some_and(|primary| !primary.is_connected());
            tokio::select! {
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
                () = sleep_until(deadline) => self.dispatch(Event::Timer),
                () = sleep_until(log_deadline) => self.log.window_ends(),
                () = sleep_until(gate_deadline) => {
                    self.log.say(format!(
                        "no backup connected within {TAKEOVER_SERVICE_WAIT:?} of the takeover: serving without one"
                    ));
                    gate_deadline = None;
                    self.open_service_gate();
                }
                // The primary's duties are done at the end of every turn, this one included.
                () = sleep_until(duty) => {}
                // So are the listeners' ticks.
                () = sleep_until(tick) => {}
                () = sleep_until(self.idle_release_at) => {
                    self.idle_release_at = None;
                    // Off the loop: with thousands of capture threads' stacks, reading
                    // /proc/self/smaps takes a while.
                    tokio::task::spawn_blocking(|| {
                        sys::release_free_memory();
                        sys::release_unused_code();
                    });
                }
                Some(message) = self.requests.recv() => self.request(message),
                datagram = notify.recv() => self.notified(datagram),
                Some(event) = self.task_results.recv() => self.task_event(event),
                accepted = accept_backup(self.primary.as_mut()), if awaiting_backup => {
                    if let (Ok(peer), Some(primary)) = (accepted, self.primary.as_mut()) {
                        primary
                            .backup_connected(peer, &mut self.supervisor, &self.children);
                    }
                }
            }
            self.end_turn().await;
            if gate_deadline.is_some() && self.primary.as_ref().is_some_and(Primary::is_ready) {
                gate_deadline = None;
                // The backup became ready on the writer's thread, maybe after the turn told
                // the supervisor otherwise: the first answers say what opened the gate.
                self.sync_pair_info();
                self.open_service_gate();
            }
        }
        // Whoever waited for an answer gets one, even from a daemon that is exiting.
        self.open_service_gate();
        self.close_cluster().await;
        if let Some(primary) = self.primary.take() {
            primary.close(&mut self.log).await;
        }
        drop(notify); // which removes its file
        self.log.held_back();
        // After a handover the new primary owns the pid file and the AUTO logs.
        if !self.handed_over() {
            self.clean_up();
        }
        if self.handed_over() {
            self.log.say("taskmaster exits after its handover");
        } else {
            self.log.say("taskmaster exits: every process has stopped");
        }
        self.log.flush();
        Ok(self.supervisor.exit_code())
    }

    /// The end of every turn: the supervisor's deadlines and the pair's duties that are due,
    /// then the event log written.
    async fn end_turn(&mut self) {
        if self
            .supervisor
            .next_deadline()
            .is_some_and(|deadline| deadline <= clock::now())
        {
            self.dispatch(Event::Timer);
        }
        if let Some(primary) = self.primary.as_mut() {
            let handover = primary.after_turn(&mut self.supervisor, &self.children, &mut self.log);
            if let Some(done) = handover {
                self.dispatch(Event::HandoverDone {
                    ticket: done.ticket,
                    result: done.result,
                });
            }
            if self.handed_over() {
                self.exit = true;
            }
            self.sync_pair_info();
        }
        self.deliver_events();
        // A reload may have changed `alerting:`: it applies at once.
        self.configure_alerting();
        self.log.flush();
        if std::mem::take(&mut self.release_memory) {
            sys::release_free_memory();
        }
    }

    fn handed_over(&self) -> bool {
        self.primary.as_ref().is_some_and(Primary::handed_over)
    }

    /// Writes `pidfile`, if the configuration names one. A failure is logged, and taskmaster
    /// runs on, as supervisord does.
    fn write_pidfile(&mut self) {
        let Some(path) = self.supervisor.config().daemon.pidfile.clone() else {
            return;
        };
        match startup::PidFile::write(&path) {
            Ok(pidfile) => {
                self.log
                    .say(format!("pid file {} written", pidfile.path().display()));
                self.pidfile = Some(pidfile);
            }
            Err(e) => self.log.say_at(
                LogLevel::Critical,
                format!(
                    "cannot write the pid file {}: {}",
                    path.display(),
                    taskmaster_config::os_reason(&e)
                ),
            ),
        }
    }

    /// At exit: the pid file removed, and the AUTO log files unless `nocleanup`.
    fn clean_up(&mut self) {
        if let Some(pidfile) = self.pidfile.take() {
            pidfile.remove();
        }
        if self.supervisor.config().daemon.nocleanup || self.auto_logs.is_empty() {
            return;
        }
        for failure in startup::remove_auto_logs(&self.auto_logs) {
            self.log.warn(failure);
        }
    }

    /// After a takeover: the adopted children's pipes, exits and alerts are watched again.
    fn resume_adopted(&mut self) {
        if !self.took_over {
            return;
        }
        let specs: Vec<Arc<ProgramSpec>> = self
            .supervisor
            .processes()
            .filter(|p| p.pid.is_some())
            .map(|p| Arc::clone(&p.spec))
            .collect();
        for spec in specs {
            self.watch_alerts(&spec);
        }
        for (pid, fd) in std::mem::take(&mut self.adopted_stdins) {
            if let Some(pipe) = self.stdin_pipe(pid, fd) {
                self.children.set_stdin(pid, pipe);
            }
        }
        for adopted in std::mem::take(&mut self.adopted) {
            self.watch_adopted(adopted);
        }
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
        // What answered it (the API, its encoders) need not stay mapped once the daemon is
        // idle again.
        self.release_unused_memory_soon();
    }

    /// Reaps every child that has ended, notes every one paused or resumed, and tells the
    /// supervisor of each.
    fn reap(&mut self) {
        while let Some(change) = sys::next_child_change() {
            let event = match change {
                sys::ChildChange::Exited(pid, status) => {
                    if self.log.writes(LogLevel::Debug) {
                        self.log.debug(format!("reaped pid {pid}: {status}"));
                    }
                    let backup = self
                        .primary
                        .as_mut()
                        .is_some_and(|primary| primary.backup_exited(pid, status, &mut self.log));
                    if backup {
                        continue;
                    }
                    let Some(event) = self.child_exited(pid, status) else {
                        continue;
                    };
                    event
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

    /// Child `pid` has ended (reaped, or an adopted one learned through its pidfd): what
    /// taskmaster held of it is let go, and the supervisor hears of it, with whether its
    /// process group outlives it. A helper's exit goes to the task awaiting it instead.
    fn child_exited(&mut self, pid: u32, status: taskmaster_core::ExitStatus) -> Option<Event> {
        let was_program_child = self.children.is_program_child(pid);
        // Its last output is heard before its exit.
        self.children.flush(pid);
        self.publish_output(pid);
        self.children.remove(pid);
        self.listener_exited(pid);
        if let Some(helper) = self.helpers.reaped(pid, status) {
            // A helper's group does not outlive it: what it left running (`cmd &`) is killed,
            // as killgroup stops what a program leaves. While any process is left in the group
            // its id cannot be reused, so the kill reaches only what the helper left.
            if sys::group_exists(pid) {
                self.log.say(format!(
                    "{helper} (pid {pid}) left processes in its process group: killed"
                ));
                let _ = sys::kill_group(pid, taskmaster_core::Signal::KILL);
            }
            return None;
        }
        Some(Event::Exited {
            pid,
            status,
            leftovers: was_program_child && sys::group_exists(pid),
        })
    }

    /// A datagram on the notify socket: attributed to the child that sent it, or to the child
    /// whose descendant (such as `systemd-notify`) did, parsed and handed to the supervisor.
    /// Dropping it closes the descriptors that came with it, which answers a BARRIER.
    fn notified(&mut self, received: std::io::Result<notify::Datagram>) {
        let datagram = match received {
            Ok(datagram) => datagram,
            Err(e) => {
                self.log.warn(format!(
                    "notify socket: {}",
                    taskmaster_config::os_reason(&e)
                ));
                return;
            }
        };
        let sender = datagram.pid;
        if datagram.truncated {
            self.log.warn(format!(
                "notify: a datagram from pid {sender} is longer than 4096 bytes: ignored"
            ));
            return;
        }
        let Some(child) = notify::ancestry(sender)
            .into_iter()
            .find(|&pid| self.children.is_program_child(pid))
        else {
            self.log.warn(format!(
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
            Err(why) => self.log.warn(format!(
                "notify: a malformed datagram from pid {sender}: {why}; ignored"
            )),
        }
        // Closing the descriptors that came with it answers a BARRIER=1.
        drop(datagram.fds);
    }

    fn task_event(&mut self, event: TaskEvent) {
        match event {
            TaskEvent::AdoptedExit(pid, status) => {
                if let Some(event) = self.child_exited(pid, status) {
                    self.dispatch(event);
                }
            }
            TaskEvent::Core(event) => self.dispatch(*event),
            TaskEvent::ConfigRead(read) => self.config_read(*read),
            TaskEvent::Note(message) => self.log.warn(message),
            TaskEvent::ListenerOutput(pid, bytes) => self.listener_output(pid, &bytes),
            TaskEvent::OutputHeard(pid) => self.publish_output(pid),
            TaskEvent::ListenerClosed(pid) => self.listener_closed(pid),
            TaskEvent::AlertDelivered {
                destination,
                result,
                attempts,
                events,
            } => self.alert_delivered(destination, result, attempts, events),
            TaskEvent::ProcessNote(process, message) => self.log.write_at(
                LogLevel::Warn,
                &Notice {
                    process: Some(process),
                    message,
                },
            ),
            TaskEvent::Alert(matched) => {
                self.alert_output(&matched);
                let message = format!(
                    "alert ({}) on {}: {}",
                    matched.level.name(),
                    matched.stream.name(),
                    matched.line
                );
                let level = match matched.level {
                    taskmaster_config::AlertLevel::Info => LogLevel::Info,
                    taskmaster_config::AlertLevel::Warning => LogLevel::Warn,
                    taskmaster_config::AlertLevel::Error => LogLevel::Error,
                };
                self.log.write_at(
                    level,
                    &Notice {
                        process: Some(matched.program.clone()),
                        message,
                    },
                );
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
}

/// Waits for the backup to connect (its pid), or forever without a pair.
async fn accept_backup(primary: Option<&mut Primary>) -> std::io::Result<Option<u32>> {
    match primary {
        Some(primary) => primary.accept().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
