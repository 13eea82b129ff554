//! The event log: one timestamped line per event, appended to `logfile`, and echoed to stderr
//! with `-v`. Lines are gathered while the loop handles one wake-up and written together at its
//! end ([`EventLog::flush`]): starting 1000 programs is one write, not 2000. A reply flushes
//! first, so that whoever receives it finds in the log everything that led to it.
//!
//! A process that keeps repeating itself (a crash loop with `backoff: off`) does not flood the
//! file ([`Coalescer`]): within a window of [`WINDOW`] from its first line, once it has written
//! [`BURST`] lines, a line of a shape it already wrote in the window (the same message but for
//! its numbers) is counted instead of written; a line of a new shape is always written. When
//! the window ends, one line says what was held back:
//! `web: 480 more lines like the above in the last 10 s (the last: exited with code 1 (not expected))`.
//! The loop wakes for that at [`EventLog::next_deadline`] and calls [`EventLog::window_ends`],
//! so the summary comes even if the process then falls silent; at exit [`EventLog::held_back`]
//! writes what is still held. Lines about no process (shell commands, the daemon's own) are
//! never held back. Only the file is coalesced: subscribers of the daemon's events get every
//! line.
//!
//! Each line has one of supervisord's levels, and `loglevel` decides which are written (to the
//! file and, with `-v`, to stderr): what happens to processes, requests and the daemon's own
//! comings and goings are `info`; what went wrong in the runtime (a signal that could not be
//! sent, a full disk, a dropped notification, a configuration warning) `warn`, and an alert
//! its own level; `debug` adds each signal sent and each child reaped with its wait status.
//! `warn`, `error` and `critical` thus leave out the info lines, as supervisord's levels do.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use taskmaster_config::{LogLevel, Rotation};
use taskmaster_core::{Notice, Time};

use crate::clock;

/// How long a process's window lasts, from its first line.
pub const WINDOW: Duration = Duration::from_secs(10);

/// How many lines a process writes in a window before repeated shapes are held back: the first
/// 10 s of a crash loop under the default throttle (8 restarts of 4 lines) fit in it whole.
pub const BURST: u32 = 40;

pub struct EventLog {
    path: PathBuf,
    rotation: Rotation,
    file: File,
    echo: bool,
    /// `loglevel`: lines less severe are not written.
    level: LogLevel,
    /// Lines not yet written.
    pending: String,
    coalescer: Coalescer,
}

impl EventLog {
    pub fn open(
        path: &Path,
        rotation: Rotation,
        level: LogLevel,
        echo: bool,
    ) -> std::io::Result<EventLog> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        Ok(EventLog {
            path: path.to_path_buf(),
            rotation,
            file,
            echo,
            level,
            pending: String::new(),
            coalescer: Coalescer::default(),
        })
    }

    /// Opens its file again at the same path (after an outside `logrotate` renamed it).
    pub fn reopen_in_place(&mut self) -> std::io::Result<()> {
        self.flush();
        let path = self.path.clone();
        self.replace_file(&path)
    }

    /// Writes to `path` from now on; what is held back stays held, to be summed up there.
    fn replace_file(&mut self, path: &Path) -> std::io::Result<()> {
        let mut new = EventLog::open(path, self.rotation, self.level, self.echo)?;
        new.coalescer = std::mem::take(&mut self.coalescer);
        *self = new;
        Ok(())
    }

    /// A line about what happened (`info`).
    pub fn write(&mut self, notice: &Notice) {
        self.write_at(LogLevel::Info, notice);
    }

    /// A line at `level`, if `loglevel` lets it through.
    pub fn write_at(&mut self, level: LogLevel, notice: &Notice) {
        if !self.level.writes(level) {
            return;
        }
        let Some(process) = &notice.process else {
            let _ = writeln!(self.pending, "{} {}", timestamp(), notice.message);
            return;
        };
        let (summary, write) = self.coalescer.line(process, &notice.message, clock::now());
        if let Some(summary) = summary {
            self.line(process, &summary);
        }
        if write {
            self.line(process, &notice.message);
        }
    }

    fn line(&mut self, process: &str, message: &str) {
        let _ = writeln!(self.pending, "{} {process}: {message}", timestamp());
    }

    /// When the earliest window with lines held back ends; `None` when nothing is held.
    pub fn next_deadline(&self) -> Option<Time> {
        self.coalescer.next_deadline()
    }

    /// Sums up what each window that has ended held back (the loop calls it at
    /// [`EventLog::next_deadline`]; [`EventLog::flush`] does too, in case the loop was busy).
    pub fn window_ends(&mut self) {
        for (process, summary) in self.coalescer.ended(clock::now()) {
            self.line(&process, &summary);
        }
    }

    /// Sums up everything held back, window ended or not: the last lines before taskmaster
    /// exits.
    pub fn held_back(&mut self) {
        for (process, summary) in self.coalescer.all(clock::now()) {
            self.line(&process, &summary);
        }
    }

    /// Writes the lines gathered so far. A full disk must not stop supervision, so a failed
    /// write is only reported on stderr.
    pub fn flush(&mut self) {
        if self
            .coalescer
            .next_deadline()
            .is_some_and(|at| at <= clock::now())
        {
            self.window_ends();
        }
        if self.pending.is_empty() {
            return;
        }
        if let Err(e) = self.file.write_all(self.pending.as_bytes()) {
            eprintln!(
                "taskmaster: cannot write event log {}: {e}",
                self.path.display()
            );
        }
        if self.echo {
            let _ = std::io::stderr().write_all(self.pending.as_bytes());
        }
        self.pending.clear();
        self.rotate_if_full();
    }

    /// Rotates the file as the programs' logs rotate, once it holds `logfile_maxbytes`. Lines
    /// are written whole, so a rotated event log ends with a whole line.
    fn rotate_if_full(&mut self) {
        let maxbytes = self.rotation.maxbytes;
        let size = self.file.metadata().map_or(0, |m| m.len());
        if maxbytes == 0 || size < maxbytes {
            return;
        }
        let rotated = crate::capture::rotate(&self.path, self.rotation.backups, &mut self.file)
            .and_then(|()| {
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&self.path)
            });
        match rotated {
            Ok(file) => self.file = file,
            Err(e) => eprintln!(
                "taskmaster: cannot rotate the event log {}: {e}",
                self.path.display()
            ),
        }
    }

    /// A line of the daemon's own (`info`).
    pub fn say(&mut self, message: impl Into<String>) {
        self.say_at(LogLevel::Info, message);
    }

    /// Something went wrong, and taskmaster carries on (`warn`).
    pub fn warn(&mut self, message: impl Into<String>) {
        self.say_at(LogLevel::Warn, message);
    }

    /// Detail for whoever debugs a configuration (`debug`).
    pub fn debug(&mut self, message: impl Into<String>) {
        self.say_at(LogLevel::Debug, message);
    }

    /// Whether a line at `level` would be written: to skip making a costly one.
    pub fn writes(&self, level: LogLevel) -> bool {
        self.level.writes(level)
    }

    pub fn say_at(&mut self, level: LogLevel, message: impl Into<String>) {
        self.write_at(
            level,
            &Notice {
                process: None,
                message: message.into(),
            },
        );
    }
}

fn timestamp() -> String {
    jiff::Zoned::now()
        .strftime("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// What each process wrote lately, to hold back its repeats (see the module's documentation).
/// Pure: the time is given.
#[derive(Debug, Default)]
struct Coalescer {
    windows: HashMap<String, Window>,
}

/// One process's current window.
#[derive(Debug)]
struct Window {
    start: Time,
    /// Lines written in it.
    written: u32,
    /// The shapes of the lines written in it.
    shapes: HashSet<String>,
    /// Lines held back, and the last of them.
    held: u32,
    last_held: String,
}

impl Window {
    fn end(&self) -> Time {
        self.start + WINDOW
    }

    /// The line that sums up what was held back, if anything was.
    fn summary(&self, now: Time) -> Option<String> {
        if self.held == 0 {
            return None;
        }
        // Whole seconds, rounded up: the lines were all within that span.
        let span = now.since(self.start).min(WINDOW);
        let secs = span.as_secs() + u64::from(span.subsec_nanos() > 0);
        let lines = if self.held == 1 { "line" } else { "lines" };
        Some(format!(
            "{} more {lines} like the above in the last {} s (the last: {})",
            self.held,
            secs.max(1),
            self.last_held
        ))
    }
}

impl Coalescer {
    /// A line `message` about `process` at `now`: the summary of its window that just ended,
    /// if one is due first, and whether the line itself is to be written.
    fn line(&mut self, process: &str, message: &str, now: Time) -> (Option<String>, bool) {
        let mut summary = None;
        if let Some(window) = self.windows.get(process) {
            if window.end() <= now {
                summary = window.summary(now);
                self.windows.remove(process);
            }
        }
        let window = self
            .windows
            .entry(process.to_string())
            .or_insert_with(|| Window {
                start: now,
                written: 0,
                shapes: HashSet::new(),
                held: 0,
                last_held: String::new(),
            });
        let shape = shape(message);
        if window.written >= BURST && window.shapes.contains(&shape) {
            window.held += 1;
            window.last_held = message.to_string();
            return (summary, false);
        }
        window.written += 1;
        window.shapes.insert(shape);
        (summary, true)
    }

    fn next_deadline(&self) -> Option<Time> {
        self.windows
            .values()
            .filter(|w| w.held > 0)
            .map(Window::end)
            .min()
    }

    /// The summaries of the windows ended by `now`, which are forgotten (a process's next line
    /// starts a new window).
    fn ended(&mut self, now: Time) -> Vec<(String, String)> {
        let mut summaries = Vec::new();
        self.windows.retain(|process, window| {
            if window.end() > now {
                return true;
            }
            if let Some(summary) = window.summary(window.end()) {
                summaries.push((process.clone(), summary));
            }
            false
        });
        summaries.sort();
        summaries
    }

    /// The summaries of every window, ended or not; all are forgotten.
    fn all(&mut self, now: Time) -> Vec<(String, String)> {
        let mut summaries: Vec<(String, String)> = self
            .windows
            .drain()
            .filter_map(|(process, window)| {
                let at = now.min(window.end());
                window.summary(at).map(|summary| (process, summary))
            })
            .collect();
        summaries.sort();
        summaries
    }
}

/// `message` with each run of digits replaced by `#`: `spawned with pid 4242` and `spawned with
/// pid 4250` have the same shape.
fn shape(message: &str) -> String {
    let mut shape = String::with_capacity(message.len());
    let mut in_digits = false;
    for c in message.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                shape.push('#');
            }
            in_digits = true;
        } else {
            shape.push(c);
            in_digits = false;
        }
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> Time {
        Time::from_nanos(1_000_000_000) + Duration::from_secs_f64(secs)
    }

    /// The lines of one crash-loop turn.
    const TURN: u32 = 4;

    /// One crash-loop turn of `web` at `now`: what is written of its four lines.
    fn turn(c: &mut Coalescer, pid: u32, now: Time) -> Vec<String> {
        let mut written = Vec::new();
        for message in [
            format!("spawned with pid {pid}"),
            "RUNNING".to_string(),
            "exited with code 1 (not expected)".to_string(),
            "restarting: autorestart is always".to_string(),
        ] {
            let (summary, write) = c.line("web", &message, now);
            written.extend(summary);
            if write {
                written.push(message);
            }
        }
        written
    }

    /// Enough turns of `web` at `now` to fill the burst, and `extra` more.
    fn past_the_burst(c: &mut Coalescer, extra: u32, now: Time) {
        assert_eq!(BURST % TURN, 0);
        for n in 0..BURST / TURN + extra {
            turn(c, 100 + n, now);
        }
    }

    #[test]
    fn shapes_ignore_numbers() {
        assert_eq!(shape("spawned with pid 4242"), "spawned with pid #");
        assert_eq!(shape("spawned with pid 4250"), "spawned with pid #");
        assert_eq!(
            shape("restarting in 102.4ms (backoff): x"),
            "restarting in #.#ms (backoff): x"
        );
        assert_eq!(shape(""), "");
    }

    #[test]
    fn a_burst_is_written_whole() {
        let mut c = Coalescer::default();
        let mut written = Vec::new();
        for n in 0..BURST / TURN {
            written.extend(turn(&mut c, 100 + n, at(0.001 * f64::from(n))));
        }
        assert_eq!(written.len(), BURST as usize, "{written:?}");
        assert_eq!(c.next_deadline(), None, "nothing held");
        assert!(c.ended(at(60.0)).is_empty());
    }

    #[test]
    fn repeats_past_the_burst_are_counted_and_summed_up_at_the_windows_end() {
        let mut c = Coalescer::default();
        let mut written = Vec::new();
        for n in 0..1000 {
            written.extend(turn(&mut c, 100 + n, at(0.005 * f64::from(n))));
        }
        assert_eq!(written.len(), BURST as usize);
        assert_eq!(c.next_deadline(), Some(at(10.0)));
        assert!(c.ended(at(9.999)).is_empty());
        // A new shape is always written, even past the burst.
        assert_eq!(c.line("web", "stopped by request", at(6.0)), (None, true));
        assert_eq!(
            c.ended(at(10.0)),
            [(
                "web".to_string(),
                format!(
                    "{} more lines like the above in the last 10 s \
                     (the last: restarting: autorestart is always)",
                    4000 - BURST
                )
            )]
        );
        assert_eq!(c.next_deadline(), None);
        // The next line starts a new window, with a burst of its own.
        assert_eq!(turn(&mut c, 5000, at(12.0)).len(), 4);
    }

    #[test]
    fn a_line_after_the_window_comes_after_its_summary() {
        let mut c = Coalescer::default();
        past_the_burst(&mut c, 1, at(0.0));
        // The loop was late: the process's next line closes the window itself.
        let written = turn(&mut c, 200, at(10.5));
        assert_eq!(
            written,
            [
                "4 more lines like the above in the last 10 s \
                 (the last: restarting: autorestart is always)",
                "spawned with pid 200",
                "RUNNING",
                "exited with code 1 (not expected)",
                "restarting: autorestart is always",
            ]
        );
    }

    #[test]
    fn processes_have_windows_of_their_own() {
        let mut c = Coalescer::default();
        past_the_burst(&mut c, 1, at(0.0));
        // `db` starts its window later and is not held back by `web`'s.
        for n in 0..BURST {
            let message = format!("spawned with pid {n}");
            assert_eq!(c.line("db", &message, at(5.0)), (None, true));
        }
        for n in 0..15 {
            c.line("db", &format!("spawned with pid {n}"), at(5.0));
        }
        assert_eq!(c.next_deadline(), Some(at(10.0)));
        let ended = c.ended(at(10.0));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].0, "web");
        assert_eq!(c.next_deadline(), Some(at(15.0)));
        let ended = c.ended(at(15.0));
        assert_eq!(
            ended,
            [(
                "db".to_string(),
                "15 more lines like the above in the last 10 s (the last: spawned with pid 14)"
                    .to_string()
            )]
        );
    }

    #[test]
    fn at_exit_everything_held_is_summed_up_with_its_true_span() {
        let mut c = Coalescer::default();
        past_the_burst(&mut c, 0, at(0.0));
        turn(&mut c, 1, at(2.3));
        assert_eq!(
            c.all(at(2.3)),
            [(
                "web".to_string(),
                "4 more lines like the above in the last 3 s \
                 (the last: restarting: autorestart is always)"
                    .to_string()
            )]
        );
        assert_eq!(c.next_deadline(), None);
        assert!(c.all(at(3.0)).is_empty());
        // One line is a line.
        for _ in 0..=BURST {
            c.line("web", "RUNNING", at(30.0));
        }
        let all = c.all(at(30.0));
        assert_eq!(
            all[0].1,
            "1 more line like the above in the last 1 s (the last: RUNNING)"
        );
    }
}
