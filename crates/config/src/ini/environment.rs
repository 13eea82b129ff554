//! supervisord's `environment` value: `KEY="val",KEY2=val2`.
//!
//! supervisord cuts the value into tokens with Python's `shlex` (POSIX mode, with `/.+-():`
//! added to the word characters) and then takes them three at a time, `KEY`, `=`, `value`,
//! skipping the fourth whatever it is. Tokens follow shell rules: quotes group (`"a,b"`),
//! a backslash escapes the next character outside quotes and `"` or `\` inside double quotes,
//! and any other character that is not a word character (`,`, `=`, `?`, `$`, most non-ASCII
//! letters...) is a token of its own.
//!
//! The tokens are read exactly as `shlex` reads them, so every value supervisord accepts means
//! the same here. Where supervisord silently reads something else than the user most likely
//! meant, this is an error naming the place instead:
//! - the separator must be a `,` (supervisord takes any token, so `A=http://x?y=1` is read as
//!   `A=http://x` and `y=1`);
//! - an unquoted `#` (`shlex` reads it as the start of a comment and drops the rest);
//! - a key given twice (supervisord keeps the last);
//! - a key without a value, or whose value is a bare `,` (`A=,B=1`).

/// One `KEY=value` pair, and the byte offset of its key in the value.
pub(crate) type Pair = (String, String, usize);

/// Why a value is refused, and the byte offset where.
pub(crate) type Error = (usize, String);

/// Python's `shlex` word characters (POSIX mode) plus those supervisord adds.
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "_/.+-():".contains(c)
        || "ßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ".contains(c)
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// Words, quoted strings and escaped characters, joined as a shell joins them.
    Word(String),
    /// Any other single character.
    Punct(char),
}

const QUOTE_HINT: &str = "quote values that hold characters other than letters, digits and \
                          _ / . + - ( ) :, as in KEY=\"a value\"";

/// Cuts `text` into `shlex` tokens, each with the byte offset where it starts.
fn tokens(text: &str) -> Result<Vec<(Token, usize)>, Error> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    // The word being read: its text and where it started.
    let mut word: Option<(String, usize)> = None;
    while let Some((at, c)) = chars.next() {
        match c {
            c if is_blank(c) => {
                if let Some((text, start)) = word.take() {
                    out.push((Token::Word(text), start));
                }
            }
            '#' => {
                return Err((
                    at,
                    "an unquoted \"#\" would make supervisord drop the rest of the value as a \
                     comment; quote the value that holds it"
                        .to_string(),
                ))
            }
            '"' | '\'' => {
                let (text, _) = word.get_or_insert_with(|| (String::new(), at));
                loop {
                    let Some((_, inner)) = chars.next() else {
                        return Err((at, "missing closing quote".to_string()));
                    };
                    if inner == c {
                        break;
                    }
                    if c == '"' && inner == '\\' {
                        match chars.next() {
                            Some((_, escaped @ ('"' | '\\'))) => text.push(escaped),
                            Some((_, other)) => {
                                text.push('\\');
                                text.push(other);
                            }
                            None => return Err((at, "missing closing quote".to_string())),
                        }
                    } else {
                        text.push(inner);
                    }
                }
            }
            '\\' => {
                let Some((_, escaped)) = chars.next() else {
                    return Err((at, "nothing after the final \"\\\"".to_string()));
                };
                word.get_or_insert_with(|| (String::new(), at))
                    .0
                    .push(escaped);
            }
            c if is_word(c) => word.get_or_insert_with(|| (String::new(), at)).0.push(c),
            c => {
                if let Some((text, start)) = word.take() {
                    out.push((Token::Word(text), start));
                }
                out.push((Token::Punct(c), at));
            }
        }
    }
    if let Some((text, start)) = word {
        out.push((Token::Word(text), start));
    }
    Ok(out)
}

/// Reads `KEY=value` pairs separated by commas (a trailing comma is allowed).
pub(crate) fn parse(text: &str) -> Result<Vec<Pair>, Error> {
    let mut rest = tokens(text)?.into_iter();
    let mut pairs: Vec<Pair> = Vec::new();
    while let Some((token, at)) = rest.next() {
        let key = match token {
            Token::Word(key) => key,
            Token::Punct(c) => return Err((at, format!("expected a variable name, found {c:?}"))),
        };
        match rest.next() {
            Some((Token::Punct('='), _)) => {}
            Some((other, at)) => {
                let found = describe(&other);
                return Err((at, format!("expected \"=\" after {key}, found {found}")));
            }
            None => return Err((at, format!("expected \"=\" and a value after {key}"))),
        }
        let value = match rest.next() {
            Some((Token::Word(value), _)) => value,
            Some((Token::Punct(c), _)) if c != ',' => c.to_string(),
            Some((_, at)) => return Err((at, missing_value(&key))),
            None => return Err((text.len(), missing_value(&key))),
        };
        if pairs.iter().any(|(k, _, _)| *k == key) {
            return Err((at, format!("variable {key} is given twice")));
        }
        match rest.next() {
            None | Some((Token::Punct(','), _)) => {}
            Some((other, at)) => {
                let found = describe(&other);
                let hint = match other {
                    Token::Word(_) => "pairs are separated by commas",
                    Token::Punct(_) => QUOTE_HINT,
                };
                return Err((
                    at,
                    format!("expected \",\" after the value of {key}, found {found} ({hint})"),
                ));
            }
        }
        pairs.push((key, value, at));
    }
    Ok(pairs)
}

fn missing_value(key: &str) -> String {
    format!("expected a value after {key}= (write {key}=\"\" for an empty value)")
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("{w:?}"),
        Token::Punct(c) => format!("{c:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        match parse(text) {
            Ok(pairs) => pairs.into_iter().map(|(k, v, _)| (k, v)).collect(),
            Err(e) => panic!("{text:?}: {e:?}"),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn values_are_read_as_pythons_shlex_reads_them() {
        // Each expected value is what supervisord 4 reads from the same text.
        assert_eq!(
            ok("A=1,B=\"x y\",C='q'"),
            pairs(&[("A", "1"), ("B", "x y"), ("C", "q")])
        );
        assert_eq!(ok("A=x\"y z\"w"), pairs(&[("A", "xy zw")]));
        assert_eq!(ok("A=\\,"), pairs(&[("A", ",")]));
        assert_eq!(ok("A=\"\""), pairs(&[("A", "")]));
        assert_eq!(ok("A=a\\ b"), pairs(&[("A", "a b")]));
        assert_eq!(ok("A=\"a\\nb\\\"c\\\\\""), pairs(&[("A", "a\\nb\"c\\")]));
        assert_eq!(ok("A='a\\'"), pairs(&[("A", "a\\")]));
        assert_eq!(ok("A = 1 , B = 2"), pairs(&[("A", "1"), ("B", "2")]));
        assert_eq!(ok("\"A B\"=1"), pairs(&[("A B", "1")]));
        assert_eq!(
            ok("PATH=/usr/bin:/bin,X=é"),
            pairs(&[("PATH", "/usr/bin:/bin"), ("X", "é")])
        );
        assert_eq!(ok("\n  A=1,\n  B=2,\n"), pairs(&[("A", "1"), ("B", "2")]));
        assert_eq!(ok("A=*"), pairs(&[("A", "*")]));
        assert_eq!(ok(""), pairs(&[]));
    }

    #[test]
    fn what_supervisord_would_misread_is_an_error_at_its_place() {
        let err = |text: &str| parse(text).err();
        let (at, message) = err("A=http://x?y=1").unwrap();
        assert_eq!(at, 10);
        assert!(
            message.starts_with("expected \",\" after the value of A, found '?'"),
            "{message}"
        );
        assert_eq!(err("A=1 B=2").unwrap().0, 4);
        assert_eq!(err("A=$HOME").unwrap().0, 3);
        assert!(err("A=foo#bar").unwrap().1.contains("unquoted \"#\""));
        assert_eq!(
            err("A=1,A=2").unwrap(),
            (4, "variable A is given twice".to_string())
        );
        assert_eq!(
            err("A=,B=1").unwrap(),
            (
                2,
                "expected a value after A= (write A=\"\" for an empty value)".to_string()
            )
        );
        assert_eq!(
            err("A=").unwrap(),
            (
                2,
                "expected a value after A= (write A=\"\" for an empty value)".to_string()
            )
        );
        assert_eq!(
            err("A").unwrap(),
            (0, "expected \"=\" and a value after A".to_string())
        );
        assert_eq!(
            err("A B=1").unwrap(),
            (2, "expected \"=\" after A, found \"B\"".to_string())
        );
        assert_eq!(
            err(",A=1").unwrap(),
            (0, "expected a variable name, found ','".to_string())
        );
        assert_eq!(
            err("A=\"x").unwrap(),
            (2, "missing closing quote".to_string())
        );
        assert_eq!(
            err("A=x\\").unwrap(),
            (3, "nothing after the final \"\\\"".to_string())
        );
        assert!(err("A=日本").is_some());
    }
}
