//! The commands: their names, their arguments, and their help.

use taskmaster_core::{Request, Signal};

/// A command line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A blank line.
    Empty,
    Run(Request),
    /// `help` or `help COMMAND`.
    Help(Option<String>),
    /// `quit` / `exit`: leave the shell.
    Quit,
    /// `tail [-f] [-n LINES | -BYTES] NAME [stdout|stderr]`: the end of a process's output,
    /// and with `-f` what comes next.
    Tail {
        name: String,
        stream: String,
        follow: bool,
        amount: TailAmount,
    },
    /// `maintail [-f]`: the end of the event log, and with `-f` what comes next.
    MainTail {
        follow: bool,
    },
    /// `attach NAME`: this terminal connected to a process until the user detaches.
    Attach {
        name: String,
    },
}

/// How much of a log `tail` shows before it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailAmount {
    /// The last N bytes: supervisorctl's `tail -BYTES`, and the default (1600).
    Bytes(u64),
    /// The last N lines: `tail -n LINES`.
    Lines(u64),
}

/// One command of the language.
pub struct CommandInfo {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    /// Whether its arguments are process names (for completion).
    pub takes_names: bool,
}

const fn info(
    name: &'static str,
    usage: &'static str,
    summary: &'static str,
    takes_names: bool,
) -> CommandInfo {
    CommandInfo {
        name,
        usage,
        summary,
        takes_names,
    }
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandInfo] = &[
    info(
        "status",
        "status [NAME...]",
        "show the state of processes (all by default)",
        true,
    ),
    info(
        "start",
        "start NAME...",
        "start processes and wait until they are RUNNING",
        true,
    ),
    info(
        "stop",
        "stop NAME...",
        "stop processes and wait until they have stopped",
        true,
    ),
    info(
        "restart",
        "restart NAME...",
        "stop, then start processes",
        true,
    ),
    info(
        "signal",
        "signal SIG NAME...",
        "send a signal (TERM, HUP, USR1, 15...) to processes",
        true,
    ),
    info(
        "kill",
        "kill [--no-restart] NAME...",
        "the panic button: SIGKILL the process groups now; restarted by policy unless --no-restart",
        true,
    ),
    info(
        "pid",
        "pid [NAME...]",
        "show the pid of processes, or taskmaster's own",
        true,
    ),
    info(
        "reload",
        "reload",
        "re-read the configuration file and apply what changed",
        false,
    ),
    info(
        "reread",
        "reread",
        "re-read the configuration file and say what changed, changing nothing",
        false,
    ),
    info(
        "tail",
        "tail [-f] [-n LINES | -BYTES] NAME [stdout|stderr]",
        "the end of a process's output: its last 1600 bytes, its last LINES lines or its last \
         BYTES bytes; -f: and what it writes next, until Ctrl-C",
        true,
    ),
    info(
        "maintail",
        "maintail [-f]",
        "the end of the event log; -f: and what comes next, until Ctrl-C",
        false,
    ),
    info(
        "attach",
        "attach NAME",
        "connect this terminal to a process: its output as it comes, your lines to its stdin (stdin: pipe); Ctrl-] or Ctrl-C detaches, the process keeps running",
        true,
    ),
    info(
        "sendstdin",
        "sendstdin [-n] NAME TEXT...",
        "write TEXT and a newline (none with -n) to the stdin of processes (stdin: pipe)",
        true,
    ),
    info(
        "avail",
        "avail",
        "list the programs of the configuration file last read",
        false,
    ),
    info(
        "add",
        "add NAME...",
        "start using programs of the file last read (after reread)",
        false,
    ),
    info(
        "remove",
        "remove NAME...",
        "stop using programs whose processes are all stopped",
        false,
    ),
    info(
        "shutdown",
        "shutdown",
        "stop every process and exit taskmaster",
        false,
    ),
    info(
        "logrotate",
        "logrotate [NAME...]",
        "reopen log files at their paths after an outside logrotate renamed them: every one (the event log too), or those of the processes named",
        true,
    ),
    info(
        "alerts",
        "alerts test",
        "send a test message to every alert destination of alerting: and say what each answered",
        false,
    ),
    info(
        "cluster",
        "cluster",
        "(cluster:) the nodes alive, the singletons each holds, and who holds each singleton",
        false,
    ),
    info(
        "takeover",
        "takeover",
        "(run --pair) hand over to the hot backup, every process left running",
        false,
    ),
    info(
        "upgrade",
        "upgrade",
        "(run --pair) hand over to a backup started from the executable's file: a live upgrade",
        false,
    ),
    info(
        "help",
        "help [COMMAND]",
        "list the commands, or explain one",
        false,
    ),
    info(
        "quit",
        "quit",
        "leave the shell (in `run`, this also shuts taskmaster down)",
        false,
    ),
];

/// Names take the forms `NAME`, `GROUP:NAME`, `GROUP:*` or `all`.
const NAMES_HELP: &str =
    "NAME is a process (web, workers:workers_00), a group (workers or workers:*), or all";

/// Understands one command line. The error is the message to show.
pub fn parse(line: &str) -> Result<Parsed, String> {
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let Some((verb, args)) = words.split_first() else {
        return Ok(Parsed::Empty);
    };
    let args = args.to_vec();
    let needs_names = |args: Vec<String>| {
        if args.is_empty() {
            Err(format!(
                "error: {verb} needs at least one process name (or all); usage: {}",
                usage(verb)
            ))
        } else {
            Ok(args)
        }
    };
    let no_args = |request: Parsed| {
        if args.is_empty() {
            Ok(request)
        } else {
            Err(format!("error: {verb} takes no arguments"))
        }
    };
    match verb.as_str() {
        "status" => Ok(Parsed::Run(Request::Status(args))),
        "start" => Ok(Parsed::Run(Request::Start(needs_names(args)?))),
        "stop" => Ok(Parsed::Run(Request::Stop(needs_names(args)?))),
        "restart" => Ok(Parsed::Run(Request::Restart(needs_names(args)?))),
        "signal" => {
            let Some((signal, targets)) = args.split_first() else {
                return Err(format!(
                    "error: signal needs a signal and a name; usage: {}",
                    usage(verb)
                ));
            };
            let signal: Signal = signal.parse().map_err(|e| format!("error: {e}"))?;
            Ok(Parsed::Run(Request::Signal {
                signal,
                targets: needs_names(targets.to_vec())?,
            }))
        }
        "kill" => {
            let restart = args.first().is_none_or(|a| a != "--no-restart");
            let targets = args[usize::from(!restart)..].to_vec();
            Ok(Parsed::Run(Request::Kill {
                targets: needs_names(targets)?,
                restart,
                // The API replaces this with the peer it sees; `run`'s shell is this process.
                by: "the shell of taskmaster run".to_string(),
            }))
        }
        "pid" => Ok(Parsed::Run(Request::Pid(args))),
        "attach" => match args.as_slice() {
            [name] => Ok(Parsed::Attach { name: name.clone() }),
            _ => Err(format!("error: usage: {}", usage("attach"))),
        },
        "sendstdin" => parse_sendstdin(&args),
        "tail" => parse_tail(&args),
        "maintail" => match args.as_slice() {
            [] => Ok(Parsed::MainTail { follow: false }),
            [flag] if flag == "-f" => Ok(Parsed::MainTail { follow: true }),
            _ => Err(format!("error: usage: {}", usage("maintail"))),
        },
        "reload" => no_args(Parsed::Run(Request::Reload)),
        "reread" => no_args(Parsed::Run(Request::Reread)),
        "avail" => no_args(Parsed::Run(Request::Config)),
        "add" => Ok(Parsed::Run(Request::AddGroup(needs_names(args)?))),
        "remove" => Ok(Parsed::Run(Request::RemoveGroup(needs_names(args)?))),
        "shutdown" => no_args(Parsed::Run(Request::Shutdown)),
        "takeover" => no_args(Parsed::Run(Request::Handover { upgrade: false })),
        "cluster" => no_args(Parsed::Run(Request::Cluster)),
        "logrotate" => Ok(Parsed::Run(Request::ReopenLogs(args))),
        "alerts" => match args.as_slice() {
            [test] if test == "test" => Ok(Parsed::Run(Request::TestAlerts)),
            _ => Err(format!("error: usage: {}", usage("alerts"))),
        },
        "upgrade" => no_args(Parsed::Run(Request::Handover { upgrade: true })),
        "help" | "?" => Ok(Parsed::Help(args.first().cloned())),
        "quit" | "exit" => no_args(Parsed::Quit),
        _ => Err(format!(
            "unknown command \"{verb}\" (type help for the list of commands)"
        )),
    }
}

/// `sendstdin [-n] NAME TEXT...`: the words of TEXT joined by spaces, then a newline.
fn parse_sendstdin(args: &[String]) -> Result<Parsed, String> {
    let newline = args.first().is_none_or(|a| a != "-n");
    match &args[usize::from(!newline)..] {
        [name, words @ ..] if !words.is_empty() => {
            let mut data = words.join(" ").into_bytes();
            if newline {
                data.push(b'\n');
            }
            Ok(Parsed::Run(Request::SendStdin {
                targets: vec![name.clone()],
                data,
            }))
        }
        _ => Err(format!("error: usage: {}", usage("sendstdin"))),
    }
}

/// `tail`'s options (`-f`, `-n LINES` or `-nLINES`, `-BYTES`, in any order), then the name
/// and the stream.
fn parse_tail(args: &[String]) -> Result<Parsed, String> {
    let usage = || format!("error: usage: {}", usage("tail"));
    let mut follow = false;
    let mut amount = TailAmount::Bytes(crate::TAIL_BYTES);
    let mut rest = args;
    while let Some((option, after)) = rest.split_first() {
        // A process name never starts with `-`.
        if !option.starts_with('-') {
            break;
        }
        rest = after;
        if option == "-f" {
            follow = true;
        } else if option == "-n" {
            let Some((count, after)) = rest.split_first() else {
                return Err(format!(
                    "error: tail -n needs a number of lines; {}",
                    usage()
                ));
            };
            rest = after;
            amount = TailAmount::Lines(count_of(count, "-n", "lines")?);
        } else if let Some(count) = option.strip_prefix("-n") {
            amount = TailAmount::Lines(count_of(count, "-n", "lines")?);
        } else if option[1..].starts_with(|c: char| c.is_ascii_digit()) {
            amount = TailAmount::Bytes(count_of(&option[1..], "-BYTES", "bytes")?);
        } else {
            return Err(format!("error: tail: unknown option {option}; {}", usage()));
        }
    }
    let tail = |name: &String, stream: &str| {
        Ok(Parsed::Tail {
            name: name.clone(),
            stream: stream.to_string(),
            follow,
            amount,
        })
    };
    match rest {
        [name] => tail(name, "stdout"),
        [name, stream] if stream == "stdout" || stream == "stderr" => tail(name, stream),
        _ => Err(usage()),
    }
}

/// The count `option` was given, in decimal digits: a number of `what`.
fn count_of(text: &str, option: &str, what: &str) -> Result<u64, String> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match digits.then(|| text.parse::<u64>()) {
        Some(Ok(count)) => Ok(count),
        Some(Err(_)) => Err(format!(
            "error: tail {option}: {text} {what} is more than taskmaster can count"
        )),
        None => Err(format!(
            "error: tail {option} expects a number of {what}, found {text:?}"
        )),
    }
}

fn usage(verb: &str) -> &'static str {
    COMMANDS
        .iter()
        .find(|c| c.name == verb)
        .map_or("", |c| c.usage)
}

/// The text of `help` or `help COMMAND`.
pub fn help(topic: Option<&str>) -> Vec<String> {
    match topic {
        None => {
            const USAGE_WIDTH: usize = 20;
            let mut lines = vec!["commands:".to_string()];
            for c in COMMANDS {
                // A usage too long for its column gets a line of its own.
                if c.usage.len() < USAGE_WIDTH {
                    lines.push(format!("  {:<USAGE_WIDTH$}{}", c.usage, c.summary));
                } else {
                    lines.push(format!("  {}", c.usage));
                    lines.push(format!("  {:<USAGE_WIDTH$}{}", "", c.summary));
                }
            }
            lines.push(NAMES_HELP.to_string());
            lines
        }
        Some(topic) => match COMMANDS.iter().find(|c| c.name == topic) {
            Some(c) => {
                let mut lines = vec![format!("{}: {}", c.usage, c.summary)];
                if c.takes_names {
                    lines.push(NAMES_HELP.to_string());
                }
                lines
            }
            None => vec![format!("no help for \"{topic}\": not a command")],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_passed_through_in_order() {
        assert_eq!(
            parse("start web workers:*").unwrap(),
            Parsed::Run(Request::Start(vec!["web".into(), "workers:*".into()]))
        );
    }

    #[test]
    fn start_without_a_name_is_an_error_with_usage() {
        let error = parse("start").unwrap_err();
        assert!(error.contains("usage: start NAME..."), "{error}");
    }

    #[test]
    fn maintail_takes_an_optional_follow() {
        assert!(matches!(
            parse("maintail").unwrap(),
            Parsed::MainTail { follow: false }
        ));
        assert!(matches!(
            parse("maintail -f").unwrap(),
            Parsed::MainTail { follow: true }
        ));
        assert!(parse("maintail web").unwrap_err().contains("maintail [-f]"));
        assert!(parse("tail")
            .unwrap_err()
            .contains("tail [-f] [-n LINES | -BYTES] NAME"));
    }

    #[test]
    fn kill_takes_names_and_an_optional_no_restart() {
        let Parsed::Run(Request::Kill {
            targets, restart, ..
        }) = parse("kill --no-restart web api").unwrap()
        else {
            panic!("not a kill");
        };
        assert_eq!(
            (targets, restart),
            (vec!["web".into(), "api".into()], false)
        );
        let Parsed::Run(Request::Kill { restart, .. }) = parse("kill web").unwrap() else {
            panic!("not a kill");
        };
        assert!(restart);
        assert!(parse("kill")
            .unwrap_err()
            .contains("needs at least one process name"));
        assert!(parse("kill --no-restart").is_err());
    }

    #[test]
    fn sendstdin_sends_the_words_and_a_newline_unless_told_not_to() {
        let sent = |line: &str| match parse(line) {
            Ok(Parsed::Run(Request::SendStdin { targets, data })) => (targets, data),
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(
            sent("sendstdin web hello  world"),
            (vec!["web".to_string()], b"hello world\n".to_vec())
        );
        assert_eq!(sent("sendstdin -n web y").1, b"y".to_vec());
        for wrong in ["sendstdin", "sendstdin web", "sendstdin -n web"] {
            assert!(parse(wrong).unwrap_err().contains("usage"), "{wrong}");
        }
    }

    #[test]
    fn help_keeps_a_space_between_every_usage_and_its_summary() {
        for line in help(None).iter().filter(|line| line.starts_with("  ")) {
            let known = COMMANDS.iter().any(|c| {
                line == &format!("  {}", c.usage) || line.contains(&format!(" {}", c.summary))
            });
            assert!(known, "{line:?}");
        }
        let kill = COMMANDS.iter().find(|c| c.name == "kill").expect("kill");
        assert!(help(None).contains(&format!("  {}", kill.usage)));
    }

    #[test]
    fn attach_takes_one_name() {
        assert_eq!(
            parse("attach web").unwrap(),
            Parsed::Attach {
                name: "web".to_string()
            }
        );
        assert!(parse("attach").is_err());
        assert!(parse("attach web api").is_err());
    }

    #[test]
    fn signal_accepts_every_spelling_of_a_signal() {
        for spelling in ["HUP", "SIGHUP", "hup", "1"] {
            assert_eq!(
                parse(&format!("signal {spelling} web")).unwrap(),
                Parsed::Run(Request::Signal {
                    signal: Signal::HUP,
                    targets: vec!["web".into()]
                })
            );
        }
    }

    #[test]
    fn an_unknown_signal_is_named_in_the_error() {
        let error = parse("signal TERMM web").unwrap_err();
        assert!(error.contains("TERMM"), "{error}");
    }

    #[test]
    fn an_unknown_command_says_how_to_get_help() {
        let error = parse("strat web").unwrap_err();
        assert!(error.contains("unknown command \"strat\""), "{error}");
        assert!(error.contains("help"), "{error}");
    }

    #[test]
    fn tail_takes_follow_a_name_and_a_stream() {
        assert_eq!(
            parse("tail -f web stderr").unwrap(),
            Parsed::Tail {
                name: "web".into(),
                stream: "stderr".into(),
                follow: true,
                amount: TailAmount::Bytes(crate::TAIL_BYTES),
            }
        );
        assert_eq!(
            parse("tail web").unwrap(),
            Parsed::Tail {
                name: "web".into(),
                stream: "stdout".into(),
                follow: false,
                amount: TailAmount::Bytes(1600),
            }
        );
        assert!(parse("tail web stdin").unwrap_err().contains("usage"));
        assert!(parse("tail").unwrap_err().contains("usage"));
    }

    #[test]
    fn tail_takes_lines_or_bytes_before_the_name() {
        let amount = |line: &str| match parse(line) {
            Ok(Parsed::Tail {
                amount,
                follow,
                name,
                ..
            }) => (amount, follow, name),
            other => panic!("{line}: {other:?}"),
        };
        let web = || "web".to_string();
        assert_eq!(
            amount("tail -n 3 web"),
            (TailAmount::Lines(3), false, web())
        );
        assert_eq!(
            amount("tail -n3 -f web"),
            (TailAmount::Lines(3), true, web())
        );
        assert_eq!(
            amount("tail -f -n 0 web"),
            (TailAmount::Lines(0), true, web())
        );
        assert_eq!(
            amount("tail -200 web"),
            (TailAmount::Bytes(200), false, web())
        );
        assert_eq!(
            amount("tail -f -200 web"),
            (TailAmount::Bytes(200), true, web())
        );
    }

    #[test]
    fn tail_refuses_a_bad_count_or_option_with_a_clear_message() {
        assert_eq!(
            parse("tail -n x web").unwrap_err(),
            "error: tail -n expects a number of lines, found \"x\""
        );
        assert_eq!(
            parse("tail -n -3 web").unwrap_err(),
            "error: tail -n expects a number of lines, found \"-3\""
        );
        assert!(parse("tail -n")
            .unwrap_err()
            .contains("needs a number of lines"));
        assert!(parse("tail -n 99999999999999999999 web")
            .unwrap_err()
            .contains("more than"));
        assert!(parse("tail -12x web").unwrap_err().contains("\"12x\""));
        assert!(parse("tail -x web")
            .unwrap_err()
            .contains("unknown option -x"));
        assert!(parse("tail -n 3").unwrap_err().contains("usage"));
    }

    #[test]
    fn blank_lines_do_nothing() {
        assert_eq!(parse("   ").unwrap(), Parsed::Empty);
    }

    #[test]
    fn every_command_has_help() {
        for c in COMMANDS {
            assert!(help(Some(c.name))[0].starts_with(c.usage));
        }
    }
}
