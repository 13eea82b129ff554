//! The targets of a health check's `http:` and `tcp:` probes, checked as text.
//!
//! A probe connects to a local service, so the forms are deliberately few: plain `http://`
//! URLs (no TLS, no user names) and `host:port` addresses whose host is a name, an IPv4
//! address or an IPv6 address in brackets. Nothing is resolved here; a name is looked up
//! when the probe runs. The URL is checked for what would otherwise go wrong silently on the
//! wire: a fragment is never sent, and spaces or control characters would break the request
//! line, so both are refused.

use std::net::Ipv6Addr;

use crate::values::quote;
use crate::HttpProbe;

const URL_EXAMPLE: &str = "http://127.0.0.1:8080/health";
const ADDRESS_EXAMPLE: &str = "host:port such as 127.0.0.1:5432";

/// `http:`'s URL taken apart: `http://AUTHORITY[/PATH][?QUERY]`, port 80 by default.
pub(crate) fn parse_http_probe(url: &str) -> Result<HttpProbe, String> {
    parse_url(url, &[("http", 80)]).map(|(probe, _)| probe)
}

/// A URL of one of `schemes` (each with its default port) taken apart, and the index of its
/// scheme in `schemes`.
pub(crate) fn parse_url(url: &str, schemes: &[(&str, u16)]) -> Result<(HttpProbe, usize), String> {
    let invalid = |why: &str| format!("invalid URL {}: {why}", quote(url));
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "expected a URL such as {URL_EXAMPLE}, found {}",
            quote(url)
        ));
    };
    let Some(index) = schemes
        .iter()
        .position(|(known, _)| known.eq_ignore_ascii_case(scheme))
    else {
        let supported = match schemes {
            [(only, _)] => format!("only plain {only}:// is supported"),
            _ => {
                let known: Vec<String> = schemes.iter().map(|(s, _)| format!("{s}://")).collect();
                format!("only {} are supported", known.join(" and "))
            }
        };
        return Err(invalid(&format!("{supported}, not {scheme}://")));
    };
    if url
        .chars()
        .any(|c| c.is_ascii_control() || c.is_whitespace() || !c.is_ascii())
    {
        return Err(invalid(
            "a URL holds no spaces, control or non-ASCII characters (percent-encode them)",
        ));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    if path_and_query.contains('#') {
        return Err(invalid(
            "a fragment (#...) is never sent to the server: remove it",
        ));
    }
    if authority.contains('@') {
        return Err(invalid("a user name (user@) is not supported"));
    }
    if authority.is_empty() {
        return Err(invalid("the host is missing"));
    }
    let (host, port) = split_host_port(authority).map_err(|why| invalid(&why))?;
    let port = match port {
        Some(port) => parse_port(port).map_err(|why| invalid(&why))?,
        None => schemes[index].1,
    };
    let host = check_host(host).map_err(|why| invalid(&why))?;
    let path = if path_and_query.starts_with('/') {
        path_and_query.to_string()
    } else {
        format!("/{path_and_query}")
    };
    let probe = HttpProbe {
        url: url.to_string(),
        address: format!("{host}:{port}"),
        host: authority.to_string(),
        path,
    };
    Ok((probe, index))
}

/// `tcp:`'s `host:port`, kept as written once checked.
pub(crate) fn check_tcp_address(text: &str) -> Result<(), String> {
    let invalid = |why: &str| format!("invalid address {}: {why}", quote(text));
    let (host, port) = split_host_port(text).map_err(|why| invalid(&why))?;
    let Some(port) = port else {
        return Err(invalid(&format!("expected {ADDRESS_EXAMPLE}")));
    };
    parse_port(port).map_err(|why| invalid(&why))?;
    check_host(host).map_err(|why| invalid(&why))?;
    Ok(())
}

/// `host` and the port's text, if any: `[v6]:port`, `[v6]`, `host:port` or `host`.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if text.starts_with('[') {
        let Some(end) = text.find(']') else {
            return Err("an IPv6 address in brackets needs its \"]\"".to_string());
        };
        let (host, rest) = text.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(format!("expected \":\" and a port after {host}")),
        };
    }
    match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err(
            "an IPv6 address is written in brackets, with the port after them: [::1]:8080"
                .to_string(),
        ),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((text, None)),
    }
}

/// A host as written: a name or IPv4 address (letters, digits, `-`, `.`, `_`), or an IPv6
/// address in brackets.
fn check_host(host: &str) -> Result<&str, String> {
    if let Some(literal) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match literal.parse::<Ipv6Addr>() {
            Ok(_) => Ok(host),
            Err(_) => Err(format!("{} is not an IPv6 address", quote(literal))),
        };
    }
    if host.is_empty() {
        return Err("the host is missing".to_string());
    }
    let is_name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !is_name {
        return Err(format!(
            "{} is not a host name or an IP address",
            quote(host)
        ));
    }
    Ok(host)
}

/// A TCP port, 1 to 65535, in decimal digits.
fn parse_port(text: &str) -> Result<u16, String> {
    (!text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u16>().ok())
        .flatten()
        .filter(|&port| port != 0)
        .ok_or_else(|| format!("expected a port from 1 to 65535, found {}", quote(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(url: &str) -> HttpProbe {
        match parse_http_probe(url) {
            Ok(probe) => probe,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn http_url_is_taken_apart_with_port_80_and_path_slash_by_default() {
        let p = probe("http://localhost");
        assert_eq!(p.address, "localhost:80");
        assert_eq!(p.host, "localhost");
        assert_eq!(p.path, "/");
        assert_eq!(p.url, "http://localhost");
        let p = probe("http://127.0.0.1:8080/health?full=1");
        assert_eq!(p.address, "127.0.0.1:8080");
        assert_eq!(p.host, "127.0.0.1:8080");
        assert_eq!(p.path, "/health?full=1");
        assert_eq!(probe("http://h?x=1").path, "/?x=1");
        assert_eq!(probe("HTTP://h/").address, "h:80");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let p = probe("http://[::1]:8080/ok");
        assert_eq!(p.address, "[::1]:8080");
        assert_eq!(p.host, "[::1]:8080");
        assert_eq!(probe("http://[fe80::1]").address, "[fe80::1]:80");
    }

    #[test]
    fn http_url_mistakes_are_named() {
        let cases = [
            ("https://h/", "invalid URL \"https://h/\": only plain http:// is supported, not https://"),
            ("ftp://h/", "invalid URL \"ftp://h/\": only plain http:// is supported, not ftp://"),
            ("localhost:80/x", "expected a URL such as http://127.0.0.1:8080/health, found \"localhost:80/x\""),
            ("http://", "invalid URL \"http://\": the host is missing"),
            ("http:///x", "invalid URL \"http:///x\": the host is missing"),
            ("http://h/#top", "invalid URL \"http://h/#top\": a fragment (#...) is never sent to the server: remove it"),
            ("http://h#top", "invalid URL \"http://h#top\": a fragment (#...) is never sent to the server: remove it"),
            ("http://u:p@h/", "invalid URL \"http://u:p@h/\": a user name (user@) is not supported"),
            ("http://h:0/", "invalid URL \"http://h:0/\": expected a port from 1 to 65535, found \"0\""),
            ("http://h:65536/", "invalid URL \"http://h:65536/\": expected a port from 1 to 65535, found \"65536\""),
            ("http://h:/", "invalid URL \"http://h:/\": expected a port from 1 to 65535, found \"\""),
            ("http://::1/", "invalid URL \"http://::1/\": an IPv6 address is written in brackets, with the port after them: [::1]:8080"),
            ("http://[::1/", "invalid URL \"http://[::1/\": an IPv6 address in brackets needs its \"]\""),
            ("http://[::g]/", "invalid URL \"http://[::g]/\": \"::g\" is not an IPv6 address"),
            ("http://[::1]x/", "invalid URL \"http://[::1]x/\": expected \":\" and a port after [::1]"),
            ("http://h/a b", "invalid URL \"http://h/a b\": a URL holds no spaces, control or non-ASCII characters (percent-encode them)"),
            ("http://h/\r\nX: y", "invalid URL \"http://h/\\r\\nX: y\": a URL holds no spaces, control or non-ASCII characters (percent-encode them)"),
            ("http://h%/", "invalid URL \"http://h%/\": \"h%\" is not a host name or an IP address"),
        ];
        for (url, message) in cases {
            assert_eq!(parse_http_probe(url), Err(message.to_string()), "{url}");
        }
    }

    #[test]
    fn tcp_address_is_host_and_port() {
        for text in [
            "127.0.0.1:5432",
            "localhost:1",
            "db.local:65535",
            "[::1]:6379",
        ] {
            assert_eq!(check_tcp_address(text), Ok(()), "{text}");
        }
        let cases = [
            ("localhost", "invalid address \"localhost\": expected host:port such as 127.0.0.1:5432"),
            ("[::1]", "invalid address \"[::1]\": expected host:port such as 127.0.0.1:5432"),
            (":5432", "invalid address \":5432\": the host is missing"),
            ("h:0", "invalid address \"h:0\": expected a port from 1 to 65535, found \"0\""),
            ("h:http", "invalid address \"h:http\": expected a port from 1 to 65535, found \"http\""),
            ("::1:5432", "invalid address \"::1:5432\": an IPv6 address is written in brackets, with the port after them: [::1]:8080"),
            ("a b:1", "invalid address \"a b:1\": \"a b\" is not a host name or an IP address"),
            ("", "invalid address \"\": expected host:port such as 127.0.0.1:5432"),
        ];
        for (text, message) in cases {
            assert_eq!(check_tcp_address(text), Err(message.to_string()), "{text}");
        }
    }
}
