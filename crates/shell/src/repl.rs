//! The front ends: an interactive shell on a terminal, and a script read line by line.

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};
use taskmaster_core::{Reply, Request};

use crate::command::COMMANDS;
use crate::{execute, Backend, Flow};

pub const PROMPT: &str = "taskmaster> ";

/// The history file: `$TASKMASTER_HISTORY`, else `~/.taskmaster_history`.
pub fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TASKMASTER_HISTORY") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".taskmaster_history"))
}

/// Runs the interactive shell until `quit`, an accepted `shutdown`, or Ctrl-D. Ctrl-C drops
/// the line being typed. History is loaded from and saved to `history`.
pub fn run_interactive(backend: &dyn Backend, history: Option<&Path>) -> Result<(), ReadlineError> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ShellHelper<'_>, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper { backend }));
    if let Some(path) = history {
        // A missing file is the first run, not an error.
        let _ = editor.load_history(path);
    }
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(path) = history {
                        // Saved after every command, so a crash loses none of it.
                        let _ = editor.save_history(path);
                    }
                }
                let executed = execute(backend, &line, &mut std::io::stdout());
                for text in &executed.lines {
                    println!("{text}");
                }
                if executed.flow == Flow::Quit {
                    return Ok(());
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Runs commands read line by line (stdin that is not a terminal), printing each command's
/// output and no prompt, until end of input, `quit` or an accepted `shutdown`.
pub fn run_script(
    backend: &dyn Backend,
    input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<()> {
    for line in input.lines() {
        let executed = execute(backend, &line?, &mut output);
        for text in &executed.lines {
            writeln!(output, "{text}")?;
        }
        output.flush()?;
        if executed.flow == Flow::Quit {
            break;
        }
    }
    Ok(())
}

/// Completion for rustyline: command names first, then process names, group names (`GROUP:*`)
/// and `all`, asked of the backend as the user types.
struct ShellHelper<'a> {
    backend: &'a dyn Backend,
}

impl ShellHelper<'_> {
    fn process_names(&self) -> Vec<String> {
        let Ok(Reply::Status { processes, .. }) = self.backend.call(Request::Status(Vec::new()))
        else {
            return Vec::new();
        };
        let mut names = vec!["all".to_string()];
        for p in &processes {
            names.push(p.name.clone());
            if p.name.contains(':') {
                let group = format!("{}:*", p.group);
                if !names.contains(&group) {
                    names.push(group);
                }
            }
        }
        names
    }
}

impl Completer for ShellHelper<'_> {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let earlier: Vec<&str> = before[..start].split_whitespace().collect();
        let candidates: Vec<String> = match earlier.first() {
            None => COMMANDS.iter().map(|c| c.name.to_string()).collect(),
            Some(&"help") => COMMANDS.iter().map(|c| c.name.to_string()).collect(),
            Some(&"signal") if earlier.len() == 1 => [
                "HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "CONT", "STOP",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            Some(verb) if COMMANDS.iter().any(|c| c.name == *verb && c.takes_names) => {
                self.process_names()
            }
            Some(_) => Vec::new(),
        };
        let pairs = candidates
            .into_iter()
            .filter(|c| c.starts_with(word))
            .map(|c| Pair {
                display: c.clone(),
                replacement: format!("{c} "),
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ShellHelper<'_> {
    type Hint = String;
}

impl Highlighter for ShellHelper<'_> {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ShellHelper<'_> {}

impl Helper for ShellHelper<'_> {}
