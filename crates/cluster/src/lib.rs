//! # Cluster singletons: the store side
//!
//! Theory of operation. Some programs must run on exactly one host of several: a cron-like
//! job, a queue consumer that must not run twice. Several taskmasters (nodes) share one etcd
//! v3 cluster; the node that holds a program's key runs the program, the others stand by.
//! This crate is the part that talks to the store; the pure supervisor decides what runs, from
//! the [`Report`]s this crate sends it.
//!
//! ## Leases and keys
//! Each node holds one **lease** of `ttl`: the store forgets it `ttl` after its last renewal,
//! and deletes every key put on it. Under a prefix (`/taskmaster`, say) the node puts
//!
//! - `{prefix}/nodes/{node}` = `{"since": unix_secs}`: its presence;
//! - `{prefix}/singletons/{program}` = `{"node": "...", "since": unix_secs}`: one per program it
//!   holds, created by a transaction that succeeds only if the key does not exist
//!   (create_revision == 0). Whoever creates the key holds the program until the key goes.
//!
//! The key's **create revision** is the fencing token ([`Report::Held`]'s `term`): the store's
//! revisions only grow, so every new holder's term is higher than any earlier holder's, and a
//! program can hand its term to anything that must refuse an older holder's writes.
//!
//! A node gives a program back by deleting its key, but only if the key's create revision is
//! still its own ([`LeaseStore::release`]): a key that expired and was taken by another node
//! is not ours to delete. A node that dies or is cut off stops renewing; its lease expires, its
//! keys vanish, and the nodes standing by (they watch the prefix) race to create them.
//!
//! etcd's election API is not used: a campaign can report a winner whose lease has already
//! expired. A plain compare-and-create on our own lease, with our own renewal timing, says
//! exactly what we know and when we knew it.
//!
//! ## Timing: what the caller may conclude
//! Every renewal's [`Report::Renewed`] carries `sent`, the caller's clock read *before* the
//! request left. The store measures the ttl from when it *received* the request, which is
//! later; so the lease, and every key on it, lives at least until `sent + ttl` by the caller's
//! clock. That holds whatever happens next: a frozen connection, a lost answer, a dead store. A
//! program may run while it is held and `clock() < sent + ttl` of the last `Renewed`; the
//! caller stops it before then (less a margin for clock rate differences) unless a new
//! `Renewed` arrives. This crate never tells the caller it still holds something: it only
//! reports renewals that happened, so silence is always safe.
//!
//! Renewals go every ttl/3, measured from the send time of the last acknowledged one, and every
//! store call (connecting included) is bounded by ttl/3: a call that takes longer counts as
//! failed. A failure drops the connection; the next attempt uses a new one (at once, then
//! backing off from 100 ms to 1 s), and the outage is reported once ([`Report::Unreachable`],
//! then [`Report::Reachable`]). The first call on a new connection renews the lease: if the
//! store no longer knows it, [`Report::LeaseLost`] (nothing is held any more), a new lease, the
//! presence key again, and every contended program contended again.
//!
//! ## etcd specifics (seen against etcd 3.4)
//! - etcd counts a lease's ttl in whole seconds and raises it to a minimum (1.5 × the election
//!   timeout: 2 s with the defaults), so the store may keep a lease *longer* than `ttl`; never
//!   shorter. Standing-by nodes then wait longer; the holder's deadline is unaffected.
//! - etcd refreshes every lease when a leader is elected (and when it restarts), so a lease can
//!   outlive an outage longer than its ttl: after such an outage the contender renews the same
//!   lease and still holds what it held, with no new `Held`. The caller, which stopped its
//!   programs at the deadline, may start them again on the next `Renewed`: nobody else can have
//!   held them, since the keys never went.
//! - A renewal that etcd answers with ttl 0 (the lease expired while this node was frozen or
//!   cut off) is a [`Report::LeaseLost`]; the watch then shows the keys' deletion and the next
//!   holder's creation.
//!
//! ## The contender
//! [`run`] is one task (a single-threaded tokio runtime suffices; it never blocks). It takes
//! [`Command`]s (contend for a program, withdraw, shut down), and does one thing at a time, in
//! order of precedence: renew when due, apply commands, apply the watch's changes, then the
//! next step (connect, grant a lease, put the presence key, release withdrawn programs, list
//! and watch, acquire). It lists the prefix and watches it from the listed revision, so it
//! misses no change; when the watch ends it lists again. From that view it reports who holds
//! each contended program ([`Report::HeldElsewhere`]) and which nodes are alive
//! ([`Report::Nodes`]), and it tries to acquire a program whenever its key goes. A program
//! withdrawn while its acquisition was on its way is never reported held: it is released.
//! [`spawn_etcd`] runs it against etcd.
//!
//! ## The store
//! [`LeaseStore`] is the only store-specific seam: grant, renew, acquire, release, put, revoke,
//! list, watch. [`EtcdStore`] implements it with etcd-client (renewals on one long-lived
//! keep-alive stream); [`testing::MemoryStore`] implements it in memory, with faults on demand,
//! for tests of this crate and of its callers.

mod contender;
mod error;
mod etcd;
mod keys;
mod store;
pub mod testing;

pub use contender::{
    run, spawn_etcd, Command, NodeInfo, Report, Settings, MIN_TTL, SHUTDOWN_TIMEOUT,
};
pub use error::{SettingsError, StoreError};
pub use etcd::EtcdStore;
pub use store::{Acquired, Change, Changes, Entry, LeaseId, LeaseStore};

#[cfg(test)]
mod tests;
