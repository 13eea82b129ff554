//! An in-memory [`LeaseStore`] for tests: several contenders share one [`MemoryCluster`], each
//! through connections of its own, and a test can make one client's calls hang or fail.
//!
//! Time is tokio's, so a test on a paused clock (`#[tokio::test(start_paused = true)]`) runs
//! leases of seconds in microseconds. Leases expire lazily: any call, or
//! [`MemoryCluster::expire_due`], deletes the keys of leases past their time.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::StoreError;
use crate::store::{Acquired, Change, Changes, Entry, LeaseId, LeaseStore};

/// What a client's calls do instead of their work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never answer (a frozen connection or a partition); the client's watches go silent.
    Hang,
    /// Fail at once (connection refused); the client's watches end.
    Fail,
}

/// One shared store; clone it to share it.
#[derive(Clone, Default)]
pub struct MemoryCluster {
    world: Arc<Mutex<World>>,
}

/// A connection to a [`MemoryCluster`] on behalf of one client (a node).
pub struct MemoryStore {
    world: Arc<Mutex<World>>,
    client: String,
}

#[derive(Default)]
struct World {
    revision: i64,
    next_lease: i64,
    leases: BTreeMap<LeaseId, MemoryLease>,
    keys: BTreeMap<String, Stored>,
    /// Every change with its revision, so a watch can start in the past.
    history: Vec<(i64, Change)>,
    watchers: Vec<Watcher>,
    faults: BTreeMap<String, Fault>,
    latency: Duration,
    calls: BTreeMap<String, u64>,
}

struct MemoryLease {
    ttl: Duration,
    expires_at: Instant,
}

struct Stored {
    value: String,
    create_revision: i64,
    lease: LeaseId,
}

struct Watcher {
    client: String,
    prefix: String,
    changes: mpsc::Sender<Result<Change, StoreError>>,
}

/// How many changes a watch buffers; a watcher that falls further behind is ended, as etcd
/// ends a slow watcher.
const WATCH_BUFFER: usize = 256;

impl MemoryCluster {
    pub fn new() -> Self {
        MemoryCluster::default()
    }

    /// A new connection for `client`; it hangs or fails as the client's fault says.
    pub fn connect(
        &self,
        client: &str,
    ) -> impl Future<Output = Result<MemoryStore, StoreError>> + Send + 'static {
        let store = MemoryStore {
            world: self.world.clone(),
            client: client.to_owned(),
        };
        async move {
            store.gate("connect").await?;
            Ok(store)
        }
    }

    /// Makes `client`'s calls hang or fail from now on (`None`: work again).
    pub fn set_fault(&self, client: &str, fault: Option<Fault>) {
        let mut world = lock(&self.world);
        match fault {
            Some(fault) => {
                world.faults.insert(client.to_owned(), fault);
                if fault == Fault::Fail {
                    world.watchers.retain(|watcher| watcher.client != client);
                }
            }
            None => {
                world.faults.remove(client);
            }
        }
    }

    /// Every call of every client takes this long before it does anything.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.world).latency = latency;
    }

    /// Ends every watch of `client`, as a store does on compaction or a leader change.
    pub fn end_watches(&self, client: &str) {
        lock(&self.world)
            .watchers
            .retain(|watcher| watcher.client != client);
    }

    /// Forgets `lease` now, as if it had expired, deleting its keys.
    pub fn expire(&self, lease: LeaseId) {
        lock(&self.world).remove_lease(lease);
    }

    /// Deletes the keys of every lease past its time.
    pub fn expire_due(&self) {
        lock(&self.world).expire_due();
    }

    /// Every key, sorted.
    pub fn entries(&self) -> Vec<Entry> {
        let world = lock(&self.world);
        world
            .keys
            .iter()
            .map(|(key, stored)| world.entry(key, stored))
            .collect()
    }

    /// The lease a key is on.
    pub fn lease_of(&self, key: &str) -> Option<LeaseId> {
        lock(&self.world).keys.get(key).map(|stored| stored.lease)
    }

    /// How many calls `client` has begun (connections included).
    pub fn calls(&self, client: &str) -> u64 {
        lock(&self.world).calls.get(client).copied().unwrap_or(0)
    }
}

impl MemoryStore {
    /// Counts the call, waits out the latency, then applies the client's fault.
    async fn gate(&self, operation: &'static str) -> Result<(), StoreError> {
        let latency = {
            let mut world = lock(&self.world);
            *world.calls.entry(self.client.clone()).or_default() += 1;
            world.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let fault = lock(&self.world).faults.get(&self.client).copied();
        match fault {
            None => Ok(()),
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::Fail) => Err(StoreError::Failed {
                operation,
                message: "injected failure".into(),
            }),
        }
    }

    /// The world, after its due expiries.
    fn world(&self) -> MutexGuard<'_, World> {
        let mut world = lock(&self.world);
        world.expire_due();
        world
    }
}

impl LeaseStore for MemoryStore {
    async fn grant(&mut self, ttl: Duration) -> Result<LeaseId, StoreError> {
        self.gate("grant").await?;
        let mut world = self.world();
        world.next_lease += 1;
        let lease = LeaseId(world.next_lease);
        world.leases.insert(
            lease,
            MemoryLease {
                ttl,
                expires_at: Instant::now() + ttl,
            },
        );
        Ok(lease)
    }

    async fn renew(&mut self, lease: LeaseId) -> Result<bool, StoreError> {
        self.gate("renew").await?;
        let mut world = self.world();
        Ok(match world.leases.get_mut(&lease) {
            Some(known) => {
                known.expires_at = Instant::now() + known.ttl;
                true
            }
            None => false,
        })
    }

    async fn acquire(
        &mut self,
        key: &str,
        value: &str,
        lease: LeaseId,
    ) -> Result<Acquired, StoreError> {
        self.gate("acquire").await?;
        let mut world = self.world();
        if let Some(stored) = world.keys.get(key) {
            return Ok(Acquired::Taken {
                value: stored.value.clone(),
                revision: stored.create_revision,
            });
        }
        if !world.leases.contains_key(&lease) {
            return Err(StoreError::LeaseGone(lease));
        }
        let revision = world.write(key, value, lease);
        Ok(Acquired::Held { revision })
    }

    async fn release(&mut self, key: &str, revision: i64) -> Result<(), StoreError> {
        self.gate("release").await?;
        let mut world = self.world();
        if world
            .keys
            .get(key)
            .is_some_and(|stored| stored.create_revision == revision)
        {
            world.delete(key);
        }
        Ok(())
    }

    async fn put(&mut self, key: &str, value: &str, lease: LeaseId) -> Result<(), StoreError> {
        self.gate("put").await?;
        let mut world = self.world();
        if !world.leases.contains_key(&lease) {
            return Err(StoreError::LeaseGone(lease));
        }
        world.write(key, value, lease);
        Ok(())
    }

    async fn revoke(&mut self, lease: LeaseId) -> Result<(), StoreError> {
        self.gate("revoke").await?;
        self.world().remove_lease(lease);
        Ok(())
    }

    async fn list(&mut self, prefix: &str) -> Result<(Vec<Entry>, i64), StoreError> {
        self.gate("list").await?;
        let world = self.world();
        let entries = world
            .keys
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, stored)| world.entry(key, stored))
            .collect();
        Ok((entries, world.revision))
    }

    async fn watch(&mut self, prefix: &str, after_revision: i64) -> Result<Changes, StoreError> {
        self.gate("watch").await?;
        let mut world = self.world();
        let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
        for (revision, change) in &world.history {
            if *revision > after_revision
                && change_key(change).starts_with(prefix)
                && sender.try_send(Ok(change.clone())).is_err()
            {
                // Too far behind to catch up: the watch ends at once, as a compacted one does.
                return Ok(receiver);
            }
        }
        world.watchers.push(Watcher {
            client: self.client.clone(),
            prefix: prefix.to_owned(),
            changes: sender,
        });
        Ok(receiver)
    }
}

impl World {
    fn entry(&self, key: &str, stored: &Stored) -> Entry {
        Entry {
            key: key.to_owned(),
            value: stored.value.clone(),
            create_revision: stored.create_revision,
        }
    }

    /// Creates or replaces `key`; returns its create revision.
    fn write(&mut self, key: &str, value: &str, lease: LeaseId) -> i64 {
        self.revision += 1;
        let revision = self.revision;
        let create_revision = self
            .keys
            .get(key)
            .map_or(revision, |stored| stored.create_revision);
        self.keys.insert(
            key.to_owned(),
            Stored {
                value: value.to_owned(),
                create_revision,
                lease,
            },
        );
        let entry = Entry {
            key: key.to_owned(),
            value: value.to_owned(),
            create_revision,
        };
        self.publish(revision, Change::Put(entry));
        create_revision
    }

    fn delete(&mut self, key: &str) {
        if self.keys.remove(key).is_some() {
            self.revision += 1;
            let revision = self.revision;
            self.publish(
                revision,
                Change::Delete {
                    key: key.to_owned(),
                    revision,
                },
            );
        }
    }

    fn remove_lease(&mut self, lease: LeaseId) {
        self.leases.remove(&lease);
        let keys: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, stored)| stored.lease == lease)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            self.delete(&key);
        }
    }

    fn expire_due(&mut self) {
        let now = Instant::now();
        let due: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for lease in due {
            self.remove_lease(lease);
        }
    }

    fn publish(&mut self, revision: i64, change: Change) {
        let faults = &self.faults;
        self.watchers.retain(|watcher| {
            if !change_key(&change).starts_with(&watcher.prefix) {
                return true;
            }
            match faults.get(&watcher.client) {
                // A frozen connection delivers nothing, and says nothing either.
                Some(Fault::Hang) => true,
                Some(Fault::Fail) => false,
                None => watcher.changes.try_send(Ok(change.clone())).is_ok(),
            }
        });
        self.history.push((revision, change));
    }
}

fn change_key(change: &Change) -> &str {
    match change {
        Change::Put(entry) => &entry.key,
        Change::Delete { key, .. } => key,
    }
}

/// The lock, even if a panicking test poisoned it: the world stays consistent between calls.
fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
