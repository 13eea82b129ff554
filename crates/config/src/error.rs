//! Errors that say where and what.
//!
//! A configuration error is only useful if it names its place, so every [`ConfigError`]
//! carries the file, the 1-based line and column of the offending text, and the dotted key
//! path (`programs.web.stopsignal`) that reached it. Validation never stops at the first
//! problem: it gathers them all into [`ConfigErrors`], which prints them one per line in file
//! order, so a user fixes a whole file in one round instead of one error per run. A supervisord
//! INI file can include others: errors are then grouped by file, files in the order they were
//! read, and in file order within each.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line of the offending text; 0 when the error concerns the file as a whole.
    pub line: usize,
    /// 1-based column of the offending text; 0 when the error concerns the file as a whole.
    pub column: usize,
    /// Dotted path of the key concerned (`programs.web.stopsignal`); empty at the top level.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error about the file as a whole (it cannot be read, say): no position, no key.
    pub fn file_level(path: &Path, message: String) -> ConfigError {
        ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message,
        }
    }

    fn render(&self) -> String {
        let file = self.file.display();
        match (self.line, self.key.is_empty()) {
            (0, true) => format!("{file}: {}", self.message),
            (0, false) => format!("{file}: {}: {}", self.key, self.message),
            (_, true) => format!("{file}:{}:{}: {}", self.line, self.column, self.message),
            (_, false) => format!(
                "{file}:{}:{}: {}: {}",
                self.line, self.column, self.key, self.message
            ),
        }
    }
}

/// Something a configuration file says that taskmaster accepts but does not do as written (an
/// option supervisord ignores too, a repeated option whose last value wins...): the file is
/// valid, and the warning names the place as an error would (`FILE:LINE:COL: key: what`).
pub type ConfigWarning = ConfigError;

/// Every problem found in a configuration file (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// A list of one error.
    pub fn single(error: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![error])
    }

    /// The errors, in the order they are stored (file order when built by this crate).
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no errors at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Puts the errors in file order (line, then column), files in the order they first
    /// appear; ties keep their order.
    pub(crate) fn sorted(mut errors: Vec<ConfigError>) -> ConfigErrors {
        let files = first_appearances(&errors);
        errors.sort_by_key(|e| (file_rank(&files, e), e.line, e.column));
        ConfigErrors(errors)
    }
}

/// Each file named by `errors`, once, in the order of its first error.
fn first_appearances(errors: &[ConfigError]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for error in errors {
        if !files.contains(&error.file) {
            files.push(error.file.clone());
        }
    }
    files
}

fn file_rank(files: &[PathBuf], error: &ConfigError) -> usize {
    files
        .iter()
        .position(|file| *file == error.file)
        .unwrap_or(usize::MAX)
}

impl fmt::Display for ConfigErrors {
    /// One error per line, grouped by file (in order of first appearance), in file order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = first_appearances(&self.0);
        let mut errors: Vec<&ConfigError> = self.0.iter().collect();
        errors.sort_by_key(|e| (file_rank(&files, e), e.line, e.column));
        for (i, error) in errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
///
/// Shared by unknown keys, unknown signals and unknown `autorestart` values so that every
/// "did you mean" in the crate behaves the same.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let mut best: Option<(&'a str, f64)> = None;
    for &candidate in candidates {
        let score = strsim::jaro_winkler(&word, &candidate.to_ascii_lowercase());
        if score >= 0.8 && best.is_none_or(|(_, best_score)| score > best_score) {
            best = Some((candidate, score));
        }
    }
    best.map(|(candidate, _)| candidate)
}

/// The OS's words for an I/O error, without Rust's " (os error N)" suffix: what taskmaster
/// shows users (`cannot read: No such file or directory`).
pub fn os_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    text.split(" (os error").next().unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: usize, column: usize, key: &str) -> ConfigError {
        ConfigError {
            file: PathBuf::from("taskmaster.yaml"),
            line,
            column,
            key: key.to_string(),
            message: "bad".to_string(),
        }
    }

    #[test]
    fn error_with_key_shows_file_position_key_and_message() {
        assert_eq!(
            error(12, 5, "programs.web.stopsignal").to_string(),
            "taskmaster.yaml:12:5: programs.web.stopsignal: bad"
        );
    }

    #[test]
    fn error_without_key_shows_file_position_and_message() {
        assert_eq!(error(1, 2, "").to_string(), "taskmaster.yaml:1:2: bad");
    }

    #[test]
    fn file_level_error_shows_only_file_and_message() {
        let e = ConfigError::file_level(Path::new("/etc/tm.yaml"), "cannot read: gone".into());
        assert_eq!(e.to_string(), "/etc/tm.yaml: cannot read: gone");
    }

    #[test]
    fn errors_display_one_per_line_in_file_order() {
        let errors = ConfigErrors(vec![error(3, 1, "b"), error(1, 9, "a"), error(3, 0, "c")]);
        assert_eq!(
            errors.to_string(),
            "taskmaster.yaml:1:9: a: bad\ntaskmaster.yaml:3:0: c: bad\ntaskmaster.yaml:3:1: b: bad"
        );
        assert_eq!(errors.len(), 3);
        assert_eq!(ConfigErrors::single(error(1, 1, "")).len(), 1);
    }

    #[test]
    fn errors_of_several_files_are_grouped_by_file_in_order_of_appearance() {
        let mut included = error(1, 1, "b");
        included.file = PathBuf::from("conf.d/a.conf");
        let errors = ConfigErrors(vec![error(9, 1, "a"), included, error(2, 1, "c")]);
        assert_eq!(
            errors.to_string(),
            "taskmaster.yaml:2:1: c: bad\ntaskmaster.yaml:9:1: a: bad\nconf.d/a.conf:1:1: b: bad"
        );
    }

    #[test]
    fn did_you_mean_suggests_close_words_only() {
        let keys = ["stoptime", "starttime", "stopsignal"];
        assert_eq!(did_you_mean("stoptimee", &keys), Some("stoptime"));
        assert_eq!(did_you_mean("STARTIME", &keys), Some("starttime"));
        assert_eq!(did_you_mean("zzz", &keys), None);
    }
}
