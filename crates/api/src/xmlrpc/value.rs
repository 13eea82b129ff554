//! The XML-RPC codec: a `methodCall` read into a [`Call`], and a [`Value`] or a [`Fault`]
//! written as a `methodResponse`, the way Python's `xmlrpc.client` writes and reads them.
//!
//! Reading takes every type of the specification (`i4`/`int`, `boolean`, `string` and untyped
//! text, `double`, `base64`, `dateTime.iso8601`, `array`, `struct`) and the `nil` extension,
//! also as `ex:nil`. Anything else, or XML that is not well formed, is an error with a reason,
//! never a panic. Writing replaces the few characters XML 1.0 cannot carry (control characters
//! that programs print, such as the escape of colour codes) with U+FFFD, so that a log read over
//! XML-RPC always parses on the client.

use std::fmt::Write as _;

use base64::Engine as _;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::fault::Fault;

/// One XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<int>`/`<i4>`, and `<i8>`; written as `<int>` when it fits in 32 bits.
    Int(i64),
    Bool(bool),
    String(String),
    Double(f64),
    Base64(Vec<u8>),
    /// `<dateTime.iso8601>`, kept as its text (`20240101T12:00:00`).
    DateTime(String),
    Array(Vec<Value>),
    /// Members in their order.
    Struct(Vec<(String, Value)>),
    Nil,
}

impl Value {
    pub fn string(text: impl Into<String>) -> Value {
        Value::String(text.into())
    }

    pub fn strings<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(
            items
                .iter()
                .map(|s| Value::String(s.as_ref().to_string()))
                .collect(),
        )
    }

    /// A struct from `(name, value)` pairs.
    pub fn record<const N: usize>(members: [(&str, Value); N]) -> Value {
        Value::Struct(
            members
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
        )
    }

    /// The member `name` of a struct.
    pub fn member(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) => members.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "an int",
            Value::Bool(_) => "a boolean",
            Value::String(_) => "a string",
            Value::Double(_) => "a double",
            Value::Base64(_) => "base64 data",
            Value::DateTime(_) => "a dateTime",
            Value::Array(_) => "an array",
            Value::Struct(_) => "a struct",
            Value::Nil => "nil",
        }
    }
}

/// A decoded `methodCall`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub params: Vec<Value>,
}

/// Arrays and structs nested deeper than this are refused (the body is small, but recursion on
/// the daemon's stack must stay bounded whatever it holds).
const MAX_DEPTH: usize = 64;

/// Reads a `methodCall`. The error says what is wrong with the document.
pub fn parse_call(body: &[u8]) -> Result<Call, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8: {e}"))?;
    let mut parser = Parser::new(text);
    parser.open("methodCall")?;
    parser.open("methodName")?;
    let method = parser.text_then_close()?;
    if method.trim().is_empty() {
        return Err("the <methodName> is empty".to_string());
    }
    let mut params = Vec::new();
    match parser.skip_space()? {
        Token::Close => {}
        Token::Open(name) if name == "params" => {
            loop {
                match parser.skip_space()? {
                    Token::Close => break,
                    Token::Open(name) if name == "param" => {
                        parser.open("value")?;
                        params.push(parser.value(0)?);
                        parser.close("param")?;
                    }
                    other => return Err(format!("expected <param>, found {other}")),
                }
            }
            parser.close("methodCall")?;
        }
        other => return Err(format!("expected <params>, found {other}")),
    }
    parser.end()?;
    Ok(Call {
        method: method.trim().to_string(),
        params,
    })
}

/// What the parser works with: elements and their text, nothing else.
#[derive(Debug)]
enum Token {
    Open(String),
    Close,
    /// Character data, entity and character references resolved, CDATA included.
    Text(String),
    Eof,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Open(name) => write!(f, "<{name}>"),
            Token::Close => f.write_str("a closing tag"),
            Token::Text(text) => write!(f, "text {:?}", truncate(text)),
            Token::Eof => f.write_str("the end of the document"),
        }
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    /// A token read ahead (text is gathered until the next tag).
    pending: Option<Token>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.trim_text(false);
        Parser {
            reader,
            pending: None,
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> String {
        format!(
            "malformed XML at byte {}: {e}",
            self.reader.error_position()
        )
    }

    /// The next element boundary or run of text.
    fn next(&mut self) -> Result<Token, String> {
        if let Some(token) = self.pending.take() {
            return Ok(token);
        }
        let mut text: Option<String> = None;
        loop {
            let event = self.reader.read_event().map_err(|e| self.error(e))?;
            let piece = match event {
                Event::Text(t) => t.xml10_content().map_err(|e| self.error(e))?.into_owned(),
                Event::CData(t) => t.xml10_content().map_err(|e| self.error(e))?.into_owned(),
                Event::GeneralRef(r) => {
                    if let Some(c) = r.resolve_char_ref().map_err(|e| self.error(e))? {
                        c.to_string()
                    } else {
                        let name = r.decode().map_err(|e| self.error(e))?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| self.error(format!("unknown entity &{name};")))?
                            .to_string()
                    }
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) => continue,
                Event::DocType(_) => return Err("a DOCTYPE is not allowed".to_string()),
                tag => {
                    let token = match tag {
                        Event::Start(e) => {
                            let name = std::str::from_utf8(e.name().as_ref())
                                .map_err(|e| self.error(e))?
                                .to_string();
                            Token::Open(name)
                        }
                        Event::End(_) => Token::Close,
                        _ => Token::Eof,
                    };
                    return Ok(match text {
                        Some(text) => {
                            self.pending = Some(token);
                            Token::Text(text)
                        }
                        None => token,
                    });
                }
            };
            text.get_or_insert_with(String::new).push_str(&piece);
        }
    }

    /// The next token that is not blank text.
    fn skip_space(&mut self) -> Result<Token, String> {
        loop {
            match self.next()? {
                Token::Text(text) if text.trim().is_empty() => continue,
                token => return Ok(token),
            }
        }
    }

    fn open(&mut self, name: &str) -> Result<(), String> {
        match self.skip_space()? {
            Token::Open(found) if found == name => Ok(()),
            other => Err(format!("expected <{name}>, found {other}")),
        }
    }

    fn close(&mut self, name: &str) -> Result<(), String> {
        match self.skip_space()? {
            Token::Close => Ok(()),
            other => Err(format!("expected </{name}>, found {other}")),
        }
    }

    /// The text of an element whose opening tag was read, up to and with its closing tag.
    fn text_then_close(&mut self) -> Result<String, String> {
        match self.next()? {
            Token::Close => Ok(String::new()),
            Token::Text(text) => match self.next()? {
                Token::Close => Ok(text),
                other => Err(format!("expected a closing tag after text, found {other}")),
            },
            other => Err(format!("expected text, found {other}")),
        }
    }

    /// Nothing but blanks and comments may follow the document.
    fn end(&mut self) -> Result<(), String> {
        match self.skip_space()? {
            Token::Eof => Ok(()),
            other => Err(format!("expected the end of the document, found {other}")),
        }
    }

    /// A value whose `<value>` was read, up to and with its `</value>`.
    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("values are nested deeper than {MAX_DEPTH} levels"));
        }
        let mut text = String::new();
        loop {
            match self.next()? {
                Token::Text(t) => text.push_str(&t),
                // Untyped text is a string, blanks included.
                Token::Close => return Ok(Value::String(text)),
                Token::Open(kind) => {
                    if !text.trim().is_empty() {
                        return Err(format!("text {:?} beside <{kind}>", truncate(&text)));
                    }
                    let value = self.typed(&kind, depth)?;
                    self.close("value")?;
                    return Ok(value);
                }
                Token::Eof => return Err("the document ends inside a <value>".to_string()),
            }
        }
    }

    /// The value of the type element `<kind>`, whose opening tag was read, with its closing tag.
    fn typed(&mut self, kind: &str, depth: usize) -> Result<Value, String> {
        let scalar = |parser: &mut Parser| parser.text_then_close();
        match kind {
            "int" | "i4" | "i8" => {
                let text = scalar(self)?;
                text.trim()
                    .parse()
                    .map(Value::Int)
                    .map_err(|_| format!("<{kind}> holds {:?}, not an integer", truncate(&text)))
            }
            "boolean" => match scalar(self)?.trim() {
                "1" => Ok(Value::Bool(true)),
                "0" => Ok(Value::Bool(false)),
                other => Err(format!("<boolean> holds {:?}, not 0 or 1", truncate(other))),
            },
            "string" => scalar(self).map(Value::String),
            "double" => {
                let text = scalar(self)?;
                text.trim()
                    .parse()
                    .map(Value::Double)
                    .map_err(|_| format!("<double> holds {:?}, not a number", truncate(&text)))
            }
            "base64" => {
                let text: String = scalar(self)?
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(Value::Base64)
                    .map_err(|e| format!("<base64> is not valid base64: {e}"))
            }
            "dateTime.iso8601" => scalar(self).map(|t| Value::DateTime(t.trim().to_string())),
            "array" => {
                self.open("data")?;
                let mut items = Vec::new();
                loop {
                    match self.skip_space()? {
                        Token::Close => break,
                        Token::Open(name) if name == "value" => items.push(self.value(depth + 1)?),
                        other => return Err(format!("expected <value> in <data>, found {other}")),
                    }
                }
                self.close("array")?;
                Ok(Value::Array(items))
            }
            "struct" => {
                let mut members = Vec::new();
                loop {
                    match self.skip_space()? {
                        Token::Close => break,
                        Token::Open(name) if name == "member" => {
                            self.open("name")?;
                            let name = self.text_then_close()?;
                            self.open("value")?;
                            let value = self.value(depth + 1)?;
                            self.close("member")?;
                            members.push((name, value));
                        }
                        other => {
                            return Err(format!("expected <member> in <struct>, found {other}"))
                        }
                    }
                }
                Ok(Value::Struct(members))
            }
            // The extension's element, bare or in a namespace (`ex:nil`).
            _ if kind == "nil" || kind.ends_with(":nil") => match self.skip_space()? {
                Token::Close => Ok(Value::Nil),
                other => Err(format!("<{kind}> must be empty, found {other}")),
            },
            _ => Err(format!("unknown value type <{kind}>")),
        }
    }
}

// ---- writing ---------------------------------------------------------------------------

/// The whole `methodResponse` for a result or a fault.
pub fn response(result: &Result<Value, Fault>) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodResponse>\n");
    match result {
        Ok(value) => {
            out.push_str("<params>\n<param>\n");
            write_value(&mut out, value);
            out.push_str("\n</param>\n</params>\n");
        }
        Err(fault) => {
            out.push_str("<fault>\n");
            write_value(&mut out, &fault_struct(fault));
            out.push_str("\n</fault>\n");
        }
    }
    out.push_str("</methodResponse>\n");
    out
}

/// `{faultCode, faultString}`: a fault's body, and a failed call's entry in a multicall.
pub fn fault_struct(fault: &Fault) -> Value {
    Value::record([
        ("faultCode", Value::Int(i64::from(fault.code.number()))),
        ("faultString", Value::string(fault.text.clone())),
    ])
}

fn write_value(out: &mut String, value: &Value) {
    out.push_str("<value>");
    match value {
        Value::Int(i) if i32::try_from(*i).is_ok() => {
            let _ = write!(out, "<int>{i}</int>");
        }
        Value::Int(i) => {
            let _ = write!(out, "<i8>{i}</i8>");
        }
        Value::Bool(b) => {
            let _ = write!(out, "<boolean>{}</boolean>", u8::from(*b));
        }
        Value::String(s) => {
            out.push_str("<string>");
            escape_into(out, s);
            out.push_str("</string>");
        }
        Value::Double(d) => {
            let _ = write!(out, "<double>{d:?}</double>");
        }
        Value::Base64(bytes) => {
            let _ = write!(
                out,
                "<base64>{}</base64>",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            );
        }
        Value::DateTime(s) => {
            out.push_str("<dateTime.iso8601>");
            escape_into(out, s);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>\n");
            for item in items {
                write_value(out, item);
                out.push('\n');
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>\n");
            for (name, value) in members {
                out.push_str("<member>\n<name>");
                escape_into(out, name);
                out.push_str("</name>\n");
                write_value(out, value);
                out.push_str("\n</member>\n");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

/// `text` as XML character data: markup characters escaped, a carriage return kept as a
/// reference (a parser would turn a raw one into a newline), and characters XML 1.0 cannot
/// carry replaced with U+FFFD.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmlrpc::fault::Code;

    fn call(params: &str) -> Result<Call, String> {
        parse_call(
            format!(
                "<?xml version='1.0'?>\n<methodCall>\n<methodName>m.x</methodName>\n<params>{params}</params>\n</methodCall>\n"
            )
            .as_bytes(),
        )
    }

    fn param(value: &str) -> Value {
        let parsed = call(&format!("<param><value>{value}</value></param>"))
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        parsed.params.into_iter().next().expect("one param")
    }

    #[test]
    fn every_scalar_type_is_read() {
        assert_eq!(param("<i4>-7</i4>"), Value::Int(-7));
        assert_eq!(param("<int> 42 </int>"), Value::Int(42));
        assert_eq!(param("<boolean>1</boolean>"), Value::Bool(true));
        assert_eq!(param("<boolean>0</boolean>"), Value::Bool(false));
        assert_eq!(
            param("<string>a &amp; b &lt;c&gt;</string>"),
            Value::string("a & b <c>")
        );
        assert_eq!(param("<string></string>"), Value::string(""));
        assert_eq!(param("<string/>"), Value::string(""));
        assert_eq!(param("untyped &#65;"), Value::string("untyped A"));
        assert_eq!(param(""), Value::string(""));
        assert_eq!(param("<double>1.5</double>"), Value::Double(1.5));
        assert_eq!(
            param("<base64>aGk=</base64>"),
            Value::Base64(b"hi".to_vec())
        );
        assert_eq!(
            param("<dateTime.iso8601>20240101T12:00:00</dateTime.iso8601>"),
            Value::DateTime("20240101T12:00:00".into())
        );
        assert_eq!(param("<nil/>"), Value::Nil);
        assert_eq!(param("<ex:nil/>"), Value::Nil);
        assert_eq!(
            param("<string><![CDATA[<raw>]]></string>"),
            Value::string("<raw>")
        );
    }

    #[test]
    fn arrays_and_structs_nest() {
        let value = param(
            "<array><data>\n<value><struct>\n<member><name>methodName</name><value>x</value></member>\n\
             <member><name>params</name><value><array><data><value><int>1</int></value></data></array></value></member>\n\
             </struct></value>\n</data></array>",
        );
        let expected = Value::Array(vec![Value::record([
            ("methodName", Value::string("x")),
            ("params", Value::Array(vec![Value::Int(1)])),
        ])]);
        assert_eq!(value, expected);
    }

    #[test]
    fn a_call_without_params_has_none() {
        let parsed =
            parse_call(b"<methodCall><methodName>system.listMethods</methodName></methodCall>")
                .expect("valid");
        assert_eq!(parsed.method, "system.listMethods");
        assert!(parsed.params.is_empty());
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for body in [
            "",
            "not xml",
            "<methodCall>",
            "<methodCall><methodName>x</methodName><params><param><value><int>1</int></value></param></params>",
            "<methodCall><methodName>x</methodName></methodResponse>",
            "<methodCall><methodName></methodName></methodCall>",
            "<methodCall><methodName>x</methodName><params><param><value><int>x</int></value></param></params></methodCall>",
            "<methodCall><methodName>x</methodName><params><param><value><boolean>yes</boolean></value></param></params></methodCall>",
            "<methodCall><methodName>x</methodName><params><param><value><blob/></value></param></params></methodCall>",
            "<methodCall><methodName>x</methodName><params><param><value>&bogus;</value></param></params></methodCall>",
            "<!DOCTYPE x [<!ENTITY a 'b'>]><methodCall><methodName>x</methodName></methodCall>",
            "<methodCall><methodName>x</methodName></methodCall><extra/>",
        ] {
            assert!(parse_call(body.as_bytes()).is_err(), "accepted {body:?}");
        }
        assert!(parse_call(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let depth = MAX_DEPTH + 5;
        let value = format!(
            "{}<int>1</int>{}",
            "<array><data><value>".repeat(depth),
            "</value></data></array>".repeat(depth)
        );
        let err = call(&format!("<param><value>{value}</value></param>")).unwrap_err();
        assert!(err.contains("nested"), "{err}");
    }

    #[test]
    fn responses_read_back() {
        let value = Value::Array(vec![
            Value::Int(1),
            Value::Int(1 << 40),
            Value::Bool(true),
            Value::string("x < y & \r\n \u{1b}[31m"),
            Value::record([("a", Value::Double(0.25)), ("b", Value::Nil)]),
        ]);
        let text = response(&Ok(value));
        assert!(text.contains("<int>1</int>"), "{text}");
        assert!(text.contains("<i8>1099511627776</i8>"), "{text}");
        assert!(
            text.contains("<string>x &lt; y &amp; &#13;\n \u{FFFD}[31m</string>"),
            "{text}"
        );
        // The response parses with the same reader as a call, once wrapped as one.
        let as_call = text
            .replace("<methodResponse>", "<methodCall><methodName>r</methodName>")
            .replace("</methodResponse>", "</methodCall>");
        let parsed = parse_call(as_call.as_bytes()).expect("parses");
        let Value::Array(items) = &parsed.params[0] else {
            panic!("not an array")
        };
        assert_eq!(items[3], Value::string("x < y & \r\n \u{FFFD}[31m"));
    }

    #[test]
    fn faults_carry_code_and_string() {
        let text = response(&Err(Fault::with(Code::BadName, "nope")));
        assert!(
            text.contains("<name>faultCode</name>\n<value><int>10</int></value>"),
            "{text}"
        );
        assert!(
            text.contains(
                "<name>faultString</name>\n<value><string>BAD_NAME: nope</string></value>"
            ),
            "{text}"
        );
    }
}
