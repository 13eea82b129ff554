//! Cluster singletons, driven through the fake world: a singleton starts only while this node
//! holds its key under a lease renewed in time, stops at the renew deadline, is SIGKILLed at
//! the kill deadline, and gives its key up once nothing here wants it.

mod world;

use taskmaster_core::cluster::{ClusterNews, Holder};
use taskmaster_core::{Event, Outcome, Reply, Request, Signal};
use world::{code, secs, World};

/// A singleton beside an ordinary program, on node `a`, lease 15 s: renew deadline 10 s,
/// kill deadline 13.5 s after each renewal's send.
const CLUSTER: &str = "
cluster:
  etcd: [http://127.0.0.1:2379]
  node: a
programs:
  sched:
    cmd: /bin/sched
    singleton: true
    stoptime: 2
    starttime: 0
  web:
    cmd: /bin/web
    starttime: 0
";

fn news(w: &mut World, news: ClusterNews) {
    w.handle(Event::Cluster(news));
}

fn renewed_now(w: &mut World) {
    let sent = w.now;
    news(w, ClusterNews::Renewed { sent });
}

fn held_by(w: &mut World, node: &str, term: i64) {
    news(
        w,
        ClusterNews::Holder {
            program: "sched".into(),
            holder: Holder {
                here: node == "a",
                node: Some(node.into()),
                since: Some("10:41:03".into()),
                since_unix: Some(1_800_000_000),
                term: Some(term),
            },
        },
    );
}

fn description(w: &mut World, name: &str) -> String {
    match w.ask(Request::Status(vec![name.to_string()])) {
        Reply::Status { now, processes, .. } => processes[0].description(now, |_| "then".into()),
        other => panic!("expected a status, got {other:?}"),
    }
}

/// A world where `sched` runs here under a lease renewed at the world's start.
fn running_here() -> World {
    let mut w = World::new(CLUSTER);
    renewed_now(&mut w);
    held_by(&mut w, "a", 7);
    assert_eq!(w.state("sched"), "RUNNING");
    w
}

fn kills_of(w: &World, pid: u32) -> usize {
    w.signals
        .iter()
        .filter(|s| s.pid == pid && s.signal == Signal::KILL)
        .count()
}

#[test]
fn a_singleton_stands_by_until_its_key_is_held_here_and_others_start_as_usual() {
    let mut w = World::new(CLUSTER);
    assert_eq!(w.state("web"), "RUNNING");
    assert_eq!(w.state("sched"), "STOPPED");
    assert_eq!(w.spawn_count("sched"), 0);
    assert_eq!(w.contended, ["sched"]);
    assert_eq!(description(&mut w, "sched"), "standby: free, being taken");

    // The key held without a lease renewed yet: still not.
    held_by(&mut w, "a", 7);
    assert_eq!(w.spawn_count("sched"), 0);
    renewed_now(&mut w);
    assert_eq!(w.state("sched"), "RUNNING");
    assert_eq!(w.fences, [w.now + secs(13.5)]);
}

#[test]
fn a_singleton_held_elsewhere_says_by_whom_and_a_start_says_so_at_once() {
    let mut w = World::new(CLUSTER);
    renewed_now(&mut w);
    held_by(&mut w, "b", 7812);
    assert_eq!(w.spawn_count("sched"), 0);
    assert_eq!(
        description(&mut w, "sched"),
        "standby: held by b since 10:41:03 (term 7812)"
    );
    let reply = w.ask(Request::Start(vec!["sched".into()]));
    let Reply::Outcomes(outcomes) = reply else {
        panic!("expected outcomes, got {reply:?}");
    };
    assert_eq!(
        outcomes.iter().map(Outcome::to_string).collect::<Vec<_>>(),
        ["sched: ERROR (standby: held by b since 10:41:03 (term 7812))"]
    );

    // The holder lets go and this node takes it: it starts.
    news(
        &mut w,
        ClusterNews::Holder {
            program: "sched".into(),
            holder: Holder::default(),
        },
    );
    assert_eq!(w.spawn_count("sched"), 0);
    held_by(&mut w, "a", 7813);
    assert_eq!(w.state("sched"), "RUNNING");
}

#[test]
fn renewals_in_time_keep_it_running() {
    let mut w = running_here();
    for _ in 0..5 {
        w.advance(secs(9.0));
        renewed_now(&mut w);
    }
    assert_eq!(w.state("sched"), "RUNNING");
    assert!(w.signals.is_empty(), "{:?}", w.signals);
    assert_eq!(w.fences.len(), 6);
}

#[test]
fn no_renewal_stops_it_at_the_renew_deadline_and_its_stoptime_ends_within_the_kill_deadline() {
    let mut w = running_here();
    let pid = w.pid("sched");
    let start = w.now;
    w.advance(secs(9.9));
    assert_eq!(w.state("sched"), "RUNNING");
    w.advance(secs(0.2));
    assert_eq!(w.state("sched"), "STOPPING");
    assert_eq!(w.signals.last().map(|s| s.signal), Some(Signal::TERM));
    assert_eq!(kills_of(&w, pid), 0);
    // It ignores its stop signal: SIGKILL after its stoptime (2 s), before the kill deadline.
    w.advance(secs(2.2));
    assert!(w.now < start + secs(13.5));
    assert_eq!(kills_of(&w, pid), 1);
    w.exit("sched", world::killed(Signal::KILL));
    // It waits for its key again, and the key is still contended for.
    assert_eq!(w.state("sched"), "STOPPED");
    assert_eq!(w.spawn_count("sched"), 1);
    assert!(w.withdrawn.is_empty());
    assert!(description(&mut w, "sched").starts_with("standby"));
    // A renewal that comes back (the lease was still alive): it runs again.
    renewed_now(&mut w);
    assert_eq!(w.state("sched"), "RUNNING");
    assert_eq!(w.spawn_count("sched"), 2);
}

#[test]
fn a_taskmaster_that_wakes_past_the_kill_deadline_kills_at_once() {
    let mut w = running_here();
    let pid = w.pid("sched");
    // Paused through both deadlines: the first timer is late.
    w.now = w.now + secs(14.0);
    w.handle(Event::Timer);
    assert_eq!(w.state("sched"), "STOPPING");
    assert_eq!(kills_of(&w, pid), 1);
    // Not again at the next timer.
    w.advance(secs(1.0));
    assert_eq!(kills_of(&w, pid), 1);
}

#[test]
fn a_lost_lease_or_another_holder_kills_it_at_once() {
    let mut w = running_here();
    let pid = w.pid("sched");
    news(
        &mut w,
        ClusterNews::LeaseLost {
            why: "expired".into(),
        },
    );
    assert_eq!(kills_of(&w, pid), 1);
    w.exit("sched", world::killed(Signal::KILL));
    assert_eq!(w.state("sched"), "STOPPED");

    let mut w = running_here();
    let pid = w.pid("sched");
    held_by(&mut w, "b", 9);
    assert_eq!(kills_of(&w, pid), 1);
    w.exit("sched", world::killed(Signal::KILL));
    assert_eq!(w.spawn_count("sched"), 1, "restarted though b holds it");
}

#[test]
fn a_stop_or_a_shutdown_gives_the_key_up_once_the_process_is_down() {
    let mut w = running_here();
    let ticket = w.request(Request::Stop(vec!["sched".into()]));
    assert!(w.withdrawn.is_empty(), "given up before it stopped");
    w.exit("sched", code(0));
    assert!(w.reply(ticket).is_some());
    assert_eq!(w.withdrawn, ["sched"]);
    // Its key held again (a race with the withdrawal): given up again, not run.
    held_by(&mut w, "a", 8);
    assert_eq!(w.withdrawn, ["sched", "sched"]);
    assert_eq!(w.spawn_count("sched"), 1);
    // A start contends again.
    w.request(Request::Start(vec!["sched".into()]));
    assert_eq!(w.contended, ["sched", "sched"]);

    let mut w = running_here();
    w.request(Request::Shutdown);
    w.exit("sched", code(0));
    w.exit("web", code(0));
    assert_eq!(w.withdrawn, ["sched"]);
    assert!(w.exited);
}

#[test]
fn a_crash_under_a_live_lease_restarts_here_and_a_fatal_one_gives_the_key_up() {
    let mut w = running_here();
    w.exit("sched", code(1));
    assert_eq!(w.state("sched"), "RUNNING");
    assert_eq!(w.spawn_count("sched"), 2);
    assert!(w.withdrawn.is_empty());

    let mut w = World::with_failing(CLUSTER, &[("sched", "no such file")]);
    renewed_now(&mut w);
    held_by(&mut w, "a", 7);
    for _ in 0..20 {
        if w.state("sched") == "FATAL" {
            break;
        }
        w.advance(secs(1.0));
        renewed_now(&mut w);
    }
    assert_eq!(w.state("sched"), "FATAL");
    assert_eq!(w.withdrawn, ["sched"]);
}

#[test]
fn a_key_left_by_this_nodes_previous_run_is_not_held_here() {
    let mut w = World::new(CLUSTER);
    renewed_now(&mut w);
    // Node `a`'s name, but the key of a lease of its previous run: not ours.
    news(
        &mut w,
        ClusterNews::Holder {
            program: "sched".into(),
            holder: Holder {
                here: false,
                node: Some("a".into()),
                since: Some("10:41:03".into()),
                since_unix: Some(1_800_000_000),
                term: Some(3),
            },
        },
    );
    assert_eq!(w.spawn_count("sched"), 0);
    assert_eq!(
        description(&mut w, "sched"),
        "standby: held by a since 10:41:03 (term 3)"
    );
}

#[test]
fn a_singleton_standing_by_is_not_started_again_and_again() {
    let mut w = World::new(CLUSTER);
    renewed_now(&mut w);
    held_by(&mut w, "b", 9);
    let logged = w.logs.len();
    for _ in 0..5 {
        w.advance(secs(1.0));
        renewed_now(&mut w);
    }
    let since: Vec<&String> = w.logs[logged..]
        .iter()
        .filter(|l| l.starts_with("sched"))
        .collect();
    assert!(since.is_empty(), "{since:#?}");
}
