//! A hostile client's cost to everyone else (`cargo bench -p taskmaster --bench
//! idle_connections`, about ten seconds): the latency of a status request on the control
//! socket, alone, then beside 1,000 connections held open and idle, and beside 1,000 that each
//! send a byte at a time (slowloris). Printed: median, p99 and max of each, and the ratio of
//! the medians to the one measured alone in the same run, with the daemon's descriptors
//! before, during and after.
//!
//! Each request is `GET /v1/processes/web` on a new connection of the unix socket, the answer
//! read to its end, 300 times per case. The daemon supervises one sleeping program. Every
//! process the bench starts is ended by its pid: the daemon by SIGTERM (its shutdown), then
//! SIGKILL after a deadline.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

mod common;

const REQUESTS: usize = 300;
const HELD: usize = 1000;

fn main() -> ExitCode {
    let dir = std::env::temp_dir().join(format!("tm-idle-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let fixture = common::binary("tm-fixture");
    let config = dir.join("taskmaster.yaml");
    let text = format!(
        "programs:\n  web:\n    cmd: \"{} sleep forever\"\n    starttime: 0\n",
        fixture.display()
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
    let pid = daemon.id();
    let socket = dir.join("taskmaster.sock");
    let result = measure(&socket, pid);
    if let Err(e) = common::stop(
        &mut daemon,
        "taskmaster",
        Duration::from_secs(10),
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

fn measure(socket: &Path, pid: u32) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(socket).is_err() {
        if Instant::now() > deadline {
            return Err("the daemon never answered".to_string());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let fds_before = descriptors(pid);
    let alone = latencies(socket)?;
    let mut held = Vec::new();
    for _ in 0..HELD {
        held.push(UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?);
    }
    let idle = latencies(socket)?;
    // By now the daemon has accepted them all.
    let fds_idle = descriptors(pid);
    for stream in &mut held {
        let _ = stream.write_all(b"GET /v1/processes HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    }
    let slow = latencies_while(socket, &mut held)?;
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let fds_after = descriptors(pid);
    println!("status latency on the control socket, {REQUESTS} requests each (one connection per request)");
    let base = median(&alone);
    for (name, times) in [
        ("alone", &alone),
        ("beside 1000 idle connections", &idle),
        ("beside 1000 slowloris connections", &slow),
    ] {
        println!(
            "  {name:36} median {:6.3} ms  p99 {:6.3} ms  max {:6.3} ms  ratio {:.2}",
            median(times),
            percentile(times, 0.99),
            percentile(times, 1.0),
            median(times) / base
        );
    }
    println!(
        "  daemon descriptors: {fds_before} before, {fds_idle} with 1000 held, {fds_after} after"
    );
    Ok(())
}

/// `REQUESTS` status requests, each its latency in ms.
fn latencies(socket: &Path) -> Result<Vec<f64>, String> {
    (0..REQUESTS).map(|_| request(socket)).collect()
}

/// The same, with every held connection sending one more byte between requests.
fn latencies_while(socket: &Path, held: &mut [UnixStream]) -> Result<Vec<f64>, String> {
    let mut times = Vec::new();
    for n in 0..REQUESTS {
        if let Some(stream) = held.get_mut(n % held.len().max(1)) {
            let _ = stream.write_all(b"x");
        }
        times.push(request(socket)?);
    }
    Ok(times)
}

fn request(socket: &Path) -> Result<f64, String> {
    let start = Instant::now();
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(b"GET /v1/processes/web HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "answered: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        ));
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

fn median(times: &[f64]) -> f64 {
    percentile(times, 0.5)
}

fn percentile(times: &[f64], p: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    common::percentile(&sorted, p)
}
