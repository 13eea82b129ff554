//! `cluster:`: the etcd a node shares with the other taskmasters of its cluster, and the
//! timing rules of the lease that lets a `singleton: true` program run on one node only.
//!
//! The lease's deadlines are counted from the moment the last acknowledged renewal was *sent*
//! (the store can only have heard it later, so it cannot forget the lease sooner than `ttl`
//! after that moment). Renewals go every `ttl / 3`; a holder that has not renewed by the
//! renew deadline (`2 ttl / 3`, two renewals missed, Kubernetes' 10 s of 15) stops its
//! singletons gracefully, and SIGKILLs what is left at the kill deadline, `ttl` less a margin
//! of `ttl / 10`. A program's `stoptime` must fit between the two.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The shortest lease: below it, a renewal's round trip and a stop cannot fit.
pub const MIN_TTL: Duration = Duration::from_secs(2);
/// The longest lease: a dead holder's singleton would stand still for longer.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// The lease when `ttl` is not written (Kubernetes' lease duration).
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);
/// Where the cluster's keys are when `prefix` is not written.
pub const DEFAULT_PREFIX: &str = "/taskmaster";

/// `cluster:`: the store and this node's name in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// etcd's client URLs (`http://host:port`), each tried in turn.
    pub endpoints: Vec<String>,
    /// This node's name in the cluster: the host name unless written.
    pub node: String,
    /// The keys taskmaster uses are under it: `PREFIX/nodes/NODE`, `PREFIX/singletons/PROGRAM`.
    pub prefix: String,
    /// The lease's time to live.
    pub ttl: Duration,
}

impl ClusterSpec {
    /// How often the lease is renewed.
    pub fn renew_period(&self) -> Duration {
        self.ttl / 3
    }

    /// After the last acknowledged renewal was sent: when a holder that could not renew
    /// since stops its singletons.
    pub fn renew_deadline(&self) -> Duration {
        self.ttl * 2 / 3
    }

    /// After the last acknowledged renewal was sent: when whatever is left of a singleton is
    /// SIGKILLed, before the lease can have ended at the store.
    pub fn kill_deadline(&self) -> Duration {
        self.ttl - self.ttl / 10
    }

    /// The time a singleton has to stop gracefully: from the renew deadline to the kill
    /// deadline.
    pub fn stop_window(&self) -> Duration {
        self.kill_deadline() - self.renew_deadline()
    }

    /// Why a singleton with this `stoptime` cannot run in this cluster, if it cannot.
    pub(crate) fn stoptime_refusal(&self, stoptime: Duration) -> Option<String> {
        if stoptime <= self.stop_window() {
            return None;
        }
        // stop_window is 7/30 of the ttl: the ttl that would fit this stoptime.
        let ttl_needed = Duration::from_secs((stoptime.as_secs_f64() * 30.0 / 7.0).ceil() as u64);
        Some(format!(
            "a singleton's stoptime ({}) must fit between the cluster's renew deadline ({} \
             into the {} lease) and its kill deadline ({}): at most {}; lower stoptime or raise \
             cluster.ttl to at least {}",
            show(stoptime),
            show(self.renew_deadline()),
            show(self.ttl),
            show(self.kill_deadline()),
            show(self.stop_window()),
            show(ttl_needed),
        ))
    }
}

/// Why a program cannot be a singleton with this `stoptime` under `cluster`, if it cannot.
pub(crate) fn singleton_refusal(
    cluster: Option<&ClusterSpec>,
    stoptime: Duration,
) -> Option<String> {
    match cluster {
        None => Some(
            "a singleton runs on one node of a cluster: write the cluster's etcd in `cluster:`"
                .to_string(),
        ),
        Some(cluster) => cluster.stoptime_refusal(stoptime),
    }
}

/// A duration as the file would write it: `10s`, `1.5s`, `466ms`.
fn show(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration.as_secs() == 0 {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// An etcd endpoint: `http://host:port` (TLS is not supported yet).
pub(crate) fn check_endpoint(text: &str) -> Result<String, String> {
    let Some(rest) = text.strip_prefix("http://") else {
        return Err(format!(
            "{text:?} is not an etcd endpoint: expected http://HOST:PORT such as http://10.0.0.5:2379"
        ));
    };
    let authority = rest.trim_end_matches('/');
    let port = authority.rsplit_once(':').map(|(_, port)| port);
    match port.map(str::parse::<u16>) {
        Some(Ok(port)) if port > 0 && !authority.contains('/') => Ok(text.to_string()),
        _ => Err(format!(
            "{text:?} is not an etcd endpoint: expected http://HOST:PORT such as http://10.0.0.5:2379"
        )),
    }
}

/// A node's name: what the keys and `status` show, so letters, digits and `-_.` only.
pub(crate) fn check_node(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if text.is_empty() || text.len() > 253 || !text.chars().all(allowed) {
        return Err(format!(
            "{text:?} is not a node name: letters, digits, '-', '_' and '.' only, such as web-3"
        ));
    }
    Ok(text.to_string())
}

/// The keys' prefix: an absolute key path such as `/taskmaster/prod`, kept without its
/// trailing `/`.
pub(crate) fn check_prefix(text: &str) -> Result<String, String> {
    let trimmed = text.trim_end_matches('/');
    if !text.starts_with('/') || trimmed.is_empty() || text.contains("//") {
        return Err(format!(
            "{text:?} is not a key prefix: expected a path such as /taskmaster/prod"
        ));
    }
    Ok(trimmed.to_string())
}

/// A lease's time to live, within [`MIN_TTL`] and [`MAX_TTL`].
pub(crate) fn check_ttl(ttl: Duration) -> Result<Duration, String> {
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(format!(
            "{} is out of range: a lease lasts from 2s to 1h",
            show(ttl)
        ));
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ttl: Duration) -> ClusterSpec {
        ClusterSpec {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            node: "a".into(),
            prefix: DEFAULT_PREFIX.into(),
            ttl,
        }
    }

    #[test]
    fn the_default_lease_has_kubernetes_deadlines() {
        let cluster = spec(DEFAULT_TTL);
        assert_eq!(cluster.renew_period(), Duration::from_secs(5));
        assert_eq!(cluster.renew_deadline(), Duration::from_secs(10));
        assert_eq!(cluster.kill_deadline(), Duration::from_millis(13_500));
        assert_eq!(cluster.stop_window(), Duration::from_millis(3_500));
    }

    #[test]
    fn a_stoptime_longer_than_the_stop_window_is_refused_with_what_would_fit() {
        let cluster = spec(DEFAULT_TTL);
        assert_eq!(cluster.stoptime_refusal(Duration::from_secs(3)), None);
        let refusal = cluster
            .stoptime_refusal(Duration::from_secs(10))
            .expect("10s cannot fit in 3.5s");
        assert!(refusal.contains("at most 3.5s"), "{refusal}");
        assert!(refusal.contains("at least 43s"), "{refusal}");
        let short = spec(MIN_TTL);
        assert!(short.stoptime_refusal(Duration::from_millis(400)).is_none());
        assert!(short.stoptime_refusal(Duration::from_secs(1)).is_some());
    }

    #[test]
    fn endpoints_nodes_prefixes_and_ttls_are_checked() {
        assert!(check_endpoint("http://10.0.0.5:2379").is_ok());
        assert!(check_endpoint("https://10.0.0.5:2379").is_err());
        assert!(check_endpoint("http://10.0.0.5").is_err());
        assert!(check_node("web-3").is_ok());
        assert!(check_node("web 3").is_err());
        assert_eq!(
            check_prefix("/taskmaster/prod/").as_deref(),
            Ok("/taskmaster/prod")
        );
        assert!(check_prefix("taskmaster").is_err());
        assert!(check_ttl(Duration::from_secs(1)).is_err());
        assert!(check_ttl(Duration::from_secs(2)).is_ok());
    }
}
