//! `Config::parse` returns errors, never panics, whatever the input.

use std::path::Path;

use proptest::prelude::*;
use taskmaster_config::{to_yaml, Config};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/taskmaster.yaml"
));

/// Every liveness key, some of them twice, for mutations to reach their readers.
const LIVENESS: &str = "\
programs:
  worker:
    cmd: ./worker
    stdin: data/input.txt
    ready: notify
    readytime: 30s
    watchdog: 5s
    watchdog_paused: restart
    healthcheck:
      http: \"http://[::1]:8080/health?x=1\"
      interval: 30s
      timeout: 2s
      retries: 3
      start_period: 0s
    on_exit: \"rm -f /tmp/worker.lock\"
    on_exit_timeout: 30s
    restart_limit: {count: 5, within: 60s}
    backoff: {initial: 1s, max: 60s, factor: 1.5}
    alerts:
      - match: \"Corrupted data\"
        stream: stderr
        level: warning
  db:
    cmd: x
    healthcheck: {tcp: \"127.0.0.1:5432\", retries: 1}
    backoff: off
    alerts: [{match: up, level: info}]
";

/// An edit of the example: at a character position, delete some characters and insert text.
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

/// Characters that matter to YAML, to reach the parser's corners quickly.
const YAMLISH: &str = "[a-zA-Z0-9 :\\-\\[\\]{}&*!|>'\"#~,.?%@`\n\t\\\\]{0,300}";

fn edit() -> impl Strategy<Value = Edit> {
    (any::<usize>(), 0usize..20, YAMLISH).prop_map(|(at, delete, insert)| Edit {
        at,
        delete,
        insert: insert.chars().take(20).collect(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_arbitrary_strings(text in any::<String>()) {
        let _ = Config::parse(&text, Path::new("t.yaml"));
    }

    #[test]
    fn parse_never_panics_on_yaml_like_strings(text in YAMLISH) {
        let _ = Config::parse(&text, Path::new("t.yaml"));
    }

    #[test]
    fn parse_never_panics_on_mutations_of_the_example(edits in prop::collection::vec(edit(), 1..6)) {
        let text = apply(EXAMPLE, &edits);
        let _ = Config::parse(&text, Path::new("t.yaml"));
    }

    #[test]
    fn parse_never_panics_on_mutations_of_the_liveness_keys(edits in prop::collection::vec(edit(), 1..6)) {
        let text = apply(LIVENESS, &edits);
        let _ = Config::parse(&text, Path::new("t.yaml"));
    }

    #[test]
    fn whatever_parses_survives_the_yaml_round_trip(edits in prop::collection::vec(edit(), 1..4)) {
        let path = Path::new("/etc/tm/t.yaml");
        let text = apply(LIVENESS, &edits);
        if let Ok(config) = Config::parse(&text, path) {
            let yaml = to_yaml(&config);
            match Config::parse(&yaml, path) {
                Ok(again) => prop_assert_eq!(again, config, "{}", yaml),
                Err(e) => prop_assert!(false, "{}\n---\n{}", yaml, e),
            }
        }
    }

    #[test]
    fn errors_always_carry_a_position_and_come_in_file_order(edits in prop::collection::vec(edit(), 1..4)) {
        let text = apply(EXAMPLE, &edits);
        if let Err(errors) = Config::parse(&text, Path::new("t.yaml")) {
            prop_assert!(!errors.is_empty());
            let positions: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
            let mut sorted = positions.clone();
            sorted.sort();
            prop_assert_eq!(&positions, &sorted);
            for error in errors.iter() {
                prop_assert!(error.line >= 1 && error.column >= 1, "{}", error);
            }
        }
    }
}
