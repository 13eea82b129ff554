//! Compiles the C fixtures of the integration tests (`tests/fixture/c/*.c`): small programs
//! that fail the way real ones do (a segfault, an exit status, the failure-types worker).
//!
//! Each `NAME.c` becomes the executable `OUT_DIR/NAME`, built with the C compiler the `cc`
//! crate finds (`CC`, or the platform's `cc`), and its path reaches the tests as the
//! compile-time variable `TM_C_FIXTURE_<NAME>` (upper case): `env!("TM_C_FIXTURE_SEGFAULT")`.
//!
//! Cargo cannot run a build script for the tests alone, so this runs for every build of the
//! crate. A fixture that does not compile (no C compiler on the machine) is a warning, not an
//! error: the binary still builds, only the tests that run that fixture fail, naming it, and
//! the next build tries again.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// Where the fixtures' sources are, relative to the crate.
const SOURCES: &str = "tests/fixture/c";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // taskmaster's executable is linked at a fixed address (not position-independent): its
    // start then applies no relocations to its own 20,000 pointers, which made about half
    // the page faults of a `taskmaster ctl` (README, "Performance").
    println!("cargo:rustc-link-arg-bin=taskmaster=-no-pie");
    // The folder itself, so that an added or removed fixture counts as a change too.
    println!("cargo:rerun-if-changed={SOURCES}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let compiler = cc::Build::new().try_get_compiler();
    for source in c_sources(Path::new(SOURCES)) {
        println!("cargo:rerun-if-changed={}", source.display());
        let Some(name) = source.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        let executable = out_dir.join(name);
        // A fixture that no longer compiles must not be stood in for by its last build.
        let _ = fs::remove_file(&executable);
        let built = match &compiler {
            Ok(compiler) => compile(compiler, &source, &executable),
            Err(e) => Err(format!("no C compiler: {e}")),
        };
        if let Err(why) = built {
            println!(
                "cargo:warning=the C test fixture {} was not built: {why}",
                source.display()
            );
            // A missing file is always out of date: this script runs again at the next build,
            // which finds the compiler once it is installed.
            println!("cargo:rerun-if-changed={}", executable.display());
        }
        // Exported even when the build failed: the test then fails naming the missing file.
        println!(
            "cargo:rustc-env=TM_C_FIXTURE_{}={}",
            name.to_ascii_uppercase(),
            executable.display()
        );
    }
}

/// The `.c` files in `folder`, in name order.
fn c_sources(folder: &Path) -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "c"))
                .collect()
        })
        .unwrap_or_default();
    sources.sort();
    sources
}

/// Compiles and links `source` into the executable `executable` with `compiler`.
fn compile(compiler: &cc::Tool, source: &Path, executable: &Path) -> Result<(), String> {
    let mut command = compiler.to_command();
    command
        .args(["-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra"])
        .arg("-o")
        .arg(executable)
        .arg(source);
    // The command line alone: the Debug form of a `Command` lists the whole environment too.
    let command_line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| word.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command_line}: {e}"))?;
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        // A compiler's warning about a fixture is worth seeing, not worth failing the build.
        for line in diagnostics.lines() {
            println!("cargo:warning={line}");
        }
        Ok(())
    } else {
        Err(format!(
            "{command_line} failed ({}): {}",
            output.status,
            diagnostics.trim()
        ))
    }
}
