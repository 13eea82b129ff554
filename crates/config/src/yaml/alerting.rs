//! `alerting:` read from YAML: its keys, each error at its value, as every other key's.

use std::time::Duration;

use super::{describe, Checker, Key};
use crate::alerting::{
    check_address, check_header_name, check_header_value, parse_event, parse_smtp, parse_smtp_tls,
    parse_webhook_url, AlertEvent, AlertingSpec, EmailRoute, SmtpTls, Webhook, DEFAULT_BATCH,
};
use crate::raw::{Node, Value};

/// `alerting:` being read.
struct AlertingDraft {
    events: Option<Vec<AlertEvent>>,
    batch: Duration,
    webhooks: Vec<Webhook>,
    email: Option<EmailRoute>,
    syslog: bool,
    ca_file: Option<std::path::PathBuf>,
}

const ALERTING_KEYS: &[Key<AlertingDraft>] = &[
    ("events", |c, node, key, d| {
        d.events = c.alert_events(node, key)
    }),
    ("batch", |c, node, key, d| {
        if let Some(batch) = c.duration(node, key) {
            d.batch = batch;
        }
    }),
    ("webhooks", |c, node, key, d| {
        d.webhooks = c.webhooks(node, key)
    }),
    ("email", |c, node, key, d| d.email = c.email(node, key)),
    ("syslog", |c, node, key, d| {
        d.syslog = c.boolean(node, key).unwrap_or(false)
    }),
    ("ca_file", |c, node, key, d| d.ca_file = c.path(node, key)),
];

/// A webhook being read; `url` is required.
#[derive(Default)]
struct WebhookDraft {
    url: Option<(crate::HttpProbe, bool)>,
    headers: Vec<(String, String)>,
}

const WEBHOOK_KEYS: &[Key<WebhookDraft>] = &[
    ("url", |c, node, key, d| {
        let text = c.scalar(
            node,
            key,
            "a URL such as https://hooks.example.com/taskmaster",
        );
        d.url = text.and_then(|text| c.check(node, key, parse_webhook_url(text)));
    }),
    ("headers", |c, node, key, d| {
        d.headers = c.headers(node, key)
    }),
];

/// `email:` being read; `smtp`, `from` and `to` are required.
#[derive(Default)]
struct EmailDraft {
    smtp: Option<(String, String, u16)>,
    tls: Option<SmtpTls>,
    username: Option<String>,
    password: Option<String>,
    from: Option<String>,
    to: Option<Vec<String>>,
}

const EMAIL_KEYS: &[Key<EmailDraft>] = &[
    ("smtp", |c, node, key, d| {
        let text = c.scalar(node, key, "host:port such as 127.0.0.1:25");
        d.smtp = text.and_then(|text| {
            c.check(node, key, parse_smtp(text))
                .map(|(host, port)| (text.to_string(), host, port))
        });
    }),
    ("tls", |c, node, key, d| {
        let text = c.scalar(node, key, "none, starttls or tls");
        d.tls = text.and_then(|text| c.check(node, key, parse_smtp_tls(text)));
    }),
    ("username", |c, node, key, d| {
        d.username = c.scalar(node, key, "a user name").map(str::to_string)
    }),
    ("password", |c, node, key, d| {
        d.password = c.scalar(node, key, "a password").map(str::to_string)
    }),
    ("from", |c, node, key, d| d.from = c.mail_address(node, key)),
    ("to", |c, node, key, d| {
        let says = (
            "a list of addresses such as [ops@example.com]",
            "at least one address is needed",
        );
        d.to = c.one_or_more(node, key, says, |c, item, key| c.mail_address(item, key));
    }),
];

impl Checker<'_> {
    /// `alerting:`: events, batch, and at least one destination.
    pub(super) fn alerting(&mut self, node: &Node, key: &str) -> Option<AlertingSpec> {
        let expected = "a mapping with webhooks, email or syslog";
        let pairs = self.mapping(node, key, expected)?;
        let mut draft = AlertingDraft {
            events: None,
            batch: DEFAULT_BATCH,
            webhooks: Vec::new(),
            email: None,
            syslog: false,
            ca_file: None,
        };
        let errors = self.errors.len();
        self.keys(pairs, key, ALERTING_KEYS, &mut draft);
        let spec = AlertingSpec {
            events: draft.events.unwrap_or_else(|| AlertEvent::ALL.to_vec()),
            batch: draft.batch,
            webhooks: draft.webhooks,
            email: draft.email,
            syslog: draft.syslog,
            ca_file: draft.ca_file,
        };
        if self.errors.len() > errors {
            return None;
        }
        if !spec.has_destination() {
            self.error(
                node,
                key,
                "no destination: give webhooks, email or syslog: true".to_string(),
            );
            return None;
        }
        Some(spec)
    }

    /// `events:` a list of event words, repeats dropped.
    fn alert_events(&mut self, node: &Node, key: &str) -> Option<Vec<AlertEvent>> {
        let Value::Sequence(items) = &node.value else {
            let message = format!(
                "expected a list such as [crashed, fatal], found {}",
                describe(node)
            );
            self.error(node, key, message);
            return None;
        };
        let mut events = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let text = self.scalar(item, &key, "an event such as crashed");
            if let Some(event) = text.and_then(|text| self.check(item, &key, parse_event(text))) {
                if !events.contains(&event) {
                    events.push(event);
                }
            }
        }
        Some(events)
    }

    /// `webhooks:` a list of `{url, headers}`.
    fn webhooks(&mut self, node: &Node, key: &str) -> Vec<Webhook> {
        let Value::Sequence(items) = &node.value else {
            let message = format!(
                "expected a list of webhooks such as [{{url: \"http://127.0.0.1:9000/hooks\"}}], \
                 found {}",
                describe(node)
            );
            self.error(node, key, message);
            return Vec::new();
        };
        let mut webhooks = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let Some(pairs) = self.mapping(item, &key, "a mapping with url and headers") else {
                continue;
            };
            let mut draft = WebhookDraft::default();
            self.keys(pairs, &key, WEBHOOK_KEYS, &mut draft);
            self.require(item, pairs, &key, "url");
            if let Some((url, https)) = draft.url {
                webhooks.push(Webhook {
                    url,
                    https,
                    headers: draft.headers,
                });
            }
        }
        webhooks
    }

    /// `headers:` a mapping of header names to values.
    fn headers(&mut self, node: &Node, key: &str) -> Vec<(String, String)> {
        let Some(pairs) = self.mapping(node, key, "a mapping of header names to values") else {
            return Vec::new();
        };
        let mut headers = Vec::new();
        for (name_node, value) in pairs {
            let Some(name) = self.key_name(name_node, key) else {
                continue;
            };
            if self
                .check(name_node, key, check_header_name(name))
                .is_none()
            {
                continue;
            }
            let path = format!("{key}.{name}");
            let Some(text) = self.scalar(value, &path, "a header value") else {
                continue;
            };
            if self.check(value, &path, check_header_value(text)).is_some() {
                headers.push((name.to_string(), text.to_string()));
            }
        }
        headers
    }

    /// `email:` `{smtp, tls, username, password, from, to}`.
    fn email(&mut self, node: &Node, key: &str) -> Option<EmailRoute> {
        let pairs = self.mapping(node, key, "a mapping with smtp, from and to")?;
        let mut draft = EmailDraft::default();
        self.keys(pairs, key, EMAIL_KEYS, &mut draft);
        for required in ["smtp", "from", "to"] {
            self.require(node, pairs, key, required);
        }
        let credentials = match (draft.username, draft.password) {
            (Some(username), Some(password)) => Some((username, password)),
            (None, None) => None,
            _ => {
                self.error(
                    node,
                    key,
                    "username and password go together: give both or neither".to_string(),
                );
                return None;
            }
        };
        let (smtp, host, port) = draft.smtp?;
        Some(EmailRoute {
            smtp,
            host,
            port,
            tls: draft.tls.unwrap_or(SmtpTls::None),
            credentials,
            from: draft.from?,
            to: draft.to?,
        })
    }

    /// One mail address.
    fn mail_address(&mut self, node: &Node, key: &str) -> Option<String> {
        let text = self.scalar(node, key, "a mail address such as ops@example.com")?;
        self.check(node, key, check_address(text))?;
        Some(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{AlertEvent, Config};

    const FILE: &str = "/etc/tm/taskmaster.yaml";

    fn parse(text: &str) -> Config {
        match Config::parse(text, Path::new(FILE)) {
            Ok(config) => config,
            Err(e) => panic!("{text}\n---\n{e}"),
        }
    }

    fn errors(text: &str) -> String {
        match Config::parse(text, Path::new(FILE)) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    const FULL: &str = "\
alerting:
  events: [crashed, FATAL, hung, crashed]
  batch: 30s
  webhooks:
    - url: \"http://127.0.0.1:9000/hooks/taskmaster\"
      headers: {Authorization: \"Bearer abc\", X-Team: ops}
    - url: https://localhost/
  email:
    smtp: \"127.0.0.1:2525\"
    tls: STARTTLS
    username: tm
    password: secret
    from: taskmaster@host
    to: [ops@example.com, dev@example.com]
  syslog: true
  ca_file: /etc/tm/ca.pem
programs:
  web: {cmd: x}
";

    #[test]
    fn the_whole_section_is_read_and_survives_the_round_trip() {
        let config = parse(FULL);
        let Some(alerting) = &config.daemon.alerting else {
            panic!("no alerting read");
        };
        assert_eq!(
            alerting.events,
            [AlertEvent::Crashed, AlertEvent::Fatal, AlertEvent::Hung]
        );
        assert_eq!(alerting.batch, std::time::Duration::from_secs(30));
        assert_eq!(alerting.webhooks.len(), 2);
        assert_eq!(alerting.webhooks[0].url.address, "127.0.0.1:9000");
        assert_eq!(
            alerting.webhooks[0].headers[0],
            ("Authorization".to_string(), "Bearer abc".to_string())
        );
        assert!(!alerting.webhooks[0].https && alerting.webhooks[1].https);
        assert_eq!(alerting.webhooks[1].url.address, "localhost:443");
        let email = alerting.email.as_ref().map(|e| (e.port, e.tls, e.to.len()));
        assert_eq!(email, Some((2525, crate::SmtpTls::Starttls, 2)));
        assert_eq!(
            alerting.ca_file.as_deref(),
            Some(Path::new("/etc/tm/ca.pem"))
        );
        assert!(alerting.syslog);
        let yaml = crate::to_yaml(&config);
        assert_eq!(parse(&yaml), config, "{yaml}");
    }

    #[test]
    fn defaults_are_every_event_and_a_ten_second_batch() {
        let config = parse("alerting: {syslog: true}\n");
        let alerting = config.daemon.alerting.expect("read");
        assert_eq!(alerting.events, AlertEvent::ALL);
        assert_eq!(alerting.batch, crate::DEFAULT_BATCH);
        assert!(parse("programs: {}\n").daemon.alerting.is_none());
    }

    #[test]
    fn wrong_values_are_errors_at_their_place() {
        let text = "\
alerting:
  events: [crashed, crash]
  webhooks:
    - url: ftp://example.com/hook
      headers: {\"Bad Name\": x, Content-Length: 3}
    - headers: {}
  email: {smtp: mail.example.com, tls: ssl, from: ops, to: []}
";
        let found = errors(text);
        for expected in [
            "taskmaster.yaml:2:21: alerting.events[1]: expected crashed",
            "taskmaster.yaml:4:12: alerting.webhooks[0].url: invalid URL \"ftp://example.com/hook\": only http:// and https:// are supported",
            "alerting.email.tls: expected none, starttls or tls",
            "alerting.webhooks[0].headers: invalid header name \"Bad Name\"",
            "alerting.webhooks[0].headers: header \"Content-Length\" is written by taskmaster",
            "alerting.webhooks[1]: missing required key \"url\"",
            "alerting.email.smtp: invalid address \"mail.example.com\"",
            "alerting.email.from: invalid mail address \"ops\"",
            "alerting.email.to: at least one address is needed",
        ] {
            assert!(found.contains(expected), "{expected}\n---\n{found}");
        }
        assert!(errors("alerting: {batch: 1s}\n").contains("alerting: no destination"));
        assert!(errors("alerting: {syslog: true, sms: x}\n").contains("unknown key"));
        let half = errors("alerting: {email: {smtp: \"h:25\", from: a@b, to: c@d, username: u}}\n");
        assert!(half.contains("username and password go together"), "{half}");
    }
}
