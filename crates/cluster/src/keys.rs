//! Where things live in the store, and what their values say (the only JSON of the crate).
//!
//! `{prefix}/nodes/{node}` = `{"since": unix_secs}`: a node is alive while its lease is.
//! `{prefix}/singletons/{program}` = `{"node": "...", "since": unix_secs}`: the holder of a program.

use serde::{Deserialize, Serialize};

/// The key layout under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// The prefix with one trailing '/', so that "a/" never lists "ab/...".
    root: String,
}

/// What a key under the prefix is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind<'key> {
    Node(&'key str),
    Singleton(&'key str),
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Keys {
            root: format!("{}/", prefix.trim_end_matches('/')),
        }
    }

    /// What `list` and `watch` cover.
    pub(crate) fn root(&self) -> &str {
        &self.root
    }

    pub(crate) fn node(&self, node: &str) -> String {
        format!("{}nodes/{node}", self.root)
    }

    pub(crate) fn singleton(&self, program: &str) -> String {
        format!("{}singletons/{program}", self.root)
    }

    /// `None` for keys under the prefix that are neither (another tool's, or a newer version's).
    pub(crate) fn kind<'key>(&self, key: &'key str) -> Option<Kind<'key>> {
        let rest = key.strip_prefix(self.root.as_str())?;
        if let Some(node) = rest.strip_prefix("nodes/") {
            return Some(Kind::Node(node));
        }
        rest.strip_prefix("singletons/").map(Kind::Singleton)
    }
}

/// The value of a presence key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeValue {
    pub(crate) since: i64,
}

/// The value of a singleton key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SingletonValue {
    pub(crate) node: String,
    pub(crate) since: i64,
}

/// JSON of a value; these two serialize infallibly (strings and integers only).
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_recognised_under_their_prefix_only() {
        let keys = Keys::new("/taskmaster/");
        assert_eq!(keys.node("a"), "/taskmaster/nodes/a");
        assert_eq!(keys.kind("/taskmaster/nodes/a"), Some(Kind::Node("a")));
        assert_eq!(
            keys.kind("/taskmaster/singletons/web/1"),
            Some(Kind::Singleton("web/1"))
        );
        assert_eq!(keys.kind("/taskmaster2/nodes/a"), None);
        assert_eq!(keys.kind("/taskmaster/other"), None);
    }

    #[test]
    fn values_round_trip() {
        let value = SingletonValue {
            node: "a".into(),
            since: 7,
        };
        assert_eq!(to_json(&value), r#"{"node":"a","since":7}"#);
        assert_eq!(
            serde_json::from_str::<SingletonValue>(&to_json(&value)).ok(),
            Some(value)
        );
    }
}
