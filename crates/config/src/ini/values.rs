//! Value syntaxes that are supervisord's own. Values both formats share (durations, signals,
//! umasks, exit codes, integers, commands, paths) are read by the YAML reader's parsers in
//! [`crate::validate`], so that they accept the same forms and say the same things.
//!
//! Each parser takes the expanded text and returns the value or the complete message.

use crate::validate::{hint, parse_bool, quote};
use crate::AutoRestart;

use super::Owner;

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

/// `true` (always), `false` (never) or `unexpected`, booleans in any of their forms.
pub(crate) fn autorestart(text: &str) -> Result<AutoRestart, String> {
    if text.eq_ignore_ascii_case("unexpected") {
        return Ok(AutoRestart::Unexpected);
    }
    match boolean(text) {
        Ok(true) => Ok(AutoRestart::Always),
        Ok(false) => Ok(AutoRestart::Never),
        Err(_) => Err(format!(
            "expected true, false or unexpected, found {}{}",
            quote(text),
            hint(text, &["true", "false", "unexpected"])
        )),
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
    fn autorestart_reads_true_false_and_unexpected() {
        assert_eq!(autorestart("true"), Ok(AutoRestart::Always));
        assert_eq!(autorestart("1"), Ok(AutoRestart::Always));
        assert_eq!(autorestart("false"), Ok(AutoRestart::Never));
        assert_eq!(autorestart("Unexpected"), Ok(AutoRestart::Unexpected));
        assert_eq!(
            autorestart("unexpcted"),
            Err("expected true, false or unexpected, found \"unexpcted\" (did you mean \"unexpected\"?)".to_string())
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
