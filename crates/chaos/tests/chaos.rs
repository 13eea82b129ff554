//! The chaos run, short: a few seconds and a few hundred actions against the real taskmaster
//! (built by cargo in this test's profile), with every count but the actions at zero.
//! The full run is `cargo run --release -p taskmaster-chaos -- --seconds 120`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use taskmaster_chaos::daemon::Binaries;
use taskmaster_chaos::programs::{Layout, Paths};
use taskmaster_chaos::rng::Rng;
use taskmaster_chaos::{run, Options};

fn binaries() -> Binaries {
    let worker = Path::new(env!("CARGO_BIN_EXE_chaos"));
    let profile_dir = worker.parent().expect("the chaos binary is in a folder");
    Binaries::built_by_cargo(profile_dir, worker).expect("taskmaster is built")
}

#[test]
fn every_configuration_the_run_writes_is_valid() {
    let binaries = binaries();
    let dir = std::env::temp_dir().join(format!("chaos-layouts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let paths = Paths {
        dir: dir.clone(),
        fixture: binaries.fixture.clone(),
        worker: binaries.worker.clone(),
        token: "layouts".to_string(),
    };
    let mut layout = Layout::initial();
    let mut rng = Rng::new(99);
    for round in 0..40 {
        std::fs::write(paths.config(), layout.yaml(&paths)).expect("the file is written");
        let output = Command::new(&binaries.taskmaster)
            .arg("check")
            .arg("-c")
            .arg(paths.config())
            .output()
            .expect("taskmaster check runs");
        assert!(
            output.status.success(),
            "round {round}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            layout.yaml(&paths)
        );
        layout.mutate(&mut rng);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_short_chaos_run_finds_no_lie_zombie_leftover_leak_or_5xx() {
    let mut options = Options::new(binaries(), 6, 14);
    options.request_timeout = Duration::from_secs(30);
    options.settle_timeout = Duration::from_secs(60);
    let report = run(&options).expect("the chaos run could be made");
    println!("{report}");
    assert!(
        report.tally.actions() >= 200,
        "only {} actions",
        report.tally.actions()
    );
    assert!(report.tally.signals.values().sum::<u64>() > 0);
    assert!(report.tally.sighups + report.tally.reload_requests > 0);
    assert_eq!(report.findings.lies, Vec::<String>::new(), "status lies");
    assert_eq!(report.findings.zombies, Vec::<String>::new(), "zombies");
    assert_eq!(report.findings.leftovers, Vec::<String>::new(), "leftovers");
    assert_eq!(report.tally.server_errors, 0, "requests answered 5xx");
    assert_eq!(report.tally.never, 0, "requests never answered");
    assert_eq!(report.failures(), Vec::<String>::new());
}
