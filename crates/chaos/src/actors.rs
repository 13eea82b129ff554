//! The three kinds of actor that run at once for the whole run, each on its own thread with
//! its own random stream: the signaller (signals to the children and grandchildren), the
//! clients (control requests, several at once) and the reloader (the configuration changed
//! and reloaded, by SIGHUP and by `reload`).

use std::fs;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
use taskmaster_core::Request;

use crate::control::{self, Answer, TimedClient};
use crate::procfs::{self, Table};
use crate::programs::{Layout, Paths};
use crate::rng::Rng;
use crate::tally;

/// What every actor shares.
pub struct Context {
    pub paths: Paths,
    /// The `taskmaster` binary, for `taskmaster ctl`.
    pub taskmaster: PathBuf,
    pub daemon_pid: u32,
    pub seed: u64,
    pub request_timeout: Duration,
    /// The programs in force (as last written to the configuration file).
    pub layout: Mutex<Layout>,
    pub tally: tally::Shared,
    /// Set when the run's time is up: every actor finishes what it does and returns.
    pub done: AtomicBool,
    /// When the actors started: the storms and lulls are counted from it.
    pub begun: Instant,
}

/// The run's rhythm: a storm, when every actor works, then a lull, when the signaller only
/// continues what it paused (and flips the health flag) and the clients only ask for status,
/// long enough for what needs a process left alone for a while to happen (a watchdog's
/// hang found, failed health checks in a row, a restart limit reached).
const STORM: Duration = Duration::from_secs(10);
const LULL: Duration = Duration::from_secs(5);

impl Context {
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    /// Whether this is a lull.
    pub fn in_lull(&self) -> bool {
        let cycle = (STORM + LULL).as_millis();
        self.begun.elapsed().as_millis() % cycle >= STORM.as_millis()
    }

    fn layout(&self) -> Layout {
        self.layout
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Every live process this run started, under taskmaster: pid and depth (1: a child).
    pub fn our_processes(&self) -> Vec<(u32, u32)> {
        let token = self.paths.token_assignment();
        Table::read()
            .descendants_of(self.daemon_pid)
            .into_iter()
            .filter(|(stat, _)| !stat.is_zombie() && procfs::has_variable(stat.pid, &token))
            .map(|(stat, depth)| (stat.pid, depth))
            .collect()
    }

    /// A pidfd for `pid`, if it still is a process of this run. The token is read after the
    /// pidfd is opened: if `pid` was reused meanwhile by a process of someone else's, either the
    /// token is missing or the pidfd names a dead process and a signal through it fails.
    pub fn pidfd_of_ours(&self, pid: u32) -> Option<OwnedFd> {
        let fd = pidfd_open(
            Pid::from_raw(i32::try_from(pid).ok()?)?,
            PidfdFlags::empty(),
        )
        .ok()?;
        procfs::has_variable(pid, &self.paths.token_assignment()).then_some(fd)
    }
}

/// Sleeps until `next`, or returns at once when it has passed; gives the tick after it.
fn pace(next: Instant, period: Duration) -> Instant {
    let now = Instant::now();
    if next > now {
        thread::sleep(next - now);
        next + period
    } else {
        now + period
    }
}

/// Signals to random processes of the run, `rate` a second: SIGKILL, SIGSEGV, SIGTERM and
/// SIGSTOP, each SIGSTOP followed by a SIGCONT 0.1 to 2 s later (every pause still due is
/// continued before it returns). Every 0.5 to 4 s it may flip the health checks' flag too.
pub fn signaller(ctx: &Context, rate: u32) {
    const SIGNALS: [(Signal, &str, u64); 4] = [
        (Signal::KILL, "SIGKILL", 25),
        (Signal::SEGV, "SIGSEGV", 15),
        (Signal::TERM, "SIGTERM", 25),
        (Signal::STOP, "SIGSTOP", 25),
    ];
    let weights: Vec<u64> = SIGNALS.iter().map(|s| s.2).collect();
    let mut rng = Rng::for_actor(ctx.seed, 1);
    let period = Duration::from_secs(1) / rate.max(1);
    let mut paused: Vec<(OwnedFd, Instant)> = Vec::new();
    let mut processes: Vec<(u32, u32)> = Vec::new();
    let mut listed = Instant::now();
    let mut next = Instant::now();
    let mut first = true;
    let mut next_flip = Instant::now();
    while !ctx.is_done() {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = paused.drain(..).partition(|(_, at)| *at <= now);
        paused = later;
        for (fd, _) in due {
            let _ = pidfd_send_signal(&fd, Signal::CONT);
            ctx.tally
                .with(|t| *t.signals.entry("SIGCONT").or_default() += 1);
        }
        if first || now.duration_since(listed) >= Duration::from_millis(200) {
            processes = ctx.our_processes();
            listed = now;
            first = false;
        }
        if now >= next_flip {
            flip_health(ctx, &mut rng);
            next_flip = now + Duration::from_millis(rng.between(500, 4000));
        } else if !ctx.in_lull() {
            // Children two times in three, deeper processes otherwise (when there are any).
            let deep = rng.chance(33);
            let (signal, name, _) = SIGNALS[rng.weighted(&weights)];
            // A process listed may be gone by now: another pick, a few times.
            for _ in 0..4 {
                let pool: Vec<u32> = processes
                    .iter()
                    .filter(|(_, depth)| (*depth > 1) == deep)
                    .map(|(pid, _)| *pid)
                    .collect();
                let Some(&pid) = rng.pick(&pool) else { break };
                let Some(fd) = ctx.pidfd_of_ours(pid) else {
                    processes.retain(|(listed, _)| *listed != pid);
                    continue;
                };
                if pidfd_send_signal(&fd, signal).is_ok() {
                    ctx.tally.with(|t| *t.signals.entry(name).or_default() += 1);
                    if signal == Signal::STOP {
                        let delay = Duration::from_millis(rng.between(100, 2000));
                        paused.push((fd, Instant::now() + delay));
                    }
                    break;
                }
            }
        }
        next = pace(next, period);
    }
    for (fd, _) in paused {
        let _ = pidfd_send_signal(&fd, Signal::CONT);
        ctx.tally
            .with(|t| *t.signals.entry("SIGCONT").or_default() += 1);
    }
}

/// Removes the health flag (the health checks start failing: after two in a row the process
/// is declared unhealthy and restarted) or puts it back, or leaves it as it is.
fn flip_health(ctx: &Context, rng: &mut Rng) {
    let flag = ctx.paths.health_flag();
    let flipped = if flag.exists() {
        rng.chance(50) && fs::remove_file(&flag).is_ok()
    } else {
        fs::write(&flag, b"").is_ok()
    };
    if flipped {
        ctx.tally.with(|t| t.health_flips += 1);
    }
}

/// A control request chosen at random: the words of the shell's command, and the request.
fn random_request(rng: &mut Rng, layout: &Layout) -> (Vec<String>, Request) {
    let programs: Vec<String> = layout.programs.keys().cloned().collect();
    let processes = layout.all_process_names();
    let target = |rng: &mut Rng| -> String {
        match rng.weighted(&[60, 20, 8, 4, 4]) {
            0 => rng.pick(&processes).cloned(),
            1 => rng.pick(&programs).cloned(),
            2 => rng.pick(&programs).map(|p| format!("{p}:*")),
            3 => Some("all".to_string()),
            // A name that is not (or no longer) there.
            _ => Some(format!("gone{}", rng.below(4))),
        }
        .unwrap_or_else(|| "all".to_string())
    };
    let targets: Vec<String> = (0..rng.between(1, 2)).map(|_| target(rng)).collect();
    let verb = rng.weighted(&[25, 16, 14, 12, 18, 5, 4]);
    let (words, request): (Vec<&str>, Request) = match verb {
        0 => {
            let names = if rng.chance(40) {
                Vec::new()
            } else {
                targets.clone()
            };
            let request = Request::Status(names.clone());
            return (
                std::iter::once("status".to_string()).chain(names).collect(),
                request,
            );
        }
        1 => (vec!["start"], Request::Start(targets.clone())),
        2 => (vec!["stop"], Request::Stop(targets.clone())),
        3 => (vec!["restart"], Request::Restart(targets.clone())),
        4 => {
            let signals = ["TERM", "HUP", "USR1", "INT", "KILL", "STOP", "CONT"];
            let name = rng.pick(&signals).copied().unwrap_or("TERM");
            match name.parse::<taskmaster_core::Signal>() {
                Ok(signal) => (
                    vec!["signal", name],
                    Request::Signal {
                        signal,
                        targets: targets.clone(),
                    },
                ),
                // Every name above parses; were one not to, a status is asked instead.
                Err(_) => (vec!["status"], Request::Status(targets.clone())),
            }
        }
        6 => {
            let text = format!("chaos {}", rng.below(1000));
            let words = ["sendstdin".to_string()]
                .into_iter()
                .chain(targets.first().cloned())
                .chain([text.clone()])
                .collect();
            let request = Request::SendStdin {
                targets: targets.into_iter().take(1).collect(),
                data: format!("{text}\n").into_bytes(),
            };
            return (words, request);
        }
        _ => {
            let restart = rng.chance(70);
            let words = if restart {
                vec!["kill"]
            } else {
                vec!["kill", "--no-restart"]
            };
            let request = Request::Kill {
                targets: targets.clone(),
                restart,
                by: "chaos".to_string(),
            };
            (words, request)
        }
    };
    let words = words
        .into_iter()
        .map(str::to_string)
        .chain(targets)
        .collect();
    (words, request)
}

/// One client: requests back to back (a pause of up to 30 ms between them) until the run is
/// done, on the JSON API, or with `shell` through `taskmaster ctl` in the shell's language;
/// in the lulls only `status`, every 50 to 100 ms.
pub fn client(ctx: &Context, index: u64, shell: bool) {
    let mut rng = Rng::for_actor(ctx.seed, 10 + index);
    let mut api = TimedClient::new(&ctx.paths.socket(), ctx.request_timeout);
    while !ctx.is_done() {
        let (words, request) = if ctx.in_lull() {
            (vec!["status".to_string()], Request::Status(Vec::new()))
        } else {
            random_request(&mut rng, &ctx.layout())
        };
        let verb = words.first().cloned().unwrap_or_default();
        let (label, answer) = if shell {
            let answer = control::ctl(
                &ctx.taskmaster,
                &ctx.paths.socket(),
                &words,
                ctx.request_timeout,
            );
            (format!("ctl {verb}"), answer)
        } else {
            (verb, api.send(request))
        };
        ctx.tally.with(|t| {
            *t.requests.entry(label.clone()).or_default() += 1;
            t.record(&words.join(" "), &answer);
        });
        // A lull is calm: a status every 50 to 100 ms per client, not back to back.
        let pause = if ctx.in_lull() {
            rng.between(50, 100)
        } else {
            rng.below(30)
        };
        thread::sleep(Duration::from_millis(pause));
    }
}

/// Changes the configuration and reloads it, every 0.3 to 1.5 s of the storms (one time in
/// seven at once after the last), until the run is done: by
/// SIGHUP half the time, by the `reload` request the other half. One reload in eight keeps
/// the file as it was.
pub fn reloader(ctx: &Context) {
    let mut rng = Rng::for_actor(ctx.seed, 2);
    let mut api = TimedClient::new(&ctx.paths.socket(), ctx.request_timeout);
    let mut next = Instant::now() + Duration::from_millis(rng.between(300, 1500));
    while !ctx.is_done() {
        if Instant::now() < next || ctx.in_lull() {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        let layout = {
            let mut layout = ctx
                .layout
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !rng.chance(12) {
                layout.mutate(&mut rng);
            }
            layout.clone()
        };
        if let Err(e) = write_config(&ctx.paths, &layout) {
            ctx.tally
                .with(|t| t.record("write the configuration", &Answer::Broken(e)));
        } else if rng.chance(50) {
            let hup = rustix::process::Pid::from_raw(i32::try_from(ctx.daemon_pid).unwrap_or(0));
            if let Some(pid) = hup {
                if rustix::process::kill_process(pid, Signal::HUP).is_ok() {
                    ctx.tally.with(|t| t.sighups += 1);
                }
            }
        } else {
            let answer = api.send(Request::Reload);
            ctx.tally.with(|t| {
                t.reload_requests += 1;
                *t.requests.entry("reload".to_string()).or_default() += 1;
                t.record("reload", &answer);
            });
        }
        // Now and then a burst: the next change follows at once, while this one is applied.
        let pause = if rng.chance(15) {
            rng.between(0, 20)
        } else {
            rng.between(300, 1500)
        };
        next = Instant::now() + Duration::from_millis(pause);
    }
}

/// Writes `layout`'s configuration file whole: a new file renamed over the old one, so that a
/// reload never reads half of it.
pub fn write_config(paths: &Paths, layout: &Layout) -> Result<(), String> {
    let path = paths.config();
    let partial = path.with_extension("yaml.partial");
    fs::write(&partial, layout.yaml(paths))
        .and_then(|()| fs::rename(&partial, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// SIGCONT to every paused process of the run, each through a pidfd; how many there were.
pub fn continue_paused(token_assignment: &str) -> usize {
    let mut continued = 0;
    for stat in Table::read().stats.values().filter(|s| s.is_stopped()) {
        let Some(pid) = i32::try_from(stat.pid).ok().and_then(Pid::from_raw) else {
            continue;
        };
        let Ok(fd) = pidfd_open(pid, PidfdFlags::empty()) else {
            continue;
        };
        if procfs::has_variable(stat.pid, token_assignment)
            && pidfd_send_signal(&fd, Signal::CONT).is_ok()
        {
            continued += 1;
        }
    }
    continued
}

/// How long something wrong may last before the watcher counts it: taskmaster learns of an
/// exit or a pause through a signal and a turn of its loop, and empties a group within
/// `stoptime` (at most 1 s here); a loaded machine may delay all of that.
const GRACE: Duration = Duration::from_secs(3);

/// How long a helper (health check, hook) may live: its timeout (2 s), then the grace.
const HELPER_GRACE: Duration = Duration::from_secs(5);

/// What the watcher holds against `/proc`, each the same way as the final check
/// (`check::examine`) but only the wrongs that last: while the other actors work, `status`
/// and `/proc` are read at different moments, and a process may die or pause in between.
/// Something wrong that every look sees for [`GRACE`] is counted once: a process shown with
/// a child whose pid is gone, exited or not taskmaster's child (a STOPPING process whose
/// group still runs aside: its exit is held until the group is empty), a pause shown wrongly,
/// a child of taskmaster no process names, a zombie, a process of the run in a group of no
/// process with a child.
pub fn watcher(ctx: &Context) {
    let mut api = TimedClient::new(&ctx.paths.socket(), ctx.request_timeout);
    let token = ctx.paths.token_assignment();
    let helpers = ctx.paths.helpers();
    let is_helper = |pid: u32| procfs::cmdline(pid).is_some_and(|args| helpers.contains(&args));
    let mut since: std::collections::HashMap<String, Instant> = Default::default();
    let mut counted: std::collections::HashSet<String> = Default::default();
    while !ctx.is_done() {
        let processes = match api.call(Request::Status(Vec::new())) {
            Ok(taskmaster_core::Reply::Status { processes, .. }) => processes,
            Ok(_) => Vec::new(),
            Err(answer) => {
                ctx.tally.with(|t| t.record("status (watcher)", &answer));
                thread::sleep(Duration::from_millis(250));
                continue;
            }
        };
        let table = Table::read();
        let now = Instant::now();
        // (key, what kind, the text, how long it may last)
        let mut wrong: Vec<(String, Wrong, String, Duration)> = Vec::new();
        let mut named = std::collections::HashSet::new();
        let mut live_groups = std::collections::HashSet::new();
        for p in &processes {
            let Some(pid) = p.pid else { continue };
            named.insert(pid);
            if !crate::check::has_child(p.state) {
                continue;
            }
            live_groups.insert(pid);
            let name = &p.name;
            let state = p.state;
            let leader_gone = table.stats.get(&pid).is_none_or(|s| s.is_zombie());
            let group_runs = || {
                table
                    .stats
                    .values()
                    .any(|s| s.pgid == pid && !s.is_zombie())
            };
            // An exit held while the group is emptied: STOPPING, with the group's id as pid.
            let held = state == taskmaster_core::State::Stopping && leader_gone && group_runs();
            let problem = match table.stats.get(&pid) {
                _ if held => None,
                None => Some(format!("{name} is {state:?} with pid {pid}, which is gone")),
                Some(s) if s.is_zombie() => Some(format!(
                    "{name} is {state:?} with pid {pid}, which has exited"
                )),
                Some(s) if s.ppid != ctx.daemon_pid => Some(format!(
                    "{name} is {state:?} with pid {pid}, whose parent is {}",
                    s.ppid
                )),
                Some(s) if p.paused.is_some() && !s.is_stopped() => Some(format!(
                    "{name} is shown paused, but pid {pid} is not stopped"
                )),
                Some(s) if p.paused.is_none() && s.is_stopped() => Some(format!(
                    "{name} is not shown paused, but pid {pid} is stopped"
                )),
                Some(_) => None,
            };
            if let Some(text) = problem {
                wrong.push((format!("lie {text}"), Wrong::Lie, text, GRACE));
            }
        }
        for s in table.children_of(ctx.daemon_pid) {
            if s.is_zombie() {
                let text = format!("pid {} is a zombie child of taskmaster", s.pid);
                wrong.push((text.clone(), Wrong::Zombie, text, GRACE));
            } else if !named.contains(&s.pid) && !is_helper(s.pid) {
                let args = procfs::cmdline(s.pid).unwrap_or_default().join(" ");
                let text = format!(
                    "pid {} ({args}) is a child of taskmaster no process names",
                    s.pid
                );
                wrong.push((text.clone(), Wrong::Lie, text, GRACE));
            }
        }
        for s in table.stats.values() {
            if s.is_zombie()
                || live_groups.contains(&s.pgid)
                || !procfs::has_variable(s.pid, &token)
            {
                continue;
            }
            let (text, grace) = if is_helper(s.pid) {
                (
                    format!("helper pid {} outlives its timeout", s.pid),
                    HELPER_GRACE,
                )
            } else {
                let args = procfs::cmdline(s.pid).unwrap_or_default().join(" ");
                (
                    format!(
                        "pid {} ({args}) is left in group {}, of no process with a child",
                        s.pid, s.pgid
                    ),
                    GRACE,
                )
            };
            wrong.push((text.clone(), Wrong::Leftover, text, grace));
        }
        let keys: std::collections::HashSet<&String> = wrong.iter().map(|w| &w.0).collect();
        since.retain(|key, _| keys.contains(key));
        ctx.tally.with(|t| {
            t.watched.looks += 1;
            for (key, kind, text, grace) in &wrong {
                let first = *since.entry(key.clone()).or_insert(now);
                let lasted = now.duration_since(first);
                let disagreement = !matches!(kind, Wrong::Leftover);
                let longer = t
                    .watched
                    .longest
                    .as_ref()
                    .is_none_or(|(most, _)| lasted > *most);
                if disagreement && longer {
                    t.watched.longest = Some((lasted, text.clone()));
                }
                if lasted >= *grace && counted.insert(key.clone()) {
                    match kind {
                        Wrong::Lie => t.watched.lies += 1,
                        Wrong::Zombie => t.watched.zombies += 1,
                        Wrong::Leftover => t.watched.leftovers += 1,
                    }
                    t.watched
                        .note(format!("{text} (for {:.1} s)", lasted.as_secs_f64()));
                }
            }
        });
        thread::sleep(Duration::from_millis(250));
    }
}

#[derive(Debug, Clone, Copy)]
enum Wrong {
    Lie,
    Zombie,
    Leftover,
}
