//! Every input the fuzzers kept and every crash they found, run again: none may panic. The
//! inputs are in `fuzz/corpus/TARGET/` and `fuzz/regressions/TARGET/` at the workspace's root.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        files.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    files.sort();
    files
}

#[test]
fn every_kept_input_of_every_target_runs_without_a_panic() {
    let mut total = 0;
    for (target, run) in taskmaster_fuzzing::TARGETS {
        let files = inputs(target);
        assert!(
            !files.is_empty(),
            "no corpus for {target} in fuzz/corpus/{target}/"
        );
        for file in &files {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            run(&data);
        }
        total += files.len();
    }
    eprintln!("{total} inputs run");
}
