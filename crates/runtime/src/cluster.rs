//! The cluster's I/O (`cluster:`): the store client's task (`taskmaster-cluster`), whose
//! reports become [`Event::Cluster`] news for the supervisor, and each running singleton's
//! guard (`guard.rs`), told every new kill deadline.
//!
//! The supervisor decides; this only carries out `Contend`, `Withdraw` and `Fence`, starts a
//! guard beside each singleton child, and releases it once the child's process group is gone
//! (its exit with nothing left in the group, or the group watched to its end).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use taskmaster_cluster::{Command, Report, Settings};
use taskmaster_core::cluster::{ClusterNews, Holder, NodeInfo};
use taskmaster_core::{Event, Time};
use tokio::sync::mpsc;

use crate::clock;
use crate::daemon::Daemon;
use crate::guard::Guard;
use crate::tasks::TaskEvent;

/// How long an exiting taskmaster waits for the store to take its lease back.
const RELEASE_WAIT: Duration = Duration::from_secs(1);

/// The link to the store client, and the guards of the singletons running here.
#[derive(Debug)]
pub(crate) struct ClusterLink {
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
    /// The lease's kill deadline, as the supervisor last said.
    kill_at: Option<Time>,
    /// Each singleton child's guard, by the child's pid (its process group).
    guards: HashMap<u32, Guard>,
    /// taskmaster's own executable, which is also the guard.
    exe: PathBuf,
}

impl Daemon {
    /// Starts the store client when the configuration has a `cluster:`.
    pub(crate) fn start_cluster(&mut self) {
        let Some(spec) = self.supervisor.config().daemon.cluster.as_deref() else {
            return;
        };
        let settings = Settings {
            endpoints: spec.endpoints.clone(),
            node: spec.node.clone(),
            prefix: spec.prefix.clone(),
            ttl: spec.ttl,
        };
        self.log.say(format!(
            "cluster: node {} on {} (lease {:?}, keys under {})",
            spec.node,
            spec.endpoints.join(", "),
            spec.ttl,
            spec.prefix
        ));
        let (reports, mut received) = mpsc::unbounded_channel();
        let (commands, task) =
            match taskmaster_cluster::spawn_etcd(settings, monotonic_nanos, reports) {
                Ok(started) => started,
                Err(e) => {
                    // The configuration checked these already; said, not hidden, all the same.
                    self.log
                        .warn(format!("cluster: the store client cannot start: {e}"));
                    return;
                }
            };
        let task_events = self.task_events.clone();
        let node = spec.node.clone();
        tokio::spawn(async move {
            while let Some(report) = received.recv().await {
                let news = news_of(report, &node);
                let event = TaskEvent::Core(Box::new(Event::Cluster(news)));
                if task_events.send(event).is_err() {
                    break;
                }
            }
        });
        self.cluster = Some(ClusterLink {
            commands,
            task,
            kill_at: None,
            guards: HashMap::new(),
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
        });
    }

    /// `Action::Contend` and `Action::Withdraw`.
    pub(crate) fn tell_cluster(&mut self, command: Command) {
        if let Some(link) = &self.cluster {
            // A task that ended has said why in its reports.
            let _ = link.commands.send(command);
        }
    }

    /// `Action::Fence`: every guard is told the new kill deadline.
    pub(crate) fn fence(&mut self, kill_at: Time) {
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        link.kill_at = Some(kill_at);
        let mut failed = Vec::new();
        for (pid, guard) in &mut link.guards {
            if let Err(e) = guard.push(kill_at) {
                failed.push(format!(
                    "the guard of pid {pid} cannot be told its deadline: {e}"
                ));
            }
        }
        for message in failed {
            self.log.warn(message);
        }
    }

    /// A singleton's child was spawned: its guard starts, with the lease's kill deadline.
    pub(crate) fn guard_child(&mut self, process: &str, pid: u32) {
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        // The supervisor lets a singleton start only under a renewed lease, whose deadline
        // came first; without one, the guard kills at once.
        let kill_at = link.kill_at.unwrap_or_else(clock::now);
        match Guard::start(&link.exe, pid, kill_at) {
            Ok(guard) => {
                link.guards.insert(pid, guard);
            }
            Err(e) => self.log.warn(format!(
                "{process}: its guard cannot start ({e}): only taskmaster itself keeps it within \
                 its lease"
            )),
        }
    }

    /// What the supervisor is about to hear, seen first: a guarded group that is gone needs
    /// its guard no more.
    pub(crate) fn release_guards(&mut self, event: &Event) {
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        let pgid = match *event {
            Event::Exited {
                pid,
                leftovers: false,
                ..
            } => pid,
            Event::GroupGone { pgid } => pgid,
            _ => return,
        };
        if let Some(guard) = link.guards.remove(&pgid) {
            guard.release();
        }
    }

    /// At exit: the lease is revoked, so that another node takes every singleton at once.
    pub(crate) async fn close_cluster(&mut self) {
        let Some(link) = self.cluster.take() else {
            return;
        };
        for (_, guard) in link.guards {
            guard.release();
        }
        let _ = link.commands.send(Command::Shutdown);
        if tokio::time::timeout(RELEASE_WAIT, link.task).await.is_err() {
            self.log.warn(format!(
                "cluster: the lease could not be given back within {RELEASE_WAIT:?}: other nodes \
                 take the singletons when it expires"
            ));
        }
    }
}

/// `spec` with `TASKMASTER_FENCING_TOKEN`, the term its key is held in, in its environment:
/// what the program writes elsewhere can then be fenced against an older holder.
pub(crate) fn with_fencing_token(
    spec: &std::sync::Arc<taskmaster_config::ProgramSpec>,
    token: i64,
) -> std::sync::Arc<taskmaster_config::ProgramSpec> {
    let mut spec = (**spec).clone();
    spec.env
        .insert("TASKMASTER_FENCING_TOKEN".to_string(), token.to_string());
    std::sync::Arc::new(spec)
}

/// CLOCK_MONOTONIC in nanoseconds, the supervisor's clock, for the store client's `sent`.
fn monotonic_nanos() -> u64 {
    clock::now().as_nanos()
}

/// A report of the store client as news for the supervisor, with its times of day written
/// in local time; `node` is this node's name.
fn news_of(report: Report, node: &str) -> ClusterNews {
    match report {
        Report::Renewed { sent } => ClusterNews::Renewed {
            sent: Time::from_nanos(sent),
        },
        Report::LeaseLost { why } => ClusterNews::LeaseLost { why },
        Report::Held {
            program,
            term,
            since_unix,
        } => ClusterNews::Holder {
            program,
            holder: Holder {
                here: true,
                ..holder(Some(node.to_string()), Some(since_unix), Some(term))
            },
        },
        Report::HeldElsewhere {
            program,
            holder: node,
            since_unix,
            term,
        } => ClusterNews::Holder {
            program,
            holder: holder(node, since_unix, term),
        },
        Report::Unreachable { why } => ClusterNews::Reachability(Some(why)),
        Report::Reachable => ClusterNews::Reachability(None),
        Report::Nodes(nodes) => ClusterNews::Nodes(
            nodes
                .into_iter()
                .map(|node| NodeInfo {
                    name: node.name,
                    since_unix: node.since_unix,
                    holds: node.holds,
                })
                .collect(),
        ),
    }
}

/// A holder that is not this taskmaster (a node of its name may be its previous run).
fn holder(node: Option<String>, since_unix: Option<i64>, term: Option<i64>) -> Holder {
    Holder {
        here: false,
        since: since_unix.and_then(local_time_of_day),
        node,
        since_unix,
        term,
    }
}

/// `10:41:03`, in the host's time zone.
fn local_time_of_day(unix: i64) -> Option<String> {
    let at = jiff::Timestamp::from_second(unix).ok()?;
    Some(
        at.to_zoned(jiff::tz::TimeZone::system())
            .strftime("%H:%M:%S")
            .to_string(),
    )
}
