//! The seam between the contender and a store: a small trait of leases and keys.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::StoreError;

/// A lease, as the store numbers it. Keys put on a lease vanish with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // etcd's own tools print lease ids in hexadecimal.
        write!(f, "{:x}", self.0)
    }
}

/// The answer to [`LeaseStore::acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The key was free and is now ours; `revision` is its create revision (the fencing token).
    Held { revision: i64 },
    /// Someone holds the key: its value and create revision.
    Taken { value: String, revision: i64 },
}

/// A key as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// The revision at which the key was created; a key deleted and created again gets a new,
    /// higher one, which is what makes it a fencing token.
    pub create_revision: i64,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The key was created or its value replaced.
    Put(Entry),
    /// The key was deleted, or expired with its lease, at `revision` (telling a late delete of
    /// an earlier life of the key from the end of the current one).
    Delete { key: String, revision: i64 },
}

/// The changes a watch sees, in the store's order. The stream ends (the channel closes) when the
/// watch ends; an `Err` item, when there is one, is the last and says why.
pub type Changes = mpsc::Receiver<Result<Change, StoreError>>;

/// A store of leases and keys with compare-and-create, such as etcd v3.
///
/// The only store-specific seam of the crate: [`EtcdStore`](crate::EtcdStore) implements it for
/// etcd, [`testing::MemoryStore`](crate::testing::MemoryStore) in memory. Callers bound every
/// call with a timeout of their own and drop a store whose call failed or timed out, so an
/// implementation need not recover from a call abandoned half way.
pub trait LeaseStore: Send {
    /// A new lease of `ttl`; the store forgets it `ttl` after its last renewal (or later: etcd
    /// counts in whole seconds and has a minimum).
    fn grant(&mut self, ttl: Duration) -> impl Future<Output = Result<LeaseId, StoreError>> + Send;

    /// Renews `lease`; `Ok(false)` when the store no longer knows it (expired or revoked).
    fn renew(&mut self, lease: LeaseId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Creates `key` with `value` on `lease` only if the key does not exist (a transaction on
    /// create_revision == 0); otherwise says who has it. [`StoreError::LeaseGone`] when the lease
    /// is unknown.
    fn acquire(
        &mut self,
        key: &str,
        value: &str,
        lease: LeaseId,
    ) -> impl Future<Output = Result<Acquired, StoreError>> + Send;

    /// Deletes `key` only if its create revision is still `revision` (ours): a key that expired
    /// and was taken by another node is left alone.
    fn release(
        &mut self,
        key: &str,
        revision: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Puts `key` on `lease` unconditionally (this node's own presence key).
    /// [`StoreError::LeaseGone`] when the lease is unknown.
    fn put(
        &mut self,
        key: &str,
        value: &str,
        lease: LeaseId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends `lease` now, deleting its keys. Revoking a lease the store no longer knows is no error.
    fn revoke(&mut self, lease: LeaseId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every key under `prefix` with its value and create revision, and the store's revision at
    /// the time of reading.
    fn list(
        &mut self,
        prefix: &str,
    ) -> impl Future<Output = Result<(Vec<Entry>, i64), StoreError>> + Send;

    /// The changes under `prefix` made after `after_revision` (so none is missed between a
    /// [`list`](Self::list) and its watch). The call returns once the watch is in place.
    fn watch(
        &mut self,
        prefix: &str,
        after_revision: i64,
    ) -> impl Future<Output = Result<Changes, StoreError>> + Send;
}
