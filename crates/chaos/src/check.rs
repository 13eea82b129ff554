//! The check after the run: what `status` says, held against `/proc`.
//!
//! `status` is asked twice with `/proc` read in between; only a process that both answers
//! show alike is judged (one that changed in between is judged at the next look). A finding
//! is one of:
//!
//! - a **lie**: a process shown STARTING, RUNNING or STOPPING without a pid, or with a pid
//!   that is not a live child of taskmaster running the process's command; a process at rest
//!   shown with a pid; a pause shown where there is none or not shown where there is one; a
//!   live child of taskmaster that no process names (health checks and hooks aside); a process
//!   shown that the configuration does not have, or one it has that is not shown;
//! - a **zombie**: a child of taskmaster that has exited and is not reaped;
//! - a **leftover**: a process of this run (it carries the run's token) in a process group
//!   that is not that of a process shown STARTING, RUNNING or STOPPING.

use std::collections::{BTreeSet, HashSet};

use taskmaster_core::{ProcessInfo, State};

use crate::procfs::{self, Table};
use crate::programs::{Layout, Paths};

/// What one look found.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    pub lies: Vec<String>,
    pub zombies: Vec<String>,
    pub leftovers: Vec<String>,
    /// Processes whose two answers differed: not judged this time.
    pub unstable: usize,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.lies.is_empty() && self.zombies.is_empty() && self.leftovers.is_empty()
    }
}

/// The name requests use for a process: `web`, or `pool:pool_00` (status gives it so).
pub fn full_name(info: &ProcessInfo) -> String {
    info.name.clone()
}

/// Whether the state is one in which the process has a child.
pub fn has_child(state: State) -> bool {
    matches!(state, State::Starting | State::Running | State::Stopping)
}

fn same(a: &ProcessInfo, b: &ProcessInfo) -> bool {
    a.state == b.state && a.pid == b.pid && a.paused == b.paused
}

/// `pid (its command)`, for messages.
fn describe(pid: u32) -> String {
    match procfs::cmdline(pid) {
        Some(args) if !args.is_empty() => format!("pid {pid} ({})", args.join(" ")),
        _ => format!("pid {pid}"),
    }
}

/// Judges `first` and `second`, two `status` answers, against `table`, read between them.
pub fn examine(
    paths: &Paths,
    layout: &Layout,
    daemon_pid: u32,
    first: &[ProcessInfo],
    table: &Table,
    second: &[ProcessInfo],
) -> Findings {
    let mut findings = Findings::default();
    let helpers = paths.helpers();
    let is_helper = |pid: u32| procfs::cmdline(pid).is_some_and(|args| helpers.contains(&args));

    let mut stable = Vec::new();
    for info in first {
        match second
            .iter()
            .find(|other| other.name == info.name && other.group == info.group)
        {
            Some(other) if same(info, other) => stable.push(info),
            _ => findings.unstable += 1,
        }
    }

    let shown: BTreeSet<String> = second.iter().map(full_name).collect();
    let configured: BTreeSet<String> = layout.all_process_names().into_iter().collect();
    for name in shown.difference(&configured) {
        findings.lies.push(format!(
            "{name} is shown, but the configuration has no such process"
        ));
    }
    for name in configured.difference(&shown) {
        findings
            .lies
            .push(format!("{name} is in the configuration, but not shown"));
    }

    for info in &stable {
        let name = full_name(info);
        let state = info.state;
        match (has_child(state), info.pid) {
            (true, None) => findings
                .lies
                .push(format!("{name} is {state:?} without a pid")),
            (false, Some(pid)) => findings
                .lies
                .push(format!("{name} is {state:?} with pid {pid}")),
            (false, None) => {}
            (true, Some(pid)) => match table.stats.get(&pid) {
                None => findings
                    .lies
                    .push(format!("{name} is {state:?} with pid {pid}, which is gone")),
                Some(stat) if stat.is_zombie() => findings.lies.push(format!(
                    "{name} is {state:?} with pid {pid}, which has exited"
                )),
                Some(stat) if stat.ppid != daemon_pid => findings.lies.push(format!(
                    "{name} is {state:?} with {}, whose parent is {}, not taskmaster",
                    describe(pid),
                    stat.ppid
                )),
                Some(stat) => {
                    let expected = layout.argv(&info.program, paths);
                    let running = procfs::cmdline(pid);
                    if expected.is_some() && running.is_some() && expected != running {
                        findings.lies.push(format!(
                            "{name} is {state:?} with {}, which is not its command {:?}",
                            describe(pid),
                            expected.unwrap_or_default().join(" ")
                        ));
                    }
                    match (info.paused, stat.is_stopped()) {
                        (Some(signal), false) => findings.lies.push(format!(
                            "{name} is shown paused ({signal}), but pid {pid} is not stopped"
                        )),
                        (None, true) => findings.lies.push(format!(
                            "{name} is not shown paused, but pid {pid} is stopped"
                        )),
                        _ => {}
                    }
                }
            },
        }
    }

    let named: HashSet<u32> = first.iter().chain(second).filter_map(|p| p.pid).collect();
    for stat in table.children_of(daemon_pid) {
        if stat.is_zombie() {
            findings
                .zombies
                .push(format!("pid {} is a zombie child of taskmaster", stat.pid));
        } else if !named.contains(&stat.pid) && !is_helper(stat.pid) {
            findings.lies.push(format!(
                "{} is a child of taskmaster that no process names",
                describe(stat.pid)
            ));
        }
    }

    // A group is live while any answer shows its leader with a child.
    let live_groups: HashSet<u32> = first
        .iter()
        .chain(second)
        .filter(|p| has_child(p.state))
        .filter_map(|p| p.pid)
        .collect();
    let token = paths.token_assignment();
    for stat in table.stats.values() {
        if stat.is_zombie() || live_groups.contains(&stat.pgid) {
            continue;
        }
        if procfs::has_variable(stat.pid, &token) && !is_helper(stat.pid) {
            findings.leftovers.push(format!(
                "{} is left in process group {}, of no running process",
                describe(stat.pid),
                stat.pgid
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::procfs::Stat;

    /// Beyond any pid Linux hands out (PID_MAX_LIMIT is 4194304): `/proc` has none of them, so
    /// only the table given decides.
    const DAEMON: u32 = 4_300_000;
    const CHILD: u32 = 4_300_001;

    fn paths() -> Paths {
        Paths {
            dir: PathBuf::from("/nonexistent/chaos"),
            fixture: PathBuf::from("/nonexistent/tm-fixture"),
            worker: PathBuf::from("/nonexistent/chaos-bin"),
            token: "test".to_string(),
        }
    }

    fn at_rest(layout: &Layout) -> Vec<ProcessInfo> {
        layout
            .all_process_names()
            .into_iter()
            .map(|name| ProcessInfo {
                program: name.split(':').next().unwrap_or(&name).to_string(),
                group: String::new(),
                name,
                state: State::Stopped,
                pid: None,
                started_at: None,
                stopped_at: None,
                spawn_error: None,
                last_exit: None,
                stdout: None,
                stderr: None,
                stdout_syslog: false,
                stderr_syslog: false,
                paused: None,
                status_text: None,
                health: None,
                gave_up: None,
                waiting_for: Vec::new(),
                cluster: None,
            })
            .collect()
    }

    fn table(stats: &[(u32, char, u32)]) -> Table {
        Table {
            stats: stats
                .iter()
                .map(|&(pid, state, ppid)| {
                    (
                        pid,
                        Stat {
                            pid,
                            state,
                            ppid,
                            pgid: pid,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The findings when the first process is shown `state` with `pid`, against `stats`.
    fn judge(state: State, pid: Option<u32>, paused: bool, stats: &[(u32, char, u32)]) -> Findings {
        let layout = Layout::initial();
        let mut shown = at_rest(&layout);
        shown[0].state = state;
        shown[0].pid = pid;
        shown[0].paused = paused.then(|| "STOP".parse().expect("a signal"));
        examine(&paths(), &layout, DAEMON, &shown, &table(stats), &shown)
    }

    #[test]
    fn a_process_shown_as_it_is_is_no_lie() {
        let findings = judge(State::Running, Some(CHILD), false, &[(CHILD, 'S', DAEMON)]);
        assert!(findings.is_clean(), "{findings:?}");
        let paused = judge(State::Running, Some(CHILD), true, &[(CHILD, 'T', DAEMON)]);
        assert!(paused.is_clean(), "{paused:?}");
    }

    #[test]
    fn a_pid_that_is_gone_exited_or_not_taskmasters_is_a_lie() {
        for stats in [vec![], vec![(CHILD, 'Z', DAEMON)], vec![(CHILD, 'S', 1)]] {
            let findings = judge(State::Running, Some(CHILD), false, &stats);
            assert_eq!(findings.lies.len(), 1, "{stats:?}: {findings:?}");
        }
    }

    #[test]
    fn a_pause_shown_wrongly_is_a_lie() {
        let shown = judge(State::Running, Some(CHILD), true, &[(CHILD, 'S', DAEMON)]);
        assert_eq!(shown.lies.len(), 1, "{shown:?}");
        let hidden = judge(State::Running, Some(CHILD), false, &[(CHILD, 'T', DAEMON)]);
        assert_eq!(hidden.lies.len(), 1, "{hidden:?}");
    }

    #[test]
    fn a_pid_at_rest_or_none_while_running_is_a_lie() {
        assert_eq!(judge(State::Stopped, Some(CHILD), false, &[]).lies.len(), 1);
        assert_eq!(judge(State::Running, None, false, &[]).lies.len(), 1);
    }

    #[test]
    fn an_unnamed_child_is_a_lie_and_an_unreaped_one_a_zombie() {
        let unnamed = judge(State::Stopped, None, false, &[(CHILD, 'S', DAEMON)]);
        assert_eq!(unnamed.lies.len(), 1, "{unnamed:?}");
        let zombie = judge(State::Stopped, None, false, &[(CHILD, 'Z', DAEMON)]);
        assert_eq!(
            (zombie.lies.len(), zombie.zombies.len()),
            (0, 1),
            "{zombie:?}"
        );
    }

    #[test]
    fn a_process_missing_from_status_or_not_configured_is_a_lie() {
        let layout = Layout::initial();
        let mut shown = at_rest(&layout);
        shown.remove(0);
        let findings = examine(&paths(), &layout, DAEMON, &shown, &table(&[]), &shown);
        assert_eq!(findings.lies.len(), 1, "{findings:?}");
        let mut extra = at_rest(&layout);
        extra[0].name = "nobody".to_string();
        let findings = examine(&paths(), &layout, DAEMON, &extra, &table(&[]), &extra);
        assert_eq!(findings.lies.len(), 2, "{findings:?}");
    }

    #[test]
    fn a_process_that_changed_between_the_answers_is_not_judged() {
        let layout = Layout::initial();
        let first = at_rest(&layout);
        let mut second = first.clone();
        second[0].state = State::Running;
        second[0].pid = Some(CHILD);
        let findings = examine(
            &paths(),
            &layout,
            DAEMON,
            &first,
            &table(&[(CHILD, 'S', DAEMON)]),
            &second,
        );
        assert_eq!(findings.unstable, 1);
        assert!(findings.is_clean(), "{findings:?}");
    }
}
