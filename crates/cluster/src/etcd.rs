//! [`EtcdStore`]: the [`LeaseStore`] on etcd v3, through etcd-client (tonic/gRPC).

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;

use crate::error::StoreError;
use crate::store::{Acquired, Change, Changes, Entry, LeaseId, LeaseStore};

/// How many changes a watch buffers before it waits for the reader.
const WATCH_BUFFER: usize = 64;

/// HTTP/2 pings on an idle-looking connection: they find a dead peer under a watch that hears
/// nothing. Not more often: etcd answers pings closer than 5 s (its
/// `--grpc-keepalive-min-time`) with GOAWAY "too many pings".
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// A connection to an etcd v3 cluster.
///
/// Connecting is lazy (the first call finds out whether the cluster answers); every request is
/// bounded by the request timeout given to [`connect`](Self::connect). Leases are renewed on
/// one keep-alive stream, kept from call to call; a failed renewal drops it, and the next
/// renewal opens another.
pub struct EtcdStore {
    client: Client,
    keep_alive: Option<KeepAlive>,
}

/// The open keep-alive stream of one lease.
struct KeepAlive {
    lease: LeaseId,
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
}

impl EtcdStore {
    /// A client of the cluster at `endpoints` (`http://host:port`, or `host:port`), balancing
    /// over all of them. `request_timeout` bounds connecting and each request (unary requests,
    /// and the opening of streams; the contender bounds each renewal itself).
    pub async fn connect(
        endpoints: &[String],
        request_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(request_timeout)
            .with_timeout(request_timeout)
            .with_keep_alive(PING_INTERVAL, request_timeout)
            // A member cut off from its leader refuses requests and ends our streams, rather than
            // answer from a stale copy: what we read must be what the other nodes read.
            .with_require_leader(true);
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|error| failed("connect", error))?;
        Ok(EtcdStore {
            client,
            keep_alive: None,
        })
    }
}

impl LeaseStore for EtcdStore {
    async fn grant(&mut self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let response = self
            .client
            .lease_grant(whole_seconds_at_least(ttl), None)
            .await
            .map_err(|error| failed("lease grant", error))?;
        Ok(LeaseId(response.id()))
    }

    async fn renew(&mut self, lease: LeaseId) -> Result<bool, StoreError> {
        // Taken out while in use: a renewal abandoned half way (timed out) must not leave its
        // answer on the stream for the next renewal to read as its own.
        if let Some(mut keep_alive) = self.keep_alive.take() {
            if keep_alive.lease == lease {
                let alive = keep_alive.renew().await?;
                if alive {
                    self.keep_alive = Some(keep_alive);
                }
                return Ok(alive);
            }
        }
        // Opening the stream is itself a renewal: etcd-client sends one and waits for its answer.
        match self.client.lease_keep_alive(lease.0).await {
            Ok((keeper, stream)) => {
                self.keep_alive = Some(KeepAlive {
                    lease,
                    keeper,
                    stream,
                });
                Ok(true)
            }
            Err(error) if is_lease_not_found(&error) => Ok(false),
            Err(error) => Err(failed("lease keep-alive", error)),
        }
    }

    async fn acquire(
        &mut self,
        key: &str,
        value: &str,
        lease: LeaseId,
    ) -> Result<Acquired, StoreError> {
        let transaction = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(PutOptions::new().with_lease(lease.0)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = self.client.txn(transaction).await.map_err(|error| {
            if is_lease_not_found(&error) {
                StoreError::LeaseGone(lease)
            } else {
                failed("acquire (txn)", error)
            }
        })?;
        if response.succeeded() {
            // The put is the transaction's only write, so the revision the transaction made is
            // the key's create revision.
            let revision = response
                .header()
                .map(|header| header.revision())
                .ok_or_else(|| StoreError::Failed {
                    operation: "acquire (txn)",
                    message: "the answer has no header".into(),
                })?;
            return Ok(Acquired::Held { revision });
        }
        let holder = response
            .op_responses()
            .into_iter()
            .find_map(|operation| match operation {
                TxnOpResponse::Get(get) => get.kvs().first().map(entry),
                _ => None,
            });
        match holder {
            Some(holder) => Ok(Acquired::Taken {
                value: holder.value,
                revision: holder.create_revision,
            }),
            // Compare and get run atomically: a key that failed "does not exist" exists.
            None => Err(StoreError::Failed {
                operation: "acquire (txn)",
                message: format!("{key} exists but the transaction returned no value for it"),
            }),
        }
    }

    async fn release(&mut self, key: &str, revision: i64) -> Result<(), StoreError> {
        let transaction = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, revision)])
            .and_then([TxnOp::delete(key, None)]);
        self.client
            .txn(transaction)
            .await
            .map_err(|error| failed("release (txn)", error))?;
        Ok(())
    }

    async fn put(&mut self, key: &str, value: &str, lease: LeaseId) -> Result<(), StoreError> {
        self.client
            .put(key, value, Some(PutOptions::new().with_lease(lease.0)))
            .await
            .map_err(|error| {
                if is_lease_not_found(&error) {
                    StoreError::LeaseGone(lease)
                } else {
                    failed("put", error)
                }
            })?;
        Ok(())
    }

    async fn revoke(&mut self, lease: LeaseId) -> Result<(), StoreError> {
        self.keep_alive = None;
        match self.client.lease_revoke(lease.0).await {
            Ok(_) => Ok(()),
            Err(error) if is_lease_not_found(&error) => Ok(()),
            Err(error) => Err(failed("lease revoke", error)),
        }
    }

    async fn list(&mut self, prefix: &str) -> Result<(Vec<Entry>, i64), StoreError> {
        let response = self
            .client
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|error| failed("list (range)", error))?;
        let revision = response
            .header()
            .map(|header| header.revision())
            .ok_or_else(|| StoreError::Failed {
                operation: "list (range)",
                message: "the answer has no header".into(),
            })?;
        Ok((response.kvs().iter().map(entry).collect(), revision))
    }

    async fn watch(&mut self, prefix: &str, after_revision: i64) -> Result<Changes, StoreError> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(after_revision + 1);
        let mut stream = self
            .client
            .watch(prefix, Some(options))
            .await
            .map_err(|error| failed("watch", error))?;
        // The first answer says whether the watch exists: one from a compacted revision is
        // cancelled at once, and the caller must list again.
        match stream.message().await {
            Ok(Some(created)) if created.canceled() => return Err(watch_cancelled(&created)),
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(StoreError::Failed {
                    operation: "watch",
                    message: "the stream ended at once".into(),
                })
            }
            Err(error) => return Err(failed("watch", error)),
        }
        let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
        // Forwards until the stream ends or the reader drops its end; dropping `stream` (the
        // request side with it) ends the gRPC stream.
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = sender.closed() => return,
                    message = stream.message() => message,
                };
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => {
                        let ended = StoreError::Failed {
                            operation: "watch",
                            message: "the stream ended".into(),
                        };
                        let _ = sender.send(Err(ended)).await;
                        return;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(failed("watch", error))).await;
                        return;
                    }
                };
                for event in response.events() {
                    let Some(key_value) = event.kv() else {
                        continue;
                    };
                    let change = match event.event_type() {
                        EventType::Put => Change::Put(entry(key_value)),
                        // A deleted key's mod revision is the revision of its deletion.
                        EventType::Delete => Change::Delete {
                            key: String::from_utf8_lossy(key_value.key()).into_owned(),
                            revision: key_value.mod_revision(),
                        },
                    };
                    if sender.send(Ok(change)).await.is_err() {
                        return;
                    }
                }
                if response.canceled() {
                    let _ = sender.send(Err(watch_cancelled(&response))).await;
                    return;
                }
            }
        });
        Ok(receiver)
    }
}

impl KeepAlive {
    /// One renewal on the open stream: `Ok(false)` when etcd answers that the lease is gone (ttl 0).
    async fn renew(&mut self) -> Result<bool, StoreError> {
        self.keeper
            .keep_alive()
            .await
            .map_err(|error| failed("lease keep-alive", error))?;
        match self.stream.message().await {
            Ok(Some(response)) => Ok(response.ttl() > 0),
            Ok(None) => Err(StoreError::Failed {
                operation: "lease keep-alive",
                message: "the keep-alive stream ended".into(),
            }),
            Err(error) => Err(failed("lease keep-alive", error)),
        }
    }
}

fn entry(key_value: &KeyValue) -> Entry {
    Entry {
        key: String::from_utf8_lossy(key_value.key()).into_owned(),
        value: String::from_utf8_lossy(key_value.value()).into_owned(),
        create_revision: key_value.create_revision(),
    }
}

fn failed(operation: &'static str, error: etcd_client::Error) -> StoreError {
    StoreError::Failed {
        operation,
        message: error.to_string(),
    }
}

fn watch_cancelled(response: &etcd_client::WatchResponse) -> StoreError {
    let message = if response.compact_revision() > 0 {
        format!(
            "cancelled: revisions before {} are compacted",
            response.compact_revision()
        )
    } else {
        format!("cancelled: {}", response.cancel_reason())
    };
    StoreError::Failed {
        operation: "watch",
        message,
    }
}

/// Whether etcd said the lease does not exist: gRPC NotFound "etcdserver: requested lease not
/// found" on puts and revokes; etcd-client's own "lease not found" when a new keep-alive stream's
/// first answer has ttl 0.
fn is_lease_not_found(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::GRpcStatus(status) => status.message().contains("lease not found"),
        etcd_client::Error::LeaseKeepAliveError(message) => message.contains("lease not found"),
        _ => false,
    }
}

/// etcd counts a lease's ttl in whole seconds: round up, so the store never forgets a lease
/// before the caller's `ttl` has passed.
fn whole_seconds_at_least(ttl: Duration) -> i64 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(seconds.max(1)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds_at_least(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds_at_least(Duration::from_secs(3)), 3);
        assert_eq!(whole_seconds_at_least(Duration::from_millis(1)), 1);
    }
}
