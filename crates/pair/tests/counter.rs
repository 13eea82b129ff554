//! The counter demo (`examples/counter.rs`) as a process pair under fire: its primary killed
//! at random moments with SIGKILL, SIGSEGV and SIGTERM, or paused with SIGSTOP and continued
//! after the takeover (the fencing case), on real processes. What it printed must count
//! 1, 2, 3, ... without a gap, with at most one repeat per takeover, from one process at a
//! time; and at the end nothing of the pair may be left.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::thread;
use std::time::Duration;

use rustix::process::Signal;
use support::*;

/// The signals a primary gets, in turn.
const SIGNALS: [Signal; 4] = [Signal::KILL, Signal::SEGV, Signal::TERM, Signal::STOP];

/// The random moment of a kill: up to this long after the primary's backup is ready.
const LONGEST_PAUSE_MS: u64 = 100;

#[test]
fn the_count_survives_twenty_deaths_of_its_primary() {
    kill_the_primary_again_and_again("unix", &[], 20);
}

#[test]
fn the_count_survives_deaths_of_its_primary_over_udp() {
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free UDP port");
    let address = probe.local_addr().expect("its address").to_string();
    drop(probe);
    kill_the_primary_again_and_again("udp", &["--udp", &address], 4);
}

#[test]
fn a_second_backup_refuses_to_start() {
    let mut pair = Pair::start(&[]);
    let primary = pair.wait_for_count("a first number", |_| true).pid;
    let backup = pair.wait_for_backup_of(primary);

    let mut intruder = Command::new(counter_example());
    intruder.args(pair.args()).current_dir(pair.dir());
    let (status, stdout, stderr) = run_to_completion(intruder, TIMEOUT);
    assert_eq!(status.code(), Some(1), "the intruder: {status}\n{stderr}");
    assert_eq!(stdout, "", "the intruder counted");
    let refusal = format!("a backup of pair \"counter\" is already running (pid {backup})");
    assert!(stderr.contains(&refusal), "the intruder said:\n{stderr}");

    // The pair did not notice: the same primary counts on, and it is still two processes.
    let seen = pair.counts().len();
    pair.wait_for_count("the primary counting on", |c| c.number as usize > seen + 2);
    assert_eq!(
        pair.wait_for_two_processes(),
        [primary, backup].into_iter().collect()
    );
    assert!(
        pair.counts().iter().all(|c| c.pid == primary),
        "{}",
        pair.dump()
    );
    pair.end();
}

#[test]
fn a_primary_paused_mid_unit_exits_as_soon_as_it_is_continued() {
    // A period far longer than the test's deadline: the old primary is continued in the
    // middle of its 30-second unit of work, so only the SIGCONT fence can make it exit in
    // time (the check before the next unit comes 30 seconds later).
    let mut pair = Pair::start(&["--period", "30s"]);
    let first = pair.wait_for_count("a first number", |_| true);
    pair.wait_for_backup_of(first.pid);
    // The primary paused is a backup that took over: a process the library spawned (from a
    // thread that blocks SIGCONT, a mask its children must not inherit).
    signal(first.pid, Signal::KILL);
    let paused = pair.wait_for_count("a number from the backup", |c| c.pid != first.pid);
    assert_eq!(paused.number, 2, "resumed from the checkpoint");
    pair.reap(first.pid);
    pair.wait_for_backup_of(paused.pid);
    signal(paused.pid, Signal::STOP);
    let successor = pair.wait_for_count("a number from the next backup", |c| {
        c.pid != first.pid && c.pid != paused.pid
    });
    assert_eq!(successor.number, 3, "resumed from the checkpoint");
    signal(paused.pid, Signal::CONT);
    let status = pair.reap(paused.pid);
    assert_eq!(status.exit_status(), Some(0), "{status:?}");
    pair.wait_for_log("the fence's message", |l| {
        l.pid == paused.pid && l.text == "lost primacy to generation 3: exiting"
    });
    assert_eq!(check_the_count(&pair.counts()), Ok(2), "{}", pair.dump());
    pair.end();
}

#[test]
fn the_pair_ends_when_the_work_is_over() {
    let mut pair = Pair::start(&["--last", "5"]);
    let last = pair.wait_for_count("the last number", |c| c.number == 5);
    pair.wait_for_no_process();
    assert_eq!(pair.reap(last.pid).exit_status(), Some(0));
    pair.wait_for_log("the backup leaving", |l| {
        l.text == format!("primary pid {} stopped the pair: exiting", last.pid)
    });
    pair.wait_for_log("the primary's goodbye", |l| {
        l.pid == last.pid && l.text == "stopped: the work is over"
    });
    assert_eq!(check_the_count(&pair.counts()), Ok(0), "{}", pair.dump());
    let generation = std::fs::read_to_string(pair.dir().join("counter.gen")).expect("counter.gen");
    assert_eq!(generation, format!("1 {} stopped\n", last.pid));
    pair.end();
}

/// Kills (or pauses) the current primary `kills` times, cycling through [`SIGNALS`], each
/// time at a random moment once its backup is ready, and each time waits for a number from
/// a new process; then checks the count and ends the pair.
fn kill_the_primary_again_and_again(name: &str, extra_args: &[&str], kills: usize) {
    let mut random = Random::from_env_or_clock(name);
    let mut pair = Pair::start(extra_args);
    let first = pair.wait_for_count("a first number", |_| true);
    pair.wait_for_backup_of(first.pid);
    let mut takeover_times = Vec::new();
    for round in 0..kills {
        let signal_sent = SIGNALS[round % SIGNALS.len()];
        // The random moment: the experiment's variable, not a wait for a condition.
        thread::sleep(Duration::from_millis(random.below(LONGEST_PAUSE_MS)));
        let counts = pair.counts();
        let printers: HashSet<u32> = counts.iter().map(|c| c.pid).collect();
        let victim = counts.last().expect("a number").pid;
        signal(victim, signal_sent);
        let sent_at = std::time::Instant::now();
        let successor = pair.wait_for_count(
            &format!("a number from a new primary after {signal_sent:?} to pid {victim}"),
            |c| !printers.contains(&c.pid),
        );
        takeover_times.push(successor.at.saturating_duration_since(sent_at));

        if signal_sent == Signal::STOP {
            // The fencing case: continued after the takeover, the old primary must find out
            // it was replaced, and exit without printing (checked with the count below).
            signal(victim, Signal::CONT);
            pair.wait_for_log(&format!("pid {victim} losing primacy"), |l| {
                l.pid == victim && l.text.starts_with("lost primacy to generation ")
            });
            let status = pair.reap(victim);
            assert_eq!(status.exit_status(), Some(0), "pid {victim}: {status:?}");
        } else {
            let status = pair.reap(victim);
            assert_eq!(
                status.terminating_signal(),
                Some(signal_sent.as_raw()),
                "pid {victim}: {status:?}"
            );
        }
        pair.wait_for_backup_of(successor.pid);
    }

    let live = pair.wait_for_two_processes();
    let counts = pair.counts();
    let takeovers = check_the_count(&counts).unwrap_or_else(|problem| {
        panic!("{problem}\nseen:\n{}", pair.dump());
    });
    assert!(
        takeovers >= kills,
        "{kills} kills but {takeovers} takeovers\n{}",
        pair.dump()
    );
    let newest = counts.last().expect("a number").pid;
    assert!(
        live.contains(&newest),
        "the newest primary {newest} is not alive: {live:?}"
    );
    report_takeover_times(name, &mut takeover_times);
    pair.end();
}

/// Checks the numbers as printed, in order: they start at 1; one process prints `n + 1`
/// after `n`; a new process starts at the number its predecessor printed last (repeated
/// once: it died before its checkpoint) or the one after; and a process that was replaced
/// never prints again. So no number is skipped, and each takeover repeats one at most.
/// Returns the number of takeovers.
fn check_the_count(counts: &[Count]) -> Result<usize, String> {
    let first = counts.first().ok_or("nothing printed")?;
    if first.number != 1 {
        return Err(format!("the count starts at {}", first.number));
    }
    let mut replaced = HashSet::new();
    let mut takeovers = 0;
    for pair in counts.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        if after.pid == before.pid {
            if after.number != before.number + 1 {
                return Err(format!(
                    "pid {} printed {} after {}",
                    after.pid, after.number, before.number
                ));
            }
            continue;
        }
        takeovers += 1;
        replaced.insert(before.pid);
        if replaced.contains(&after.pid) {
            return Err(format!(
                "pid {} printed {} after it was replaced",
                after.pid, after.number
            ));
        }
        if after.number != before.number && after.number != before.number + 1 {
            return Err(format!(
                "pid {} took over at {} after pid {} printed {}",
                after.pid, after.number, before.pid, before.number
            ));
        }
    }
    Ok(takeovers)
}

/// Prints the takeover times (from the signal to the new primary's first number): median and
/// maximum. Not asserted: a loaded machine is slow, not wrong.
fn report_takeover_times(name: &str, times: &mut [Duration]) {
    times.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    eprintln!(
        "{name}: {} takeovers (interval 20ms, 5 misses): median {median:?}, max {max:?}",
        times.len()
    );
}

#[test]
fn the_count_check_catches_gaps_double_repeats_and_stale_primaries() {
    let count = |number, pid| Count {
        at: std::time::Instant::now(),
        number,
        pid,
    };
    let good = [
        count(1, 10),
        count(2, 10),
        count(2, 11),
        count(3, 11),
        count(4, 12),
    ];
    assert_eq!(check_the_count(&good), Ok(2));
    let gap = [count(1, 10), count(3, 10)];
    assert!(check_the_count(&gap).is_err());
    let gap_at_takeover = [count(1, 10), count(3, 11)];
    assert!(check_the_count(&gap_at_takeover).is_err());
    let back_two = [count(1, 10), count(2, 10), count(3, 10), count(2, 11)];
    assert!(check_the_count(&back_two).is_err());
    let stale = [count(1, 10), count(2, 11), count(3, 10)];
    assert!(check_the_count(&stale).is_err());
    assert!(check_the_count(&[count(2, 10)]).is_err());
}
