//! The two text formats a scraper may ask for: Prometheus' (version 0.0.4, the default) and
//! OpenMetrics 1.0. They differ in little: OpenMetrics names a counter's family without its
//! `_total`, gives units a line of their own, and ends with `# EOF`.

use std::fmt::Write;

use super::{Family, Kind};

/// Which text format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names it, else Prometheus'.
    pub fn accepted(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }
}

/// The `Content-Type` of a format.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
    }
}

/// `families` in `format`.
pub fn write(families: &[Family], format: Format) -> String {
    let mut out = String::new();
    for family in families {
        let name = match (format, family.kind) {
            (Format::OpenMetrics, Kind::Counter) => {
                family.name.strip_suffix("_total").unwrap_or(family.name)
            }
            _ => family.name,
        };
        let kind = match family.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(family.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if let (Format::OpenMetrics, Some(unit)) = (format, family.unit) {
            let _ = writeln!(out, "# UNIT {name} {unit}");
        }
        for sample in &family.samples {
            out.push_str(family.name);
            if !sample.labels.is_empty() {
                out.push('{');
                out.push_str(&sample.labels);
                out.push('}');
            }
            out.push(' ');
            push_number(&mut out, sample.value);
            out.push('\n');
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// A value as both formats read it: integers without a fraction.
fn push_number(out: &mut String, value: f64) {
    let _ = if value.fract() == 0.0 && value.abs() < 1e15 {
        write!(out, "{}", value as i64)
    } else {
        write!(out, "{value}")
    };
}

/// A label value, backslash, double quote and newline escaped, at the end of `out`.
pub(super) fn escape_label_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A help text: backslash and newline escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::{Family, Kind, Sample};
    use super::*;

    fn restarts() -> Vec<Family> {
        vec![Family {
            name: "taskmaster_process_restarts_total",
            help: "Restarts.",
            kind: Kind::Counter,
            unit: None,
            samples: vec![Sample {
                labels: super::super::labels(&[("name", "we\"b\\\n")]),
                value: 3.0,
            }],
        }]
    }

    #[test]
    fn prometheus_text_names_the_counter_with_its_total() {
        assert_eq!(
            write(&restarts(), Format::Prometheus),
            "# HELP taskmaster_process_restarts_total Restarts.\n\
             # TYPE taskmaster_process_restarts_total counter\n\
             taskmaster_process_restarts_total{name=\"we\\\"b\\\\\\n\"} 3\n"
        );
    }

    #[test]
    fn openmetrics_names_the_family_without_total_and_ends_with_eof() {
        let text = write(&restarts(), Format::OpenMetrics);
        assert!(text.starts_with("# HELP taskmaster_process_restarts Restarts.\n# TYPE taskmaster_process_restarts counter\ntaskmaster_process_restarts_total{"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn the_accept_header_chooses_the_format() {
        assert_eq!(Format::accepted(None), Format::Prometheus);
        assert_eq!(Format::accepted(Some("text/plain")), Format::Prometheus);
        let prometheus =
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        assert_eq!(Format::accepted(Some(prometheus)), Format::OpenMetrics);
    }
}
