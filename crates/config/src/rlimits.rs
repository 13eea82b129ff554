//! `rlimits`: the resource limits a program's processes start with (setrlimit before exec),
//! by the names `ulimit` and systemd's `Limit*=` use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::values::{byte_size, quote};

/// A resource, by its name in `rlimits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Resource {
    As,
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
}

/// Each resource's name, and whether its values are sizes in bytes (`1GB` may be written).
const RESOURCES: &[(Resource, &str, bool)] = &[
    (Resource::As, "as", true),
    (Resource::Core, "core", true),
    (Resource::Cpu, "cpu", false),
    (Resource::Data, "data", true),
    (Resource::Fsize, "fsize", true),
    (Resource::Locks, "locks", false),
    (Resource::Memlock, "memlock", true),
    (Resource::Msgqueue, "msgqueue", true),
    (Resource::Nice, "nice", false),
    (Resource::Nofile, "nofile", false),
    (Resource::Nproc, "nproc", false),
    (Resource::Rss, "rss", true),
    (Resource::Rtprio, "rtprio", false),
    (Resource::Rttime, "rttime", false),
    (Resource::Sigpending, "sigpending", false),
    (Resource::Stack, "stack", true),
];

impl Resource {
    pub fn name(self) -> &'static str {
        RESOURCES
            .iter()
            .find(|(resource, ..)| *resource == self)
            .map_or("", |(_, name, _)| name)
    }

    /// The resource named `name`, in any case, or the message listing the names.
    pub(crate) fn parse(name: &str) -> Result<Resource, String> {
        let found = RESOURCES
            .iter()
            .find(|(_, known, _)| known.eq_ignore_ascii_case(name));
        found.map(|(resource, ..)| *resource).ok_or_else(|| {
            let names: Vec<&str> = RESOURCES.iter().map(|(_, name, _)| *name).collect();
            format!(
                "unknown resource {}{} (the resources are {})",
                quote(name),
                crate::values::hint(name, &names),
                names.join(", ")
            )
        })
    }

    fn is_size(self) -> bool {
        RESOURCES
            .iter()
            .any(|(resource, _, size)| *resource == self && *size)
    }

    /// This process's own hard limit, which a process that is not root cannot raise.
    fn hard_limit(self) -> Option<u64> {
        use nix::sys::resource::{getrlimit, Resource as R};
        let resource = match self {
            Resource::As => R::RLIMIT_AS,
            Resource::Core => R::RLIMIT_CORE,
            Resource::Cpu => R::RLIMIT_CPU,
            Resource::Data => R::RLIMIT_DATA,
            Resource::Fsize => R::RLIMIT_FSIZE,
            Resource::Locks => R::RLIMIT_LOCKS,
            Resource::Memlock => R::RLIMIT_MEMLOCK,
            Resource::Msgqueue => R::RLIMIT_MSGQUEUE,
            Resource::Nice => R::RLIMIT_NICE,
            Resource::Nofile => R::RLIMIT_NOFILE,
            Resource::Nproc => R::RLIMIT_NPROC,
            Resource::Rss => R::RLIMIT_RSS,
            Resource::Rtprio => R::RLIMIT_RTPRIO,
            Resource::Rttime => R::RLIMIT_RTTIME,
            Resource::Sigpending => R::RLIMIT_SIGPENDING,
            Resource::Stack => R::RLIMIT_STACK,
        };
        let (_, hard) = getrlimit(resource).ok()?;
        (hard != nix::sys::resource::RLIM_INFINITY).then_some(hard)
    }
}

/// A limit: its soft and hard values, `None` for unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = |v: Option<u64>| v.map_or("unlimited".to_string(), |n| n.to_string());
        if self.soft == self.hard {
            write!(f, "{}", value(self.soft))
        } else {
            write!(f, "{}:{}", value(self.soft), value(self.hard))
        }
    }
}

/// The limits of a program, by resource.
pub type Rlimits = BTreeMap<Resource, Limit>;

/// A limit as written: `1024` (soft and hard), `unlimited` (or `infinity`), `SOFT:HARD`, and
/// for sizes `1GB`; with the soft value at most the hard one.
pub(crate) fn parse_limit(resource: Resource, text: &str) -> Result<Limit, String> {
    let one = |part: &str| -> Result<Option<u64>, String> {
        let part = part.trim();
        if part.eq_ignore_ascii_case("unlimited") || part.eq_ignore_ascii_case("infinity") {
            return Ok(None);
        }
        let value = match resource.is_size() {
            true => byte_size(part).ok(),
            false => part.parse::<u64>().ok(),
        };
        value.map(Some).ok_or_else(|| {
            let example = if resource.is_size() { "1GB" } else { "1024" };
            format!(
                "expected a number such as {example}, unlimited, or SOFT:HARD, found {}",
                quote(text)
            )
        })
    };
    let (soft, hard) = match text.split_once(':') {
        Some((soft, hard)) => (one(soft)?, one(hard)?),
        None => {
            let value = one(text)?;
            (value, value)
        }
    };
    let above = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a > b,
        _ => false,
    };
    if above(soft, hard) {
        return Err(format!(
            "the soft limit is above the hard one in {}",
            quote(text)
        ));
    }
    Ok(Limit { soft, hard })
}

/// Why taskmaster cannot give `limit` of `resource` to a program, if it cannot: a process
/// that is not root cannot raise a hard limit above its own.
pub(crate) fn refusal(resource: Resource, limit: Limit, is_root: bool) -> Option<String> {
    if is_root {
        return None;
    }
    let own = resource.hard_limit()?;
    let wanted = limit.hard.map_or(u64::MAX, |hard| hard);
    (wanted > own).then(|| {
        format!(
            "{} {limit} is above taskmaster's own hard limit {own}: only root can raise it \
             (raise taskmaster's limit where it is started, or lower this one)",
            resource.name()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_numbers_sizes_unlimited_or_soft_and_hard() {
        let limit = |r, t| parse_limit(r, t);
        assert_eq!(
            limit(Resource::Nofile, "1024"),
            Ok(Limit {
                soft: Some(1024),
                hard: Some(1024)
            })
        );
        assert_eq!(
            limit(Resource::Core, "unlimited"),
            Ok(Limit {
                soft: None,
                hard: None
            })
        );
        assert_eq!(
            limit(Resource::As, "1GB:infinity"),
            Ok(Limit {
                soft: Some(1 << 30),
                hard: None
            })
        );
        assert!(limit(Resource::Nofile, "1GB").is_err());
        assert!(limit(Resource::Nofile, "10:5").is_err());
        assert!(Resource::parse("nofiles").is_err_and(|e| e.contains("did you mean")));
        assert_eq!(Resource::parse("NOFILE"), Ok(Resource::Nofile));
    }
}
