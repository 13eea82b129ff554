//! supervisord's expansions: Python's `%` formatting of a value against a set of names.
//!
//! supervisord runs `value % names` on (nearly) every value, so `%(program_name)s`,
//! `%(process_num)02d` and `%(ENV_HOME)s` are replaced and `%%` is a literal `%`. This module
//! implements the part of Python's `%` operator that can be useful there: `%(name)` followed
//! by optional flags (`-`, `+`, space, `#`, `0`), a width, a precision and a length modifier
//! (`h`, `l`, `L`, ignored as Python ignores them), and the conversion `s` (any value) or `d`,
//! `i`, `u` (numbers only). Everything else is an error with its place in the value, where
//! Python would either fail or produce nonsense (`%s` with no name formats the whole table of
//! names): a `%` not followed by `%` or `(`, a name without its `)`, another conversion.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// A value a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Text(Cow<'a, str>),
    Number(i64),
}

/// Why a value cannot be expanded, and at which byte of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpandError {
    pub offset: usize,
    pub message: String,
}

/// Widths and precisions beyond this are refused: they would only waste memory.
const MAX_WIDTH: usize = 1000;

/// Expands `text`, asking `lookup` for each name (it answers the value, or the message to
/// show when the name cannot be used there).
pub(crate) fn expand<'a>(
    text: &str,
    lookup: &dyn Fn(&str) -> Result<Value<'a>, String>,
) -> Result<String, ExpandError> {
    if !text.contains('%') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let offset = text.len() - rest.len() + at;
        let error = |message: String| ExpandError { offset, message };
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
            continue;
        }
        let Some(inner) = after.strip_prefix('(') else {
            return Err(error(
                "\"%\" must start an expansion such as %(program_name)s; write %% for a \
                 literal %"
                    .to_string(),
            ));
        };
        // Python allows nested parentheses in a name.
        let mut depth = 1;
        let mut close = None;
        for (i, c) in inner.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else {
            return Err(error("\"%(\" without its closing \")\"".to_string()));
        };
        let name = &inner[..close];
        let (spec, conversion, tail) = split_spec(&inner[close + 1..]).ok_or_else(|| {
            error(format!(
                "%({name}) must be followed by a conversion such as s or d, as in %({name})s"
            ))
        })?;
        let value = lookup(name).map_err(&error)?;
        let written = format(&value, &spec, conversion, name).map_err(error)?;
        out.push_str(&written);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// Flags, width and precision of one conversion.
#[derive(Debug, Default)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: usize,
    precision: Option<usize>,
}

/// Splits `[flags][width][.precision][hlL]conversion` off the start of `text`.
fn split_spec(text: &str) -> Option<(Spec, char, &str)> {
    let mut spec = Spec::default();
    let mut chars = text.char_indices().peekable();
    while let Some(&(_, c)) = chars.peek() {
        match c {
            '-' => spec.left = true,
            '0' => spec.zero = true,
            '+' => spec.plus = true,
            ' ' => spec.space = true,
            '#' => {}
            _ => break,
        }
        chars.next();
    }
    let number = |chars: &mut std::iter::Peekable<std::str::CharIndices>| {
        let mut n: usize = 0;
        while let Some(&(_, c)) = chars.peek() {
            let Some(digit) = c.to_digit(10) else { break };
            n = n.saturating_mul(10).saturating_add(digit as usize);
            chars.next();
        }
        n
    };
    spec.width = number(&mut chars);
    if chars.peek().is_some_and(|&(_, c)| c == '.') {
        chars.next();
        spec.precision = Some(number(&mut chars));
    }
    if chars
        .peek()
        .is_some_and(|&(_, c)| matches!(c, 'h' | 'l' | 'L'))
    {
        chars.next();
    }
    let (i, conversion) = chars.next()?;
    Some((spec, conversion, &text[i + conversion.len_utf8()..]))
}

fn format(value: &Value, spec: &Spec, conversion: char, name: &str) -> Result<String, String> {
    if spec.width > MAX_WIDTH || spec.precision.is_some_and(|p| p > MAX_WIDTH) {
        return Err(format!(
            "the width or precision of %({name}) is too large (at most {MAX_WIDTH})"
        ));
    }
    match (conversion, value) {
        ('s', Value::Text(text)) => {
            let text = match spec.precision {
                Some(p) => text.chars().take(p).collect(),
                None => text.to_string(),
            };
            Ok(pad(text, spec.width, spec.left))
        }
        ('s', Value::Number(n)) => {
            let text = n.to_string();
            let text = match spec.precision {
                Some(p) => text.chars().take(p).collect(),
                None => text,
            };
            Ok(pad(text, spec.width, spec.left))
        }
        ('d' | 'i' | 'u', Value::Number(n)) => Ok(integer(*n, spec)),
        ('d' | 'i' | 'u', Value::Text(_)) => Err(format!(
            "%({name}){conversion} needs a number, and {name} is text (write %({name})s)"
        )),
        _ => Err(format!(
            "unsupported conversion %({name}){conversion}: use s for text, or d for a number"
        )),
    }
}

fn pad(text: String, width: usize, left: bool) -> String {
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = " ".repeat(width - len);
    if left {
        text + &fill
    } else {
        fill + &text
    }
}

/// Python's `%d`: sign, digits zero-extended to the precision, padded to the width.
fn integer(n: i64, spec: &Spec) -> String {
    let mut digits = n.unsigned_abs().to_string();
    if let Some(p) = spec.precision {
        if digits.len() < p {
            digits = "0".repeat(p - digits.len()) + &digits;
        }
    }
    let sign = if n < 0 {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    if spec.left {
        pad(format!("{sign}{digits}"), spec.width, true)
    } else if spec.zero {
        let body = spec.width.saturating_sub(sign.len());
        if digits.len() < body {
            digits = "0".repeat(body - digits.len()) + &digits;
        }
        format!("{sign}{digits}")
    } else {
        pad(format!("{sign}{digits}"), spec.width, false)
    }
}

/// What values may refer to besides the files: the environment (`%(ENV_X)s`) and the host's
/// name (`%(host_node_name)s`). [`Host::current`] reads taskmaster's own; tests build one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Host {
    /// Environment variables (those whose name and value are UTF-8).
    pub env: BTreeMap<String, String>,
    /// The host's node name, as `uname -n` prints it; `None` if unknown.
    pub node_name: Option<String>,
}

impl Host {
    /// taskmaster's environment and host name, now.
    pub fn current() -> Host {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        // The node name of the UTS namespace: what `uname -n` and Python's platform.node()
        // give.
        let node_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty());
        Host { env, node_name }
    }
}

/// What `%(name)s` may stand for in a process's values: supervisord's names.
pub(crate) struct Expansions<'a> {
    pub(crate) program: &'a str,
    pub(crate) group: &'a str,
    pub(crate) num: u32,
    pub(crate) numprocs: u32,
    pub(crate) here: &'a str,
    pub(crate) host: &'a Host,
}

impl Expansions<'_> {
    /// `text` with its expansions worked out; a scalar without `%(` is left as it is, so a
    /// lone `%` (`date +%s`) means itself unless the value also uses expansions.
    pub(crate) fn expand(&self, text: &str) -> Result<String, String> {
        if !text.contains("%(") {
            return Ok(text.to_string());
        }
        let lookup = |name: &str| -> Result<Value<'_>, String> {
            match name {
                "program_name" => Ok(Value::Text(Cow::Borrowed(self.program))),
                "group_name" => Ok(Value::Text(Cow::Borrowed(self.group))),
                "process_num" => Ok(Value::Number(i64::from(self.num))),
                "numprocs" => Ok(Value::Number(i64::from(self.numprocs))),
                "here" => Ok(Value::Text(Cow::Borrowed(self.here))),
                "host_node_name" => self
                    .host
                    .node_name
                    .as_deref()
                    .map(|node| Value::Text(Cow::Borrowed(node)))
                    .ok_or_else(|| "the host name for %(host_node_name)s is unknown".to_string()),
                _ => match name.strip_prefix("ENV_") {
                    Some(variable) => self
                        .host
                        .env
                        .get(variable)
                        .map(|value| Value::Text(Cow::Borrowed(value.as_str())))
                        .ok_or_else(|| {
                            format!("environment variable {variable} is not set (for %({name})s)")
                        }),
                    None => Err(format!(
                        "unknown name %({name}) (available: program_name, group_name, \
                         process_num, numprocs, here, host_node_name, ENV_<variable>)"
                    )),
                },
            }
        };
        expand(text, &lookup)
            .map_err(|e| format!("{} (at byte {} of {text:?})", e.message, e.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(name: &str) -> Result<Value<'static>, String> {
        match name {
            "program_name" => Ok(Value::Text("web".into())),
            "process_num" => Ok(Value::Number(7)),
            "neg" => Ok(Value::Number(-5)),
            "a(b)" => Ok(Value::Text("nested".into())),
            _ => Err(format!("unknown name {name:?}")),
        }
    }

    fn ok(text: &str) -> String {
        match expand(text, &names) {
            Ok(s) => s,
            Err(e) => panic!("{text:?}: {e:?}"),
        }
    }

    fn err(text: &str) -> (usize, String) {
        match expand(text, &names) {
            Ok(s) => panic!("{text:?} expanded to {s:?}"),
            Err(e) => (e.offset, e.message),
        }
    }

    #[test]
    fn text_and_numbers_expand_like_pythons_percent_operator() {
        // Each expected value is what Python 3 gives for the same format.
        assert_eq!(ok("%(program_name)s_%(process_num)02d"), "web_07");
        assert_eq!(
            ok("%(process_num)d %(process_num)s %(process_num)i"),
            "7 7 7"
        );
        assert_eq!(ok("%(process_num)05.3d|%(process_num).3d"), "00007|007");
        assert_eq!(
            ok("%(neg)05d|%(neg)-5d|%(process_num)+d|%(process_num) d"),
            "-0005|-5   |+7| 7"
        );
        assert_eq!(
            ok("%(program_name)5s|%(program_name)-5s|%(program_name).1s"),
            "  web|web  |w"
        );
        assert_eq!(ok("%(program_name)05s|%(process_num)ld"), "  web|7");
        assert_eq!(ok("%(a(b))s"), "nested");
    }

    #[test]
    fn double_percent_is_a_literal_percent() {
        assert_eq!(ok("100%% of %(program_name)s%%"), "100% of web%");
        assert_eq!(ok("no percent"), "no percent");
    }

    #[test]
    fn malformed_expansions_are_errors_at_their_percent() {
        assert_eq!(err("a %s").0, 2);
        assert!(err("a %s").1.contains("write %% for a literal %"));
        assert_eq!(err("50%").0, 2);
        assert_eq!(
            err("x %(program_name"),
            (2, "\"%(\" without its closing \")\"".to_string())
        );
        assert_eq!(
            err("%(program_name)"),
            (
                0,
                "%(program_name) must be followed by a conversion such as s or d, as in %(program_name)s"
                    .to_string()
            )
        );
        assert_eq!(
            err("%(program_name)d"),
            (
                0,
                "%(program_name)d needs a number, and program_name is text (write %(program_name)s)"
                    .to_string()
            )
        );
        assert_eq!(
            err("%(process_num)x"),
            (
                0,
                "unsupported conversion %(process_num)x: use s for text, or d for a number"
                    .to_string()
            )
        );
        assert_eq!(err("ok %(nope)s"), (3, "unknown name \"nope\"".to_string()));
        assert!(err("%(process_num)99999d").1.contains("too large"));
    }
}
