//! The programs the run supervises, and the configuration that changes under taskmaster.
//!
//! A [`Layout`] is the set of programs in force: a kind, a `numprocs` and a variant each. It
//! is written out as taskmaster's YAML ([`Layout::yaml`]) and changed at random between
//! reloads ([`Layout::mutate`]): programs added and removed, a program's command changed (its
//! variant: the process must be replaced), `numprocs` up and down. It also says what each
//! process must be running ([`Layout::argv`]), which the final check holds `/proc` against.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use taskmaster_core::State;

use crate::rng::Rng;

/// The environment variable every program of the run gets; its value is the run's token. A
/// process that has it (a child, a grandchild, a health check) was started by this run.
pub const TOKEN_VARIABLE: &str = "CHAOS_TOKEN";

/// The file, in the programs' working directory, that tells the watchdog programs to stop
/// hanging now and then (see [`Paths::calm_flag`]).
pub const CALM: &str = "calm";

/// The most programs and processes per program a layout grows to.
const MAX_PROGRAMS: usize = 16;
const MIN_PROGRAMS: usize = 4;
const MAX_NUMPROCS: u32 = 4;

/// Where the run's programs and files are.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The run's own folder: the configuration, the socket, the logs, the health flag.
    pub dir: PathBuf,
    /// `tm-fixture`, the test program of the taskmaster crate.
    pub fixture: PathBuf,
    /// This crate's `chaos` binary, whose `heartbeat` mode is the watchdog program.
    pub worker: PathBuf,
    /// The value of [`TOKEN_VARIABLE`] in this run.
    pub token: String,
}

impl Paths {
    pub fn config(&self) -> PathBuf {
        self.dir.join("taskmaster.yaml")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("taskmaster.sock")
    }

    pub fn event_log(&self) -> PathBuf {
        self.dir.join("taskmaster.log")
    }

    /// While this file exists, the health checks pass.
    pub fn health_flag(&self) -> PathBuf {
        self.dir.join("healthy")
    }

    /// Once this file exists (the run is settling), the watchdog programs no longer hang.
    pub fn calm_flag(&self) -> PathBuf {
        self.dir.join(CALM)
    }

    /// The command health checks run (`/bin/sh -c` it).
    pub fn health_command(&self) -> String {
        format!("test -e {}", quote(&self.health_flag()))
    }

    /// The `on_exit` hook of the stubborn programs. It leaves a `sleep` running in the
    /// background, which taskmaster must kill when the hook ends; and with two commands the
    /// shell stays (a shell may exec a lone command in its place), known by its arguments.
    pub fn hook_command(&self) -> String {
        "sleep 30 & sleep 0.1".to_string()
    }

    /// The arguments of taskmaster's helpers (health checks, hooks): children of taskmaster
    /// that no process names, by design.
    pub fn helpers(&self) -> [Vec<String>; 2] {
        [self.health_command(), self.hook_command()]
            .map(|command| vec!["/bin/sh".to_string(), "-c".to_string(), command])
    }

    /// `CHAOS_TOKEN=...`, as it appears in a process's environment.
    pub fn token_assignment(&self) -> String {
        format!("{TOKEN_VARIABLE}={}", self.token)
    }

    fn fixture(&self) -> String {
        self.fixture.display().to_string()
    }
}

/// What a program does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sleeps.
    Sleeper,
    /// Writes lines to stdout as fast as it can, a few thousand a second (to a rotated file).
    Talker,
    /// `sh -c` with two background grandchildren, waiting for them.
    Wrapper,
    /// Forks a grandchild into its own process group, then sleeps.
    Forker,
    /// Ignores its stop signal: killed at `stoptime`; an `on_exit` hook that leaves a process
    /// in the background.
    Stubborn,
    /// Exits 3 at once: BACKOFF, then FATAL.
    Failing,
    /// Sleeps, with a health check that fails while the run's health flag is gone.
    Healthy,
    /// Sends READY=1 and heartbeats, with a `watchdog`; hangs (no more heartbeats) after 1 to
    /// 5 s, until the run settles.
    Watchdog,
    /// Exits 0 after 0.6 s, always restarted, until its `restart_limit` makes it FATAL.
    Exiter,
    /// Never says READY=1 (`ready: notify`): not ready within its `readytime`, then FATAL.
    Unready,
    /// Copies its stdin (`stdin: pipe`, which the clients write to) to its stdout.
    Echo,
}

/// Where a process stands, for the run to settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// Where it stays when left alone.
    AtRest,
    /// At rest, but not where it belongs: it must be started.
    Down,
    /// On its way somewhere.
    Moving,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Sleeper,
        Kind::Talker,
        Kind::Wrapper,
        Kind::Forker,
        Kind::Stubborn,
        Kind::Failing,
        Kind::Healthy,
        Kind::Watchdog,
        Kind::Exiter,
        Kind::Unready,
        Kind::Echo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Sleeper => "sleeper",
            Kind::Talker => "talker",
            Kind::Wrapper => "wrapper",
            Kind::Forker => "forker",
            Kind::Stubborn => "stubborn",
            Kind::Failing => "failing",
            Kind::Healthy => "healthy",
            Kind::Watchdog => "watchdog",
            Kind::Exiter => "exiter",
            Kind::Unready => "unready",
            Kind::Echo => "echo",
        }
    }

    /// Whether a process of this kind in `state` is where it stays when left alone.
    pub fn rest(self, state: State) -> Rest {
        use State::*;
        match (self, state) {
            // They never reach RUNNING for long: they end FATAL (or STOPPED by a request).
            (Kind::Failing | Kind::Unready, Stopped | Exited | Fatal) => Rest::AtRest,
            // EXITED is between two of its runs, or after a kill without restart.
            (Kind::Exiter, Stopped | Fatal) => Rest::AtRest,
            (Kind::Exiter, Exited) => Rest::Down,
            (Kind::Failing | Kind::Unready | Kind::Exiter, _) => Rest::Moving,
            (_, Running) => Rest::AtRest,
            (_, Stopped | Exited | Fatal) => Rest::Down,
            (_, Starting | Stopping | Backoff | Unknown) => Rest::Moving,
        }
    }

    /// The most copies of it the run keeps (a talker costs a share of a core).
    fn max_numprocs(self) -> u32 {
        match self {
            Kind::Sleeper | Kind::Wrapper | Kind::Stubborn | Kind::Forker => MAX_NUMPROCS,
            _ => 2,
        }
    }
}

/// One program of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub kind: Kind,
    pub numprocs: u32,
    /// Changed by a reload that changes the program: it is part of the command, so every
    /// process must be replaced by one running the new command.
    pub variant: u32,
}

/// The programs in force, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub programs: BTreeMap<String, Program>,
    next_id: u32,
}

impl Layout {
    /// The layout the run starts with (and ends with): one program of each kind, a few of
    /// them pools.
    pub fn initial() -> Layout {
        let mut layout = Layout {
            programs: BTreeMap::new(),
            next_id: 0,
        };
        for kind in Kind::ALL {
            let numprocs = match kind {
                Kind::Sleeper => 3,
                Kind::Wrapper | Kind::Stubborn => 2,
                _ => 1,
            };
            layout.add(kind, numprocs);
        }
        layout
    }

    fn add(&mut self, kind: Kind, numprocs: u32) -> String {
        let name = format!("{}{}", kind.name(), self.next_id);
        self.next_id += 1;
        self.programs.insert(
            name.clone(),
            Program {
                kind,
                numprocs,
                variant: 0,
            },
        );
        name
    }

    /// Changes the layout at random, one to three changes; says what changed.
    pub fn mutate(&mut self, rng: &mut Rng) -> Vec<String> {
        let mut said = Vec::new();
        for _ in 0..rng.between(1, 3) {
            let names: Vec<String> = self.programs.keys().cloned().collect();
            // add, remove, change, numprocs
            let weights = [
                if self.programs.len() < MAX_PROGRAMS {
                    2
                } else {
                    0
                },
                if self.programs.len() > MIN_PROGRAMS {
                    2
                } else {
                    0
                },
                3,
                3,
            ];
            match rng.weighted(&weights) {
                0 => {
                    let kind = *rng.pick(&Kind::ALL).unwrap_or(&Kind::Sleeper);
                    let numprocs = rng.between(1, u64::from(kind.max_numprocs()));
                    let name = self.add(kind, u32::try_from(numprocs).unwrap_or(1));
                    said.push(format!("+{name}"));
                }
                1 => {
                    if let Some(name) = rng.pick(&names) {
                        self.programs.remove(name);
                        said.push(format!("-{name}"));
                    }
                }
                2 => {
                    if let Some(program) = rng.pick(&names).and_then(|n| self.programs.get_mut(n)) {
                        program.variant += 1;
                        said.push("~".to_string());
                    }
                }
                _ => {
                    if let Some(program) = rng.pick(&names).and_then(|n| self.programs.get_mut(n)) {
                        let max = u64::from(program.kind.max_numprocs());
                        program.numprocs = u32::try_from(rng.between(1, max)).unwrap_or(1);
                        said.push(format!("n{}", program.numprocs));
                    }
                }
            }
        }
        said
    }

    /// The program's processes as requests name them: `sleeper0` alone, `sleeper0:sleeper0_01`
    /// in a pool.
    pub fn process_names(&self, program: &str) -> Vec<String> {
        match self.programs.get(program) {
            Some(p) if p.numprocs == 1 => vec![program.to_string()],
            Some(p) => (0..p.numprocs)
                .map(|n| format!("{program}:{program}_{n:02}"))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Every process, as requests name them.
    pub fn all_process_names(&self) -> Vec<String> {
        self.programs
            .keys()
            .flat_map(|name| self.process_names(name))
            .collect()
    }

    /// What every process of `program` runs: its arguments, as `/proc/PID/cmdline` shows them.
    pub fn argv(&self, program: &str, paths: &Paths) -> Option<Vec<String>> {
        let p = self.programs.get(program)?;
        let fixture = paths.fixture();
        let v = format!("v{}", p.variant);
        let words = |steps: &[&str]| -> Vec<String> {
            std::iter::once(fixture.as_str())
                .chain(steps.iter().copied())
                .map(str::to_string)
                .collect()
        };
        Some(match p.kind {
            Kind::Sleeper | Kind::Healthy => words(&["print", &v, "sleep", "forever"]),
            Kind::Talker => {
                let never = paths.dir.join("never");
                words(&[
                    "print",
                    &v,
                    "lines-until",
                    &never.display().to_string(),
                    "0.0005",
                ])
            }
            Kind::Wrapper => {
                let sleeper = format!("{} sleep forever", quote(&paths.fixture));
                vec![
                    "sh".to_string(),
                    "-c".to_string(),
                    format!("{sleeper} & {sleeper} & wait # {v}"),
                ]
            }
            Kind::Forker => {
                let pidfile = paths.dir.join("pids").join(format!("{program}.pid"));
                words(&[
                    "print",
                    &v,
                    "grandchild",
                    &pidfile.display().to_string(),
                    "sleep",
                    "forever",
                ])
            }
            Kind::Stubborn => words(&["ignore", "TERM", "print", &v, "sleep", "forever"]),
            Kind::Failing => words(&["print", &v, "exit", "3"]),
            Kind::Exiter => words(&["print", &v, "sleep", "0.6", "exit", "0"]),
            Kind::Unready => words(&["print", &v, "sleep", "forever"]),
            Kind::Echo => words(&["print", &v, "stdin-echo"]),
            Kind::Watchdog => vec![
                paths.worker.display().to_string(),
                "heartbeat".to_string(),
                v,
            ],
        })
    }

    /// The configuration file for this layout.
    pub fn yaml(&self, paths: &Paths) -> String {
        let dir = &paths.dir;
        let mut yaml = String::new();
        let _ = writeln!(
            yaml,
            "socket: {}",
            yaml_quote(&paths.socket().display().to_string())
        );
        let _ = writeln!(
            yaml,
            "logfile: {}",
            yaml_quote(&paths.event_log().display().to_string())
        );
        yaml.push_str("logfile_maxbytes: 8MB\nlogfile_backups: 2\nprograms:\n");
        for (name, program) in &self.programs {
            let Some(argv) = self.argv(name, paths) else {
                continue;
            };
            let command = argv
                .iter()
                .map(|word| quote(Path::new(word)))
                .collect::<Vec<_>>()
                .join(" ");
            let log = |stream: &str| {
                yaml_quote(&format!(
                    "{}/logs/%(program_name)s_%(process_num)02d.{stream}",
                    dir.display()
                ))
            };
            let _ = writeln!(yaml, "  {name}:");
            let _ = writeln!(yaml, "    cmd: {}", yaml_quote(&command));
            let _ = writeln!(yaml, "    numprocs: {}", program.numprocs);
            let (autorestart, stoptime) = match program.kind {
                Kind::Failing => ("unexpected", "1"),
                Kind::Stubborn => ("true", "0.5"),
                _ => ("true", "1"),
            };
            let _ = writeln!(yaml, "    autorestart: {autorestart}");
            let _ = writeln!(yaml, "    starttime: 0.3");
            let _ = writeln!(yaml, "    stoptime: {stoptime}");
            let _ = writeln!(
                yaml,
                "    workingdir: {}",
                yaml_quote(&dir.display().to_string())
            );
            let _ = writeln!(yaml, "    stdout: {}", log("out"));
            let _ = writeln!(yaml, "    stderr: {}", log("err"));
            yaml.push_str("    stdout_maxbytes: 256KB\n    stdout_backups: 1\n");
            yaml.push_str("    stderr_maxbytes: 64KB\n    stderr_backups: 1\n");
            let _ = writeln!(
                yaml,
                "    env: {{{TOKEN_VARIABLE}: {}}}",
                yaml_quote(&paths.token)
            );
            match program.kind {
                Kind::Failing => yaml.push_str("    startretries: 2\n"),
                Kind::Stubborn => {
                    let _ = writeln!(
                        yaml,
                        "    on_exit: {}\n    on_exit_timeout: 2s",
                        yaml_quote(&paths.hook_command())
                    );
                }
                Kind::Exiter => {
                    yaml.push_str("    restart_limit: {count: 3, within: 30s}\n");
                }
                Kind::Unready => {
                    yaml.push_str("    ready: notify\n    readytime: 1s\n    startretries: 1\n");
                }
                Kind::Echo => yaml.push_str("    stdin: pipe\n"),
                Kind::Healthy => {
                    let _ = writeln!(
                        yaml,
                        "    healthcheck: {{cmd: {}, interval: 500ms, timeout: 2s, retries: 2}}",
                        yaml_quote(&paths.health_command())
                    );
                }
                Kind::Watchdog => {
                    yaml.push_str("    ready: notify\n    readytime: 10s\n    watchdog: 2s\n");
                    if program.variant % 2 == 1 {
                        yaml.push_str("    watchdog_paused: restart\n");
                    }
                }
                _ => {}
            }
        }
        yaml
    }
}

/// `word` as a shell word: as it is when it holds nothing a shell reads, else single-quoted.
fn quote(word: &Path) -> String {
    let text = word.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `text` as a YAML single-quoted scalar.
fn yaml_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
