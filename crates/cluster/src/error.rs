//! The crate's errors: what a store call can fail with, and what makes settings unusable.

use std::time::Duration;

use crate::store::LeaseId;

/// Why a call to a [`LeaseStore`](crate::LeaseStore) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store does not know the lease any more: it expired or was revoked, and every key on
    /// it is gone. Not an outage: the store answered.
    #[error("the store no longer knows lease {0} (expired or revoked)")]
    LeaseGone(LeaseId),
    /// The store did not answer within the time allowed.
    #[error("{operation}: no answer from the store within {after:?}")]
    TimedOut {
        operation: &'static str,
        after: Duration,
    },
    /// The call failed: the connection, the transport, or the store's own refusal.
    #[error("{operation}: {message}")]
    Failed {
        operation: &'static str,
        message: String,
    },
}

/// Settings that [`run`](crate::run) cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "cluster ttl is {0:?}; it must be at least 1s (the store counts leases in whole seconds)"
    )]
    TtlTooShort(Duration),
    #[error("cluster node name {0:?} must be non-empty and contain no '/' (it is the last part of a key)")]
    BadNodeName(String),
    #[error("cluster prefix {0:?} must be non-empty")]
    EmptyPrefix(String),
    #[error("cluster endpoints: none given")]
    NoEndpoints,
}
