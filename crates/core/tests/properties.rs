//! Properties that hold whatever happens, in whatever order.

mod world;

use std::collections::HashSet;

use proptest::prelude::*;
use taskmaster_core::cluster::{ClusterNews, Holder};
use taskmaster_core::{Event, Notification, Request, Signal, State};
use world::{code, killed, secs, World};

const CONFIGS: [&str; 3] = [
    "
cluster:
  etcd: http://127.0.0.1:2379
  node: a
programs:
  sched:
    cmd: /bin/sched
    singleton: true
    stoptime: 2
    starttime: 0
  web:
    cmd: /bin/web
    starttime: 1
    startretries: 2
    watchdog: 2s
    healthcheck: {cmd: \"true\", interval: 1s, retries: 2, start_period: 1s}
    on_exit: \"true\"
  workers:
    cmd: /bin/worker
    numprocs: 2
    starttime: 0
    autorestart: always
    ready: notify
    readytime: 2s
    stdin: pipe
    backoff: {initial: 500ms, max: 4s, factor: 2}
    restart_limit: {count: 4, within: 10s}
    on_exit: \"true\"
  bad:
    cmd: /bin/bad
    startretries: 1
",
    "
programs:
  web:
    cmd: /bin/web --changed
    starttime: 1
  workers:
    cmd: /bin/worker
    numprocs: 3
    starttime: 0
    autorestart: always
",
    "
programs:
  api:
    cmd: /bin/api
    autorestart: never
",
];

const TARGETS: [&str; 7] = [
    "web",
    "workers",
    "workers:workers_01",
    "bad",
    "api",
    "sched",
    "all",
];

#[derive(Debug, Clone)]
enum Step {
    /// The n-th live child exits with a code, or is killed.
    Exit(usize, Option<i32>, bool),
    Wait(u32),
    Start(usize),
    Stop(usize),
    Restart(usize),
    Signal(usize),
    Reload(usize),
    Reread(usize),
    Add(usize),
    Remove(usize),
    /// The n-th live child is paused (SIGSTOP) or resumed.
    Pause(usize, bool),
    /// A reaped pid that is none of ours.
    Stray,
    /// The n-th live child says something on the notify socket.
    Notify(usize, u8),
    /// The oldest health check still running is done, healthy or not.
    Probe(bool),
    /// The oldest hook still running is done.
    Hook,
    /// The kill button, with or without a restart.
    Kill(usize, bool),
    /// Input for stdin pipes.
    Input(usize),
    /// The last process of a watched group is gone.
    GroupGone(usize),
    /// News from the cluster's store: a renewal, the singleton's key held here, elsewhere
    /// or by nobody, the lease lost.
    Cluster(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..8usize, prop::option::of(0..4i32), any::<bool>())
            .prop_map(|(i, c, leftovers)| Step::Exit(i, c, leftovers)),
        2 => (0..8usize).prop_map(Step::GroupGone),
        3 => (0..3000u32).prop_map(Step::Wait),
        2 => (0..TARGETS.len()).prop_map(Step::Start),
        2 => (0..TARGETS.len()).prop_map(Step::Stop),
        1 => (0..TARGETS.len()).prop_map(Step::Restart),
        1 => (0..TARGETS.len()).prop_map(Step::Signal),
        1 => (0..CONFIGS.len()).prop_map(Step::Reload),
        1 => (0..CONFIGS.len()).prop_map(Step::Reread),
        1 => (0..TARGETS.len()).prop_map(Step::Add),
        1 => (0..TARGETS.len()).prop_map(Step::Remove),
        1 => Just(Step::Stray),
        2 => (0..8usize, any::<bool>()).prop_map(|(i, pause)| Step::Pause(i, pause)),
        3 => (0..8usize, 0..4u8).prop_map(|(i, what)| Step::Notify(i, what)),
        2 => any::<bool>().prop_map(Step::Probe),
        2 => Just(Step::Hook),
        1 => (0..TARGETS.len(), any::<bool>()).prop_map(|(t, restart)| Step::Kill(t, restart)),
        1 => (0..TARGETS.len()).prop_map(Step::Input),
        3 => (0..5u8).prop_map(Step::Cluster),
    ]
}

fn live_pids(w: &World) -> Vec<u32> {
    w.sup.processes().filter_map(|p| p.pid).collect()
}

fn check_invariants(w: &World) {
    let mut seen = HashSet::new();
    for p in w.sup.processes() {
        let has_child = matches!(p.state, State::Starting | State::Running | State::Stopping);
        assert_eq!(
            p.pid.is_some(),
            has_child,
            "{} is {} with pid {:?}",
            p.name,
            p.state,
            p.pid
        );
        if let Some(pid) = p.pid {
            assert!(seen.insert(pid), "pid {pid} belongs to two processes");
        }
        assert!(
            p.pid.is_some() || p.paused.is_none(),
            "{} paused without a child",
            p.name
        );
        assert!(
            p.pid.is_none() || !p.start_pending(),
            "{} has a child and a start pending",
            p.name
        );
    }
    // The announced changes never lie: each starts where the last one for that process
    // ended (records start STOPPED), and the last one is where the process is now.
    let mut announced: std::collections::HashMap<&str, State> = std::collections::HashMap::new();
    for (process, change) in &w.changes {
        let Some((from, to)) = change else {
            announced.remove(process.as_str());
            continue;
        };
        let before = announced
            .get(process.as_str())
            .copied()
            .unwrap_or(State::Stopped);
        assert_eq!(
            *from, before,
            "{process}: announced {from} -> {to} after {before}"
        );
        assert_ne!(from, to, "{process}: a change to the same state");
        announced.insert(process, *to);
    }
    for p in w.sup.processes() {
        let last = announced
            .get(p.name.as_str())
            .copied()
            .unwrap_or(State::Stopped);
        assert_eq!(
            last, p.state,
            "{}: last announced {last}, is {}",
            p.name, p.state
        );
    }
    // A singleton is up only where its key is held.
    for p in w.sup.processes().filter(|p| p.spec.singleton) {
        if matches!(p.state, State::Starting | State::Running) {
            let info = w.sup.status_of(&p.name);
            let here = info.and_then(|i| i.cluster).is_some_and(|c| c.holder.here);
            assert!(
                here,
                "{} is {} though its key is not held here",
                p.name, p.state
            );
        }
    }
    if w.exited {
        assert!(w.sup.is_shutting_down());
        assert!(live_pids(w).is_empty(), "exit with children alive");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_sequence_keeps_the_invariants_and_answers_every_request(
        steps in prop::collection::vec(step(), 0..60)
    ) {
        let mut w = World::with_failing(CONFIGS[0], &[("bad", "cannot execute /bin/bad")]);
        let mut tickets = Vec::new();
        // A backup's copy, kept up to date by what changed after each step: always the same
        // state, and (its caches unknown, so its deadline found by a look at every record) the
        // same next deadline as the original's index gives.
        let mut copy = w.sup.clone();
        w.sup.keep_changes();
        for s in steps {
            match s {
                Step::Exit(i, c, leftovers) => {
                    let pids = live_pids(&w);
                    if !pids.is_empty() {
                        let pid = pids[i % pids.len()];
                        let status = c.map_or(killed(Signal::KILL), code);
                        w.handle(Event::Exited { pid, status, leftovers });
                    }
                }
                Step::GroupGone(i) => {
                    if !w.watched_groups.is_empty() {
                        let pgid = w.watched_groups[i % w.watched_groups.len()];
                        w.group_gone(pgid);
                    }
                }
                Step::Wait(ms) => w.advance(secs(f64::from(ms) / 1000.0)),
                Step::Start(t) => tickets.push(w.request(Request::Start(vec![TARGETS[t].into()]))),
                Step::Stop(t) => tickets.push(w.request(Request::Stop(vec![TARGETS[t].into()]))),
                Step::Restart(t) => tickets.push(w.request(Request::Restart(vec![TARGETS[t].into()]))),
                Step::Signal(t) => tickets.push(w.request(Request::Signal {
                    signal: Signal::HUP,
                    targets: vec![TARGETS[t].into()],
                })),
                Step::Reload(c) => { w.reload(CONFIGS[c]); }
                Step::Reread(c) => { w.reread(CONFIGS[c]); }
                Step::Add(t) => tickets.push(w.request(Request::AddGroup(vec![TARGETS[t].into()]))),
                Step::Remove(t) => tickets.push(w.request(Request::RemoveGroup(vec![TARGETS[t].into()]))),
                Step::Stray => w.handle(Event::Exited { pid: 1, status: code(0), leftovers: false }),
                Step::Notify(i, what) => {
                    let pids = live_pids(&w);
                    if !pids.is_empty() {
                        let pid = pids[i % pids.len()];
                        let notification = match what {
                            0 => Notification::Ready,
                            1 => Notification::Heartbeat,
                            2 => Notification::WatchdogTrigger,
                            _ => Notification::Status("busy".into()),
                        };
                        w.handle(Event::Notified { pid, notifications: vec![notification] });
                    }
                }
                Step::Probe(healthy) => {
                    if !w.probes.is_empty() {
                        let (process, pid) = w.probes.remove(0);
                        let result = if healthy { Ok("exit 0".into()) } else { Err("exit 1".into()) };
                        w.handle(Event::ProbeDone { process, pid, result });
                    }
                }
                Step::Hook => {
                    if !w.hooks.is_empty() {
                        let (process, _) = w.hooks.remove(0);
                        w.handle(Event::HookDone { process, result: Ok(()) });
                    }
                }
                Step::Kill(t, restart) => tickets.push(w.request(Request::Kill {
                    targets: vec![TARGETS[t].into()],
                    restart,
                    by: "uid 0".into(),
                })),
                Step::Input(t) => {
                    let before = w.stdin_writes.len();
                    tickets.push(w.request(Request::SendStdin {
                        targets: vec![TARGETS[t].into()],
                        data: b"x".to_vec(),
                    }));
                    // Input goes only to the live child of a process with a pipe.
                    for (process, pid, _) in &w.stdin_writes[before..] {
                        let record = w.sup.process(process);
                        prop_assert!(record.is_some_and(|p| p.pid == Some(*pid)
                            && p.spec.stdin == taskmaster_config::Stdin::Pipe));
                    }
                }
                Step::Cluster(what) => {
                    let holder = |node: Option<&str>| ClusterNews::Holder {
                        program: "sched".into(),
                        holder: Holder {
                            here: node == Some("a"),
                            node: node.map(str::to_string),
                            term: Some(7),
                            ..Default::default()
                        },
                    };
                    let news = match what {
                        0 => ClusterNews::Renewed { sent: w.now },
                        1 => holder(Some("a")),
                        2 => holder(Some("b")),
                        3 => holder(None),
                        _ => ClusterNews::LeaseLost { why: "expired".into() },
                    };
                    w.handle(Event::Cluster(news));
                }
                Step::Pause(i, pause) => {
                    let pids = live_pids(&w);
                    if !pids.is_empty() {
                        let pid = pids[i % pids.len()];
                        w.handle(if pause {
                            Event::Paused { pid, signal: Signal::STOP }
                        } else {
                            Event::Resumed { pid }
                        });
                    }
                }
            }
            check_invariants(&w);
            copy.apply_changes(w.sup.take_changes());
            prop_assert_eq!(&copy, &w.sup);
            prop_assert_eq!(copy.next_deadline(), w.sup.next_deadline());
        }

        // Shut down, and let every child die when asked: everything must settle.
        w.request(Request::Shutdown);
        for _ in 0..100 {
            let pids = live_pids(&w);
            if pids.is_empty() && w.hooks.is_empty() {
                break;
            }
            for pgid in w.watched_groups.clone() {
                w.group_gone(pgid);
                check_invariants(&w);
            }
            for pid in live_pids(&w) {
                w.handle(Event::Exited { pid, status: killed(Signal::TERM), leftovers: false });
                check_invariants(&w);
            }
            while !w.hooks.is_empty() {
                let (process, _) = w.hooks.remove(0);
                w.handle(Event::HookDone { process, result: Err("exit 1".into()) });
                check_invariants(&w);
            }
        }
        w.advance(secs(100.0));
        prop_assert!(w.exited, "never exited after shutdown");
        prop_assert_eq!(w.sup.next_deadline(), None);
        for ticket in tickets {
            let replies = w.replies.iter().filter(|(t, _)| *t == ticket).count();
            prop_assert_eq!(replies, 1, "ticket {:?} got {} replies", ticket, replies);
        }
    }

    #[test]
    fn backoff_delays_grow_by_one_second_until_fatal(retries in 0u32..6) {
        let yaml = format!("programs:\n  web:\n    cmd: /bin/web\n    startretries: {retries}\n");
        let mut w = World::new(&yaml);
        let mut delays = Vec::new();
        loop {
            w.exit("web", code(1));
            if w.state("web") == "FATAL" {
                break;
            }
            let deadline = w.sup.next_deadline().expect("retry scheduled");
            let delay = deadline.since(w.now);
            delays.push(delay.as_secs());
            w.advance(delay);
        }
        let expected: Vec<u64> = (1..=u64::from(retries)).collect();
        prop_assert_eq!(delays, expected);
        prop_assert_eq!(w.spawn_count("web"), retries as usize + 1);
    }
}
