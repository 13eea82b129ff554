//! `GET /metrics`: counters that match what happened, and output Prometheus' own checker
//! accepts (`promtool check metrics`, from Debian's `prometheus`, which `.ci/run` installs).

use std::io::Write;
use std::process::{Command, Stdio};

use rustix::process::Signal;

use crate::support::unix_http::Api;
use crate::support::{
    config, fixture_cmd, program, send_signal, wait_until, Sandbox, Taskmaster, TIMEOUT,
};

/// The value of the sample written exactly `series` (`name{labels}`), if there is one.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// `promtool check metrics` on `text`: its verdict and what it said.
fn promtool_check(text: &str) -> (bool, String) {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = spawned.unwrap_or_else(|e| {
        panic!("promtool not found ({e}): `.ci/run` installs it (apt-get install prometheus)")
    });
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let output = child.wait_with_output().expect("promtool's verdict");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[test]
fn metrics_count_what_happened_and_promtool_accepts_them() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[
        program(
            "web",
            &fixture_cmd(&["sleep", "forever"]),
            &["starttime: 0", "backoff: off"],
        ),
        program(
            "checked",
            &fixture_cmd(&["sleep", "forever"]),
            &[
                "starttime: 0",
                "healthcheck: {cmd: \"true\", interval: 100ms}",
            ],
        ),
        program(
            "talker",
            "sh -c 'printf %1000s x; printf 0123456789 >&2; exec sleep 1000'",
            &[
                "starttime: 0",
                &format!("stdout: {}", sandbox.file_str("talker.out")),
                &format!("stderr: {}", sandbox.file_str("talker.err")),
            ],
        ),
        program(
            "idle",
            &fixture_cmd(&["sleep", "forever"]),
            &["autostart: false"],
        ),
    ]));
    let _tm = Taskmaster::start(&sandbox, &["--no-shell"]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    let pid_of = |p: &serde_json::Value| p["pid"].as_u64().unwrap_or(0);
    let mut pid = pid_of(&api.wait_for_process("web", "RUNNING", |p| p["state"] == "RUNNING"));
    // Three kills, three restarts.
    for _ in 0..3 {
        let old = pid;
        send_signal(u32::try_from(old).expect("a pid"), Signal::KILL).expect("kill web");
        pid = pid_of(&api.wait_for_process("web", "a new pid", |p| {
            p["state"] == "RUNNING" && p["pid"].as_u64().is_some_and(|pid| pid != old)
        }));
    }
    api.wait_for_process("checked", "healthy", |p| p["health"]["state"] == "healthy");

    // What the talker wrote, once its captures have moved it.
    let talker = "name=\"talker\",group=\"talker\"";
    let stdout = format!("taskmaster_process_output_bytes_total{{{talker},stream=\"stdout\"}}");
    let stderr = format!("taskmaster_process_output_bytes_total{{{talker},stream=\"stderr\"}}");
    wait_until("the talker's 1,010 bytes counted", TIMEOUT, || {
        let text = api.get("/metrics").body;
        (sample(&text, &stdout) == Some(1000.0) && sample(&text, &stderr) == Some(10.0))
            .then_some(())
    });

    let answer = api.get("/metrics");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let text = answer.body;
    let web = "name=\"web\",group=\"web\"";
    assert_eq!(
        sample(
            &text,
            &format!("taskmaster_process_restarts_total{{{web}}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("taskmaster_process_exits_total{{{web},cause=\"killed\"}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("taskmaster_process_up{{{web}}}")),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("taskmaster_process_state{{{web},state=\"RUNNING\"}}")
        ),
        Some(1.0)
    );
    let idle = "name=\"idle\",group=\"idle\"";
    assert_eq!(
        sample(&text, &format!("taskmaster_process_up{{{idle}}}")),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("taskmaster_process_state{{{idle},state=\"STOPPED\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("taskmaster_process_restarts_total{{{idle}}}")
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "taskmaster_process_healthy{name=\"checked\",group=\"checked\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "taskmaster_reloads_total{result=\"applied\"}"),
        Some(0.0)
    );
    assert!(
        sample(&text, "process_open_fds").is_some_and(|fds| fds > 0.0),
        "{text}"
    );
    let started = sample(
        &text,
        &format!("taskmaster_process_start_time_seconds{{{web}}}"),
    );
    assert!(started.is_some_and(|at| at > 1.7e9), "{text}");

    let (accepted, said) = promtool_check(&text);
    assert!(
        accepted,
        "promtool check metrics refused it:\n{said}\n---\n{text}"
    );

    // OpenMetrics when asked: the counter's family without `_total`, units, `# EOF`.
    let open = api.get_accepting("/metrics", "application/openmetrics-text; version=1.0.0");
    assert_eq!(open.status, 200);
    assert!(
        open.body
            .contains("# TYPE taskmaster_process_restarts counter\n"),
        "{}",
        open.body
    );
    assert!(
        open.body.contains("# UNIT process_cpu_seconds seconds\n"),
        "{}",
        open.body
    );
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);
}

#[test]
fn a_reload_is_counted_as_applied_or_refused() {
    let sandbox = Sandbox::new();
    let programs = [program(
        "web",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0"],
    )];
    sandbox.write_config(&config(&programs));
    let _tm = Taskmaster::start(&sandbox, &["--no-shell"]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    assert_eq!(api.post("/v1/reload", None).status, 200);
    std::fs::write(sandbox.config_path(), "programs: [not, a, mapping]\n").expect("write");
    assert_eq!(api.post("/v1/reload", None).status, 422);
    let text = api.get("/metrics").body;
    assert_eq!(
        sample(&text, "taskmaster_reloads_total{result=\"applied\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "taskmaster_reloads_total{result=\"refused\"}"),
        Some(1.0),
        "{text}"
    );
}
