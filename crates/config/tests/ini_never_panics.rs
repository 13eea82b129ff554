//! The supervisord INI reader returns errors, never panics, whatever the input; and its errors
//! always carry a position and come in file order.

use std::path::Path;

use proptest::prelude::*;
use taskmaster_config::ini::{self, Host};

const WEBAPP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/supervisord/webapp.conf"
));

/// A folder that does not exist: `[include]` patterns relative to it match nothing.
const FILE: &str = "/nonexistent-taskmaster-proptest/t.conf";

fn host() -> Host {
    Host {
        env: [("HOME", "/home/ann"), ("APP", "shop")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        node_name: Some("box".to_string()),
    }
}

fn check(text: &str) -> Result<(), TestCaseError> {
    if let Err(errors) = ini::parse(text, Path::new(FILE), &host()) {
        prop_assert!(!errors.is_empty());
        let positions: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
        let mut sorted = positions.clone();
        sorted.sort();
        prop_assert_eq!(&positions, &sorted);
        for error in errors.iter() {
            prop_assert!(error.line >= 1 && error.column >= 1, "{}", error);
        }
    }
    Ok(())
}

/// Characters that matter to supervisord's syntax, to reach the reader's corners quickly.
const INIISH: &str = "[a-z0-9_:=;#%()\\[\\] \t\n\"'\\\\,.*?/~é-]{0,300}";

/// An edit of an example: at a character position, delete some characters and insert text.
#[derive(Debug, Clone)]
struct Edit {
    at: usize,
    delete: usize,
    insert: String,
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let at = edit.at % (chars.len() + 1);
        let end = (at + edit.delete).min(chars.len());
        chars.splice(at..end, edit.insert.chars());
    }
    chars.into_iter().collect()
}

fn edit() -> impl Strategy<Value = Edit> {
    (any::<usize>(), 0usize..20, INIISH).prop_map(|(at, delete, insert)| Edit {
        at,
        delete,
        insert: insert.chars().take(20).collect(),
    })
}

/// A `[program:x]` section of known options with values drawn from a small, nasty set.
fn program_section() -> impl Strategy<Value = String> {
    let options = prop::sample::select(vec![
        "command",
        "process_name",
        "numprocs",
        "numprocs_start",
        "priority",
        "autostart",
        "startsecs",
        "autorestart",
        "exitcodes",
        "stopsignal",
        "stopasgroup",
        "redirect_stderr",
        "stdout_logfile",
        "stderr_logfile",
        "stdout_logfile_backups",
        "environment",
        "directory",
        "umask",
        "user",
    ]);
    let values = prop::sample::select(vec![
        "run",
        "",
        "0",
        "1",
        "3",
        "-1",
        "1000",
        "99999999999999999999",
        "true",
        "unexpected",
        "%(program_name)s_%(process_num)02d",
        "%(process_num)d",
        "%(ENV_NOPE)s",
        "%(here)s/x",
        "%(numprocs)5.3d",
        "%",
        "%(",
        "A=1,B=\"x, y\"",
        "A=%(process_num)d",
        "A=",
        "NONE",
        "AUTO",
        "~/x",
        "0,2, 300",
        "TERM",
        "sh -c 'x",
    ]);
    prop::collection::vec((options, values), 0..8).prop_map(|pairs| {
        let mut text = String::from("[program:p]\n");
        for (option, value) in pairs {
            text.push_str(&format!("{option}={value}\n"));
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ini_never_panics_on_arbitrary_strings(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn ini_never_panics_on_ini_like_strings(text in INIISH) {
        check(&text)?;
    }

    #[test]
    fn ini_never_panics_on_mutations_of_the_example(edits in prop::collection::vec(edit(), 1..6)) {
        check(&apply(WEBAPP, &edits))?;
    }

    #[test]
    fn ini_never_panics_on_programs_of_known_options(sections in prop::collection::vec(program_section(), 1..3)) {
        check(&sections.concat())?;
    }
}
