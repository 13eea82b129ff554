//! The value library: every option's text becomes its value here, or the complete message to
//! show at that text. Both front ends (the YAML in [`crate::yaml`], supervisord's INI in
//! [`crate::ini`]) read values only through these, so they accept the same forms and say the
//! same things about a bad value; the words of an enumeration are listed once, here.

use crate::daemon::Owner;
use crate::error::did_you_mean;
use crate::{AlertLevel, AutoRestart, Readiness, Stream, WatchdogPaused};

pub(crate) const UMASK_EXPECTED: &str = "an octal umask from 000 to 777 such as 022";

/// `text` split into words like a shell splits them; at least one word.
pub(crate) fn split_command(text: &str) -> Result<Vec<String>, String> {
    match shell_words::split(text) {
        Ok(argv) if argv.is_empty() => Err(format!("expected a command, found {}", quote(text))),
        Ok(argv) => Ok(argv),
        Err(e) => Err(format!("cannot split {} into words: {e}", quote(text))),
    }
}

/// A decimal integer (digits only) from `min` to `max`.
pub(crate) fn parse_integer(text: &str, min: u32, max: u32) -> Result<u32, String> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let value = digits.then(|| text.parse::<u64>().unwrap_or(u64::MAX));
    match value {
        Some(n) if n > u64::from(max) => Err(format!(
            "expected an integer <= {max}, found {}",
            quote(text)
        )),
        // n <= max, so it fits.
        Some(n) if n >= u64::from(min) => Ok(u32::try_from(n).unwrap_or(max)),
        _ => Err(format!(
            "expected an integer >= {min}, found {}",
            quote(text)
        )),
    }
}

/// One exit code, 0 to 255, in decimal digits.
pub(crate) fn parse_exitcode(text: &str) -> Result<i32, String> {
    (!text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<i32>().ok())
        .flatten()
        .filter(|code| (0..=255).contains(code))
        .ok_or_else(|| format!("expected an exit code from 0 to 255, found {}", quote(text)))
}

/// Octal digits however written (`022`, `0o22`, `22`), at most 777.
pub(crate) fn parse_umask(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    (!digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten()
        .filter(|&umask| umask <= 0o777)
        .ok_or_else(|| format!("expected {UMASK_EXPECTED}, found {}", quote(text)))
}

/// A path's text: not empty, no NUL.
pub(crate) fn check_path(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("expected a path, found \"\"".to_string());
    }
    if text.contains('\0') {
        return Err("a path cannot contain a NUL character".to_string());
    }
    Ok(())
}

/// An environment variable's name: not empty, no `=`, no NUL.
pub(crate) fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!(
            "invalid variable name {}: a name is not empty and holds no \"=\" or NUL",
            quote(name)
        ));
    }
    Ok(())
}

/// An environment variable's value: no NUL.
pub(crate) fn check_env_value(value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err("a value cannot contain a NUL character".to_string());
    }
    Ok(())
}

pub(crate) const FACTOR_EXPECTED: &str = "a number >= 1 such as 2 or 1.5";

/// `backoff`'s factor: decimal digits with at most one `.`, at least 1.
pub(crate) fn parse_factor(text: &str) -> Result<f64, String> {
    let expected = || format!("expected {FACTOR_EXPECTED}, found {}", quote(text));
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let is_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(fraction) {
        return Err(expected());
    }
    let factor: f64 = text.parse().map_err(|_| expected())?;
    if !factor.is_finite() {
        return Err(format!("invalid factor {}: too large", quote(text)));
    }
    if factor < 1.0 {
        return Err(expected());
    }
    Ok(factor)
}

/// A command run with `/bin/sh -c`: not blank (which would always succeed), no NUL.
pub(crate) fn check_shell_command(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("expected a shell command, found {}", quote(text)));
    }
    if text.contains('\0') {
        return Err("a command cannot contain a NUL character".to_string());
    }
    Ok(())
}

/// An alert's text: not empty, and one line, since it is looked for in one line.
pub(crate) fn check_alert_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("expected the text of a line to match, found \"\"".to_string());
    }
    if text.contains(['\n', '\r']) {
        return Err(format!(
            "{} can never match: output is matched one line at a time",
            quote(text)
        ));
    }
    Ok(())
}

/// `a or b`, `a, b or c`.
pub(crate) fn one_of(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [only] => only.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// ` (did you mean "x"?)` when `word` is close to one of `candidates`, else nothing.
pub(crate) fn hint(word: &str, candidates: &[&str]) -> String {
    match did_you_mean(word, candidates) {
        Some(close) => format!(" (did you mean {close:?}?)"),
        None => String::new(),
    }
}

/// The message for a program name [`is_valid_program_name`] refuses.
pub(crate) fn invalid_program_name(name: &str) -> String {
    format!(
        "invalid program name {name:?}: a name is not empty and holds no space, \":\" (which \
         separates a group from its process), \"/\" or control character, as supervisord's"
    )
}

pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A name supervisord accepts (no space, `:` or `/`: they would break its event protocol and
/// its URLs), and no control character either: names are printed and written into paths.
pub(crate) fn is_valid_program_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ':' | '/'))
}

/// `text` in double quotes, escaped, and cut short if long.
pub(crate) fn quote(text: &str) -> String {
    const LIMIT: usize = 60;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// supervisord's booleans: taskmaster's words (`true`/`false`, `yes`/`no`, `on`/`off`, in
/// any case) plus `1` and `0`.
pub(crate) fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => parse_bool(text).ok_or_else(|| {
            format!(
                "expected true or false (or yes/no, on/off, 1/0), found {}",
                quote(text)
            )
        }),
    }
}

/// `priority`: a signed integer that fits an `i32`.
pub(crate) fn priority(text: &str) -> Result<i32, String> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let value = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<i32>().ok())
        .flatten();
    value.ok_or_else(|| {
        format!(
            "expected an integer from {} to {}, found {}",
            i32::MIN,
            i32::MAX,
            quote(text)
        )
    })
}

/// A byte size: a number of bytes, or with a `KB`, `MB` or `GB` suffix in any case.
pub(crate) fn byte_size(text: &str) -> Result<u64, String> {
    let error = || {
        format!(
            "expected a size such as 0, 1024 or 50MB, found {}",
            quote(text)
        )
    };
    let lower = text.to_ascii_lowercase();
    let (number, unit) = match lower.strip_suffix("kb") {
        Some(number) => (number, 1u64 << 10),
        None => match lower.strip_suffix("mb") {
            Some(number) => (number, 1 << 20),
            None => match lower.strip_suffix("gb") {
                Some(number) => (number, 1 << 30),
                None => (lower.as_str(), 1),
            },
        },
    };
    let number = number.trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(error)
}

/// An octal file mode such as `0700` (or `0o700`), at most 7777.
pub(crate) fn file_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    (!digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten()
        .filter(|&mode| mode <= 0o7777)
        .ok_or_else(|| format!("expected an octal mode such as 0700, found {}", quote(text)))
}

/// `user` or `user:group`, names or numbers, not looked up.
pub(crate) fn owner(text: &str) -> Result<Owner, String> {
    let (user, group) = match text.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (text, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err(format!(
            "expected user or user:group, found {}",
            quote(text)
        ));
    }
    Ok(Owner {
        user: user.to_string(),
        group: group.map(str::to_string),
    })
}

/// `port`, `host:port`, `:port` or `*:port`; the host lower-cased, `None` for every
/// interface.
pub(crate) fn inet_address(text: &str) -> Result<(Option<String>, u16), String> {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host.to_lowercase(), port),
        None => (String::new(), text),
    };
    let port = (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .then(|| port.parse::<u16>().ok())
        .flatten()
        .filter(|&p| p >= 1)
        .ok_or_else(|| {
            format!(
                "expected a port from 1 to 65535, or host:port, found {}",
                quote(text)
            )
        })?;
    let host = (!host.is_empty() && host != "*").then_some(host);
    Ok((host, port))
}

/// An fcgi program's `socket`: `tcp://HOST:PORT`, or `unix://PATH` (resolved against `dir`
/// when relative).
pub(crate) fn socket_address(
    text: &str,
    dir: &std::path::Path,
) -> Result<crate::SocketAddress, String> {
    if let Some(path) = text.strip_prefix("unix://") {
        check_path(path)?;
        return Ok(crate::SocketAddress::Unix(dir.join(path)));
    }
    let tcp = text
        .strip_prefix("tcp://")
        .and_then(|rest| rest.rsplit_once(':'));
    match tcp {
        Some((host, port)) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            let port = (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
                .then(|| port.parse::<u16>().ok())
                .flatten()
                .filter(|&port| port >= 1)
                .ok_or_else(|| format!("expected a port from 1 to 65535, found {}", quote(port)))?;
            Ok(crate::SocketAddress::Tcp {
                host: host.to_lowercase(),
                port,
            })
        }
        _ => Err(format!(
            "expected tcp://HOST:PORT or unix:///PATH, found {}",
            quote(text)
        )),
    }
}

/// An event listener's `events`: supervisord's event type names, separated by commas, in
/// any case.
pub(crate) fn event_types(text: &str) -> Result<Vec<crate::EventType>, String> {
    let mut types = Vec::new();
    for name in text
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        types.push(event_type(name)?);
    }
    if types.is_empty() {
        return Err(format!(
            "expected event types such as PROCESS_STATE,TICK_60, found {}",
            quote(text)
        ));
    }
    Ok(types)
}

/// One event type name, in any case.
pub(crate) fn event_type(name: &str) -> Result<crate::EventType, String> {
    crate::EventType::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = crate::EventType::names().collect();
        match did_you_mean(&name.to_uppercase(), &names) {
            Some(close) => format!("unknown event type {} (did you mean {close}?)", quote(name)),
            None => format!(
                "unknown event type {} (the types are {})",
                quote(name),
                names.join(", ")
            ),
        }
    })
}

/// `[supervisorctl] serverurl`: `unix://PATH` (the path returned) or another URL.
pub(crate) enum ServerUrl<'a> {
    Unix(&'a str),
    Other,
}

pub(crate) fn server_url(text: &str) -> Result<ServerUrl<'_>, String> {
    if let Some(path) = text.strip_prefix("unix://") {
        if path.is_empty() {
            return Err("expected unix:///path/to/socket, found no path".to_string());
        }
        return Ok(ServerUrl::Unix(path));
    }
    match text.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && !rest.is_empty() => Ok(ServerUrl::Other),
        _ => Err(format!(
            "expected unix:///path/to/socket or http://host:port, found {}",
            quote(text)
        )),
    }
}

/// An enumeration written as words: read in any case, written as its first word.
pub(crate) trait Words: Copy + PartialEq + Sized + 'static {
    /// Each word and its value.
    const WORDS: &'static [(&'static str, Self)];

    /// The value `text` names, or a message listing the words.
    fn parse(text: &str) -> Result<Self, String> {
        let found = Self::WORDS
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(text));
        found.map(|&(_, value)| value).ok_or_else(|| {
            let words: Vec<&str> = Self::WORDS.iter().map(|(word, _)| *word).collect();
            format!(
                "expected {}, found {}{}",
                one_of(&words),
                quote(text),
                hint(text, &words)
            )
        })
    }

    /// The word that names this value.
    fn word(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(_, value)| *value == self)
            .map_or("", |(word, _)| word)
    }
}

impl Words for AutoRestart {
    const WORDS: &'static [(&'static str, AutoRestart)] = &[
        ("always", AutoRestart::Always),
        ("never", AutoRestart::Never),
        ("unexpected", AutoRestart::Unexpected),
    ];

    /// A word, or a boolean as supervisord writes it (`true` is always, `false` never).
    fn parse(text: &str) -> Result<AutoRestart, String> {
        let words = Self::WORDS.iter();
        if let Some(&(_, value)) = words.clone().find(|(w, _)| w.eq_ignore_ascii_case(text)) {
            return Ok(value);
        }
        match boolean(text) {
            Ok(true) => Ok(AutoRestart::Always),
            Ok(false) => Ok(AutoRestart::Never),
            Err(_) => Err(format!(
                "expected always, never or unexpected (or true/false), found {}{}",
                quote(text),
                hint(text, &["always", "never", "unexpected"])
            )),
        }
    }
}

impl Words for Readiness {
    const WORDS: &'static [(&'static str, Readiness)] = &[
        ("started", Readiness::Started),
        ("notify", Readiness::Notify),
    ];
}

impl Words for WatchdogPaused {
    const WORDS: &'static [(&'static str, WatchdogPaused)] = &[
        ("ignore", WatchdogPaused::Ignore),
        ("restart", WatchdogPaused::Restart),
    ];
}

impl Words for Stream {
    const WORDS: &'static [(&'static str, Stream)] =
        &[("stdout", Stream::Stdout), ("stderr", Stream::Stderr)];
}

impl Words for AlertLevel {
    const WORDS: &'static [(&'static str, AlertLevel)] = &[
        ("info", AlertLevel::Info),
        ("warning", AlertLevel::Warning),
        ("error", AlertLevel::Error),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_supervisords_words() {
        for t in ["true", "TRUE", "yes", "on", "1"] {
            assert_eq!(boolean(t), Ok(true), "{t}");
        }
        for t in ["false", "No", "off", "0"] {
            assert_eq!(boolean(t), Ok(false), "{t}");
        }
        assert_eq!(
            boolean("2"),
            Err("expected true or false (or yes/no, on/off, 1/0), found \"2\"".to_string())
        );
    }

    #[test]
    fn autorestart_reads_its_words_and_booleans() {
        assert_eq!(AutoRestart::parse("true"), Ok(AutoRestart::Always));
        assert_eq!(AutoRestart::parse("1"), Ok(AutoRestart::Always));
        assert_eq!(AutoRestart::parse("false"), Ok(AutoRestart::Never));
        assert_eq!(
            AutoRestart::parse("Unexpected"),
            Ok(AutoRestart::Unexpected)
        );
        assert_eq!(AutoRestart::parse("ALWAYS"), Ok(AutoRestart::Always));
        assert_eq!(
            AutoRestart::parse("unexpcted"),
            Err("expected always, never or unexpected (or true/false), found \"unexpcted\" (did you mean \"unexpected\"?)".to_string())
        );
    }

    #[test]
    fn every_word_reads_back_as_its_value() {
        for &(word, value) in AutoRestart::WORDS {
            assert_eq!(AutoRestart::parse(word), Ok(value));
            assert_eq!(value.word(), word);
        }
        for &(word, value) in Readiness::WORDS {
            assert_eq!(Readiness::parse(&word.to_uppercase()), Ok(value));
        }
        assert_eq!(
            WatchdogPaused::parse("restrat"),
            Err(
                "expected ignore or restart, found \"restrat\" (did you mean \"restart\"?)"
                    .to_string()
            )
        );
    }

    #[test]
    fn priorities_are_signed() {
        assert_eq!(priority("999"), Ok(999));
        assert_eq!(priority("-1"), Ok(-1));
        assert_eq!(priority("+5"), Ok(5));
        assert!(priority("1.5").is_err());
        assert!(priority("99999999999").is_err());
        assert!(priority("-").is_err());
    }

    #[test]
    fn byte_sizes_take_kb_mb_gb_in_any_case() {
        assert_eq!(byte_size("0"), Ok(0));
        assert_eq!(byte_size("1024"), Ok(1024));
        assert_eq!(byte_size("1KB"), Ok(1024));
        assert_eq!(byte_size("50MB"), Ok(50 << 20));
        assert_eq!(byte_size("2gb"), Ok(2 << 30));
        assert_eq!(byte_size("0MB"), Ok(0));
        assert!(byte_size("MB").is_err());
        assert!(byte_size("1TB").is_err());
        assert!(byte_size("99999999999999GB").is_err());
    }

    #[test]
    fn modes_owners_and_ports() {
        assert_eq!(file_mode("0700"), Ok(0o700));
        assert_eq!(file_mode("0o777"), Ok(0o777));
        assert!(file_mode("0800").is_err());
        assert!(file_mode("17777").is_err());
        assert_eq!(
            owner("nobody:nogroup"),
            Ok(Owner {
                user: "nobody".into(),
                group: Some("nogroup".into())
            })
        );
        assert!(owner(":x").is_err());
        assert!(owner("x:").is_err());
        assert_eq!(inet_address("9001"), Ok((None, 9001)));
        assert_eq!(inet_address(":9001"), Ok((None, 9001)));
        assert_eq!(inet_address("*:9001"), Ok((None, 9001)));
        assert_eq!(
            inet_address("LocalHost:9001"),
            Ok((Some("localhost".into()), 9001))
        );
        assert!(inet_address("x:0").is_err());
        assert!(inet_address("x:70000").is_err());
        assert!(inet_address("x:").is_err());
        assert!(inet_address("x:+1").is_err());
    }
}
