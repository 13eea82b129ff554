//! What the run reads of `/proc`: each process's state, parent and group, its command line,
//! whether it carries the run's token in its environment, and taskmaster's descriptors and
//! memory. Every read may find the process gone: that is an answer (`None`), not an error.

use std::collections::HashMap;
use std::fs;

/// What `/proc/PID/stat` says of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// `R`, `S`, `D`, `T` (stopped), `t` (traced), `Z` (zombie)...
    pub state: char,
    pub ppid: u32,
    pub pgid: u32,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }

    pub fn is_stopped(&self) -> bool {
        self.state == 'T'
    }
}

pub fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything, spaces and `)` included:
    // the fields after it start after the last `)`.
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(Stat {
        pid,
        state,
        ppid,
        pgid,
    })
}

/// The process's arguments (empty for a zombie or a kernel thread).
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let bytes = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let body = bytes.strip_suffix(b"\0").unwrap_or(&bytes);
    if body.is_empty() {
        return Some(Vec::new());
    }
    Some(
        body.split(|&b| b == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect(),
    )
}

/// Whether `NAME=VALUE` is among the process's environment variables (as it was at exec).
pub fn has_variable(pid: u32, assignment: &str) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|env| {
            env.split(|&b| b == 0)
                .any(|var| var == assignment.as_bytes())
        })
        .unwrap_or(false)
}

/// Every process of the machine, as `/proc` lists them now.
pub fn all_pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// How many descriptors the process has open.
pub fn fd_count(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The process's resident memory, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// How many threads the process has.
pub fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads:")
}

/// A number of `/proc/PID/status`, by its label.
fn status_field(pid: u32, label: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(label))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `/proc/loadavg`'s three averages.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Every process of the machine at one moment (as near as `/proc` allows): stat, by pid.
#[derive(Debug, Default)]
pub struct Table {
    pub stats: HashMap<u32, Stat>,
}

impl Table {
    pub fn read() -> Table {
        Table {
            stats: all_pids()
                .into_iter()
                .filter_map(|pid| Some((pid, stat(pid)?)))
                .collect(),
        }
    }

    pub fn children_of(&self, parent: u32) -> impl Iterator<Item = &Stat> {
        self.stats.values().filter(move |s| s.ppid == parent)
    }

    /// Every descendant of `root` (not `root` itself), with its depth (1: a child).
    pub fn descendants_of(&self, root: u32) -> Vec<(Stat, u32)> {
        let mut by_parent: HashMap<u32, Vec<Stat>> = HashMap::new();
        for stat in self.stats.values() {
            by_parent.entry(stat.ppid).or_default().push(*stat);
        }
        let mut found = Vec::new();
        let mut frontier = vec![(root, 0)];
        // A process cannot be its own ancestor, but `/proc` is read over time: bound the walk.
        let mut budget = self.stats.len();
        while let Some((pid, depth)) = frontier.pop() {
            for child in by_parent.get(&pid).into_iter().flatten() {
                if budget == 0 {
                    return found;
                }
                budget -= 1;
                found.push((*child, depth + 1));
                frontier.push((child.pid, depth + 1));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let stat = stat(me).expect("our own stat");
        assert_eq!(stat.pid, me);
        assert!(!stat.is_zombie());
        assert!(cmdline(me).is_some_and(|args| !args.is_empty()));
        assert!(fd_count(me).is_some_and(|n| n >= 3));
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(threads(me).is_some_and(|n| n >= 1));
        assert!(Table::read().stats.contains_key(&me));
    }
}
