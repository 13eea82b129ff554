//! The raw INI layer: text to sections of options that remember where they were written.
//!
//! supervisord reads its file with Python's `RawConfigParser` (with `inline_comment_prefixes`
//! `;` and `#`, and `strict` off), so this reader follows that parser line by line, quirks
//! included, and interprets nothing: values stay text, `%(...)s` expansions included.
//!
//! - A line is split at `\n`, `\r\n` or `\r` (Python reads the file with universal newlines).
//!   Whitespace is Python's (`str.isspace`), which also counts `\x1c` to `\x1f`.
//! - A line whose first non-blank character is `;` or `#` is a comment. Elsewhere `;` or `#`
//!   starts a comment only at the start of the line or after whitespace: `a;b` is a value,
//!   `a ;b` is `a` and a comment. The search is Python's, round by round (the first `;`
//!   and the first `#`, then the second of each, ...; the earliest that qualifies in the first
//!   round that has one wins), so `x=a#b #c ; d` is `a#b #c`, as supervisord reads it.
//! - A line indented deeper than the line of the option being read continues its value; the
//!   lines are joined with `\n`. Blank lines inside a value are kept (not comment lines), and
//!   trailing ones dropped. An indented line right after a section header starts an option.
//! - `[name]` is a section header; `name = value` or `name: value` an option (split at the
//!   first `=` or `:`). Option names are lower-cased (Python's `optionxform`); section names
//!   are kept as written.
//!
//! Where Python would silently do something surprising this reader reports an error instead,
//! and always keeps reading, so one run reports every problem: text after a section header's
//! `]` (Python ignores it), a line starting with `[` that is not a header (Python reads
//! `[a=b` as an option named `[a`), a line that is neither header, option, comment nor
//! continuation, an option before any section, an empty option name.
//!
//! A section or an option given twice in one file is read as Python reads it (supervisord's
//! parser is not strict): the section's options are added to the first's, and the last value
//! of an option wins. Each is reported as a warning.
//!
//! Checked against Python 3's `configparser` on thousands of random inputs: apart from these
//! refusals, both read the same sections, names and values.

/// One section: its header and its options in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The text between the brackets, as written.
    pub name: String,
    /// Where the `[` is (1-based).
    pub line: usize,
    pub column: usize,
    pub options: Vec<Opt>,
}

/// One option: `name = value`, possibly continued on the following lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// The name, lower-cased as supervisord's parser does.
    pub name: String,
    /// Where the name is (1-based).
    pub line: usize,
    pub column: usize,
    /// The value with surrounding whitespace and comments removed; continuation lines are
    /// joined with `\n`.
    pub value: String,
    /// Where each line of the value starts: (byte offset in `value`, line, column).
    pub pieces: Vec<(usize, usize, usize)>,
}

impl Opt {
    /// The line and column of the character at byte `offset` of the value.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let Some(&(start, line, column)) = self
            .pieces
            .iter()
            .rev()
            .find(|(start, _, _)| *start <= offset)
        else {
            return (self.line, self.column);
        };
        let skipped = self
            .value
            .get(start..offset)
            .map_or(0, |text| text.chars().count());
        (line, column + skipped)
    }

    /// Where the value starts.
    pub fn value_position(&self) -> (usize, usize) {
        self.position(0)
    }
}

/// A problem found while reading: where, the section it is in (empty if none), and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawError {
    pub line: usize,
    pub column: usize,
    pub section: String,
    pub message: String,
    /// Only a warning: the text is read as supervisord reads it (a repeated section or option).
    pub warning: bool,
}

/// Python's `str.isspace`.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `text` without Python-whitespace at either end.
pub(crate) fn strip(text: &str) -> &str {
    text.trim_matches(is_space)
}

/// The lines of `text`, split at `\n`, `\r\n` and `\r`.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\n', '\r']) {
            Some(end) => {
                let skip = if text[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&text[end + skip..]);
                Some(&text[..end])
            }
            None => {
                rest = None;
                // A final newline ends the last line; it does not start an empty one.
                (!text.is_empty()).then_some(text)
            }
        }
    })
}

/// Where an inline comment starts in `line`, by Python's round-by-round search.
fn inline_comment(line: &str) -> Option<usize> {
    // For each prefix, the byte index after which to search next; None once exhausted.
    let mut from: [Option<usize>; 2] = [Some(0), Some(0)];
    loop {
        let mut found: Option<usize> = None;
        let mut any = false;
        for (slot, prefix) in from.iter_mut().zip([';', '#']) {
            let Some(start) = *slot else { continue };
            match line[start..].find(prefix) {
                None => *slot = None,
                Some(relative) => {
                    any = true;
                    let index = start + relative;
                    *slot = Some(index + 1);
                    let after_space =
                        index == 0 || line[..index].chars().next_back().is_some_and(is_space);
                    if after_space {
                        found = Some(found.map_or(index, |f| f.min(index)));
                    }
                }
            }
        }
        if found.is_some() || !any {
            return found;
        }
    }
}

/// 1-based column of byte `index` of `line`.
fn column(line: &str, index: usize) -> usize {
    line[..index].chars().count() + 1
}

/// The option being read, with its lines not yet joined.
struct Current {
    /// Index into the current section's options.
    index: usize,
    lines: Vec<(String, usize, usize)>,
}

/// Reads `text` into sections; returns them with every problem found.
pub fn parse(text: &str) -> (Vec<Section>, Vec<RawError>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader {
        sections: Vec::new(),
        section: None,
        errors: Vec::new(),
        current: None,
        indent_level: 0,
    };
    for (number, line) in lines(text).enumerate() {
        reader.line(number + 1, line);
    }
    reader.finish_option();
    (reader.sections, reader.errors)
}

struct Reader {
    sections: Vec<Section>,
    /// The index of the section being read: the last header's, or the first of that name.
    section: Option<usize>,
    errors: Vec<RawError>,
    current: Option<Current>,
    indent_level: usize,
}

impl Reader {
    /// Records a problem; `in_section` when it concerns an option of the current section.
    fn error(&mut self, line: usize, column: usize, in_section: bool, message: String) {
        self.report(line, column, in_section, message, false);
    }

    fn warning(&mut self, line: usize, column: usize, in_section: bool, message: String) {
        self.report(line, column, in_section, message, true);
    }

    fn report(
        &mut self,
        line: usize,
        column: usize,
        in_section: bool,
        message: String,
        warning: bool,
    ) {
        let section = match self.current_section() {
            Some(section) if in_section => section.name.clone(),
            _ => String::new(),
        };
        self.errors.push(RawError {
            line,
            column,
            section,
            message,
            warning,
        });
    }

    fn current_section(&self) -> Option<&Section> {
        self.sections.get(self.section?)
    }

    fn current_section_mut(&mut self) -> Option<&mut Section> {
        self.sections.get_mut(self.section?)
    }

    fn line(&mut self, number: usize, line: &str) {
        let full_comment = strip(line).starts_with([';', '#']);
        let comment = if full_comment {
            Some(0)
        } else {
            inline_comment(line)
        };
        let uncommented = &line[..comment.unwrap_or(line.len())];
        let value = strip(uncommented);
        if value.is_empty() {
            // A blank line inside a value is part of it; a comment line is not.
            if comment.is_none() {
                if let Some(current) = &mut self.current {
                    current.lines.push((String::new(), number, 1));
                }
            }
            return;
        }
        let start = uncommented.len() - uncommented.trim_start_matches(is_space).len();
        let indent = line[..start].chars().count();
        if self.current.is_some() && indent > self.indent_level {
            if let Some(current) = &mut self.current {
                current
                    .lines
                    .push((value.to_string(), number, column(line, start)));
            }
            return;
        }
        self.indent_level = indent;
        self.finish_option();
        if value.starts_with('[') {
            self.header(number, line, start, value);
        } else if self.section.is_none() {
            self.error(
                number,
                column(line, start),
                false,
                "an option must come after a [section] header".to_string(),
            );
        } else {
            self.option(number, line, start, value);
        }
    }

    fn header(&mut self, number: usize, line: &str, start: usize, value: &str) {
        let col = column(line, start);
        // Python's pattern `\[(.+)\]`: the name runs to the last `]`.
        let name = match value.rfind(']') {
            Some(end) if end > 1 => {
                let trailing = &value[end + 1..];
                if !trailing.is_empty() {
                    let at = start + end + 1 + (trailing.len() - trailing.trim_start().len());
                    self.error(
                        number,
                        column(line, at),
                        false,
                        format!(
                            "unexpected text {:?} after the section header",
                            strip(trailing)
                        ),
                    );
                }
                &value[1..end]
            }
            _ => {
                let message = if value.starts_with("[]") {
                    "a section header needs a name between the brackets".to_string()
                } else {
                    format!("invalid section header {value:?}: expected [name]")
                };
                self.error(number, col, false, message);
                // Options up to the next header belong to no section: drop them quietly.
                self.sections.push(Section {
                    name: String::new(),
                    line: number,
                    column: col,
                    options: Vec::new(),
                });
                self.section = Some(self.sections.len() - 1);
                return;
            }
        };
        if let Some(first) = self.sections.iter().position(|s| s.name == name) {
            let message = format!(
                "section [{name}] again (first at line {}, column {}): its options are added to \
                 the first's, as supervisord reads it",
                self.sections[first].line, self.sections[first].column
            );
            self.warning(number, col, false, message);
            self.section = Some(first);
            return;
        }
        self.sections.push(Section {
            name: name.to_string(),
            line: number,
            column: col,
            options: Vec::new(),
        });
        self.section = Some(self.sections.len() - 1);
    }

    fn option(&mut self, number: usize, line: &str, start: usize, value: &str) {
        let col = column(line, start);
        let Some(delimiter) = value.find(['=', ':']) else {
            let message = format!(
                "expected \"name = value\", a [section] header or a comment, found {value:?}"
            );
            return self.error(number, col, true, message);
        };
        let name = value[..delimiter].trim_end_matches(is_space).to_lowercase();
        if name.is_empty() {
            let message = format!(
                "an option needs a name before {:?}",
                &value[delimiter..=delimiter]
            );
            return self.error(number, col, true, message);
        }
        let rest = &value[delimiter + 1..];
        let text = strip(rest);
        let value_start =
            start + delimiter + 1 + (rest.len() - rest.trim_start_matches(is_space).len());
        let Some(section) = self.current_section() else {
            return;
        };
        let repeated = section
            .options
            .iter()
            .position(|o| o.name == name)
            .map(|index| {
                (
                    index,
                    section.options[index].line,
                    section.options[index].column,
                )
            });
        if let Some((_, first_line, first_column)) = repeated {
            let message = format!(
                "option {name:?} again (first at line {first_line}, column {first_column}): the \
                 last value is used, as supervisord does"
            );
            self.warning(number, col, true, message);
        }
        let opt = Opt {
            name,
            line: number,
            column: col,
            value: String::new(),
            pieces: Vec::new(),
        };
        let Some(section) = self.current_section_mut() else {
            return;
        };
        let index = match repeated {
            Some((index, _, _)) => {
                section.options[index] = opt;
                index
            }
            None => {
                section.options.push(opt);
                section.options.len() - 1
            }
        };
        self.current = Some(Current {
            index,
            lines: vec![(text.to_string(), number, column(line, value_start))],
        });
    }

    /// Joins the lines of the option being read into its value.
    fn finish_option(&mut self) {
        let Some(current) = self.current.take() else {
            return;
        };
        let Some(opt) = self
            .current_section_mut()
            .and_then(|s| s.options.get_mut(current.index))
        else {
            return;
        };
        for (i, (text, line, column)) in current.lines.into_iter().enumerate() {
            if i > 0 {
                opt.value.push('\n');
            }
            opt.pieces.push((opt.value.len(), line, column));
            opt.value.push_str(&text);
        }
        let kept = opt.value.trim_end_matches(is_space).len();
        opt.value.truncate(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<(String, Vec<(String, String)>)> {
        let (sections, errors) = parse(text);
        assert!(errors.iter().all(|e| e.warning), "{text:?}: {errors:?}");
        sections
            .into_iter()
            .map(|s| {
                let options = s.options.into_iter().map(|o| (o.name, o.value)).collect();
                (s.name, options)
            })
            .collect()
    }

    fn values(text: &str) -> Vec<(String, String)> {
        read(text).remove(0).1
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn messages(text: &str) -> Vec<String> {
        parse(text)
            .1
            .into_iter()
            .map(|e| {
                let kind = if e.warning { "warning: " } else { "" };
                format!("{}:{}: {kind}{}", e.line, e.column, e.message)
            })
            .collect()
    }

    #[test]
    fn comments_start_a_line_or_follow_whitespace() {
        let text = "; c\n# c\n[a]\n  ; c\nx=a;b\ny=a ;b\nz=a #b\nw=a#b\nv=;b\n";
        assert_eq!(
            values(text),
            pairs(&[
                ("x", "a;b"),
                ("y", "a"),
                ("z", "a"),
                ("w", "a#b"),
                ("v", ";b")
            ])
        );
    }

    #[test]
    fn inline_comment_search_goes_round_by_round_as_pythons() {
        assert_eq!(values("[a]\nx=a#b #c ; d\n"), pairs(&[("x", "a#b #c")]));
        assert_eq!(values("[a]\nx=a\t;b\n"), pairs(&[("x", "a")]));
        assert_eq!(values("[a]\nx=\x1c;b\n"), pairs(&[("x", "")]));
    }

    #[test]
    fn deeper_lines_continue_a_value_and_blank_lines_inside_are_kept() {
        assert_eq!(
            values("[a]\ncmd=foo\n\n  bar\n ; c\n  baz\n\n\ny=1\n"),
            pairs(&[("cmd", "foo\n\nbar\nbaz"), ("y", "1")])
        );
        assert_eq!(
            values("[a]\n  x=1\n  y=2\n"),
            pairs(&[("x", "1"), ("y", "2")])
        );
        assert_eq!(values("[a]\n  x=1\n    y=2\n"), pairs(&[("x", "1\ny=2")]));
        assert_eq!(
            read("[a]\nx=1\n  [b]\ny=2\n"),
            [("a".to_string(), pairs(&[("x", "1\n[b]"), ("y", "2")]))]
        );
    }

    #[test]
    fn names_are_lower_cased_and_split_at_the_first_delimiter() {
        assert_eq!(
            values("[a]\nCommand : run = x\nurl=unix:///s\n"),
            pairs(&[("command", "run = x"), ("url", "unix:///s")])
        );
    }

    #[test]
    fn line_endings_of_every_kind_split_lines() {
        assert_eq!(
            read("[a]\r\nk=v\r[b]\nq=1"),
            [
                ("a".to_string(), pairs(&[("k", "v")])),
                ("b".to_string(), pairs(&[("q", "1")]))
            ]
        );
    }

    #[test]
    fn positions_point_at_names_and_value_pieces() {
        let (sections, _) = parse("[a]\n  cmd = foo\n     bar\n");
        let opt = &sections[0].options[0];
        assert_eq!((opt.line, opt.column), (2, 3));
        assert_eq!(opt.value_position(), (2, 9));
        assert_eq!(opt.position(5), (3, 7));
        assert_eq!((sections[0].line, sections[0].column), (1, 1));
    }

    #[test]
    fn malformed_lines_are_all_reported() {
        assert_eq!(
            messages("x=1\n[a]junk\n=1\nfoo\n[]\n[b\n[a]\ny=1\ny=2\n"),
            [
                "1:1: an option must come after a [section] header",
                "2:4: unexpected text \"junk\" after the section header",
                "3:1: an option needs a name before \"=\"",
                "4:1: expected \"name = value\", a [section] header or a comment, found \"foo\"",
                "5:1: a section header needs a name between the brackets",
                "6:1: invalid section header \"[b\": expected [name]",
                "7:1: warning: section [a] again (first at line 2, column 1): its options are added to the first's, as supervisord reads it",
                "9:1: warning: option \"y\" again (first at line 8, column 1): the last value is used, as supervisord does",
            ]
        );
    }

    #[test]
    fn a_repeated_section_is_merged_and_a_repeated_option_keeps_its_last_value() {
        assert_eq!(
            read("[a]\nx=1\ny=2\n[b]\nz=3\n[a]\nx=4\n  more\nw=5\n"),
            [
                (
                    "a".to_string(),
                    pairs(&[("x", "4\nmore"), ("y", "2"), ("w", "5")])
                ),
                ("b".to_string(), pairs(&[("z", "3")]))
            ]
        );
        let (sections, _) = parse("[a]\nx=1\nx = 2\n");
        let opt = &sections[0].options[0];
        assert_eq!((opt.line, opt.column, opt.value_position()), (3, 1, (3, 5)));
    }
}
