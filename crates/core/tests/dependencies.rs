//! Order between programs (`depends_on`), driven through the fake world: who waits, who
//! starts when, who stops first, and what a start request answers.

mod world;

use taskmaster_core::{Event, Outcome, Reply, Request};
use world::{code, secs, World};

fn outcomes(reply: &Reply) -> Vec<String> {
    match reply {
        Reply::Outcomes(o) => o.iter().map(Outcome::to_string).collect(),
        other => panic!("expected outcomes, got {other:?}"),
    }
}

fn waiting_for(w: &mut World, name: &str) -> Vec<String> {
    match w.ask(Request::Status(vec![name.to_string()])) {
        Reply::Status { processes, .. } => processes[0].waiting_for.clone(),
        other => panic!("expected a status, got {other:?}"),
    }
}

/// Where `name` was first spawned in the order of spawns.
fn spawn_rank(w: &World, name: &str) -> usize {
    w.spawns
        .iter()
        .position(|(process, _)| process == name)
        .unwrap_or_else(|| panic!("{name} was never spawned: {:?}", w.spawns))
}

const GRAPH: &str = "
programs:
  base:
    cmd: /bin/base
    starttime: 1
  left:
    cmd: /bin/left
    starttime: 2
    depends_on: [base]
  right:
    cmd: /bin/right
    starttime: 1
    depends_on: [base]
  top:
    cmd: /bin/top
    starttime: 1
    depends_on: [left, right]
";

#[test]
fn a_dependent_waits_stopped_until_its_dependencies_are_running() {
    let mut w = World::new(GRAPH);
    assert_eq!(w.state("base"), "STARTING");
    for name in ["left", "right", "top"] {
        assert_eq!(w.state(name), "STOPPED");
        assert_eq!(w.spawn_count(name), 0);
    }
    assert_eq!(waiting_for(&mut w, "left"), ["base (STARTING)"]);
    assert_eq!(
        waiting_for(&mut w, "top"),
        ["left (STOPPED, waiting)", "right (STOPPED, waiting)"]
    );
    w.advance(secs(1.0));
    assert_eq!(w.state("base"), "RUNNING");
    // Both branches at once: neither waits for the other.
    assert_eq!(w.state("left"), "STARTING");
    assert_eq!(w.state("right"), "STARTING");
    assert_eq!(w.state("top"), "STOPPED");
    w.advance(secs(1.0));
    assert_eq!(w.state("right"), "RUNNING");
    assert_eq!(waiting_for(&mut w, "top"), ["left (STARTING)"]);
    w.advance(secs(1.0));
    assert_eq!(w.state("left"), "RUNNING");
    assert_eq!(w.state("top"), "STARTING");
    assert!(spawn_rank(&w, "base") < spawn_rank(&w, "left"));
    assert!(spawn_rank(&w, "right") < spawn_rank(&w, "top"));
    assert!(waiting_for(&mut w, "top").is_empty());
}

#[test]
fn a_shutdown_stops_dependents_before_what_they_depend_on() {
    let mut w = World::new(GRAPH);
    w.advance(secs(5.0));
    assert_eq!(w.state("top"), "RUNNING");
    w.request(Request::Shutdown);
    assert_eq!(w.state("top"), "STOPPING");
    for name in ["base", "left", "right"] {
        assert_eq!(w.state(name), "RUNNING", "{name} stops after top");
    }
    w.exit("top", code(0));
    assert_eq!(w.state("left"), "STOPPING");
    assert_eq!(w.state("right"), "STOPPING");
    assert_eq!(w.state("base"), "RUNNING");
    w.exit("left", code(0));
    assert_eq!(w.state("base"), "RUNNING", "right still runs");
    w.exit("right", code(0));
    assert_eq!(w.state("base"), "STOPPING");
    w.exit("base", code(0));
    assert!(w.exited);
}

#[test]
fn stop_all_stops_dependents_first() {
    let mut w = World::new(GRAPH);
    w.advance(secs(5.0));
    let ticket = w.request(Request::Stop(vec!["all".into()]));
    assert_eq!(w.state("top"), "STOPPING");
    assert_eq!(w.state("base"), "RUNNING");
    assert!(w
        .logs
        .iter()
        .any(|l| l == "base: stop waits for the processes that depend on it"));
    w.exit("top", code(0));
    w.exit("left", code(0));
    w.exit("right", code(0));
    assert_eq!(w.state("base"), "STOPPING");
    w.exit("base", code(0));
    let reply = w.reply(ticket).expect("stop all is answered");
    assert_eq!(outcomes(reply).len(), 4);
}

#[test]
fn a_fatal_dependency_holds_its_dependents_and_a_start_says_why() {
    let yaml = "
programs:
  db:
    cmd: /bin/db
    starttime: 1
    startretries: 0
  web:
    cmd: /bin/web
    depends_on: [db]
";
    let mut w = World::new(yaml);
    w.exit("db", code(1));
    assert_eq!(w.state("db"), "FATAL");
    assert_eq!(w.state("web"), "STOPPED");
    assert_eq!(waiting_for(&mut w, "web"), ["db (FATAL)"]);
    // A start by request starts db again first; when it fails again, web's start fails too.
    let ticket = w.request(Request::Start(vec!["web".into()]));
    assert_eq!(w.state("db"), "STARTING");
    assert!(w.reply(ticket).is_none());
    w.exit("db", code(1));
    let reply = w.reply(ticket).expect("the start is answered");
    assert_eq!(outcomes(reply), ["web: ERROR (waiting for db (FATAL))"]);
}

#[test]
fn start_of_a_dependent_starts_what_it_needs_first() {
    let yaml = "
programs:
  db:
    cmd: /bin/db
    starttime: 0
    autostart: false
  web:
    cmd: /bin/web
    starttime: 0
    autostart: false
    depends_on: [db]
";
    let mut w = World::new(yaml);
    assert!(w.spawns.is_empty());
    let reply = w.ask(Request::Start(vec!["web".into()]));
    assert_eq!(outcomes(&reply), ["web: started"]);
    assert_eq!(w.state("db"), "RUNNING");
    assert!(spawn_rank(&w, "db") < spawn_rank(&w, "web"));
    assert!(w
        .logs
        .iter()
        .any(|l| l == "db: starting it first: web depends on it"));
}

#[test]
fn a_dependency_that_dies_and_comes_back_leaves_its_dependents_alone_without_restart() {
    let yaml = "
programs:
  cache:
    cmd: /bin/cache
    starttime: 0
    backoff: off
  plain:
    cmd: /bin/plain
    starttime: 0
    depends_on: [cache]
  bound:
    cmd: /bin/bound
    starttime: 0
    depends_on: {cache: {condition: running, restart: true}}
";
    let mut w = World::new(yaml);
    let (plain, bound) = (w.pid("plain"), w.pid("bound"));
    w.exit("cache", code(1));
    // cache is restarted at once (backoff: off): bound went down with it and came back.
    assert_eq!(w.state("cache"), "RUNNING");
    assert_eq!(w.pid("plain"), plain, "plain was left alone");
    assert_eq!(w.state("bound"), "STOPPING");
    w.exit("bound", code(0));
    assert_eq!(w.state("bound"), "RUNNING");
    assert_ne!(w.pid("bound"), bound);
}

#[test]
fn restart_true_does_not_start_a_dependency_a_user_stopped() {
    let yaml = "
programs:
  cache:
    cmd: /bin/cache
    starttime: 0
  bound:
    cmd: /bin/bound
    starttime: 0
    depends_on: {cache: {condition: running, restart: true}}
";
    let mut w = World::new(yaml);
    w.request(Request::Stop(vec!["cache".into()]));
    w.exit("cache", code(0));
    w.exit("bound", code(0));
    assert_eq!(w.state("cache"), "STOPPED");
    assert_eq!(w.state("bound"), "STOPPED");
    assert_eq!(waiting_for(&mut w, "bound"), ["cache (STOPPED)"]);
    w.request(Request::Start(vec!["cache".into()]));
    assert_eq!(w.state("bound"), "RUNNING");
}

#[test]
fn healthy_waits_for_a_passing_health_check() {
    let yaml = "
programs:
  db:
    cmd: /bin/db
    starttime: 0
    healthcheck: {cmd: check, interval: 1s}
  web:
    cmd: /bin/web
    starttime: 0
    depends_on: {db: {condition: healthy}}
";
    let mut w = World::new(yaml);
    assert_eq!(w.state("db"), "RUNNING");
    assert_eq!(
        waiting_for(&mut w, "web"),
        ["db (RUNNING, not yet healthy)"]
    );
    w.advance(secs(1.0));
    let (process, pid) = w.probes.last().cloned().expect("a health check runs");
    w.handle(Event::ProbeDone {
        process,
        pid,
        result: Ok("ok".into()),
    });
    assert_eq!(w.state("web"), "RUNNING");
}

#[test]
fn exited_waits_for_an_expected_exit() {
    let yaml = "
programs:
  migrate:
    cmd: /bin/migrate
    starttime: 0
    autorestart: never
  app:
    cmd: /bin/app
    starttime: 0
    depends_on: {migrate: {condition: exited}}
  other:
    cmd: /bin/other
    starttime: 0
    autorestart: never
  held:
    cmd: /bin/held
    starttime: 0
    depends_on: {other: {condition: exited}}
";
    let mut w = World::new(yaml);
    assert_eq!(waiting_for(&mut w, "app"), ["migrate (RUNNING)"]);
    w.exit("migrate", code(0));
    assert_eq!(w.state("app"), "RUNNING");
    w.exit("other", code(3));
    assert_eq!(w.state("held"), "STOPPED");
    assert_eq!(
        waiting_for(&mut w, "held"),
        ["other (EXITED with an unexpected code)"]
    );
}

#[test]
fn stopping_a_waiting_process_ends_its_wait() {
    let mut w = World::new(GRAPH);
    let reply = w.ask(Request::Stop(vec!["top".into()]));
    assert_eq!(outcomes(&reply), ["top: stopped"]);
    w.advance(secs(5.0));
    assert_eq!(w.state("left"), "RUNNING");
    assert_eq!(
        w.state("top"),
        "STOPPED",
        "a stopped process does not start"
    );
    assert!(waiting_for(&mut w, "top").is_empty());
}

#[test]
fn exit_when_done_is_not_held_by_a_process_that_can_never_start() {
    let yaml = "
exit_when_done: true
programs:
  db:
    cmd: /bin/db
    starttime: 1
    startretries: 0
  web:
    cmd: /bin/web
    depends_on: [db]
";
    let mut w = World::new(yaml);
    w.exit("db", code(1));
    assert!(w.exited, "{:?}", w.logs);
}
