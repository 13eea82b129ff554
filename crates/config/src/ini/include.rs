//! `[include] files`: which files a glob pattern names, as Python's `glob.glob` finds them.
//!
//! A pattern is matched one path component at a time. A component without `*`, `?` or `[`
//! is taken as written; one with them is matched (`fnmatch`) against the entries of each
//! folder found so far: `*` is any run of characters, `?` one character, `[abc]`, `[a-z]` and
//! `[!abc]` a set (a `[` without its `]` is a plain `[`), case-sensitively. As in Python,
//! a wildcard never matches a name starting with `.` unless the component itself starts
//! with `.`, and names that are not UTF-8 are skipped. A pattern without wildcards names its
//! path whether or not it exists; the caller reports a missing file. Matches are sorted
//! (supervisord reads them in `sorted()` order, which is byte order for UTF-8).

use std::path::{Path, PathBuf};

/// Whether `text` holds a wildcard.
pub(crate) fn has_magic(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// The paths `pattern` matches, sorted; a pattern without wildcards gives itself.
pub(crate) fn glob(pattern: &Path) -> Vec<PathBuf> {
    let Some(text) = pattern.to_str() else {
        return vec![pattern.to_path_buf()];
    };
    if !has_magic(text) {
        return vec![pattern.to_path_buf()];
    }
    let root = if text.starts_with('/') { "/" } else { "" };
    let components: Vec<&str> = text.split('/').filter(|c| !c.is_empty()).collect();
    let mut found: Vec<PathBuf> = vec![PathBuf::from(root)];
    for (i, component) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        let mut next = Vec::new();
        for dir in &found {
            if !has_magic(component) {
                next.push(dir.join(component));
                continue;
            }
            let listing = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let Ok(entries) = std::fs::read_dir(listing) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') && !component.starts_with('.') {
                    continue;
                }
                if !fnmatch(name, component) {
                    continue;
                }
                let path = dir.join(name);
                // Only folders can hold the next components.
                if last || path.is_dir() {
                    next.push(path);
                }
            }
        }
        found = next;
    }
    // A literal last component names a path that may not exist.
    found.retain(|path| path.symlink_metadata().is_ok());
    found.sort();
    found.dedup();
    found
}

/// Whether `name` matches the shell pattern `pattern` (one path component).
pub(crate) fn fnmatch(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    // Iterative matching with backtracking to the last `*`.
    let (mut n, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some('?') => {
                n += 1;
                p += 1;
                continue;
            }
            Some('[') => {
                if let Some((matched, after)) = set(&pattern, p, name[n]) {
                    if matched {
                        n += 1;
                        p = after;
                        continue;
                    }
                } else if name[n] == '[' {
                    n += 1;
                    p += 1;
                    continue;
                }
            }
            Some(&c) if c == name[n] => {
                n += 1;
                p += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((star_p, star_n)) => {
                p = star_p + 1;
                n = star_n + 1;
                star = Some((star_p, star_n + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The set starting at `pattern[open]` (a `[`): whether `c` is in it and where the pattern
/// goes on after it; `None` when the `[` has no `]` (it is then a plain character).
fn set(pattern: &[char], open: usize, c: char) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negated = pattern.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let start = i;
    // A `]` right after `[` or `[!` is a member, not the end.
    if pattern.get(i) == Some(&']') {
        i += 1;
    }
    while pattern.get(i).is_some_and(|&x| x != ']') {
        i += 1;
    }
    if i >= pattern.len() {
        return None;
    }
    let members = &pattern[start..i];
    let mut matched = false;
    let mut j = 0;
    while j < members.len() {
        if j + 2 < members.len() && members[j + 1] == '-' {
            if members[j] <= c && c <= members[j + 2] {
                matched = true;
            }
            j += 3;
        } else {
            if members[j] == c {
                matched = true;
            }
            j += 1;
        }
    }
    Some((matched != negated, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_follows_shell_rules() {
        for (name, pattern, expected) in [
            ("web.conf", "*.conf", true),
            ("web.conf", "*.ini", false),
            ("a.conf", "?.conf", true),
            ("ab.conf", "?.conf", false),
            ("web1.conf", "web[0-9].conf", true),
            ("webx.conf", "web[0-9].conf", false),
            ("webx.conf", "web[!0-9].conf", true),
            ("web].conf", "web[]].conf", true),
            ("web[.conf", "web[.conf", true),
            ("a-b", "a[-x]b", true),
            ("", "*", true),
            ("abc", "a*c*", true),
            ("abcbd", "a*b*d", true),
            ("abc", "a*x", false),
            ("Web.conf", "web.conf", false),
        ] {
            assert_eq!(fnmatch(name, pattern), expected, "{name} {pattern}");
        }
    }

    #[test]
    fn literal_patterns_name_themselves() {
        assert_eq!(
            glob(Path::new("/nonexistent/x.conf")),
            [PathBuf::from("/nonexistent/x.conf")]
        );
        assert!(glob(Path::new("/nonexistent/*.conf")).is_empty());
    }
}
