//! What the supervisor hears of the cluster and says of it: the news the runtime's store
//! client reports ([`ClusterNews`], in [`crate::Event::Cluster`]), and what `status` and
//! `ctl cluster` show ([`SingletonInfo`], [`ClusterInfo`]).
//!
//! Times of day come from the runtime (`since`, already written in local time, and
//! `since_unix`): the core has no wall clock.

use serde::{Deserialize, Serialize};

use crate::time::Time;

/// Something the store client learnt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClusterNews {
    /// The lease was granted or renewed by a request sent at `sent`: the store cannot forget
    /// it before `sent + ttl`.
    Renewed { sent: Time },
    /// The lease is gone: nothing is held here any more.
    LeaseLost { why: String },
    /// Who holds a singleton's key now, this node included; `holder: None` when nobody does.
    Holder { program: String, holder: Holder },
    /// The store cannot be reached (`Some`, why), or can again (`None`).
    Reachability(Option<String>),
    /// The nodes alive, each with the singletons it holds.
    Nodes(Vec<NodeInfo>),
}

/// Who holds a singleton's key, as the store said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// This taskmaster holds it, under its own lease (not merely a node of its name: a key
    /// left by this node's previous run, under a lease of that run, is not held here).
    #[serde(default)]
    pub here: bool,
    /// The node holding it; `None`: nobody.
    pub node: Option<String>,
    /// When it took it, in local time (`10:41:03`), and in seconds since the epoch.
    pub since: Option<String>,
    pub since_unix: Option<i64>,
    /// The key's create revision: the fencing token, larger for every new holder.
    pub term: Option<i64>,
}

/// A node alive in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub since_unix: Option<i64>,
    /// The singletons it holds.
    pub holds: Vec<String>,
}

/// Where a singleton program runs, for `status` and the API's `cluster` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SingletonInfo {
    /// Who holds it, as last heard (`here`: this taskmaster).
    pub holder: Holder,
    /// Why nothing is known: the store cannot be reached.
    pub unreachable: Option<String>,
}

impl SingletonInfo {
    /// Why this node does not run it: `standby: held by web-1 since 10:41:03 (term 7812)`.
    pub fn standby(&self) -> String {
        if let Some(why) = &self.unreachable {
            return format!("standby: etcd unreachable: {why}");
        }
        match (&self.holder.node, self.holder.here) {
            (Some(node), false) => {
                let mut text = format!("standby: held by {node}");
                if let Some(since) = &self.holder.since {
                    text.push_str(&format!(" since {since}"));
                }
                if let Some(term) = self.holder.term {
                    text.push_str(&format!(" (term {term})"));
                }
                text
            }
            (Some(_), true) => "standby: held here, its lease not renewed in time".to_string(),
            (None, _) => "standby: free, being taken".to_string(),
        }
    }
}

/// The cluster as this node knows it: `ctl cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// This node's name.
    pub node: String,
    /// The nodes alive, each with what it holds.
    pub nodes: Vec<NodeInfo>,
    /// Why the store cannot be reached, while it cannot.
    pub unreachable: Option<String>,
    /// Each singleton program and its holder.
    pub singletons: Vec<(String, Holder)>,
    /// When the lease was last renewed (sent), on the supervisor's clock.
    pub renewed: Option<Time>,
}
