//! The daemon's own tasks: work that takes time runs beside the loop and reports back through
//! one channel ([`TaskEvent`]), so that the loop never waits for it. Health checks, `on_exit`
//! hooks, output watchers for alerts, reads of the configuration file, the capture threads' errors, adopted children's exits,
//! and process groups being emptied after their leader's exit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use taskmaster_config::{Alert, Probe, ProgramSpec, Stream};
use taskmaster_core::{Event, Signal};

use crate::daemon::Daemon;
use crate::{adopt, alerts, capture, checks, spawn, sys};

/// What the daemon's own tasks report back to the loop.
pub(crate) enum TaskEvent {
    /// A child adopted in a takeover (not ours to waitpid) ended.
    AdoptedExit(u32, taskmaster_core::ExitStatus),
    /// For the supervisor (a health check or a hook is done, a group is empty). Boxed: an
    /// `Event` can hold a whole `Config`, far bigger than the other reports.
    Core(Box<Event>),
    Alert(alerts::Matched),
    /// A line for the event log.
    Note(String),
    /// A line for the event log about a process.
    ProcessNote(String, String),
    /// An event listener wrote these bytes on its stdout.
    ListenerOutput(u32, Vec<u8>),
    /// A stream of child `pid` that listeners hear of has news.
    OutputHeard(u32),
    /// An event listener's stdout ended: every byte it wrote was reported before.
    ListenerClosed(u32),
    /// The configuration file was read again (boxed: a whole `Config`).
    ConfigRead(Box<crate::config_load::ConfigRead>),
    /// An alert message's delivery to `destination` is done: its answer, or the last failure.
    AlertDelivered {
        destination: String,
        result: Result<String, String>,
        attempts: u32,
        events: usize,
    },
}

/// Says that listener `pid`'s stdout ended when it is dropped: it lives in the capture's
/// delivery, which goes with the capture once its thread has read the pipe to its end and the
/// child's record is gone, after the last bytes were sent on the same channel.
struct ClosedOnDrop {
    events: tokio::sync::mpsc::UnboundedSender<TaskEvent>,
    pid: u32,
}

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        let _ = self.events.send(TaskEvent::ListenerClosed(self.pid));
    }
}

/// An output watcher per log file with alerts: the alerts it watches for, and the task.
pub(crate) type AlertWatchers = HashMap<PathBuf, (Vec<Alert>, tokio::task::AbortHandle)>;

/// How often a process group whose leader exited is looked at until it is empty: its members
/// are not our children (most are our grandchildren), so no SIGCHLD tells of them.
const GROUP_POLL: Duration = Duration::from_millis(10);

impl Daemon {
    /// Runs the health check of `spec` against `process`'s child `pid`.
    pub(crate) fn start_probe(&mut self, process: String, pid: u32, spec: Arc<ProgramSpec>) {
        let Some(check) = spec.healthcheck.clone() else {
            return;
        };
        let events = self.task_events.clone();
        let what = format!("{process}: its health check");
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
                let exit = self.helpers.register(helper, what);
                tokio::spawn(async move {
                    let result = checks::wait_helper(helper, exit, check.timeout).await;
                    done(result.map(|()| "exit status 0".to_string()));
                });
            }
            Err(error) => done(Err(error)),
        }
    }

    /// Runs the `on_exit` hook of `spec` for `process`, with `env` added.
    pub(crate) fn start_hook(
        &mut self,
        process: String,
        spec: &ProgramSpec,
        env: &[(String, String)],
    ) {
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
                let captures = self.start_captures(helper, &owner, child.captures);
                self.children.insert(
                    helper,
                    crate::children::Child {
                        pidfd: None,
                        captures,
                        ..Default::default()
                    },
                );
                let exit = self
                    .helpers
                    .register(helper, format!("{owner}: its on_exit hook"));
                tokio::spawn(async move {
                    done(checks::wait_helper(helper, exit, hook.timeout).await);
                });
            }
            Err(error) => done(Err(error)),
        }
    }

    /// Makes sure each log file of `spec` with alerts has a watcher for exactly those alerts,
    /// started before the child is, so that none of its lines is missed.
    pub(crate) fn watch_alerts(&mut self, spec: &ProgramSpec) {
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
                        .warn(format!("cannot watch for alerts of {}: {why}", spec.name));
                    continue;
                }
            };
            let events = self.task_events.clone();
            let program = spec.name.clone();
            let watched = wanted.clone();
            let task = tokio::spawn(async move {
                let report = |matched| events.send(TaskEvent::Alert(matched)).is_ok();
                let skipped = |note| {
                    let _ = events.send(TaskEvent::ProcessNote(program.clone(), note));
                };
                let watching =
                    alerts::watch(program.clone(), stream, start, watched, report, skipped);
                if let Err(why) = watching.await {
                    let _ = events.send(TaskEvent::Note(format!(
                        "alerts of {program} are no longer watched: {why}"
                    )));
                }
            });
            self.alert_watchers
                .insert(path.clone(), (wanted, task.abort_handle()));
        }
    }

    /// Watches a child adopted from a dead primary through its pidfd: its pauses (polled from
    /// `/proc`: SIGCHLD goes to its parent, not to us) and its exit.
    pub(crate) fn watch_adopted(&self, adopted: adopt::Adopted) {
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
                        adopt::Change::Resumed => TaskEvent::Core(Box::new(Event::Resumed { pid })),
                        adopt::Change::Exited(Ok(status)) => TaskEvent::AdoptedExit(pid, status),
                        adopt::Change::Exited(Err(unknown)) => {
                            TaskEvent::Note(format!("{unknown}: how it ended is not known"))
                        }
                    };
                    let _ = events.send(event);
                })
                .await;
        });
    }

    /// Reports [`Event::GroupGone`] once no process is left in process group `pgid`.
    pub(crate) fn watch_group(&self, pgid: u32) {
        let events = self.task_events.clone();
        tokio::spawn(async move {
            while sys::group_exists(pgid) {
                tokio::time::sleep(GROUP_POLL).await;
            }
            let _ = events.send(TaskEvent::Core(Box::new(Event::GroupGone { pgid })));
        });
    }

    /// Drains child `pid`'s output pipes into their files or to syslog, each on a thread of
    /// its own; their errors (a full disk, syslog gone) reach the event log, about `process`.
    pub(crate) fn start_captures(
        &mut self,
        pid: u32,
        process: &str,
        pipes: Vec<(std::os::fd::OwnedFd, Stream, capture::Destination)>,
    ) -> Vec<capture::Capture> {
        let counts = self
            .output_counts
            .entry(process.to_string())
            .or_default()
            .clone();
        pipes
            .into_iter()
            .map(|(pipe, stream, destination)| {
                let counted = match stream {
                    Stream::Stdout => std::sync::Arc::clone(&counts[0]),
                    Stream::Stderr => std::sync::Arc::clone(&counts[1]),
                };
                let events = self.task_events.clone();
                let process = process.to_string();
                let report = move |message| {
                    let _ = events.send(TaskEvent::ProcessNote(process.clone(), message));
                };
                let events = self.task_events.clone();
                let closed =
                    matches!(destination, capture::Destination::Protocol { .. }).then(|| {
                        ClosedOnDrop {
                            events: events.clone(),
                            pid,
                        }
                    });
                let to_loop: capture::ToLoop = std::sync::Arc::new(move |news| {
                    // Kept (and dropped) with the capture.
                    let _held = &closed;
                    let _ = events.send(match news {
                        capture::News::Protocol(bytes) => TaskEvent::ListenerOutput(pid, bytes),
                        capture::News::Heard => TaskEvent::OutputHeard(pid),
                    });
                });
                capture::Capture::start(pipe, stream, destination, pid, report, to_loop, counted)
            })
            .collect()
    }
}
