//! `taskmaster pair-demo` as a person runs it: in a terminal (a real pseudo-terminal, with the
//! demo the foreground of its session, as a shell would start it), ended by Ctrl-C or by
//! closing the terminal whatever happened to its primary before, and side by side with
//! another demo.
//!
//! Every demo runs with `TMPDIR` set to the test's sandbox, so that its own folder is there;
//! the folder is read from the demo's first line (`its files in DIR`). Every process of a
//! demo found along the way is tracked (SIGKILLed if the test fails) and must be gone, reaped,
//! at the end; and no process may be left whose command line names the demo's folder.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::support::{
    descendants, fixture_bin, proc_stat, send_signal, taskmaster_bin, wait_dead, wait_until,
    wait_until_or_none, PtySession, Sandbox, CTRL_C, TIMEOUT,
};
use rustix::process::Signal;

/// A number printed by the demo: `12 (pid 4242, primary since 09:41:03)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Count {
    number: u64,
    pid: u32,
}

fn parse_count(line: &str) -> Option<Count> {
    let (number, rest) = line.trim().split_once(" (pid ")?;
    let (pid, rest) = rest.split_once(", primary since ")?;
    rest.ends_with(')').then_some(())?;
    Some(Count {
        number: number.parse().ok()?,
        pid: pid.parse().ok()?,
    })
}

/// A `taskmaster pair-demo` on a terminal of its own.
struct Demo {
    session: PtySession,
    /// The session leader: the holder, or the subreaper above it.
    leader: u32,
    /// The holder and the folder of the pair's files, once the demo's first line has named
    /// them (`pid H holds the demo (its files in DIR...`).
    holder: Option<u32>,
    dir: Option<PathBuf>,
    /// Whether the folder is the demo's own (the demo says it removes it at the end).
    private: bool,
    /// Every process of the demo seen alive, with its start time: they must all be gone at
    /// the end (the same pid with another start time is another process).
    seen: BTreeMap<u32, u64>,
}

impl Demo {
    /// Starts `taskmaster pair-demo ARGS` in `sandbox` (its `TMPDIR`), counting every 200 ms,
    /// heartbeats every 20 ms and a takeover after 5 missed (roomy on a busy 2-core machine).
    fn start(sandbox: &Sandbox, args: &[&str]) -> Demo {
        Demo::start_with(sandbox, &[DEFAULTS, args].concat(), false)
    }

    /// Starts `taskmaster pair-demo ARGS` in `sandbox` on a new terminal, as its session
    /// leader, or `under_subreaper` (`tm-fixture subreaper`, which then leads the session and
    /// reaps every orphan until none is left).
    fn start_with(sandbox: &Sandbox, args: &[&str], under_subreaper: bool) -> Demo {
        let mut cmd = if under_subreaper {
            let mut cmd = Command::new(fixture_bin());
            cmd.args(["subreaper", "--"]).arg(taskmaster_bin());
            cmd
        } else {
            Command::new(taskmaster_bin())
        };
        cmd.arg("pair-demo")
            .args(args)
            .current_dir(sandbox.path())
            .env("TMPDIR", sandbox.path())
            .env("HOME", sandbox.path());
        let session = PtySession::spawn(cmd);
        let leader = session.pid();
        let mut demo = Demo {
            session,
            leader,
            holder: None,
            dir: None,
            private: false,
            seen: BTreeMap::new(),
        };
        demo.saw(leader);
        demo
    }

    /// Reads the holder's pid and the pair's folder from the demo's first line, if it is on
    /// the screen and they are not known yet.
    fn look(&mut self) {
        if self.holder.is_some() {
            return;
        }
        let screen = self.screen();
        let Some((head, rest)) = screen.split_once(" holds the demo (its files in ") else {
            return;
        };
        let Some(holder) = head
            .rsplit_once("pid ")
            .and_then(|(_, pid)| pid.parse().ok())
        else {
            return;
        };
        let Some(end) = rest.find([',', ')']) else {
            return;
        };
        self.holder = Some(holder);
        self.dir = Some(PathBuf::from(&rest[..end]));
        self.private = rest[end..].starts_with(", removed at the end)");
        self.saw(holder);
    }

    /// The holder's pid, read from the screen.
    fn holder(&mut self) -> u32 {
        wait_until_or_none(TIMEOUT, || {
            self.look();
            self.holder
        })
        .unwrap_or_else(|| panic!("the demo did not say its pid:\n{}", self.screen()))
    }

    /// The pair's folder, read from the screen.
    fn dir(&mut self) -> PathBuf {
        self.holder();
        self.dir.clone().expect("read with the holder")
    }

    /// Notes `pid` as a process of this demo: tracked, and checked gone at the end.
    fn saw(&mut self, pid: u32) {
        if let Some(stat) = proc_stat(pid).filter(|stat| stat.state != 'Z') {
            self.session.track(pid);
            self.seen.entry(pid).or_insert(stat.starttime);
        }
    }

    /// Notes every process of the demo there is now: the session's.
    fn saw_all(&mut self) {
        self.look();
        for pid in descendants(self.leader) {
            self.saw(pid);
        }
    }

    fn screen(&self) -> String {
        self.session.screen()
    }

    /// The numbers on the screen, top to bottom.
    fn counts(&self) -> Vec<Count> {
        self.screen().lines().filter_map(parse_count).collect()
    }

    /// Waits for a number on the screen that `accept` takes; notes its printer.
    fn wait_for_count(&mut self, what: &str, accept: impl Fn(&Count) -> bool) -> Count {
        let found = wait_until_or_none(TIMEOUT, || self.counts().into_iter().find(&accept));
        self.look();
        let count = found.unwrap_or_else(|| {
            panic!(
                "no {what} on the screen within {TIMEOUT:?}:\n{}",
                self.screen()
            )
        });
        self.saw(count.pid);
        count
    }

    /// Waits until a backup of `primary` says it holds the primary's latest checkpoint
    /// (`counter[B]: backup of pid PRIMARY (generation G)`), and gives its pid.
    fn wait_for_backup_of(&mut self, primary: u32) -> u32 {
        let marker = format!("]: backup of pid {primary} (generation ");
        let found = wait_until_or_none(TIMEOUT, || {
            self.screen().lines().find_map(|line| {
                let (head, _) = line.split_once(&marker)?;
                head.rsplit_once('[')?.1.parse::<u32>().ok()
            })
        });
        let backup = found.unwrap_or_else(|| {
            panic!(
                "no backup of pid {primary} within {TIMEOUT:?}:\n{}",
                self.screen()
            )
        });
        self.saw(backup);
        backup
    }

    /// Presses Ctrl-C.
    fn ctrl_c(&mut self) {
        self.saw_all();
        self.session.send(CTRL_C);
    }

    /// Waits until the session leader has exited, every process of the demo seen is gone
    /// (reaped: not even a zombie is left) and, if the demo has a folder of its own, no
    /// process names it any more. Returns how the leader ended.
    fn wait_for_end(&mut self) -> ExitStatus {
        let status = self.session.wait_exit(TIMEOUT);
        let left = wait_until_or_none(TIMEOUT, || {
            let left = self.left();
            left.is_empty().then_some(())
        });
        if left.is_none() {
            let left = self.left();
            let stats: Vec<_> = left.iter().map(|&pid| (pid, proc_stat(pid))).collect();
            panic!(
                "processes of the demo left after it ended ({status}): {stats:?}\n{}",
                self.screen()
            );
        }
        status
    }

    /// [`Demo::wait_for_end`], and the demo's own folder removed.
    fn wait_for_end_of_private_demo(&mut self) -> ExitStatus {
        let status = self.wait_for_end();
        let dir = self.dir();
        assert!(
            self.private,
            "the demo has no folder of its own\n{}",
            self.screen()
        );
        assert!(
            !dir.exists(),
            "the demo's folder {} is still there",
            dir.display()
        );
        status
    }

    /// The processes of the demo still there: seen ones (zombies included), and any whose
    /// command line names the demo's own folder.
    fn left(&self) -> Vec<u32> {
        let mut left: Vec<u32> = self
            .seen
            .iter()
            .filter(|&(&pid, &start)| proc_stat(pid).is_some_and(|stat| stat.starttime == start))
            .map(|(&pid, _)| pid)
            .collect();
        let own_dir = self.dir.as_deref().filter(|_| self.private);
        for pid in own_dir.map(naming).unwrap_or_default() {
            if !left.contains(&pid) {
                left.push(pid);
            }
        }
        left
    }
}

/// The demo's pace in these tests: a number every 200 ms, heartbeats every 20 ms, a takeover
/// after 5 missed (roomy on a busy 2-core machine).
const DEFAULTS: &[&str] = &["--period", "200ms", "--interval", "20ms", "--misses", "5"];

/// The live processes whose command line holds `dir`.
fn naming(dir: &Path) -> Vec<u32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

const SIGINT: i32 = 2;
const SIGHUP: i32 = 1;
const SIGKILL: i32 = 9;

#[test]
fn ctrl_c_ends_the_holder_the_primary_and_the_backup() {
    let sandbox = Sandbox::new();
    let mut demo = Demo::start(&sandbox, &[]);
    let first = demo.wait_for_count("first number", |_| true);
    demo.wait_for_backup_of(first.pid);
    demo.ctrl_c();
    let status = demo.wait_for_end_of_private_demo();
    assert_eq!(status.signal(), Some(SIGINT), "{status}");
}

#[test]
fn ctrl_c_ends_the_demo_after_a_takeover() {
    let sandbox = Sandbox::new();
    let mut demo = Demo::start(&sandbox, &[]);
    let first = demo.wait_for_count("first number", |_| true);
    let backup = demo.wait_for_backup_of(first.pid);
    send_signal(first.pid, Signal::KILL).expect("kill -KILL the primary");
    let next = demo.wait_for_count("number from a new primary", |c| c.pid != first.pid);
    assert_eq!(next.pid, backup, "the backup took over\n{}", demo.screen());
    demo.wait_for_count("the count going on", |c| {
        c.pid == backup && c.number > next.number
    });
    demo.wait_for_backup_of(backup);
    demo.ctrl_c();
    let status = demo.wait_for_end_of_private_demo();
    assert_eq!(status.signal(), Some(SIGINT), "{status}");
}

#[test]
fn ctrl_c_ends_an_old_primary_that_was_paused_and_replaced() {
    let sandbox = Sandbox::new();
    let mut demo = Demo::start(&sandbox, &[]);
    let first = demo.wait_for_count("first number", |_| true);
    let backup = demo.wait_for_backup_of(first.pid);
    send_signal(first.pid, Signal::STOP).expect("kill -STOP the primary");
    let next = demo.wait_for_count("number from a new primary", |c| c.pid != first.pid);
    assert_eq!(next.pid, backup, "the backup took over\n{}", demo.screen());
    demo.wait_for_backup_of(backup);
    // The old primary is still there, stopped: a stopped process takes no SIGINT until it is
    // continued, and reads no lifeline.
    assert_eq!(proc_stat(first.pid).map(|stat| stat.state), Some('T'));
    demo.ctrl_c();
    let status = demo.wait_for_end_of_private_demo();
    assert_eq!(status.signal(), Some(SIGINT), "{status}");
}

#[test]
fn closing_the_terminal_ends_the_demo_after_a_takeover() {
    let sandbox = Sandbox::new();
    // A number at the start and at each takeover, then not for 30 s: a process that prints
    // to the hung-up terminal fails and stops, so only a demo that ends with the terminal
    // is gone before it prints again.
    let mut demo = Demo::start_with(
        &sandbox,
        &["--period", "30s", "--interval", "20ms", "--misses", "5"],
        false,
    );
    let first = demo.wait_for_count("first number", |_| true);
    let backup = demo.wait_for_backup_of(first.pid);
    send_signal(first.pid, Signal::KILL).expect("kill -KILL the primary");
    let next = demo.wait_for_count("number from a new primary", |c| c.pid != first.pid);
    assert_eq!(next.pid, backup, "the backup took over\n{}", demo.screen());
    demo.wait_for_backup_of(backup);
    demo.saw_all();
    demo.session.hang_up();
    let status = demo.wait_for_end_of_private_demo();
    assert_eq!(status.signal(), Some(SIGHUP), "{status}");
}

#[test]
fn the_pair_dies_with_its_holder_through_the_lifeline() {
    // Under a subreaper that leads the session and outlives the holder: no hangup, no
    // SIGHUP to the foreground group when the holder dies, so only the lifeline can end the
    // pair; the subreaper reaps it and exits once nothing is left.
    let sandbox = Sandbox::new();
    let mut demo = Demo::start_with(&sandbox, DEFAULTS, true);
    let first = demo.wait_for_count("first number", |_| true);
    let backup = demo.wait_for_backup_of(first.pid);
    let holder = demo.holder();
    demo.saw_all();
    send_signal(holder, Signal::KILL).expect("kill -KILL the holder");
    for pid in [first.pid, backup] {
        let said = format!("counter[{pid}]: the lifeline is cut (its holder is gone): exiting");
        demo.session
            .wait_for_screen(|screen| screen.contains(&said), TIMEOUT);
    }
    let status = demo.wait_for_end();
    assert_eq!(
        status.code(),
        Some(128 + SIGKILL),
        "the holder's death: {status}"
    );
}

#[test]
fn two_demos_started_at_once_each_count_in_a_pair_of_their_own() {
    let sandbox = Sandbox::new();
    let mut demos = [Demo::start(&sandbox, &[]), Demo::start(&sandbox, &[])];
    let mut primaries = Vec::new();
    for demo in &mut demos {
        let first = demo.wait_for_count("first number", |_| true);
        demo.wait_for_backup_of(first.pid);
        demo.wait_for_count("the count going on", |c| {
            c.pid == first.pid && c.number >= 3
        });
        assert!(
            !demo.screen().contains("another pair-demo"),
            "{}",
            demo.screen()
        );
        primaries.push(first.pid);
    }
    assert_ne!(primaries[0], primaries[1]);
    let dirs: Vec<PathBuf> = demos.iter_mut().map(Demo::dir).collect();
    assert_ne!(dirs[0], dirs[1], "a folder of each demo's own");
    for demo in &mut demos {
        demo.ctrl_c();
        demo.wait_for_end_of_private_demo();
    }
}

#[test]
fn a_demo_given_the_folder_of_a_demo_with_a_backup_says_so_and_exits() {
    let sandbox = Sandbox::new();
    let shared = sandbox.file("shared");
    let shared_arg = shared.to_str().expect("a UTF-8 path");
    let mut first = Demo::start(&sandbox, &["--dir", shared_arg]);
    let primary = first.wait_for_count("first number", |_| true).pid;
    let backup = first.wait_for_backup_of(primary);

    let mut second = Demo::start(&sandbox, &["--dir", shared_arg]);
    let said = format!(
        "another pair-demo is running in {} (primary pid {primary}, backup pid {backup})",
        shared.display()
    );
    second
        .session
        .wait_for_screen(|screen| screen.contains(&said), TIMEOUT);
    let status = second.session.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(1), "{status}");

    // The first demo did not notice.
    let last = first.counts().last().expect("a number").number;
    first.wait_for_count("the count going on", |c| c.number > last + 1);
    assert!(
        first.counts().iter().all(|c| c.pid == primary),
        "{}",
        first.screen()
    );
    first.ctrl_c();
    first.wait_for_end();
    assert!(shared.exists(), "a folder given with --dir is left");
}

#[test]
fn a_demo_given_the_folder_of_a_demo_without_a_backup_says_so_and_stands_by_as_its_backup() {
    let sandbox = Sandbox::new();
    let shared = sandbox.file("shared");
    let shared_arg = shared.to_str().expect("a UTF-8 path");
    let mut first = Demo::start(&sandbox, &["--dir", shared_arg]);
    let primary = first.wait_for_count("first number", |_| true).pid;
    let backup = first.wait_for_backup_of(primary);
    first.saw_all();
    // Leave the primary without a backup, and unable to spawn another for now: the backup
    // stopped first (so that it cannot take over), the primary stopped, the backup killed.
    send_signal(backup, Signal::STOP).expect("kill -STOP the backup");
    send_signal(primary, Signal::STOP).expect("kill -STOP the primary");
    send_signal(backup, Signal::KILL).expect("kill -KILL the backup");
    wait_dead(backup, TIMEOUT);

    // The second demo's process waits for 100 missed heartbeats of 20 ms before it takes over:
    // time enough for the test to continue the first primary once it is registered.
    let mut second = Demo::start_with(
        &sandbox,
        &[
            "--period",
            "200ms",
            "--interval",
            "20ms",
            "--misses",
            "100",
            "--dir",
            shared_arg,
        ],
        false,
    );
    let said = format!(
        "another pair-demo is running in {} (primary pid {primary}): this one stands by as its backup",
        shared.display()
    );
    second
        .session
        .wait_for_screen(|screen| screen.contains(&said), TIMEOUT);
    let registered = shared.join("counter.backup.lock");
    let standby = wait_until(
        "the second demo's process registered as the backup",
        TIMEOUT,
        || {
            let pid: u32 = std::fs::read_to_string(&registered)
                .ok()?
                .trim()
                .parse()
                .ok()?;
            descendants(second.leader).contains(&pid).then_some(pid)
        },
    );
    second.saw(standby);
    send_signal(primary, Signal::CONT).expect("kill -CONT the primary");
    assert_eq!(second.wait_for_backup_of(primary), standby);

    // The first demo counts on, its backup now the second demo's process.
    let last = first.counts().last().expect("a number").number;
    first.wait_for_count("the count going on", |c| c.number > last + 1);
    assert!(
        first.counts().iter().all(|c| c.pid == primary),
        "{}",
        first.screen()
    );
    assert!(second.counts().is_empty(), "{}", second.screen());

    // Each demo ends with its own Ctrl-C.
    second.ctrl_c();
    let status = second.wait_for_end();
    assert_eq!(status.signal(), Some(SIGINT), "{status}");
    let last = first.counts().last().expect("a number").number;
    first.wait_for_count("the count going on", |c| c.number > last + 1);
    first.ctrl_c();
    let status = first.wait_for_end();
    assert_eq!(status.signal(), Some(SIGINT), "{status}");
}

#[test]
fn a_count_line_is_parsed_and_other_lines_are_not() {
    assert_eq!(
        parse_count("12 (pid 4242, primary since 09:41:03)"),
        Some(Count {
            number: 12,
            pid: 4242
        })
    );
    assert_eq!(parse_count("counter[4242]: backup pid 4250 spawned"), None);
    assert_eq!(parse_count(""), None);
}
