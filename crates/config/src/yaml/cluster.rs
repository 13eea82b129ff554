//! `cluster:` read from YAML, each error at its value, as every other key's.

use super::{Checker, Key};
use crate::cluster::{
    check_endpoint, check_node, check_prefix, check_ttl, ClusterSpec, DEFAULT_PREFIX, DEFAULT_TTL,
};
use crate::raw::Node;

/// `cluster:` being read; `etcd` is required.
#[derive(Default)]
struct ClusterDraft {
    endpoints: Option<Vec<String>>,
    node: Option<String>,
    prefix: Option<String>,
    ttl: Option<std::time::Duration>,
}

const CLUSTER_KEYS: &[Key<ClusterDraft>] = &[
    ("etcd", |c, node, key, d| {
        d.endpoints = c.endpoints(node, key)
    }),
    ("node", |c, node, key, d| {
        let text = c.scalar(node, key, "a node name such as web-3");
        d.node = text.and_then(|text| c.check(node, key, check_node(text)));
    }),
    ("prefix", |c, node, key, d| {
        let text = c.scalar(node, key, "a key prefix such as /taskmaster/prod");
        d.prefix = text.and_then(|text| c.check(node, key, check_prefix(text)));
    }),
    ("ttl", |c, node, key, d| {
        let ttl = c.duration(node, key);
        d.ttl = ttl.and_then(|ttl| c.check(node, key, check_ttl(ttl)));
    }),
];

impl Checker<'_> {
    /// `cluster:`: `etcd` endpoints, and this node's name, the keys' prefix and the lease.
    pub(super) fn cluster(&mut self, node: &Node, key: &str) -> Option<ClusterSpec> {
        let pairs = self.mapping(node, key, "a mapping with etcd, node, prefix and ttl")?;
        let mut draft = ClusterDraft::default();
        let errors = self.errors.len();
        self.keys(pairs, key, CLUSTER_KEYS, &mut draft);
        let Some(endpoints) = draft.endpoints else {
            if errors == self.errors.len() {
                self.require(node, pairs, key, "etcd");
            }
            return None;
        };
        let node_name = match draft.node {
            Some(name) => name,
            None => {
                let host = self.host.node_name.clone().unwrap_or_default();
                let named = check_node(&host).map_err(|why| {
                    format!("the host name cannot name this node ({why}): write cluster.node")
                });
                self.check(node, key, named)?
            }
        };
        (errors == self.errors.len()).then(|| ClusterSpec {
            endpoints,
            node: node_name,
            prefix: draft.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
            ttl: draft.ttl.unwrap_or(DEFAULT_TTL),
        })
    }

    /// `etcd: [http://10.0.0.5:2379, ...]`, or one endpoint alone.
    fn endpoints(&mut self, node: &Node, key: &str) -> Option<Vec<String>> {
        let says = (
            "a list of endpoints such as [http://10.0.0.5:2379]",
            "at least one endpoint is needed",
        );
        self.one_or_more(node, key, says, |c, item, key| {
            let text = c.scalar(item, key, "an endpoint such as http://10.0.0.5:2379")?;
            c.check(item, key, check_endpoint(text))
        })
    }
}
