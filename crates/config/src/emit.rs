//! A [`Config`] written back as taskmaster YAML: what `taskmaster convert` prints.
//!
//! The text is meant to be read back by [`Config::parse`] into the same programs and event
//! log, so every key is written, defaults included (a converted file then says everything it
//! means), and every string is double-quoted with YAML's escapes, so that no value can be
//! read as something else (`null`, `true`, `1.0`, a comment, a flow collection). Durations
//! are written as exact decimal seconds.
//!
//! Paths in a `Config` are already resolved against the folder of the file they came from.
//! A relative one (when that file was named by a relative path) is written absolute, against
//! the current directory, so the YAML means the same wherever it is saved. Paths that are not
//! UTF-8 are written lossily: a configuration read from text never has any.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::{AutoRestart, Config, ProgramSpec};

/// `config` as taskmaster YAML, valid for [`Config::parse`].
pub fn to_yaml(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "logfile: {}", path(&config.logfile));
    let _ = writeln!(out, "socket: {}", path(&config.socket));
    if let Some(http) = &config.http {
        out.push_str("http:\n");
        let _ = writeln!(out, "  listen: {}", string(&http.listen.to_string()));
        if let Some(credentials) = &http.credentials {
            let _ = writeln!(out, "  username: {}", string(&credentials.username));
            let _ = writeln!(out, "  password: {}", string(&credentials.password));
        }
    }
    if config.programs.is_empty() {
        out.push_str("programs: {}\n");
        return out;
    }
    out.push_str("programs:\n");
    for (name, spec) in &config.programs {
        let _ = writeln!(out, "  {}:", string(name));
        program(&mut out, spec);
    }
    out
}

fn program(out: &mut String, spec: &ProgramSpec) {
    let mut key = |key: &str, value: String| {
        let _ = writeln!(out, "    {key}: {value}");
    };
    key("cmd", string(&spec.cmd));
    key("numprocs", spec.numprocs.to_string());
    key("autostart", spec.autostart.to_string());
    let autorestart = match spec.autorestart {
        AutoRestart::Always => "always",
        AutoRestart::Never => "never",
        AutoRestart::Unexpected => "unexpected",
    };
    key("autorestart", autorestart.to_string());
    let codes: Vec<String> = spec.exitcodes.iter().map(i32::to_string).collect();
    key("exitcodes", format!("[{}]", codes.join(", ")));
    key("starttime", seconds(spec.starttime));
    key("startretries", spec.startretries.to_string());
    key("stopsignal", string(spec.stopsignal.name()));
    key("stoptime", seconds(spec.stoptime));
    key("priority", spec.priority.to_string());
    if let Some(stdout) = &spec.stdout {
        key("stdout", path(stdout));
    }
    if let Some(stderr) = &spec.stderr {
        key("stderr", path(stderr));
    }
    if let Some(dir) = &spec.workingdir {
        key("workingdir", path(dir));
    }
    if let Some(umask) = spec.umask {
        key("umask", format!("\"{umask:03o}\""));
    }
    if spec.env.is_empty() {
        return;
    }
    let _ = writeln!(out, "    env:");
    for (name, value) in &spec.env {
        let _ = writeln!(out, "      {}: {}", string(name), string(value));
    }
}

/// Exact decimal seconds: `1`, `0.5`, `0.000000001`.
fn seconds(duration: Duration) -> String {
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return duration.as_secs().to_string();
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}", duration.as_secs(), fraction.trim_end_matches('0'))
}

fn path(path: &Path) -> String {
    let absolute = if path.is_relative() {
        std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    string(&absolute.to_string_lossy())
}

/// A YAML double-quoted string: `\` and `"` escaped, and every character YAML would not
/// keep as is (controls, line and paragraph separators, the byte-order mark).
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_double_quoted_with_escapes() {
        assert_eq!(string("plain"), "\"plain\"");
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            string("l1\nl2\t\r\x1b\u{7f}"),
            "\"l1\\nl2\\t\\r\\x1b\\x7f\""
        );
        assert_eq!(string("\u{2028}é"), "\"\\u2028é\"");
    }

    #[test]
    fn durations_are_exact_decimal_seconds() {
        assert_eq!(seconds(Duration::from_secs(10)), "10");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
        assert_eq!(seconds(Duration::from_nanos(1)), "0.000000001");
        assert_eq!(seconds(Duration::ZERO), "0");
    }
}
