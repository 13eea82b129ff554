//! The example configuration shipped in `examples/` parses to exactly what its comments say.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use taskmaster_config::{AutoRestart, Config, Signal};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/taskmaster.yaml"
);

fn example() -> Config {
    match Config::load(Path::new(EXAMPLE)) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn example_file_has_three_programs() {
    let config = example();
    let names: Vec<&str> = config.programs.keys().map(String::as_str).collect();
    assert_eq!(names, ["once", "web", "workers"]);
    assert_eq!(config.path, PathBuf::from(EXAMPLE));
    assert_eq!(
        config.logfile,
        Path::new(EXAMPLE).parent().unwrap().join("taskmaster.log")
    );
}

#[test]
fn example_web_program_has_every_value_written() {
    let config = example();
    let web = &config.programs["web"];
    assert_eq!(web.name, "web");
    assert_eq!(web.cmd, "python3 -m http.server 8081 --bind 127.0.0.1");
    assert_eq!(
        web.argv,
        [
            "python3",
            "-m",
            "http.server",
            "8081",
            "--bind",
            "127.0.0.1"
        ]
    );
    assert_eq!(web.numprocs, 1);
    assert_eq!(web.umask, Some(0o22));
    assert_eq!(web.workingdir, Some(PathBuf::from("/tmp")));
    assert!(web.autostart);
    assert_eq!(web.autorestart, AutoRestart::Unexpected);
    assert_eq!(web.exitcodes, [0, 2]);
    assert_eq!(web.startretries, 3);
    assert_eq!(web.starttime, Duration::from_secs(1));
    assert_eq!(web.stopsignal, Signal::TERM);
    assert_eq!(web.stoptime, Duration::from_secs(10));
    assert_eq!(web.stdout, Some(PathBuf::from("/tmp/web.stdout")));
    assert_eq!(web.stderr, Some(PathBuf::from("/tmp/web.stderr")));
    let env: BTreeMap<String, String> = [("ANSWER", "42"), ("STARTED_BY", "taskmaster")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(web.env, env);
    assert!(web.is_expected_exit(2));
    assert!(!web.is_expected_exit(1));
}

#[test]
fn example_workers_program_has_every_value_written() {
    let config = example();
    let workers = &config.programs["workers"];
    assert_eq!(
        workers.argv,
        ["sh", "-c", "while true; do echo working; sleep 2; done"]
    );
    assert_eq!(workers.numprocs, 4);
    assert_eq!(
        workers.process_names(),
        ["workers_00", "workers_01", "workers_02", "workers_03"]
    );
    assert_eq!(workers.umask, Some(0o77));
    assert_eq!(workers.autorestart, AutoRestart::Always);
    assert_eq!(workers.exitcodes, [0]);
    assert_eq!(workers.stopsignal, Signal::USR1);
    assert_eq!(workers.stoptime, Duration::from_secs(5));
    assert_eq!(workers.stdout, Some(PathBuf::from("/tmp/workers.stdout")));
    assert_eq!(workers.stderr, None);
    assert!(workers.env.is_empty());
}

#[test]
fn example_once_program_takes_defaults_for_what_it_omits() {
    let config = example();
    let once = &config.programs["once"];
    assert_eq!(once.argv, ["echo", "ran", "once"]);
    assert!(!once.autostart);
    assert_eq!(once.autorestart, AutoRestart::Never);
    assert_eq!(once.starttime, Duration::ZERO);
    assert_eq!(once.numprocs, 1);
    assert_eq!(once.process_names(), ["once"]);
    assert_eq!(once.exitcodes, [0]);
    assert_eq!(once.startretries, 3);
    assert_eq!(once.stopsignal, Signal::TERM);
    assert_eq!(once.stoptime, Duration::from_secs(10));
    assert_eq!(once.stdout, None);
    assert_eq!(once.stderr, None);
    assert_eq!(once.workingdir, None);
    assert_eq!(once.umask, None);
    assert!(once.env.is_empty());
}

#[test]
fn missing_file_is_a_file_level_error() {
    let path = Path::new("/nonexistent/taskmaster.yaml");
    let Err(errors) = Config::load(path) else {
        panic!("loaded a missing file");
    };
    assert_eq!(errors.len(), 1);
    let text = errors.to_string();
    assert!(
        text.starts_with("/nonexistent/taskmaster.yaml: cannot read: "),
        "{text}"
    );
}
