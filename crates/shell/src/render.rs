//! Replies as the lines a user reads, in supervisorctl's layout so that people and scripts
//! that know supervisorctl can read them.

use std::time::Duration;

use taskmaster_core::{Outcome, ProcessInfo, ReloadPlan, Reply, State, Time};

/// The lines to print for a reply.
pub fn render(reply: &Reply) -> Vec<String> {
    match reply {
        Reply::Status {
            now,
            processes,
            errors,
            pair,
        } => {
            let mut lines: Vec<String> = pair.iter().map(|p| p.describe(*now)).collect();
            lines.extend(status_lines(*now, processes));
            lines.extend(errors.iter().map(Outcome::to_string));
            lines
        }
        Reply::Outcomes(outcomes) => outcomes.iter().map(Outcome::to_string).collect(),
        Reply::Pids { pids, errors } => pids
            .iter()
            .map(|(_, pid)| pid.unwrap_or(0).to_string())
            .chain(errors.iter().map(Outcome::to_string))
            .collect(),
        Reply::DaemonPid(pid) => vec![pid.to_string()],
        Reply::Reloaded(plan) => vec![format!("reloaded: {}", plan.summary())],
        Reply::Compared(plan) => compared_lines(plan),
        Reply::Config { active, staged } => {
            // `avail`: every program of the file last read, in force or not.
            let file = staged.as_deref().unwrap_or(active);
            file.programs
                .values()
                .map(|spec| {
                    let in_use = if active.programs.contains_key(&spec.name) {
                        "in use"
                    } else {
                        "avail"
                    };
                    let start = if spec.autostart { "auto" } else { "manual" };
                    format!(
                        "{:<32} {in_use:<12} {start:<10} {}",
                        spec.name, spec.numprocs
                    )
                })
                .collect()
        }
        Reply::ReloadRejected(errors) => {
            let mut lines =
                vec!["error: the configuration has errors; nothing was changed:".to_string()];
            lines.extend(errors.iter().map(|e| format!("  {e}")));
            lines
        }
        Reply::ShuttingDown => vec!["Shut down".to_string()],
        Reply::HandedOver(pid) => vec![format!("Handed over to the backup (pid {pid})")],
        Reply::LogsReopened { files, errors } => {
            std::iter::once(format!("reopened {files} log file(s)"))
                .chain(errors.iter().map(|e| format!("error: {e}")))
                .collect()
        }
        Reply::HandoverRefused(why) => vec![format!("error: no handover: {why}")],
        Reply::DaemonState { shutting_down } => vec![if *shutting_down {
            "SHUTDOWN".to_string()
        } else {
            "RUNNING".to_string()
        }],
        Reply::Recorded => vec!["recorded in the event log".to_string()],
        // `/metrics` renders its own text; the shell shows a count.
        Reply::Metrics(metrics) => vec![format!("{} process(es)", metrics.processes.len())],
        Reply::Cluster(None) => {
            vec!["error: not in a cluster: the configuration has no cluster: section".to_string()]
        }
        Reply::Cluster(Some(cluster)) => cluster_lines(cluster),
        Reply::AlertsTested(results) if results.is_empty() => {
            vec![
                "error: no alert destination: the configuration has no alerting: section"
                    .to_string(),
            ]
        }
        Reply::AlertsTested(results) => results
            .iter()
            .map(|(destination, result)| match result {
                Ok(answer) => format!("{destination}: {answer}"),
                Err(why) => format!("{destination}: ERROR ({why})"),
            })
            .collect(),
    }
}

/// Whether a reply reports success, by supervisorctl's rule: every process named is RUNNING
/// (for status), every action reached its goal, and every name was known.
pub fn succeeded(reply: &Reply) -> bool {
    match reply {
        Reply::Status {
            processes, errors, ..
        } => errors.is_empty() && processes.iter().all(|p| p.state == State::Running),
        Reply::Outcomes(outcomes) => outcomes.iter().all(|o| o.result.is_ok()),
        Reply::Pids { errors, .. } => errors.is_empty(),
        Reply::ReloadRejected(_) => false,
        Reply::DaemonPid(_)
        | Reply::Reloaded(_)
        | Reply::Compared(_)
        | Reply::Config { .. }
        | Reply::DaemonState { .. }
        | Reply::Metrics(_)
        | Reply::Cluster(Some(_))
        | Reply::ShuttingDown
        | Reply::HandedOver(_)
        | Reply::Recorded => true,
        Reply::HandoverRefused(_) | Reply::Cluster(None) => false,
        Reply::LogsReopened { errors, .. } => errors.is_empty(),
        Reply::AlertsTested(results) => {
            !results.is_empty() && results.iter().all(|(_, result)| result.is_ok())
        }
    }
}

/// `web                              RUNNING   pid 4242, uptime 0:01:02`: the name padded to
/// three more than the longest (at least 30), the state to 10, then the description.
pub fn status_lines(now: Time, processes: &[ProcessInfo]) -> Vec<String> {
    let width = processes
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0)
        .max(30)
        + 3;
    processes
        .iter()
        .map(|p| {
            let description = p.description(now, stop_date);
            format!("{:<width$}{:<10}{}", p.name, p.state.name(), description)
                .trim_end()
                .to_string()
        })
        .collect()
}

/// The local date of a moment `ago` in the past, as supervisorctl shows stop times.
fn stop_date(ago: Duration) -> String {
    let now = jiff::Zoned::now();
    let then = jiff::SignedDuration::try_from(ago)
        .ok()
        .and_then(|ago| now.checked_sub(ago).ok())
        .unwrap_or(now);
    then.strftime("%b %d %I:%M %p").to_string()
}

/// `ctl cluster`: the nodes alive with what each holds, then each singleton's holder.
///
/// ```text
/// node web-3 (this taskmaster)
/// web-1                          alive since 10:40:12   holds scheduler
/// web-3                          alive since 10:40:15   holds nothing
/// scheduler                      held by web-1 since 10:41:03 (term 7812)
/// ```
fn cluster_lines(cluster: &taskmaster_core::cluster::ClusterInfo) -> Vec<String> {
    let mut lines = vec![format!("node {} (this taskmaster)", cluster.node)];
    if let Some(why) = &cluster.unreachable {
        lines.push(format!("etcd unreachable: {why}"));
    }
    for node in &cluster.nodes {
        let since = node.since_unix.map_or_else(String::new, time_of_day);
        let holds = match node.holds.is_empty() {
            true => "nothing".to_string(),
            false => node.holds.join(", "),
        };
        lines.push(format!(
            "{:<30} alive since {since:<10} holds {holds}",
            node.name
        ));
    }
    for (program, holder) in &cluster.singletons {
        let state = match &holder.node {
            None => "free".to_string(),
            Some(node) => {
                let since = holder.since_unix.map_or_else(String::new, time_of_day);
                let term = holder
                    .term
                    .map_or_else(String::new, |t| format!(" (term {t})"));
                format!("held by {node} since {since}{term}")
            }
        };
        lines.push(format!("{program:<30} {state}"));
    }
    lines
}

/// `10:41:03`, in local time.
fn time_of_day(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|at| {
            at.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| unix.to_string())
}

/// `reread`, as supervisorctl says it: what a reload would add, change and remove; for each
/// changed program, which settings it would apply in place and which restart it.
fn compared_lines(plan: &ReloadPlan) -> Vec<String> {
    if plan.is_empty() {
        return vec!["No config updates to processes".to_string()];
    }
    let mut lines = Vec::new();
    // supervisorctl's `web: changed`, and what a reload would do about it.
    lines.extend(plan.changed.iter().map(|name| {
        match plan.settings.get(name).map(|settings| settings.describe()) {
            Some(settings) if !settings.is_empty() => format!("{name}: changed ({settings})"),
            _ => format!("{name}: changed"),
        }
    }));
    lines.extend(plan.added.iter().map(|name| format!("{name}: available")));
    lines.extend(
        plan.removed
            .iter()
            .map(|name| format!("{name}: disappeared")),
    );
    lines
}
