//! Support for the process pair's integration tests: the counter example run for real, its
//! output read as it comes, and every process it starts found, killed and reaped by pid.
//!
//! Theory of operation. [`Pair::start`] runs `examples/counter` in a fresh temporary folder
//! (its `--dir`), with stdout and stderr on pipes that two threads read line by line, each
//! line stamped with the moment it arrived: [`Count`]s from stdout (`12 (pid 4242, primary
//! since 09:41:03)`), [`LogLine`]s from stderr (`counter[4242]: backup pid 4250 spawned`).
//! The test process is a child subreaper, so every process of the pair comes back to it when
//! its parent dies: a test reaps the primaries it kills ([`Pair::reap`]), and
//! [`Pair::end`] freezes, kills and reaps whatever is left, found by pid: the pids the
//! output names, and any process whose command line holds the pair's folder (unique to the
//! test). Dropping a `Pair` ends it too, so a failing test leaves nothing behind.
//!
//! Time never decides a result: every wait is for a condition, with a deadline ([`TIMEOUT`])
//! that only a hang reaches. Every loop is bounded.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{kill_process, waitpid, Pid, Signal, WaitOptions, WaitStatus};

/// The deadline for anything a test waits for. Generous: reaching it means a hang, not
/// slowness.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The pause between two looks at a condition.
const POLL: Duration = Duration::from_millis(5);

/// Waits until `f` gives a value, or fails the test after `timeout`, saying `what` it waited
/// for.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let past_deadline = Instant::now() >= deadline;
        if let Some(value) = f() {
            return value;
        }
        assert!(
            !past_deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(POLL);
    }
}

/// The counter example, built now if it is not up to date.
///
/// `cargo test -p taskmaster-pair` builds the package's examples, but a run filtered to one
/// test target (`--test counter`) does not, and could run a stale one. So the test asks cargo
/// to build it (once per run of the test binary): up to date, that costs a fraction of a
/// second. The build goes where this test binary was built (`<target>/<profile>/deps/`), with
/// the same profile. cargo releases its lock on the target folder before it runs the tests,
/// so the nested cargo does not wait for the outer one.
pub fn counter_example() -> PathBuf {
    static PROFILE_FOLDER: OnceLock<PathBuf> = OnceLock::new();
    let profile_folder = PROFILE_FOLDER.get_or_init(|| {
        let test_binary = std::env::current_exe().expect("the test binary's path");
        let profile_folder = test_binary
            .parent()
            .and_then(Path::parent)
            .expect("the test binary is in <target>/<profile>/deps/")
            .to_path_buf();
        let target_folder = profile_folder.parent().expect("the target folder");
        let profile = match profile_folder.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "-p",
                "taskmaster-pair",
                "--examples",
                "--profile",
                profile,
            ])
            .arg("--target-dir")
            .arg(target_folder)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        // Generous: a first build compiles everything.
        let (status, _, stderr) = run_to_completion(build, Duration::from_secs(600));
        assert!(
            status.success(),
            "cargo build --examples failed: {status}\n{stderr}"
        );
        profile_folder
    });
    let path = profile_folder.join("examples").join("counter");
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Runs `command` with no stdin and its output captured; fails the test if it has not exited
/// within `timeout` (it is killed then, by pid). Status, stdout, stderr.
pub fn run_to_completion(mut command: Command, timeout: Duration) -> (ExitStatus, String, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} still running after {timeout:?}");
        }
        thread::sleep(POLL);
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    (status, stdout, stderr)
}

/// Makes this test process the subreaper of everything it starts (orphans come back to it,
/// to be reaped), and turns core dumps off for the SIGSEGVs the tests send. Once per process.
pub fn prepare_test_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .expect("become a child subreaper");
        let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
        rustix::process::setrlimit(
            rustix::process::Resource::Core,
            rustix::process::Rlimit {
                current: Some(0),
                maximum: limit.maximum,
            },
        )
        .expect("turn core dumps off");
    });
}

/// A number the counter printed, and who printed it, when.
#[derive(Clone, Debug)]
pub struct Count {
    pub at: Instant,
    pub number: u64,
    pub pid: u32,
}

/// A line of the library's log (stderr), `NAME[PID]: text`.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub at: Instant,
    pub pid: u32,
    pub text: String,
}

/// Everything the pair printed so far.
#[derive(Default)]
struct Transcript {
    counts: Vec<Count>,
    log: Vec<LogLine>,
    /// Lines of either stream that are neither (a panic, an error message).
    other: Vec<String>,
}

/// `12 (pid 4242, primary since 09:41:03)`
fn parse_count(line: &str, at: Instant) -> Option<Count> {
    let (number, rest) = line.split_once(" (pid ")?;
    let (pid, rest) = rest.split_once(", primary since ")?;
    rest.ends_with(')').then_some(())?;
    Some(Count {
        at,
        number: number.parse().ok()?,
        pid: pid.parse().ok()?,
    })
}

/// `counter[4242]: backup pid 4250 spawned`
fn parse_log(line: &str, at: Instant) -> Option<LogLine> {
    let (_, rest) = line.split_once('[')?;
    let (pid, text) = rest.split_once("]: ")?;
    Some(LogLine {
        at,
        pid: pid.parse().ok()?,
        text: text.to_owned(),
    })
}

/// A counter pair under test.
pub struct Pair {
    dir: tempfile::TempDir,
    args: Vec<String>,
    transcript: Arc<Mutex<Transcript>>,
    /// The pids this test reaped, and how they ended.
    reaped: HashMap<u32, WaitStatus>,
    ended: bool,
}

impl Pair {
    /// Starts the counter with a short heartbeat interval (20 ms; a takeover after 5 silent
    /// intervals, roomy enough for a busy 2-core machine), a period of 20 ms unless
    /// `extra_args` gives one, and `extra_args`.
    pub fn start(extra_args: &[&str]) -> Pair {
        prepare_test_process();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut args: Vec<String> = ["--interval", "20ms", "--misses", "5", "--dir"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(dir.path().to_str().expect("a UTF-8 path").to_owned());
        if !extra_args.contains(&"--period") {
            args.extend(["--period".to_owned(), "20ms".to_owned()]);
        }
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let mut command = Command::new(counter_example());
        command
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the counter");
        let transcript = Arc::new(Mutex::new(Transcript::default()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        // `child` is reaped by pid like the rest of the pair; dropping it leaves it running.
        drop(child);
        read_lines(
            stdout,
            Arc::clone(&transcript),
            |line, at, t| match parse_count(line, at) {
                Some(count) => t.counts.push(count),
                None => t.other.push(format!("stdout: {line}")),
            },
        );
        read_lines(
            stderr,
            Arc::clone(&transcript),
            |line, at, t| match parse_log(line, at) {
                Some(log) => t.log.push(log),
                None => t.other.push(format!("stderr: {line}")),
            },
        );
        Pair {
            dir,
            args,
            transcript,
            reaped: HashMap::new(),
            ended: false,
        }
    }

    /// The counter's arguments, to start another process of the same pair.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn transcript(&self) -> std::sync::MutexGuard<'_, Transcript> {
        self.transcript
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn counts(&self) -> Vec<Count> {
        self.transcript().counts.clone()
    }

    pub fn log(&self) -> Vec<LogLine> {
        self.transcript().log.clone()
    }

    /// Everything printed so far, for a failure message.
    pub fn dump(&self) -> String {
        let transcript = self.transcript();
        let mut lines: Vec<(Instant, String)> = transcript
            .counts
            .iter()
            .map(|c| (c.at, format!("{} (pid {})", c.number, c.pid)))
            .chain(
                transcript
                    .log
                    .iter()
                    .map(|l| (l.at, format!("  log [{}] {}", l.pid, l.text))),
            )
            .collect();
        lines.sort_by_key(|(at, _)| *at);
        let mut text: Vec<String> = lines.into_iter().map(|(_, line)| line).collect();
        text.extend(transcript.other.iter().cloned());
        text.join("\n")
    }

    /// The first count that satisfies `accept`, waiting for it.
    pub fn wait_for_count(&self, what: &str, accept: impl Fn(&Count) -> bool) -> Count {
        let found = wait_or_none(|| self.transcript().counts.iter().find(|c| accept(c)).cloned());
        found.unwrap_or_else(|| panic!("timed out waiting for {what}; seen:\n{}", self.dump()))
    }

    /// The first log line that satisfies `accept`, waiting for it.
    pub fn wait_for_log(&self, what: &str, accept: impl Fn(&LogLine) -> bool) -> LogLine {
        let found = wait_or_none(|| self.transcript().log.iter().find(|l| accept(l)).cloned());
        found.unwrap_or_else(|| panic!("timed out waiting for {what}; seen:\n{}", self.dump()))
    }

    /// Waits until a backup of `primary` holds its latest checkpoint (it says
    /// `backup of pid PRIMARY`), and gives its pid. Until then a death of the primary would
    /// lose the count.
    pub fn wait_for_backup_of(&self, primary: u32) -> u32 {
        let marker = format!("backup of pid {primary} ");
        self.wait_for_log(&format!("a backup of pid {primary}"), |l| {
            l.text.starts_with(&marker)
        })
        .pid
    }

    /// Waits until `pid` (a child of this process, or an orphan come back to it) has ended,
    /// reaps it, and says how it ended.
    pub fn reap(&mut self, pid: u32) -> WaitStatus {
        if let Some(status) = self.reaped.get(&pid) {
            return *status;
        }
        let target = Pid::from_raw(pid as i32).expect("a pid");
        let found = wait_or_none(|| match waitpid(Some(target), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => Some(status),
            // Not ended yet, or not ours yet (its parent lives, and reaps it or not).
            Ok(None) | Err(_) => None,
        });
        let status = found.unwrap_or_else(|| {
            panic!(
                "pid {pid} not reaped after {TIMEOUT:?}; seen:\n{}",
                self.dump()
            )
        });
        self.reaped.insert(pid, status);
        status
    }

    /// Every pid the pair's output names: printers, loggers, spawned backups.
    pub fn known_pids(&self) -> BTreeSet<u32> {
        let transcript = self.transcript();
        let mut pids: BTreeSet<u32> = transcript.counts.iter().map(|c| c.pid).collect();
        for line in &transcript.log {
            pids.insert(line.pid);
            if let Some(spawned) = line
                .text
                .strip_prefix("backup pid ")
                .and_then(|rest| rest.strip_suffix(" spawned"))
                .and_then(|pid| pid.parse().ok())
            {
                pids.insert(spawned);
            }
        }
        pids
    }

    /// The live processes whose command line names this pair's folder: the pair's processes
    /// and nothing else (the folder is this test's own).
    pub fn live_processes(&self) -> BTreeSet<u32> {
        let needle = self.dir.path().as_os_str().as_encoded_bytes().to_vec();
        let Ok(entries) = fs::read_dir("/proc") else {
            return BTreeSet::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle))
            })
            .collect()
    }

    /// Waits until exactly two processes of the pair live, a primary and its backup, and gives
    /// them. Fails if more (or fewer) stay: a pair never multiplies.
    pub fn wait_for_two_processes(&self) -> BTreeSet<u32> {
        let found = wait_or_none(|| {
            let live = self.live_processes();
            (live.len() == 2).then_some(live)
        });
        found.unwrap_or_else(|| {
            panic!(
                "the pair is not two processes but {:?}; seen:\n{}",
                self.live_processes(),
                self.dump()
            )
        })
    }

    /// Waits until no process of the pair is left alive.
    pub fn wait_for_no_process(&self) {
        let gone = wait_or_none(|| self.live_processes().is_empty().then_some(()));
        assert!(
            gone.is_some(),
            "the pair still runs: {:?}; seen:\n{}",
            self.live_processes(),
            self.dump()
        );
    }

    /// Ends the pair: freezes every process of it (SIGSTOP, so that none can take over or
    /// spawn meanwhile), kills them (SIGKILL), reaps them, and checks that nothing is left.
    /// The live processes are found by the pair's folder on their command line (one spawned a
    /// moment ago has not said its pid yet, and a pid the output named may be gone); the dead
    /// ones are reaped by pid, from the pids the output names and those killed here.
    pub fn end(&mut self) {
        self.ended = true;
        let mut frozen = BTreeSet::new();
        for _round in 0..10 {
            let unfrozen: Vec<u32> = self
                .live_processes()
                .into_iter()
                .filter(|pid| !frozen.contains(pid))
                .collect();
            if unfrozen.is_empty() {
                break;
            }
            for pid in unfrozen {
                signal(pid, Signal::STOP);
                frozen.insert(pid);
            }
        }
        for &pid in &frozen {
            signal(pid, Signal::KILL);
        }
        let mut ours: BTreeSet<u32> = self.known_pids();
        ours.extend(&frozen);
        let left = wait_or_none(|| {
            for &pid in &ours {
                if self.reaped.contains_key(&pid) || !is_zombie_child(pid) {
                    continue;
                }
                if let Some(target) = Pid::from_raw(pid as i32) {
                    if let Ok(Some((_, status))) = waitpid(Some(target), WaitOptions::NOHANG) {
                        self.reaped.insert(pid, status);
                    }
                }
            }
            let unreaped = ours
                .iter()
                .any(|&pid| !self.reaped.contains_key(&pid) && is_zombie_child(pid));
            (!unreaped && self.live_processes().is_empty()).then_some(())
        });
        assert!(
            left.is_some(),
            "processes of the pair left after the end: {:?}",
            self.live_processes()
        );
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if !self.ended {
            // A failing test: clean up, but do not panic again while unwinding.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.end()));
            if result.is_err() {
                eprintln!(
                    "could not end every process of the pair in {}",
                    self.dir().display()
                );
            }
        }
    }
}

/// Sends `signal` to `pid`; a process already gone is not an error.
pub fn signal(pid: u32, signal: Signal) {
    if let Some(target) = Pid::from_raw(pid as i32) {
        match kill_process(target, signal) {
            Ok(()) | Err(Errno::SRCH) => {}
            Err(error) => panic!("kill -{signal:?} {pid}: {error}"),
        }
    }
}

/// Whether `pid` is a zombie whose parent is this process: one of ours to reap.
fn is_zombie_child(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
    let Some((_, fields)) = stat.rsplit_once(") ") else {
        return false;
    };
    let mut fields = fields.split_whitespace();
    let state = fields.next();
    let parent: Option<u32> = fields.next().and_then(|p| p.parse().ok());
    state == Some("Z") && parent == Some(std::process::id())
}

/// [`wait_until`] with [`TIMEOUT`], but `None` at the deadline, for callers with more to say.
fn wait_or_none<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let past_deadline = Instant::now() >= deadline;
        if let Some(value) = f() {
            return Some(value);
        }
        if past_deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// Reads `pipe` line by line in a thread, handing each line, stamped with its arrival, to
/// `keep`, until every writer has closed it.
fn read_lines(
    pipe: impl Read + Send + 'static,
    transcript: Arc<Mutex<Transcript>>,
    keep: impl Fn(&str, Instant, &mut Transcript) + Send + 'static,
) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            let at = Instant::now();
            keep(
                &line,
                at,
                &mut transcript.lock().unwrap_or_else(PoisonError::into_inner),
            );
        }
    });
}

/// A small deterministic PRNG (splitmix64), so that a failing run can be repeated from its
/// seed.
pub struct Random(u64);

impl Random {
    /// Seeded from `PAIR_TEST_SEED` if set, from the clock otherwise; the seed is printed.
    pub fn from_env_or_clock(test: &str) -> Random {
        let seed = std::env::var("PAIR_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: seed {seed} (PAIR_TEST_SEED={seed} repeats this run)");
        Random(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}
