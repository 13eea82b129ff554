//! The contender: one task per daemon that holds this node's lease, contends for singletons,
//! and reports what it sees (see the crate's theory of operation).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{self, error::TryRecvError, UnboundedReceiver, UnboundedSender};
use tokio::time::{sleep_until, timeout, Instant};

use crate::error::{SettingsError, StoreError};
use crate::etcd::EtcdStore;
use crate::keys::{to_json, Keys, Kind, NodeValue, SingletonValue};
use crate::store::{Acquired, Change, Changes, Entry, LeaseId, LeaseStore};

/// The shortest ttl: etcd counts leases in whole seconds.
pub const MIN_TTL: Duration = Duration::from_secs(1);

/// How long [`Command::Shutdown`] may spend revoking the lease.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// The first retry after a failure is immediate; then 100 ms, doubling up to 1 s.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);

/// A watch that ends is replaced at most this often, so a store that ends every watch at once
/// is not asked for a list in a tight loop.
const MIN_WATCH_LIFETIME: Duration = Duration::from_secs(1);

/// What the contender needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The store's endpoints (`http://host:2379`), all of one cluster.
    pub endpoints: Vec<String>,
    /// This node's name, unique in the cluster: its presence key, and the holder named in the
    /// singleton keys it holds.
    pub node: String,
    /// Where this cluster's keys live, e.g. `/taskmaster`.
    pub prefix: String,
    /// The lease's time to live: a node that stops renewing loses everything it holds this long
    /// after its last renewal. Renewals go every ttl/3, and each store call may take ttl/3.
    pub ttl: Duration,
}

impl Settings {
    /// Whether [`run`] can work with these settings (the endpoints are [`spawn_etcd`]'s concern).
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.ttl < MIN_TTL {
            return Err(SettingsError::TtlTooShort(self.ttl));
        }
        if self.node.is_empty() || self.node.contains('/') {
            return Err(SettingsError::BadNodeName(self.node.clone()));
        }
        if self.prefix.trim_matches('/').is_empty() {
            return Err(SettingsError::EmptyPrefix(self.prefix.clone()));
        }
        Ok(())
    }

    /// The renewal period, and the bound of every store call: a third of the ttl.
    pub fn request_timeout(&self) -> Duration {
        self.ttl / 3
    }
}

/// What the daemon asks of the contender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Try to hold `program`'s key, now and whenever it becomes free.
    Contend(String),
    /// Stop trying; release the key if held (no report follows).
    Withdraw(String),
    /// Release everything now (revoke the lease), report [`Report::LeaseLost`], and end the task.
    Shutdown,
}

/// What the contender tells the daemon.
///
/// A program may run here while it is [`Held`](Report::Held) (and not reported otherwise
/// since) **and** the caller's clock reads less than `sent + ttl` of the last
/// [`Renewed`](Report::Renewed): the store cannot forget the lease before then, whatever this
/// task hears or fails to hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The lease is granted or renewed; the request that did it was sent at `sent`, a reading of
    /// the caller's clock taken *before* the request was sent: the store cannot forget the lease
    /// before `sent + ttl`.
    Renewed { sent: u64 },
    /// The lease is gone (the store said so, or this task shut down): nothing is held here any
    /// more. A new lease follows (with a `Renewed`), unless shutting down.
    LeaseLost { why: String },
    /// This node now holds `program`; `term` is the key's create revision, the fencing token:
    /// each new holder's term is higher than every earlier holder's.
    Held {
        program: String,
        term: i64,
        since_unix: i64,
    },
    /// Someone else holds `program` (`holder` is its node), or nobody does (`holder` None). After
    /// a `Held` of the same program it means: held here no longer, stop it now.
    HeldElsewhere {
        program: String,
        holder: Option<String>,
        since_unix: Option<i64>,
        term: Option<i64>,
    },
    /// The store cannot be reached (said once per outage, with the first error).
    Unreachable { why: String },
    /// The store answers again after an `Unreachable`.
    Reachable,
    /// The nodes alive (with a presence key) and the singletons each holds, sorted by name;
    /// reported whenever that changes.
    Nodes(Vec<NodeInfo>),
}

/// A node of the cluster as its keys show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    /// When it joined (got its current lease), if its presence key says so readably.
    pub since_unix: Option<i64>,
    /// The singletons it holds, sorted.
    pub holds: Vec<String>,
}

/// Runs the contender until [`Command::Shutdown`] or until every command sender is dropped
/// (which shuts down the same way). Errors only on unusable settings, before doing anything.
///
/// `store_factory` makes a new connection to the store: the contender calls it at start and
/// after every failed or timed-out call, never reusing a connection that failed. `clock` is the
/// caller's monotonic clock; its readings only appear in [`Report::Renewed`].
pub async fn run<S, F, Fut>(
    store_factory: F,
    settings: Settings,
    clock: fn() -> u64,
    commands: UnboundedReceiver<Command>,
    reports: UnboundedSender<Report>,
) -> Result<(), SettingsError>
where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    settings.check()?;
    Contender::new(store_factory, &settings, clock, commands, reports)
        .run()
        .await;
    Ok(())
}

/// Spawns [`run`] with an [`EtcdStore`] on the current tokio runtime (`tokio::spawn`) and
/// returns its command sender. The task ends after [`Command::Shutdown`]; its last report is a
/// [`Report::LeaseLost`]. Call it from within a tokio runtime, as `tokio::spawn` requires.
pub fn spawn_etcd(
    settings: Settings,
    clock: fn() -> u64,
    reports: UnboundedSender<Report>,
) -> Result<(UnboundedSender<Command>, tokio::task::JoinHandle<()>), SettingsError> {
    settings.check()?;
    if settings.endpoints.is_empty() {
        return Err(SettingsError::NoEndpoints);
    }
    let (commands, receiver) = mpsc::unbounded_channel();
    let endpoints = settings.endpoints.clone();
    let request_timeout = settings.request_timeout();
    let store_factory = move || {
        let endpoints = endpoints.clone();
        async move { EtcdStore::connect(&endpoints, request_timeout).await }
    };
    let task = tokio::spawn(async move {
        // The settings were checked above: `run` cannot fail on them.
        let _ = run(store_factory, settings, clock, receiver, reports).await;
    });
    Ok((commands, task))
}

/// The lease this node holds, as far as it knows.
struct Lease {
    id: LeaseId,
    /// The next renewal: a period after the last acknowledged one was sent.
    renew_at: Instant,
    /// When it was granted, the presence key's `since`.
    granted_unix: i64,
}

/// A program held here.
#[derive(Debug, Clone, Copy)]
struct Holding {
    /// The key's create revision.
    term: i64,
    since_unix: i64,
}

/// What a contended program's last report said, so that only changes are reported.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Held {
        term: i64,
    },
    Elsewhere {
        holder: Option<String>,
        since_unix: Option<i64>,
        term: Option<i64>,
    },
}

/// The next piece of work, in order of precedence.
enum Step {
    Connect,
    Grant,
    Presence,
    Release { program: String, revision: i64 },
    Resync,
    Acquire { program: String },
}

struct Contender<S, F> {
    store_factory: F,
    keys: Keys,
    node: String,
    ttl: Duration,
    /// ttl/3: the renewal period and the bound of each store call.
    period: Duration,
    clock: fn() -> u64,
    commands: UnboundedReceiver<Command>,
    reports: UnboundedSender<Report>,

    /// The connection; None after a failure, until the next `Connect` step.
    store: Option<S>,
    /// An `Unreachable` has been reported and no `Reachable` since.
    unreachable: bool,
    connect_at: Instant,
    retry_delay: Duration,

    lease: Option<Lease>,
    presence_missing: bool,

    watch: Option<Changes>,
    watch_opened: Instant,
    /// When to list and watch again; None while the watch is in place.
    resync_at: Option<Instant>,
    /// Every key under the prefix, as the last list and the watch since show it.
    view: BTreeMap<String, Entry>,

    /// Programs contended for.
    wanted: BTreeSet<String>,
    /// Programs held here. Always a subset of `wanted`.
    held: BTreeMap<String, Holding>,
    /// Programs to try to acquire.
    to_acquire: BTreeSet<String>,
    /// Programs withdrawn while held whose key may still be in the store, with its revision.
    to_release: BTreeMap<String, i64>,

    reported: BTreeMap<String, Status>,
    reported_nodes: Option<Vec<NodeInfo>>,
    shutting_down: bool,
}

impl<S, F, Fut> Contender<S, F>
where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    fn new(
        store_factory: F,
        settings: &Settings,
        clock: fn() -> u64,
        commands: UnboundedReceiver<Command>,
        reports: UnboundedSender<Report>,
    ) -> Self {
        let now = Instant::now();
        Contender {
            store_factory,
            keys: Keys::new(&settings.prefix),
            node: settings.node.clone(),
            ttl: settings.ttl,
            period: settings.request_timeout(),
            clock,
            commands,
            reports,
            store: None,
            unreachable: false,
            connect_at: now,
            retry_delay: Duration::ZERO,
            lease: None,
            presence_missing: true,
            watch: None,
            watch_opened: now,
            resync_at: Some(now),
            view: BTreeMap::new(),
            wanted: BTreeSet::new(),
            held: BTreeMap::new(),
            to_acquire: BTreeSet::new(),
            to_release: BTreeMap::new(),
            reported: BTreeMap::new(),
            reported_nodes: None,
            shutting_down: false,
        }
    }

    /// The event loop: waits for the renewal, a command, a change or the next step, and does
    /// one thing at a time. Renewal comes first: no amount of other work can delay it by more
    /// than the one store call in progress.
    async fn run(mut self) {
        while !self.shutting_down {
            let renew_at = match (&self.store, &self.lease) {
                (Some(_), Some(lease)) => Some(lease.renew_at),
                _ => None,
            };
            let (step_at, step) = match self.next_step(Instant::now()) {
                Some((at, step)) => (Some(at), Some(step)),
                None => (None, None),
            };
            tokio::select! {
                biased;
                () = sleep_until_if_some(renew_at) => self.renew().await,
                command = self.commands.recv() => self.command(command),
                change = next_change(&mut self.watch) => self.change(change),
                () = sleep_until_if_some(step_at) => {
                    if let Some(step) = step {
                        self.step(step).await;
                    }
                }
            }
        }
        self.shut_down().await;
    }

    fn next_step(&self, now: Instant) -> Option<(Instant, Step)> {
        if self.store.is_none() {
            return Some((self.connect_at, Step::Connect));
        }
        let Some(_) = &self.lease else {
            return Some((now, Step::Grant));
        };
        if self.presence_missing {
            return Some((now, Step::Presence));
        }
        // Releases before acquisitions: a program withdrawn and contended again is released,
        // then acquired afresh with a new term.
        if let Some((program, revision)) = self.to_release.first_key_value() {
            return Some((
                now,
                Step::Release {
                    program: program.clone(),
                    revision: *revision,
                },
            ));
        }
        match self.resync_at {
            Some(at) if at <= now => return Some((now, Step::Resync)),
            _ => {}
        }
        if let Some(program) = self.to_acquire.first() {
            return Some((
                now,
                Step::Acquire {
                    program: program.clone(),
                },
            ));
        }
        self.resync_at.map(|at| (at, Step::Resync))
    }

    async fn step(&mut self, step: Step) {
        match step {
            Step::Connect => self.connect().await,
            Step::Grant => self.grant().await,
            Step::Presence => self.put_presence().await,
            Step::Release { program, revision } => self.release(program, revision).await,
            Step::Resync => self.resync().await,
            Step::Acquire { program } => self.acquire(program).await,
        }
    }

    fn command(&mut self, command: Option<Command>) {
        match command {
            Some(Command::Contend(program)) => {
                self.reported.remove(&program);
                match self.held.get(&program) {
                    // Asked again: every Contend gets an answer.
                    Some(holding) => {
                        let Holding { term, since_unix } = *holding;
                        self.reported.insert(program.clone(), Status::Held { term });
                        self.report(Report::Held {
                            program: program.clone(),
                            term,
                            since_unix,
                        });
                    }
                    None => {
                        self.to_acquire.insert(program.clone());
                    }
                }
                self.wanted.insert(program);
            }
            Some(Command::Withdraw(program)) => {
                self.wanted.remove(&program);
                self.to_acquire.remove(&program);
                self.reported.remove(&program);
                if let Some(holding) = self.held.remove(&program) {
                    self.to_release.insert(program, holding.term);
                }
            }
            // Nobody can send commands any more: the daemon is gone, and so is the reason to
            // hold anything.
            Some(Command::Shutdown) | None => self.shutting_down = true,
        }
    }

    /// Applies the commands already sent, before reporting a `Held` that one of them may undo.
    fn apply_pending_commands(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.command(Some(command)),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => return self.command(None),
            }
        }
    }

    async fn connect(&mut self) {
        match bounded(self.period, "connect", (self.store_factory)()).await {
            Ok(store) => {
                self.store = Some(store);
                let now = Instant::now();
                // Whether the lease outlived the outage is the first thing to learn.
                if let Some(lease) = &mut self.lease {
                    lease.renew_at = now;
                }
                self.resync_at = Some(now);
            }
            Err(error) => self.disconnect(error),
        }
    }

    async fn renew(&mut self) {
        let (Some(store), Some(lease)) = (self.store.as_mut(), self.lease.as_ref()) else {
            return;
        };
        let lease_id = lease.id;
        let started = Instant::now();
        let sent = (self.clock)();
        match bounded(self.period, "lease renewal", store.renew(lease_id)).await {
            Ok(true) => {
                if let Some(lease) = &mut self.lease {
                    lease.renew_at = started + self.period;
                }
                self.answered();
                self.report(Report::Renewed { sent });
            }
            Ok(false) => {
                self.answered();
                self.lease_lost(format!(
                    "the store no longer knows lease {lease_id} (expired or revoked)"
                ));
            }
            Err(error) => self.disconnect(error),
        }
    }

    async fn grant(&mut self) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let started = Instant::now();
        let sent = (self.clock)();
        match bounded(self.period, "lease grant", store.grant(self.ttl)).await {
            Ok(id) => {
                self.lease = Some(Lease {
                    id,
                    renew_at: started + self.period,
                    granted_unix: unix_now(),
                });
                self.presence_missing = true;
                self.answered();
                self.report(Report::Renewed { sent });
            }
            Err(error) => self.disconnect(error),
        }
    }

    async fn put_presence(&mut self) {
        let (Some(store), Some(lease)) = (self.store.as_mut(), self.lease.as_ref()) else {
            return;
        };
        let key = self.keys.node(&self.node);
        let value = to_json(&NodeValue {
            since: lease.granted_unix,
        });
        match bounded(
            self.period,
            "put presence",
            store.put(&key, &value, lease.id),
        )
        .await
        {
            Ok(()) => {
                self.presence_missing = false;
                self.answered();
            }
            Err(error) => self.failed(error),
        }
    }

    async fn release(&mut self, program: String, revision: i64) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let key = self.keys.singleton(&program);
        match bounded(self.period, "release", store.release(&key, revision)).await {
            Ok(()) => {
                if self.to_release.get(&program) == Some(&revision) {
                    self.to_release.remove(&program);
                }
                self.answered();
            }
            Err(error) => self.failed(error),
        }
    }

    /// Lists the prefix afresh, reports what changed, and watches from there.
    async fn resync(&mut self) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let listed = bounded(self.period, "list", store.list(self.keys.root())).await;
        let (entries, revision) = match listed {
            Ok(listed) => listed,
            Err(error) => return self.failed(error),
        };
        self.answered();
        self.view = entries
            .into_iter()
            .map(|entry| (entry.key.clone(), entry))
            .collect();

        // A held key that is gone, or was created again since, is held here no longer.
        let keys = &self.keys;
        let view = &self.view;
        self.held.retain(|program, holding| {
            view.get(&keys.singleton(program))
                .map(|entry| entry.create_revision)
                == Some(holding.term)
        });
        // Every singleton known (contended for, in the store, or reported before), so that a
        // holder gone meanwhile is said too.
        let in_store = self
            .view
            .keys()
            .filter_map(|key| match self.keys.kind(key) {
                Some(Kind::Singleton(program)) => Some(program.to_owned()),
                _ => None,
            });
        let known: BTreeSet<String> = in_store
            .chain(self.wanted.iter().cloned())
            .chain(self.reported.keys().cloned())
            .filter(|program| !self.held.contains_key(program))
            .collect();
        for program in known {
            let key_free = !self.view.contains_key(&self.keys.singleton(&program));
            if key_free && self.wanted.contains(&program) {
                self.to_acquire.insert(program.clone());
            }
            self.report_elsewhere(&program);
        }
        if !self.view.contains_key(&self.keys.node(&self.node)) {
            self.presence_missing = true;
        }
        self.report_nodes();

        let Some(store) = self.store.as_mut() else {
            return;
        };
        match bounded(
            self.period,
            "watch",
            store.watch(self.keys.root(), revision),
        )
        .await
        {
            Ok(changes) => {
                self.watch = Some(changes);
                self.watch_opened = Instant::now();
                self.resync_at = None;
            }
            Err(error) => self.failed(error),
        }
    }

    async fn acquire(&mut self, program: String) {
        let (Some(store), Some(lease)) = (self.store.as_mut(), self.lease.as_ref()) else {
            return;
        };
        self.to_acquire.remove(&program);
        let key = self.keys.singleton(&program);
        let since_unix = unix_now();
        let value = to_json(&SingletonValue {
            node: self.node.clone(),
            since: since_unix,
        });
        match bounded(
            self.period,
            "acquire",
            store.acquire(&key, &value, lease.id),
        )
        .await
        {
            Ok(Acquired::Held { revision }) => {
                self.answered();
                self.view.insert(
                    key.clone(),
                    Entry {
                        key,
                        value,
                        create_revision: revision,
                    },
                );
                self.apply_pending_commands();
                if self.wanted.contains(&program) && !self.shutting_down {
                    self.held.insert(
                        program.clone(),
                        Holding {
                            term: revision,
                            since_unix,
                        },
                    );
                    self.reported
                        .insert(program.clone(), Status::Held { term: revision });
                    self.report(Report::Held {
                        program,
                        term: revision,
                        since_unix,
                    });
                } else {
                    // Withdrawn while the request was on its way: never reported, given back.
                    self.to_release.insert(program, revision);
                }
                self.report_nodes();
            }
            Ok(Acquired::Taken { value, revision }) => {
                self.answered();
                self.apply_put(Entry {
                    key,
                    value,
                    create_revision: revision,
                });
            }
            Err(error) => {
                if self.wanted.contains(&program) {
                    self.to_acquire.insert(program);
                }
                self.failed(error);
            }
        }
    }

    fn change(&mut self, change: Option<Result<Change, StoreError>>) {
        match change {
            Some(Ok(Change::Put(entry))) => self.apply_put(entry),
            Some(Ok(Change::Delete { key, revision })) => self.apply_delete(key, revision),
            // The watch ended: list again (that also finds out whether the store still answers).
            Some(Err(_)) | None => {
                self.watch = None;
                self.resync_at = Some(Instant::now().max(self.watch_opened + MIN_WATCH_LIFETIME));
            }
        }
    }

    fn apply_put(&mut self, entry: Entry) {
        // A change older than what the view holds (an acquisition's answer can overtake the
        // watch) is from an earlier life of the key.
        if let Some(known) = self.view.get(&entry.key) {
            if known.create_revision > entry.create_revision {
                return;
            }
        }
        let program = match self.keys.kind(&entry.key) {
            Some(Kind::Singleton(program)) => Some(program.to_owned()),
            _ => None,
        };
        let revision = entry.create_revision;
        self.view.insert(entry.key.clone(), entry);
        if let Some(program) = program {
            match self.held.get(&program) {
                Some(holding) if holding.term == revision => {}
                Some(_) => {
                    self.held.remove(&program);
                    self.report_elsewhere(&program);
                }
                // Every singleton's holder is reported, contended for or not: a node standing
                // by, or one whose user stopped it, still shows who runs it.
                None => self.report_elsewhere(&program),
            }
        }
        self.report_nodes();
    }

    fn apply_delete(&mut self, key: String, revision: i64) {
        if let Some(known) = self.view.get(&key) {
            if known.create_revision > revision {
                return;
            }
        }
        self.view.remove(&key);
        match self.keys.kind(&key) {
            Some(Kind::Singleton(program)) => {
                let program = program.to_owned();
                if self
                    .held
                    .get(&program)
                    .is_some_and(|holding| holding.term <= revision)
                {
                    self.held.remove(&program);
                }
                self.report_elsewhere(&program);
                if self.wanted.contains(&program) {
                    self.to_acquire.insert(program);
                }
            }
            Some(Kind::Node(node)) if node == self.node => self.presence_missing = true,
            _ => {}
        }
        self.report_nodes();
    }

    /// The store answered: the outage, if any, is over.
    fn answered(&mut self) {
        self.retry_delay = Duration::ZERO;
        if self.unreachable {
            self.unreachable = false;
            self.report(Report::Reachable);
        }
    }

    fn failed(&mut self, error: StoreError) {
        match error {
            StoreError::LeaseGone(lease) => {
                self.answered();
                self.lease_lost(format!(
                    "the store no longer knows lease {lease} (expired or revoked)"
                ));
            }
            error => self.disconnect(error),
        }
    }

    /// Drops the connection (and its watch) after a failed or timed-out call; the next
    /// `Connect` step makes a new one.
    fn disconnect(&mut self, error: StoreError) {
        self.store = None;
        self.watch = None;
        self.resync_at = Some(Instant::now());
        self.connect_at = Instant::now() + self.retry_delay;
        self.retry_delay = (self.retry_delay * 2).clamp(FIRST_RETRY_DELAY, MAX_RETRY_DELAY);
        if !self.unreachable {
            self.unreachable = true;
            self.report(Report::Unreachable {
                why: error.to_string(),
            });
        }
    }

    /// The lease is gone and every key on it: start again with a new one.
    fn lease_lost(&mut self, why: String) {
        self.lease = None;
        self.held.clear();
        self.to_release.clear();
        self.to_acquire = self.wanted.clone();
        // Every contended program is reported afresh under the new lease.
        self.reported.clear();
        self.report(Report::LeaseLost { why });
    }

    /// Revokes the lease, within [`SHUTDOWN_TIMEOUT`] all told, and says so.
    async fn shut_down(&mut self) {
        let why = match self.lease.take() {
            None => "shut down".to_owned(),
            Some(lease) => {
                let store = &mut self.store;
                let store_factory = &mut self.store_factory;
                let revoke = async move {
                    if store.is_none() {
                        *store = Some(store_factory().await?);
                    }
                    match store.as_mut() {
                        Some(store) => store.revoke(lease.id).await,
                        None => Ok(()),
                    }
                };
                match timeout(SHUTDOWN_TIMEOUT, revoke).await {
                    Ok(Ok(())) => format!("shut down: lease {} revoked", lease.id),
                    Ok(Err(error)) => format!(
                        "shut down; revoking lease {} failed ({error}): the store forgets it within the ttl",
                        lease.id
                    ),
                    Err(_) => format!(
                        "shut down; revoking lease {} took over {SHUTDOWN_TIMEOUT:?}: the store forgets it within the ttl",
                        lease.id
                    ),
                }
            }
        };
        self.report(Report::LeaseLost { why });
    }

    /// Reports a not-held program's status from the view, if it changed.
    fn report_elsewhere(&mut self, program: &str) {
        let status = match self.view.get(&self.keys.singleton(program)) {
            None => Status::Elsewhere {
                holder: None,
                since_unix: None,
                term: None,
            },
            Some(entry) => match serde_json::from_str::<SingletonValue>(&entry.value) {
                Ok(value) => Status::Elsewhere {
                    holder: Some(value.node),
                    since_unix: Some(value.since),
                    term: Some(entry.create_revision),
                },
                // Held, by someone who wrote something else: show what.
                Err(_) => Status::Elsewhere {
                    holder: Some(entry.value.clone()),
                    since_unix: None,
                    term: Some(entry.create_revision),
                },
            },
        };
        if self.reported.get(program) == Some(&status) {
            return;
        }
        self.reported.insert(program.to_owned(), status.clone());
        if let Status::Elsewhere {
            holder,
            since_unix,
            term,
        } = status
        {
            self.report(Report::HeldElsewhere {
                program: program.to_owned(),
                holder,
                since_unix,
                term,
            });
        }
    }

    fn report_nodes(&mut self) {
        let mut nodes: BTreeMap<&str, NodeInfo> = BTreeMap::new();
        for entry in self.view.values() {
            if let Some(Kind::Node(name)) = self.keys.kind(&entry.key) {
                let since_unix = serde_json::from_str::<NodeValue>(&entry.value)
                    .ok()
                    .map(|value| value.since);
                nodes.insert(
                    name,
                    NodeInfo {
                        name: name.to_owned(),
                        since_unix,
                        holds: Vec::new(),
                    },
                );
            }
        }
        for entry in self.view.values() {
            if let Some(Kind::Singleton(program)) = self.keys.kind(&entry.key) {
                let Ok(value) = serde_json::from_str::<SingletonValue>(&entry.value) else {
                    continue;
                };
                if let Some(node) = nodes.get_mut(value.node.as_str()) {
                    node.holds.push(program.to_owned());
                }
            }
        }
        let nodes: Vec<NodeInfo> = nodes.into_values().collect();
        if self.reported_nodes.as_ref() != Some(&nodes) {
            self.reported_nodes = Some(nodes.clone());
            self.report(Report::Nodes(nodes));
        }
    }

    fn report(&mut self, report: Report) {
        // Nobody listens any more: holding singletons for nobody is pointless; give them back.
        if self.reports.send(report).is_err() {
            self.shutting_down = true;
        }
    }
}

/// A store call, bounded: a frozen connection must cost a timeout, never the task.
async fn bounded<T>(
    limit: Duration,
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    timeout(limit, call)
        .await
        .unwrap_or(Err(StoreError::TimedOut {
            operation,
            after: limit,
        }))
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_if_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The watch's next change, or nothing ever when there is no watch.
async fn next_change(watch: &mut Option<Changes>) -> Option<Result<Change, StoreError>> {
    match watch {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
