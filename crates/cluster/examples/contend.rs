//! A contender against a real etcd, printing its reports: the manual check of `EtcdStore`.
//!
//! ```text
//! cargo run -p taskmaster-cluster --example contend -- http://127.0.0.1:2379 NODE TTL_SECS [PROGRAM...]
//! ```
//!
//! Contends for each PROGRAM at start. Then reads commands on stdin, one a line:
//! `contend PROGRAM`, `withdraw PROGRAM`, `shutdown`. Ctrl-C or the end of stdin shuts down
//! too. Each report is printed with the milliseconds since start.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use taskmaster_cluster::{spawn_etcd, Command, Report, Settings};
use tokio::sync::mpsc;

fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

fn usage() -> ! {
    eprintln!("usage: contend ENDPOINT[,ENDPOINT...] NODE TTL_SECS [PROGRAM...]");
    std::process::exit(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [endpoints, node, ttl, programs @ ..] = arguments.as_slice() else {
        usage()
    };
    let Ok(ttl) = ttl.parse::<f64>().map(Duration::from_secs_f64) else {
        usage()
    };
    let settings = Settings {
        endpoints: endpoints.split(',').map(str::to_owned).collect(),
        node: node.clone(),
        prefix: "/taskmaster".into(),
        ttl,
    };
    clock();
    let (report_sender, mut reports) = mpsc::unbounded_channel();
    let commands = match spawn_etcd(settings, clock, report_sender) {
        Ok((commands, _task)) => commands,
        Err(error) => {
            eprintln!("contend: {error}");
            std::process::exit(2)
        }
    };
    for program in programs {
        let _ = commands.send(Command::Contend(program.clone()));
    }

    // stdin on a thread of its own: a blocking read must not stall the runtime.
    let (line_sender, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if line_sender.send(line).is_err() {
                break;
            }
        }
    });

    let mut shutting_down = false;
    loop {
        tokio::select! {
            report = reports.recv() => match report {
                Some(report) => {
                    println!("{:>7} ms  {report:?}", clock());
                    if shutting_down && matches!(report, Report::LeaseLost { .. }) {
                        break;
                    }
                }
                None => break,
            },
            line = lines.recv(), if !shutting_down => {
                let line = line.unwrap_or_else(|| "shutdown".into());
                let command = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["contend", program] => Command::Contend((*program).to_owned()),
                    ["withdraw", program] => Command::Withdraw((*program).to_owned()),
                    ["shutdown"] => Command::Shutdown,
                    _ => {
                        eprintln!("commands: contend PROGRAM | withdraw PROGRAM | shutdown");
                        continue;
                    }
                };
                shutting_down = command == Command::Shutdown;
                let _ = commands.send(command);
            }
            _ = tokio::signal::ctrl_c(), if !shutting_down => {
                shutting_down = true;
                let _ = commands.send(Command::Shutdown);
            }
        }
    }
    println!("{:>7} ms  done", clock());
}
