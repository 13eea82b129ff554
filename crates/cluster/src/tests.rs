//! The contender against the in-memory store, on tokio's paused clock: ttl 3 s, so renewals go
//! every second and each call may take a second.

use std::cell::Cell;
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};

use crate::testing::{Fault, MemoryCluster};
use crate::{run, Command, NodeInfo, Report, Settings};

const TTL: Duration = Duration::from_secs(3);

thread_local! {
    /// Where the test clock's zero is; the current-thread test runtime runs on this thread.
    static CLOCK_ZERO: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The caller's clock: milliseconds of tokio's (paused) time since the test began.
fn test_clock() -> u64 {
    let zero = CLOCK_ZERO.with(|zero| {
        let value = zero.get().unwrap_or_else(Instant::now);
        zero.set(Some(value));
        value
    });
    u64::try_from(zero.elapsed().as_millis()).unwrap_or(u64::MAX)
}

struct Node {
    commands: UnboundedSender<Command>,
    reports: UnboundedReceiver<Report>,
    task: JoinHandle<()>,
}

fn start(cluster: &MemoryCluster, name: &str) -> Node {
    test_clock();
    let settings = Settings {
        endpoints: Vec::new(),
        node: name.to_owned(),
        prefix: "/tm".to_owned(),
        ttl: TTL,
    };
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let (report_sender, reports) = mpsc::unbounded_channel();
    let cluster = cluster.clone();
    let client = name.to_owned();
    let task = tokio::spawn(async move {
        let store_factory = move || cluster.connect(&client);
        let outcome = run(
            store_factory,
            settings,
            test_clock,
            command_receiver,
            report_sender,
        )
        .await;
        assert_eq!(outcome, Ok(()));
    });
    Node {
        commands,
        reports,
        task,
    }
}

impl Node {
    fn send(&self, command: Command) {
        assert!(self.commands.send(command).is_ok(), "the contender is gone");
    }

    /// Reports until one matches, within `within`; panics with those seen otherwise.
    async fn wait_for(
        &mut self,
        within: Duration,
        wanted: impl Fn(&Report) -> bool,
    ) -> (Report, Vec<Report>) {
        let mut seen = Vec::new();
        let deadline = Instant::now() + within;
        loop {
            match timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.reports.recv(),
            )
            .await
            {
                Ok(Some(report)) if wanted(&report) => return (report, seen),
                Ok(Some(report)) => seen.push(report),
                Ok(None) => panic!("reports ended; seen: {seen:#?}"),
                Err(_) => panic!("no such report within {within:?}; seen: {seen:#?}"),
            }
        }
    }

    /// Every report of the next `period`.
    async fn reports_during(&mut self, period: Duration) -> Vec<Report> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + period;
        while let Ok(Some(report)) = timeout(
            deadline.saturating_duration_since(Instant::now()),
            self.reports.recv(),
        )
        .await
        {
            seen.push(report);
        }
        seen
    }

    async fn held(&mut self, program: &str) -> i64 {
        let (report, _) = self
            .wait_for(
                TTL * 3,
                |report| matches!(report, Report::Held { program: held, .. } if held == program),
            )
            .await;
        match report {
            Report::Held { term, .. } => term,
            _ => unreachable!(),
        }
    }
}

fn is_renewed(report: &Report) -> bool {
    matches!(report, Report::Renewed { .. })
}

fn held_elsewhere_by(program: &str, node: &str) -> impl Fn(&Report) -> bool {
    let (program, node) = (program.to_owned(), node.to_owned());
    move |report| matches!(report, Report::HeldElsewhere { program: p, holder: Some(h), .. } if *p == program && *h == node)
}

/// Two contenders for `web` on `cluster`: `a` holds it (in the term returned), `b` stands by.
async fn a_holds_and_b_stands_by(cluster: &MemoryCluster) -> (Node, Node, i64) {
    let mut a = start(cluster, "a");
    let mut b = start(cluster, "b");
    a.send(Command::Contend("web".into()));
    let term = a.held("web").await;
    b.send(Command::Contend("web".into()));
    b.wait_for(TTL, held_elsewhere_by("web", "a")).await;
    (a, b, term)
}

#[tokio::test(start_paused = true)]
async fn of_two_contenders_one_holds_and_the_other_stands_by() {
    let cluster = MemoryCluster::new();
    let mut a = start(&cluster, "a");
    a.send(Command::Contend("web".into()));
    let term = a.held("web").await;

    let mut b = start(&cluster, "b");
    b.send(Command::Contend("web".into()));
    let (report, seen) = b.wait_for(TTL, held_elsewhere_by("web", "a")).await;
    assert!(
        matches!(report, Report::HeldElsewhere { term: Some(t), since_unix: Some(_), .. } if t == term),
        "{report:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|report| matches!(report, Report::Held { .. })),
        "{seen:?}"
    );

    let (report, _) = b
        .wait_for(
            TTL,
            |report| matches!(report, Report::Nodes(nodes) if nodes.len() == 2),
        )
        .await;
    let Report::Nodes(nodes) = report else {
        unreachable!()
    };
    assert_eq!(nodes[0].name, "a");
    assert_eq!(nodes[0].holds, vec!["web".to_owned()]);
    assert_eq!(
        nodes[1],
        NodeInfo {
            name: "b".into(),
            since_unix: nodes[1].since_unix,
            holds: Vec::new()
        }
    );
    assert!(nodes[1].since_unix.is_some());
}

#[tokio::test(start_paused = true)]
async fn withdrawing_hands_the_singleton_to_the_other_node() {
    let cluster = MemoryCluster::new();
    let (mut a, mut b, first_term) = a_holds_and_b_stands_by(&cluster).await;

    let withdrawn = Instant::now();
    a.send(Command::Withdraw("web".into()));
    let second_term = b.held("web").await;
    assert!(second_term > first_term, "{second_term} > {first_term}");
    // Handed over through the watch, not by waiting for a lease to expire.
    assert!(withdrawn.elapsed() < TTL / 3, "{:?}", withdrawn.elapsed());
    // a no longer contends, so it takes nothing; it still says who holds web.
    let (_, seen) = a.wait_for(TTL, held_elsewhere_by("web", "b")).await;
    assert!(
        !seen
            .iter()
            .any(|report| matches!(report, Report::Held { .. })),
        "{seen:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn renewals_go_every_third_of_the_ttl_with_the_clock_read_before_the_call() {
    let cluster = MemoryCluster::new();
    // Every call takes 100 ms: a `sent` read after the call would be 100 ms late.
    cluster.set_latency(Duration::from_millis(100));
    let mut a = start(&cluster, "a");
    let mut sents = Vec::new();
    while sents.len() < 4 {
        if let (Report::Renewed { sent }, _) = a.wait_for(TTL, is_renewed).await {
            sents.push(sent);
        }
    }
    // Connect 0-100 ms, grant sent at 100; renewals a third of the ttl after each send.
    assert_eq!(sents, vec![100, 1100, 2100, 3100]);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_stops_renewals_and_is_reported_unreachable_once() {
    let cluster = MemoryCluster::new();
    let (mut a, mut b, _) = a_holds_and_b_stands_by(&cluster).await;
    let (Report::Renewed { sent: last_sent }, _) = a.wait_for(TTL, is_renewed).await else {
        unreachable!()
    };

    cluster.set_fault("a", Some(Fault::Hang));
    let reports = a.reports_during(TTL * 4).await;
    let unreachable = reports
        .iter()
        .filter(|report| matches!(report, Report::Unreachable { .. }))
        .count();
    assert_eq!(unreachable, 1, "{reports:#?}");
    assert!(!reports.iter().any(is_renewed), "{reports:#?}");
    assert!(
        !reports
            .iter()
            .any(|report| matches!(report, Report::Held { .. })),
        "{reports:#?}"
    );
    // The task is not stuck: it keeps trying new connections, each bounded by a third of the ttl.
    let calls = cluster.calls("a");
    sleep(TTL).await;
    assert!(
        cluster.calls("a") > calls,
        "no new attempts while the store hangs"
    );

    // The other node takes over once a's lease has expired: not before last_sent + ttl.
    let (_, _) = b
        .wait_for(TTL, |report| matches!(report, Report::Held { .. }))
        .await;
    assert!(test_clock() >= last_sent + 3000);

    // a comes back: its lease is gone, it says so, and stands by.
    cluster.set_fault("a", None);
    let (_, seen) = a
        .wait_for(TTL * 2, |report| matches!(report, Report::LeaseLost { .. }))
        .await;
    assert!(seen.contains(&Report::Reachable), "{seen:#?}");
    a.wait_for(TTL, is_renewed).await;
    a.wait_for(TTL, held_elsewhere_by("web", "b")).await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_is_reported_once_and_retried_with_backoff() {
    let cluster = MemoryCluster::new();
    let mut a = start(&cluster, "a");
    a.wait_for(TTL, is_renewed).await;
    cluster.set_fault("a", Some(Fault::Fail));
    let before = cluster.calls("a");
    let reports = a.reports_during(Duration::from_secs(10)).await;
    assert_eq!(
        reports
            .iter()
            .filter(|report| matches!(report, Report::Unreachable { .. }))
            .count(),
        1,
        "{reports:#?}"
    );
    // Backing off up to a second between attempts: a few per second, not a busy loop.
    let attempts = cluster.calls("a") - before;
    assert!((8..=20).contains(&attempts), "{attempts} attempts in 10 s");

    // Back after more than a ttl: the lease expired meanwhile.
    cluster.set_fault("a", None);
    let (_, seen) = a.wait_for(TTL, is_renewed).await;
    assert_eq!(seen.first(), Some(&Report::Reachable), "{seen:#?}");
    assert!(
        matches!(seen.get(1), Some(Report::LeaseLost { .. })),
        "{seen:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_is_reported_then_the_singleton_is_held_again() {
    let cluster = MemoryCluster::new();
    let mut a = start(&cluster, "a");
    a.send(Command::Contend("web".into()));
    let first_term = a.held("web").await;
    let lease = cluster
        .lease_of("/tm/singletons/web")
        .expect("a's key is on a lease");

    cluster.expire(lease);
    let (_, seen) = a
        .wait_for(TTL, |report| matches!(report, Report::LeaseLost { .. }))
        .await;
    // The watch may show the key's deletion first: then "held here no longer" comes before.
    assert!(
        seen.iter().all(|report| matches!(
            report,
            Report::HeldElsewhere { holder: None, .. } | Report::Nodes(_)
        )),
        "{seen:#?}"
    );
    let (_, seen) = a
        .wait_for(TTL, |report| matches!(report, Report::Held { .. }))
        .await;
    assert!(
        seen.iter().any(is_renewed),
        "a new lease before holding again: {seen:#?}"
    );
    assert!(cluster
        .lease_of("/tm/singletons/web")
        .is_some_and(|new| new != lease));
    assert!(
        cluster
            .lease_of("/tm/nodes/a")
            .is_some_and(|new| new != lease),
        "presence is put again"
    );
    let second_term = cluster
        .entries()
        .into_iter()
        .find(|entry| entry.key == "/tm/singletons/web")
        .map(|entry| entry.create_revision);
    assert!(second_term > Some(first_term));
}

#[tokio::test(start_paused = true)]
async fn a_program_withdrawn_during_its_acquisition_is_never_reported_held() {
    let cluster = MemoryCluster::new();
    cluster.set_latency(Duration::from_millis(100));
    let mut a = start(&cluster, "a");
    // Started and idle: the renewal at 1100 ms is done by 1200 ms.
    a.wait_for(TTL, |report| {
        matches!(report, Report::Renewed { sent: 1100 })
    })
    .await;
    sleep(Duration::from_millis(300)).await;

    a.send(Command::Contend("web".into()));
    sleep(Duration::from_millis(50)).await; // the acquisition is on its way
    a.send(Command::Withdraw("web".into()));
    let reports = a.reports_during(TTL).await;
    assert!(
        !reports
            .iter()
            .any(|report| matches!(report, Report::Held { .. })),
        "{reports:#?}"
    );
    assert!(
        cluster
            .entries()
            .iter()
            .all(|entry| entry.key != "/tm/singletons/web"),
        "released"
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_watch_ends_the_contender_lists_again_and_still_sees_changes() {
    let cluster = MemoryCluster::new();
    let (a, mut b, _) = a_holds_and_b_stands_by(&cluster).await;

    cluster.end_watches("b");
    sleep(Duration::from_millis(10)).await;
    a.send(Command::Withdraw("web".into()));
    b.held("web").await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_revokes_the_lease_so_the_other_node_takes_over_at_once() {
    let cluster = MemoryCluster::new();
    let (mut a, mut b, _) = a_holds_and_b_stands_by(&cluster).await;

    let stopped = Instant::now();
    a.send(Command::Shutdown);
    let (report, _) = a
        .wait_for(TTL, |report| matches!(report, Report::LeaseLost { .. }))
        .await;
    assert!(
        matches!(&report, Report::LeaseLost { why } if why.contains("revoked")),
        "{report:?}"
    );
    assert!(a.task.await.is_ok());
    assert!(
        a.reports.recv().await.is_none(),
        "LeaseLost is the last report"
    );
    b.held("web").await;
    assert!(stopped.elapsed() < TTL / 3);
    let (report, _) = b
        .wait_for(TTL, |report| matches!(report, Report::Nodes(_)))
        .await;
    let Report::Nodes(nodes) = report else {
        unreachable!()
    };
    assert_eq!(
        nodes
            .iter()
            .map(|node| node.name.as_str())
            .collect::<Vec<_>>(),
        vec!["b"]
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_every_command_sender_shuts_down() {
    let cluster = MemoryCluster::new();
    let Node {
        commands,
        mut reports,
        task,
    } = start(&cluster, "a");
    while !matches!(reports.recv().await, Some(Report::Renewed { .. })) {}
    drop(commands);
    assert!(task.await.is_ok());
    assert!(cluster.entries().is_empty(), "{:?}", cluster.entries());
}

#[tokio::test]
async fn unusable_settings_are_refused_before_anything_happens() {
    let cluster = MemoryCluster::new();
    let (_commands, receiver) = mpsc::unbounded_channel();
    let (reports, _) = mpsc::unbounded_channel();
    let settings = Settings {
        endpoints: Vec::new(),
        node: "a/b".into(),
        prefix: "/tm".into(),
        ttl: TTL,
    };
    let outcome = run(
        || cluster.connect("a"),
        settings,
        test_clock,
        receiver,
        reports,
    )
    .await;
    assert!(
        matches!(outcome, Err(crate::SettingsError::BadNodeName(_))),
        "{outcome:?}"
    );
    assert_eq!(cluster.calls("a"), 0);
}

#[tokio::test(start_paused = true)]
async fn contending_again_for_a_held_program_reports_it_held_again() {
    let cluster = MemoryCluster::new();
    let mut a = start(&cluster, "a");
    a.send(Command::Contend("web".into()));
    let term = a.held("web").await;
    a.send(Command::Contend("web".into()));
    assert_eq!(a.held("web").await, term);
}
