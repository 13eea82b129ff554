//! `taskmaster ctl status` as a user feels it (`cargo bench -p taskmaster --bench
//! ctl_latency`, under a minute): the wall time of a whole client process, from its spawn to
//! its exit, against clients that cannot do less, measured in the same run.
//!
//! The daemon supervises 10 sleeping processes. Each case is run [`RUNS`] times, in turns (so
//! that a disturbance of the machine falls on every case alike), with stdout to /dev/null;
//! printed are the median and p90 of each and the ratio of medians to the baseline:
//!
//! - `/bin/true`: what spawning any process costs here (the floor of the floor).
//! - **Baseline, a minimal C client**: compiled here with `cc` (source below), it connects to
//!   the socket, sends `GET /v1/processes` and copies the answer to stdout: the same socket
//!   and the same answer, with nothing a real client needs (parsing, formatting, errors).
//! - `taskmaster --version`: taskmaster's own start, with no work.
//! - `taskmaster ctl -s SOCKET status` and `taskmaster ctl -c FILE status` (the socket found
//!   from the configuration); and the first with the `small` profile's executable, if
//!   `target/small/taskmaster` has been built (`cargo build --profile small`).
//!
//! The target: `ctl status` within 1.2 ms. Every process is ended by its pid: the daemon by
//! SIGTERM (SIGKILL past a deadline), the clients end by themselves.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

mod common;

const RUNS: usize = 300;
const TARGET_MS: f64 = 1.2;

/// The baseline client: connect, one request, copy the answer out.
const C_CLIENT: &str = r#"
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return 1;
    const char *request = "GET /v1/processes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (write(fd, request, strlen(request)) < 0) return 1;
    char buffer[65536];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0) {
        if (write(1, buffer, n) < 0) return 1;
    }
    return n < 0;
}
"#;

fn main() -> ExitCode {
    let dir = std::env::temp_dir().join(format!("tm-ctl-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let result = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path) -> Result<(), String> {
    let client = dir.join("client");
    let source = dir.join("client.c");
    std::fs::write(&source, C_CLIENT).map_err(|e| format!("write {}: {e}", source.display()))?;
    let compiled = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&client)
        .arg(&source)
        .status()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !compiled.success() {
        return Err("cc failed on the baseline client".to_string());
    }
    let config = dir.join("taskmaster.yaml");
    let text = format!(
        "programs:\n  web:\n    cmd: \"{} sleep forever\"\n    starttime: 0\n    numprocs: 10\n",
        common::binary("tm-fixture").display()
    );
    std::fs::write(&config, text).map_err(|e| format!("write {}: {e}", config.display()))?;
    let mut daemon = Command::new(common::binary("taskmaster"))
        .args(["run", "--no-shell", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start taskmaster: {e}"))?;
    let measured = measure(dir, &client, &config);
    if let Err(e) = common::stop(
        &mut daemon,
        "taskmaster",
        Duration::from_secs(30),
        Duration::from_millis(20),
    ) {
        eprintln!("{e}");
    }
    measured
}

/// One kind of client: its name and its command line.
struct Case {
    name: &'static str,
    argv: Vec<String>,
    times_ms: Vec<f64>,
}

fn measure(dir: &Path, client: &Path, config: &Path) -> Result<(), String> {
    let socket = dir.join("taskmaster.sock");
    let taskmaster = common::binary("taskmaster").display().to_string();
    let ctl_s = |args: &[&str]| {
        let mut argv = vec![taskmaster.clone(), "ctl".to_string(), "-s".to_string()];
        argv.push(socket.display().to_string());
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    };
    // Every process RUNNING first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new(&taskmaster)
        .args(ctl_s(&["status"])[1..].iter())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
    {
        if Instant::now() > deadline {
            return Err("the 10 processes never were all RUNNING".to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut cases = vec![
        case("/bin/true", vec!["/bin/true".to_string()]),
        case(
            "C client (baseline)",
            vec![client.display().to_string(), socket.display().to_string()],
        ),
    ];
    cases.push(case(
        "taskmaster --version",
        vec![taskmaster.clone(), "--version".to_string()],
    ));
    cases.push(case("taskmaster ctl -s SOCKET status", ctl_s(&["status"])));
    let mut ctl_c = vec![taskmaster.clone(), "ctl".to_string(), "-c".to_string()];
    ctl_c.push(config.display().to_string());
    ctl_c.push("status".to_string());
    cases.push(case("taskmaster ctl -c FILE status", ctl_c));
    // The `small` profile's executable, when it has been built (`cargo build --profile small`).
    let small = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/small/taskmaster");
    if small.exists() {
        let mut argv = ctl_s(&["status"]);
        argv[0] = small.display().to_string();
        cases.push(case(
            "taskmaster ctl -s SOCKET status (`--profile small`)",
            argv,
        ));
    }
    for _ in 0..RUNS {
        for case in &mut cases {
            let started = Instant::now();
            let status = Command::new(&case.argv[0])
                .args(&case.argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("{}: {e}", case.name))?;
            case.times_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            if !status.success() {
                return Err(format!("{} failed: {status}", case.name));
            }
        }
    }
    println!("a whole client process, spawn to exit, {RUNS} runs each, 10 processes:");
    println!("| client | median | p90 | ratio to the C client |");
    println!("|---|---|---|---|");
    let median = |case: &Case| {
        let mut sorted = case.times_ms.clone();
        sorted.sort_by(f64::total_cmp);
        (
            common::percentile(&sorted, 0.5),
            common::percentile(&sorted, 0.9),
        )
    };
    let baseline = median(&cases[1]).0;
    for case in &cases {
        let (p50, p90) = median(case);
        println!(
            "| {} | {p50:.2} ms | {p90:.2} ms | {:.2}x |",
            case.name,
            p50 / baseline
        );
    }
    let ctl = median(&cases[cases.len() - 2]).0;
    let verdict = if ctl <= TARGET_MS { "PASS" } else { "MISS" };
    println!("{verdict}: `ctl status` median {ctl:.2} ms (target {TARGET_MS} ms)");
    Ok(())
}

fn case(name: &'static str, argv: Vec<String>) -> Case {
    Case {
        name,
        argv,
        times_ms: Vec::with_capacity(RUNS),
    }
}
