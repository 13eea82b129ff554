//! `alerting:`: where taskmaster tells people what went wrong (issue 16), format-neutral.
//!
//! The section names the events worth a message ([`AlertEvent`]: the exit causes and states
//! taskmaster already knows, a restart storm, an `alerts:` output match), how long events
//! are gathered into one message (`batch`), and the destinations: webhooks (an HTTP POST of
//! a JSON body), one email route through an SMTP server, and syslog (the file's
//! `syslog_socket`). The values are checked here as text, once; the runtime trusts them.
//!
//! A webhook's URL is `http://` or `https://` (otherwise the forms of a health check's
//! `http:`); mail goes in plain SMTP, with STARTTLS, or over TLS from the first byte. TLS
//! trusts the system's roots and `ca_file`'s.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::values::{quote, Words};
use crate::HttpProbe;

/// What is worth a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlertEvent {
    /// A child died of a fault signal of its own (exit cause `crashed`).
    Crashed,
    /// A process is FATAL: its starts failed `startretries` times, or `restart_limit` ended it.
    Fatal,
    /// The watchdog stopped a process (exit cause `hung`).
    Hung,
    /// Failed health checks stopped a process (exit cause `unhealthy`).
    Unhealthy,
    /// A process's crash-loop row reached [`RESTART_STORM`] automatic restarts.
    RestartStorm,
    /// An output line matched one of the program's `alerts`.
    Alert,
}

/// How many automatic restarts in a row (each after a run shorter than `backoff`'s `max`)
/// make a restart storm.
pub const RESTART_STORM: u32 = 5;

impl AlertEvent {
    /// Every event, in the order the documentation lists them: the default of `events`.
    pub const ALL: [AlertEvent; 6] = [
        AlertEvent::Crashed,
        AlertEvent::Fatal,
        AlertEvent::Hung,
        AlertEvent::Unhealthy,
        AlertEvent::RestartStorm,
        AlertEvent::Alert,
    ];

    /// The word the configuration, the JSON body and the mail use.
    pub fn name(self) -> &'static str {
        self.word()
    }
}

impl Words for AlertEvent {
    const WORDS: &'static [(&'static str, AlertEvent)] = &[
        ("crashed", AlertEvent::Crashed),
        ("fatal", AlertEvent::Fatal),
        ("hung", AlertEvent::Hung),
        ("unhealthy", AlertEvent::Unhealthy),
        ("restart_storm", AlertEvent::RestartStorm),
        ("alert", AlertEvent::Alert),
    ];
}

/// Parses one word of `events`.
pub(crate) fn parse_event(text: &str) -> Result<AlertEvent, String> {
    AlertEvent::parse(text)
}

/// The `alerting:` section, every default applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertingSpec {
    /// The events sent (default: all of them), without repeats, in the order written.
    pub events: Vec<AlertEvent>,
    /// Events within this window of the first go out together; zero: each at once.
    pub batch: Duration,
    pub webhooks: Vec<Webhook>,
    pub email: Option<EmailRoute>,
    /// Also to the configuration's `syslog_socket`, a datagram per event.
    pub syslog: bool,
    /// A PEM file of certificates trusted beside the system's, for `https://` webhooks and
    /// mail over TLS (a private CA, a self-signed relay).
    pub ca_file: Option<PathBuf>,
}

/// [`AlertingSpec::batch`]'s default.
pub const DEFAULT_BATCH: Duration = Duration::from_secs(10);

impl AlertingSpec {
    /// Whether `event` is sent.
    pub fn sends(&self, event: AlertEvent) -> bool {
        self.events.contains(&event)
    }

    /// Whether it names at least one destination.
    pub fn has_destination(&self) -> bool {
        !self.webhooks.is_empty() || self.email.is_some() || self.syslog
    }
}

/// One webhook: a POST of the JSON body to `url`, with `headers` added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: HttpProbe,
    /// `https://`: the POST goes over TLS, the URL's host checked against the certificate.
    pub https: bool,
    /// Extra request headers, in the order written: `Authorization: Bearer ...`.
    pub headers: Vec<(String, String)>,
}

/// Mail through one SMTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRoute {
    /// `host:port` as written.
    pub smtp: String,
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// `username` and `password` for SMTP AUTH, both or neither.
    pub credentials: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
}

/// How mail reaches the SMTP server: `none` (plain SMTP, a local relay), `starttls` (plain,
/// then TLS before anything else is said, the usual port 587; refused if the server does
/// not offer it) or `tls` (TLS from the first byte, port 465).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

impl Words for SmtpTls {
    const WORDS: &'static [(&'static str, SmtpTls)] = &[
        ("none", SmtpTls::None),
        ("starttls", SmtpTls::Starttls),
        ("tls", SmtpTls::Tls),
    ];
}

/// Parses `tls:` of `email`.
pub(crate) fn parse_smtp_tls(text: &str) -> Result<SmtpTls, String> {
    SmtpTls::parse(text)
}

impl SmtpTls {
    /// The word the configuration uses.
    pub fn name(self) -> &'static str {
        self.word()
    }
}

/// Parses a webhook's `url`, `http://` (port 80 by default) or `https://` (443), and says
/// whether it is `https://`.
pub(crate) fn parse_webhook_url(text: &str) -> Result<(HttpProbe, bool), String> {
    let (url, scheme) = crate::yaml::probe::parse_url(text, &[("http", 80), ("https", 443)])?;
    Ok((url, scheme == 1))
}

/// Headers taskmaster writes itself, which a webhook may not set.
const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
];

/// Checks a header's name: an HTTP token, not one taskmaster writes itself.
pub(crate) fn check_header_name(name: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "invalid header name {}: letters, digits and !#$%&'*+-.^_`|~ only",
            quote(name)
        ));
    }
    if RESERVED_HEADERS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "header {} is written by taskmaster itself",
            quote(name)
        ));
    }
    Ok(())
}

/// Checks a header's value: no line break or other control character but tab.
pub(crate) fn check_header_value(value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "invalid header value {}: no line break or control character",
            quote(value)
        ));
    }
    Ok(())
}

/// `smtp`'s `host:port`: a name, an IPv4 address or an IPv6 address in brackets, and a port.
pub(crate) fn parse_smtp(text: &str) -> Result<(String, u16), String> {
    let invalid = |why: &str| format!("invalid address {}: {why}", quote(text));
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected host:port such as 127.0.0.1:25"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| invalid("the port is a number from 1 to 65535"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let name_char = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
    if host.is_empty() || !host.chars().all(name_char) {
        return Err(invalid("the host is a name or an address"));
    }
    Ok((host.to_string(), port))
}

/// Checks a mail address: `local@domain`, printable, no spaces or angle brackets.
pub(crate) fn check_address(text: &str) -> Result<(), String> {
    let invalid = || format!("invalid mail address {}: expected user@host", quote(text));
    let (local, domain) = text.rsplit_once('@').ok_or_else(invalid)?;
    let fine = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\"@".contains(c))
    };
    if fine(local) && fine(domain) {
        Ok(())
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_words_are_read_in_any_case() {
        assert_eq!(parse_event("Restart_Storm"), Ok(AlertEvent::RestartStorm));
        let wrong = parse_event("crash").unwrap_err();
        assert!(wrong.contains("crashed"), "{wrong}");
        assert_eq!(AlertEvent::Alert.name(), "alert");
    }

    #[test]
    fn webhooks_are_http_or_https_each_with_its_port() {
        let (url, https) =
            parse_webhook_url("http://127.0.0.1:9000/hooks/taskmaster").expect("valid");
        assert_eq!((url.address.as_str(), https), ("127.0.0.1:9000", false));
        assert_eq!(url.path, "/hooks/taskmaster");
        let (url, https) = parse_webhook_url("HTTPS://hooks.example.com/x").expect("valid");
        assert_eq!(
            (url.address.as_str(), https),
            ("hooks.example.com:443", true)
        );
        assert_eq!(url.host_name(), "hooks.example.com");
        let (url, _) = parse_webhook_url("https://hooks.example.com:8443/x").expect("valid");
        assert_eq!(
            (url.host_name(), url.address.as_str()),
            ("hooks.example.com", "hooks.example.com:8443")
        );
        let (url, _) = parse_webhook_url("https://[::1]:8443/x").expect("valid");
        assert_eq!(url.host_name(), "::1");
        let ftp = parse_webhook_url("ftp://example.com/x").unwrap_err();
        assert!(
            ftp.contains("only http:// and https:// are supported"),
            "{ftp}"
        );
    }

    #[test]
    fn headers_are_tokens_and_values_on_one_line() {
        assert!(check_header_name("Authorization").is_ok());
        assert!(check_header_name("X Bad").is_err());
        assert!(check_header_name("Content-Length").is_err());
        assert!(check_header_value("Bearer abc").is_ok());
        assert!(check_header_value("a\r\nInjected: 1").is_err());
    }

    #[test]
    fn smtp_addresses_and_mail_addresses() {
        assert_eq!(
            parse_smtp("127.0.0.1:25"),
            Ok(("127.0.0.1".to_string(), 25))
        );
        assert_eq!(parse_smtp("[::1]:2525"), Ok(("::1".to_string(), 2525)));
        assert!(parse_smtp("mail.example.com").is_err());
        assert!(parse_smtp("host:0").is_err());
        assert!(check_address("ops@example.com").is_ok());
        assert!(check_address("taskmaster@host").is_ok());
        assert!(check_address("ops").is_err());
        assert!(check_address("a b@example.com").is_err());
        assert!(check_address("<ops@example.com>").is_err());
    }
}
