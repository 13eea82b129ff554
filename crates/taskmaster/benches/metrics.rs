//! The cost of a Prometheus scrape (`cargo bench -p taskmaster --bench metrics`, about twenty
//! seconds): `GET /metrics` of a daemon supervising 1,000 processes, against `GET
//! /v1/processes` (the same processes as JSON) measured in the same run. Printed: median, p99
//! and max of each, the ratio of the medians, and the size of each answer.
//!
//! The daemon runs one program of 1,000 sleeping processes (`numprocs: 1000`). Each request is
//! on a new connection of the unix socket, read to its end, 50 times per case. The daemon is
//! ended by its pid (SIGTERM, its shutdown; SIGKILL after a deadline).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

mod common;

const PROCESSES: usize = 1000;
const REQUESTS: usize = 50;

fn main() -> ExitCode {
    let dir = std::env::temp_dir().join(format!("tm-metrics-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let config = dir.join("taskmaster.yaml");
    let text = format!(
        "programs:\n  web:\n    cmd: \"{} sleep forever\"\n    starttime: 0\n    numprocs: {PROCESSES}\n",
        common::binary("tm-fixture").display()
    );
    if let Err(e) = std::fs::write(&config, text) {
        eprintln!("cannot write {}: {e}", config.display());
        return ExitCode::FAILURE;
    }
    let mut daemon = match Command::new(common::binary("taskmaster"))
        .args(["run", "--no-shell", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cannot start taskmaster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = measure(&dir.join("taskmaster.sock"));
    if let Err(e) = common::stop(
        &mut daemon,
        "taskmaster",
        Duration::from_secs(30),
        Duration::from_millis(20),
    ) {
        eprintln!("{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn measure(socket: &Path) -> Result<(), String> {
    // Every process RUNNING first: a scrape of processes on their way up is not the case.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((_, body)) = get(socket, "/v1/processes") {
            if body.matches("\"state\":\"RUNNING\"").count() == PROCESSES {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{PROCESSES} processes never were all RUNNING"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "a scrape of {PROCESSES} processes, {REQUESTS} requests each (one connection per request)"
    );
    let mut medians = Vec::new();
    for target in ["/v1/processes", "/metrics"] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..REQUESTS {
            let (ms, body) = get(socket, target)?;
            times.push(ms);
            size = body.len();
        }
        times.sort_by(f64::total_cmp);
        let median = common::percentile(&times, 0.5);
        medians.push(median);
        println!(
            "  GET {target:14} median {median:6.2} ms  p99 {:6.2} ms  max {:6.2} ms  {:5} KiB  ratio {:.2}",
            common::percentile(&times, 0.99),
            common::percentile(&times, 1.0),
            size / 1024,
            median / medians[0]
        );
    }
    Ok(())
}

/// One request: its latency in ms and its body.
fn get(socket: &Path, target: &str) -> Result<(f64, String), String> {
    let start = Instant::now();
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let elapsed = start.elapsed().as_secs_f64() * 1000.0;
    if !answer.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "{target} answered: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        ));
    }
    Ok((elapsed, String::from_utf8_lossy(&answer).into_owned()))
}
