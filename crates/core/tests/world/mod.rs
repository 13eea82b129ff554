#![allow(dead_code)] // each test binary uses a part of the world
//! A fake world for the supervisor: it carries out actions the way the runtime would, with
//! invented pids and a clock the test moves by hand, and records what happened.

use std::path::Path;
use std::time::Duration;

use taskmaster_core::{
    Action, Announcement, Config, Event, ExitStatus, LoadPurpose, Reply, Request, Scope, Signal,
    State, Supervisor, Ticket, Time,
};

pub fn config(yaml: &str) -> Config {
    Config::parse(yaml, Path::new("/etc/taskmaster/taskmaster.yaml"))
        .unwrap_or_else(|e| panic!("test configuration is invalid: {e}"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub pid: u32,
    pub signal: Signal,
    pub scope: Scope,
}

pub struct World {
    pub sup: Supervisor,
    pub now: Time,
    next_pid: u32,
    next_ticket: u64,
    /// Program names whose spawns fail, with the error.
    pub failing: Vec<(String, String)>,
    /// Every spawn, in order: (process, pid or None when it failed).
    pub spawns: Vec<(String, Option<u32>)>,
    pub signals: Vec<Sent>,
    pub logs: Vec<String>,
    pub replies: Vec<(Ticket, Reply)>,
    pub loads: Vec<Option<Ticket>>,
    /// Every health check asked for: (process, pid). The test answers with `ProbeDone`.
    pub probes: Vec<(String, u32)>,
    /// Every hook asked for: (process, its extra environment). The test answers `HookDone`.
    pub hooks: Vec<(String, Vec<(String, String)>)>,
    /// Input queued for stdin pipes: (process, pid, data).
    pub stdin_writes: Vec<(String, u32, Vec<u8>)>,
    /// Every announced state change: (process, from, to), and `None` for a record removed
    /// (announced by its `removed` log line); a record added later starts STOPPED again.
    pub changes: Vec<(String, Option<(State, State)>)>,
    /// Process groups the supervisor waits to be empty (`WatchGroup`). The test answers
    /// `GroupGone`.
    pub watched_groups: Vec<u32>,
    /// Every announcement, and every state change as supervisord's event tells it
    /// (`STARTING web tries:0`), in order: what event listeners hear.
    pub announced: Vec<String>,
    /// The cluster's store asked for: programs contended for and withdrawn, in order, and
    /// every kill deadline fenced.
    pub contended: Vec<String>,
    pub withdrawn: Vec<String>,
    pub fences: Vec<Time>,
    pub exited: bool,
}

impl World {
    pub fn new(yaml: &str) -> World {
        World::with_failing(yaml, &[])
    }

    /// A world where spawning the programs named in `failing` fails with the error given.
    pub fn with_failing(yaml: &str, failing: &[(&str, &str)]) -> World {
        let now = Time::from_nanos(1_000_000_000);
        let (sup, actions) = Supervisor::new(config(yaml), 1, now);
        let mut world = World {
            sup,
            now,
            next_pid: 100,
            next_ticket: 0,
            failing: failing
                .iter()
                .map(|(p, e)| (p.to_string(), e.to_string()))
                .collect(),
            spawns: Vec::new(),
            signals: Vec::new(),
            logs: Vec::new(),
            replies: Vec::new(),
            loads: Vec::new(),
            probes: Vec::new(),
            hooks: Vec::new(),
            stdin_writes: Vec::new(),
            changes: Vec::new(),
            watched_groups: Vec::new(),
            announced: Vec::new(),
            contended: Vec::new(),
            withdrawn: Vec::new(),
            fences: Vec::new(),
            exited: false,
        };
        world.carry_out(actions);
        world
    }

    pub fn handle(&mut self, event: Event) {
        let actions = self.sup.handle(event, self.now);
        self.carry_out(actions);
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Spawn { process, spec, .. } => {
                    let failure = self
                        .failing
                        .iter()
                        .find(|(program, _)| *program == spec.name)
                        .map(|(_, error)| error.clone());
                    let event = match failure {
                        Some(error) => {
                            self.spawns.push((process.clone(), None));
                            Event::SpawnFailed { process, error }
                        }
                        None => {
                            self.next_pid += 1;
                            let pid = self.next_pid;
                            self.spawns.push((process.clone(), Some(pid)));
                            Event::Spawned { process, pid }
                        }
                    };
                    self.handle(event);
                }
                Action::Signal { pid, signal, scope } => {
                    self.signals.push(Sent { pid, signal, scope })
                }
                Action::LoadConfig { ticket, .. } => self.loads.push(ticket),
                Action::Probe { process, pid, .. } => self.probes.push((process, pid)),
                Action::RunHook { process, env, .. } => self.hooks.push((process, env)),
                Action::StateChanged {
                    process,
                    from,
                    to,
                    pid,
                    tries,
                    expected,
                } => {
                    self.announced.push(format!(
                        "{to} {process} pid:{} tries:{tries} expected:{expected}",
                        pid.unwrap_or(0)
                    ));
                    self.changes.push((process, Some((from, to))))
                }
                Action::Announce(announcement) => self.announced.push(match announcement {
                    Announcement::GroupAdded(group) => format!("added {group}"),
                    Announcement::GroupRemoved(group) => format!("removed {group}"),
                    Announcement::Running => "running".to_string(),
                    Announcement::Stopping => "stopping".to_string(),
                    Announcement::RemoteCommunication { kind, data } => {
                        format!("remote {kind}: {data}")
                    }
                }),
                Action::Log(notice) => {
                    if let (Some(process), "removed") = (&notice.process, notice.message.as_str()) {
                        self.changes.push((process.clone(), None));
                    }
                    self.logs.push(match notice.process {
                        Some(p) => format!("{p}: {}", notice.message),
                        None => notice.message,
                    })
                }
                Action::Reply { ticket, reply } => self.replies.push((ticket, reply)),
                Action::WatchGroup { pgid } => self.watched_groups.push(pgid),
                Action::Handover { ticket, .. } => self.handle(Event::HandoverDone {
                    ticket,
                    result: Err("the fake world keeps no backup".to_string()),
                }),
                Action::CountOutput { ticket } => self.handle(Event::OutputCounted {
                    ticket,
                    counts: Default::default(),
                }),
                Action::ReopenLogs { ticket, .. } => self.handle(Event::LogsReopened {
                    ticket,
                    files: 0,
                    errors: Vec::new(),
                }),
                // Each write is queued at once.
                Action::WriteStdin {
                    ticket,
                    writes,
                    data,
                    outcomes,
                } => {
                    let mut written = Vec::new();
                    for (process, pid) in writes {
                        self.stdin_writes.push((process.clone(), pid, data.clone()));
                        written.push((process, Ok(())));
                    }
                    self.handle(Event::StdinWritten {
                        ticket,
                        outcomes,
                        written,
                    });
                }
                // A fake world with one destination that answers.
                Action::TestAlerts { ticket } => self.handle(Event::AlertsTested {
                    ticket,
                    results: vec![("syslog".to_string(), Ok("sent".to_string()))],
                }),
                Action::Contend { program } => self.contended.push(program),
                Action::Withdraw { program } => self.withdrawn.push(program),
                Action::Fence { kill_at } => self.fences.push(kill_at),
                Action::Exit => {
                    assert!(!self.exited, "Exit was sent twice");
                    self.exited = true;
                }
            }
        }
    }

    /// Moves the clock on, firing every deadline on the way, in order.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(deadline) = self.sup.next_deadline() {
            if deadline > until {
                break;
            }
            self.now = self.now.max(deadline);
            self.handle(Event::Timer);
        }
        self.now = until;
    }

    /// Sends a request; returns its ticket (the reply may come now or later).
    pub fn request(&mut self, request: Request) -> Ticket {
        self.next_ticket += 1;
        let ticket = Ticket(self.next_ticket);
        self.handle(Event::Request {
            ticket: Some(ticket),
            request,
        });
        ticket
    }

    pub fn reply(&self, ticket: Ticket) -> Option<&Reply> {
        self.replies
            .iter()
            .find(|(t, _)| *t == ticket)
            .map(|(_, r)| r)
    }

    /// Sends a request and returns its reply, which must come at once.
    pub fn ask(&mut self, request: Request) -> Reply {
        let ticket = self.request(request.clone());
        self.reply(ticket)
            .cloned()
            .unwrap_or_else(|| panic!("no immediate reply to {request:?}"))
    }

    pub fn state(&self, name: &str) -> &'static str {
        self.sup
            .process(name)
            .unwrap_or_else(|| panic!("no process {name}"))
            .state
            .name()
    }

    pub fn pid(&self, name: &str) -> u32 {
        self.sup
            .process(name)
            .and_then(|p| p.pid)
            .unwrap_or_else(|| panic!("{name} has no pid"))
    }

    /// The child of `name` exits with `status`.
    pub fn exit(&mut self, name: &str, status: ExitStatus) {
        let pid = self.pid(name);
        self.handle(Event::Exited {
            pid,
            status,
            leftovers: false,
        });
    }

    /// The child of `name` exits with `status`, leaving other processes in its group.
    pub fn exit_leaving_group(&mut self, name: &str, status: ExitStatus) {
        let pid = self.pid(name);
        self.handle(Event::Exited {
            pid,
            status,
            leftovers: true,
        });
    }

    /// The last process of group `pgid` is gone.
    pub fn group_gone(&mut self, pgid: u32) {
        self.watched_groups.retain(|&g| g != pgid);
        self.handle(Event::GroupGone { pgid });
    }

    pub fn spawn_count(&self, name: &str) -> usize {
        self.spawns.iter().filter(|(p, _)| p == name).count()
    }

    /// Reloads with a new configuration text.
    pub fn reload(&mut self, yaml: &str) -> Reply {
        let ticket = self.request(Request::Reload);
        assert_eq!(
            self.loads.last(),
            Some(&Some(ticket)),
            "no LoadConfig asked"
        );
        self.handle(Event::ConfigLoaded {
            ticket: Some(ticket),
            purpose: LoadPurpose::Apply,
            result: Ok(Box::new(config(yaml))),
        });
        self.reply(ticket).cloned().expect("reload replied")
    }

    /// Rereads a new configuration text (compare and stage, apply nothing).
    pub fn reread(&mut self, yaml: &str) -> Reply {
        let ticket = self.request(Request::Reread);
        self.handle(Event::ConfigLoaded {
            ticket: Some(ticket),
            purpose: LoadPurpose::Stage,
            result: Ok(Box::new(config(yaml))),
        });
        self.reply(ticket).cloned().expect("reread replied")
    }
}

pub fn code(c: i32) -> ExitStatus {
    ExitStatus::Code(c)
}

pub fn killed(signal: Signal) -> ExitStatus {
    ExitStatus::Signal {
        signal,
        core_dumped: false,
    }
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}
