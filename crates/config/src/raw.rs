//! The raw layer: YAML text to a tree of nodes that know where they were written.
//!
//! YAML's own typing is the wrong tool for a configuration: a loader that turns `022` into
//! the integer 22 has already lost the user's octal umask, and one that forgets positions can
//! no longer say *where* a value is wrong. So this layer interprets nothing. It keeps every
//! scalar as the text written, whether it was quoted, and its line and column, and leaves all
//! meaning to the YAML front end (`yaml`).
//!
//! Decisions worth knowing:
//! - Only YAML *syntax* is checked here, plus what needs the tree: duplicate keys in a mapping
//!   (`duplicate key "x"`, at the second key), a second document in the stream, and limits.
//! - A plain `~`, `null`, `Null`, `NULL` or an empty value is [`Value::Null`]. A quoted
//!   `"null"` is the string `null`.
//! - `quoted` is true for every non-plain scalar: single- or double-quoted, and also block
//!   scalars (`|`, `>`) and scalars tagged `!!str`, all of which are unambiguously strings.
//!   Other tags are ignored.
//! - Aliases are resolved by copying the anchored node; the copy's root takes the alias's
//!   position (inner nodes keep the positions where they were written). An alias to an anchor
//!   that is still open (a node containing itself) is an error.
//! - Limits keep every input, however hostile, cheap and panic-free: nesting deeper than
//!   [`MAX_DEPTH`] and trees of more than [`MAX_NODES`] nodes (counting alias copies, which
//!   defuses "billion laughs") are errors. The tree's recursive users (drop, clone, the
//!   validator) can therefore never exhaust the stack.
//! - An empty document (no document at all, only comments, or a null such as `---` alone)
//!   is an empty mapping.
//! - The parser is driven one event at a time through [`Parser::next_token`] and the tree is
//!   built with an explicit stack: the parser's own `load` recurses once per nesting level,
//!   before any limit of ours could apply.

use std::collections::HashMap;
use std::path::Path;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{ConfigError, ConfigErrors};

/// Deepest nesting of sequences and mappings accepted.
pub const MAX_DEPTH: usize = 64;
/// Most nodes accepted in one document, alias copies included.
pub const MAX_NODES: usize = 100_000;

/// A value and the place (1-based line and column) where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub line: usize,
    pub column: usize,
    pub value: Value,
}

/// A YAML value, uninterpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `~`, `null`, `Null`, `NULL`, or nothing at all.
    Null,
    /// A scalar, as written; `quoted` when not written plain (see the module documentation).
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<Node>),
    /// Key-value pairs in file order; keys are unique.
    Mapping(Vec<(Node, Node)>),
}

/// Parses `text` (read from `path`, which is only used in errors) into a tree.
pub fn parse(text: &str, path: &Path) -> Result<Node, ConfigErrors> {
    let mut builder = Builder::new(path);
    // The parser reads a byte-order mark as part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::new_from_str(text);
    while !builder.done() {
        match parser.next_token() {
            Ok((event, mark)) => builder.on_event(event, mark),
            Err(e) => {
                // No key path: the parser may fail past the node the builder is in, and a
                // path naming the wrong key misleads more than none.
                let mark = e.marker();
                let message = format!("YAML syntax error: {}", e.info());
                builder.stack.clear();
                builder.fail(*mark, message);
            }
        }
    }
    builder.finish()
}

/// A collection being built, waiting for its end event.
struct Open {
    node: Node,
    anchor: usize,
    /// For a mapping: the key read, waiting for its value.
    pending_key: Option<Node>,
    /// For a mapping of many keys: where each key was first written (see [`first_written`]).
    seen: Option<KeysSeen>,
}

/// Where each key of a mapping was first written, by its text (`None` stands for a null key).
type KeysSeen = HashMap<Option<String>, (usize, usize)>;

/// Up to this many keys, a mapping's keys are compared one by one rather than kept by text:
/// most mappings (a program's settings) have a few, and the programs' one has thousands.
const FEW_KEYS: usize = 16;

/// A key's identity, as duplicates are found by: its text, or `None` for a null key; no
/// identity for a collection used as a key.
fn key_identity(key: &Node) -> Option<Option<&str>> {
    match &key.value {
        Value::Null => Some(None),
        Value::Scalar { text, .. } => Some(Some(text)),
        Value::Sequence(_) | Value::Mapping(_) => None,
    }
}

/// Where a key like `key` was first written in the mapping of `pairs`, if one was: among the
/// pairs themselves while they are few, then in `seen`, which is filled from them once they
/// are many and then keeps `key` too.
fn first_written(
    pairs: &[(Node, Node)],
    seen: &mut Option<KeysSeen>,
    key: &Node,
) -> Option<(usize, usize)> {
    let identity = key_identity(key)?;
    if pairs.len() < FEW_KEYS {
        return pairs
            .iter()
            .map(|(earlier, _)| earlier)
            .find(|earlier| key_identity(earlier) == Some(identity))
            .map(|earlier| (earlier.line, earlier.column));
    }
    let seen = seen.get_or_insert_with(|| {
        let mut seen = KeysSeen::with_capacity(pairs.len() * 2);
        for (earlier, _) in pairs {
            if let Some(text) = key_identity(earlier) {
                seen.insert(text.map(str::to_string), (earlier.line, earlier.column));
            }
        }
        seen
    });
    match seen.entry(identity.map(str::to_string)) {
        std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert((key.line, key.column));
            None
        }
    }
}

/// Turns parser events into a [`Node`] tree; records the first error and stops there.
struct Builder<'a> {
    path: &'a Path,
    stack: Vec<Open>,
    /// Completed anchored nodes: anchor id -> (node, its node count, its depth).
    anchors: HashMap<usize, (Node, usize, usize)>,
    root: Option<Node>,
    nodes: usize,
    documents: usize,
    finished: bool,
    errors: Vec<ConfigError>,
}

impl<'a> Builder<'a> {
    fn new(path: &'a Path) -> Self {
        Builder {
            path,
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            nodes: 0,
            documents: 0,
            finished: false,
            errors: Vec::new(),
        }
    }

    fn done(&self) -> bool {
        self.finished || !self.errors.is_empty()
    }

    fn fail(&mut self, mark: Marker, message: String) {
        self.fail_at(mark.line(), mark.col() + 1, message);
    }

    fn fail_at(&mut self, line: usize, column: usize, message: String) {
        if self.errors.is_empty() {
            self.errors.push(ConfigError {
                file: self.path.to_path_buf(),
                line,
                column,
                key: self.key_path(),
                message,
            });
        }
    }

    /// The dotted path of the mapping being built, for errors raised inside it.
    fn key_path(&self) -> String {
        // The keys leading to the current position are the pending keys of the enclosing
        // mappings.
        let parts: Vec<String> = self
            .stack
            .iter()
            .filter_map(|open| open.pending_key.as_ref().map(key_text))
            .collect();
        parts.join(".")
    }

    fn finish(self) -> Result<Node, ConfigErrors> {
        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        match self.root {
            Some(root) if root.value != Value::Null => Ok(root),
            // No document, or a document holding nothing (`---` alone, `~`).
            Some(Node { line, column, .. }) => Ok(Node {
                line,
                column,
                value: Value::Mapping(Vec::new()),
            }),
            None => Ok(Node {
                line: 1,
                column: 1,
                value: Value::Mapping(Vec::new()),
            }),
        }
    }

    fn count(&mut self, added: usize, depth: usize, mark: Marker) -> bool {
        self.nodes = self.nodes.saturating_add(added);
        if self.nodes > MAX_NODES {
            self.fail(
                mark,
                format!(
                    "the document is too large (more than {MAX_NODES} values, aliases expanded)"
                ),
            );
            return false;
        }
        if depth > MAX_DEPTH {
            self.fail(
                mark,
                format!("values are nested more than {MAX_DEPTH} levels deep"),
            );
            return false;
        }
        true
    }

    /// Places a completed node into its parent (or as the root).
    fn attach(&mut self, node: Node, mark: Marker) {
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        match &mut parent.node.value {
            Value::Sequence(items) => items.push(node),
            Value::Mapping(pairs) => match parent.pending_key.take() {
                None => parent.pending_key = Some(node),
                Some(key) => {
                    let mut value = node;
                    if value.value == Value::Null && is_placed_past_its_key(&key, &value) {
                        // The parser places an empty value at the next token, possibly lines
                        // below; its key is where the user should look.
                        value.line = key.line;
                        value.column = key.column;
                    }
                    if let Some((line, column)) = first_written(pairs, &mut parent.seen, &key) {
                        let message = format!(
                            "duplicate key {:?} (first at line {line}, column {column})",
                            key_text(&key),
                        );
                        // Reported under the mapping's path (the pending key is taken).
                        self.fail_at(key.line, key.column, message);
                        return;
                    }
                    pairs.push((key, value));
                }
            },
            Value::Null | Value::Scalar { .. } => {
                self.fail(mark, "internal error: value inside a scalar".to_string());
            }
        }
    }

    fn open(&mut self, value: Value, anchor: usize, mark: Marker) {
        let depth = self.stack.len() + 1;
        if !self.count(1, depth, mark) {
            return;
        }
        self.stack.push(Open {
            node: Node {
                line: mark.line(),
                column: mark.col() + 1,
                value,
            },
            anchor,
            pending_key: None,
            seen: None,
        });
    }

    fn close(&mut self, mark: Marker) {
        let Some(open) = self.stack.pop() else {
            let message = "internal error: unbalanced collection end";
            self.fail(mark, message.to_string());
            return;
        };
        let mut node = open.node;
        if let Value::Mapping(pairs) = &node.value {
            // A block mapping's start event sits after its first key; a mapping starts
            // where it is first written.
            if let Some((first, _)) = pairs.first() {
                if (first.line, first.column) < (node.line, node.column) {
                    node.line = first.line;
                    node.column = first.column;
                }
            }
        }
        if open.anchor != 0 {
            let (size, depth) = measure(&node);
            self.anchors
                .insert(open.anchor, (node.clone(), size, depth));
        }
        self.attach(node, mark);
    }

    fn scalar(
        &mut self,
        text: String,
        style: TScalarStyle,
        anchor: usize,
        tag: Option<Tag>,
        mark: Marker,
    ) {
        if !self.count(1, self.stack.len(), mark) {
            return;
        }
        let is_str_tag = tag.is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str");
        let quoted = !matches!(style, TScalarStyle::Plain) || is_str_tag;
        let value = if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
            Value::Null
        } else {
            Value::Scalar { text, quoted }
        };
        let node = Node {
            line: mark.line(),
            column: mark.col() + 1,
            value,
        };
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), 1, 0));
        }
        self.attach(node, mark);
    }

    fn alias(&mut self, anchor: usize, mark: Marker) {
        let Some(&(_, size, depth)) = self.anchors.get(&anchor) else {
            let message = "this alias refers to a value that contains it; \
                           recursive aliases are not allowed";
            self.fail(mark, message.to_string());
            return;
        };
        // Counted before copying, so an alias bomb stops before it allocates.
        if !self.count(size, self.stack.len() + depth, mark) {
            return;
        }
        let Some((node, _, _)) = self.anchors.get(&anchor) else {
            return;
        };
        let mut copy = node.clone();
        copy.line = mark.line();
        copy.column = mark.col() + 1;
        self.attach(copy, mark);
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.done() {
            return;
        }
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => self.finished = true,
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(
                        mark,
                        "a configuration file holds one YAML document; found a second one"
                            .to_string(),
                    );
                }
            }
            Event::Alias(anchor) => self.alias(anchor, mark),
            Event::Scalar(text, style, anchor, tag) => self.scalar(text, style, anchor, tag, mark),
            Event::SequenceStart(anchor, _) => self.open(Value::Sequence(Vec::new()), anchor, mark),
            Event::MappingStart(anchor, _) => self.open(Value::Mapping(Vec::new()), anchor, mark),
            Event::SequenceEnd | Event::MappingEnd => self.close(mark),
        }
    }
}

/// Whether a null value is placed on a later line than its key, or not after it: the mark of
/// an empty value, which the parser places at the next token.
fn is_placed_past_its_key(key: &Node, value: &Node) -> bool {
    value.line > key.line || (value.line == key.line && value.column <= key.column)
}

/// A key as it appears in a dotted path.
pub(crate) fn key_text(key: &Node) -> String {
    match &key.value {
        Value::Null => "~".to_string(),
        Value::Scalar { text, .. } => text.clone(),
        Value::Sequence(_) => "[...]".to_string(),
        Value::Mapping(_) => "{...}".to_string(),
    }
}

/// Node count and nesting depth of a tree (a scalar has depth 0).
fn measure(node: &Node) -> (usize, usize) {
    match &node.value {
        Value::Null | Value::Scalar { .. } => (1, 0),
        Value::Sequence(items) => items.iter().fold((1, 1), |(size, depth), item| {
            let (s, d) = measure(item);
            (size.saturating_add(s), depth.max(d + 1))
        }),
        Value::Mapping(pairs) => pairs.iter().fold((1, 1), |(size, depth), (k, v)| {
            let (ks, kd) = measure(k);
            let (vs, vd) = measure(v);
            (
                size.saturating_add(ks).saturating_add(vs),
                depth.max(kd + 1).max(vd + 1),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Node {
        match parse(text, Path::new("t.yaml")) {
            Ok(node) => node,
            Err(e) => panic!("{e}"),
        }
    }

    fn scalar(text: &str, quoted: bool) -> Value {
        Value::Scalar {
            text: text.to_string(),
            quoted,
        }
    }

    /// The value of `key` in a top-level mapping.
    fn value_of(text: &str, key: &str) -> Node {
        let Value::Mapping(pairs) = tree(text).value else {
            panic!("not a mapping");
        };
        pairs
            .into_iter()
            .find(|(k, _)| key_text(k) == key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no key {key}"))
    }

    #[test]
    fn scalars_keep_the_text_written() {
        assert_eq!(value_of("a: 022", "a").value, scalar("022", false));
        assert_eq!(value_of("a: 1.50", "a").value, scalar("1.50", false));
        assert_eq!(value_of("a: yes", "a").value, scalar("yes", false));
        assert_eq!(value_of("a: 0x1F", "a").value, scalar("0x1F", false));
    }

    #[test]
    fn quoted_scalars_are_marked_quoted() {
        assert_eq!(value_of("a: '022'", "a").value, scalar("022", true));
        assert_eq!(value_of("a: \"x\\ty\"", "a").value, scalar("x\ty", true));
        assert_eq!(value_of("a: |\n  hi\n", "a").value, scalar("hi\n", true));
        assert_eq!(value_of("a: !!str 5", "a").value, scalar("5", true));
        assert_eq!(value_of("a: !!int 5", "a").value, scalar("5", false));
    }

    #[test]
    fn plain_null_forms_and_empty_values_are_null() {
        for text in ["a: ~", "a: null", "a: Null", "a: NULL", "a:", "a: \n"] {
            assert_eq!(value_of(text, "a").value, Value::Null, "{text:?}");
        }
        assert_eq!(value_of("a: nULL", "a").value, scalar("nULL", false));
        assert_eq!(value_of("a: 'null'", "a").value, scalar("null", true));
        assert_eq!(value_of("a: ''", "a").value, scalar("", true));
    }

    #[test]
    fn positions_are_one_based_line_and_column() {
        let node = tree("top:\n  key:   value\n  list: [a, b]\n");
        let Value::Mapping(pairs) = &node.value else {
            panic!("not a mapping");
        };
        assert_eq!((node.line, node.column), (1, 1));
        let (top_key, top) = &pairs[0];
        assert_eq!((top_key.line, top_key.column), (1, 1));
        assert_eq!((top.line, top.column), (2, 3));
        let Value::Mapping(inner) = &top.value else {
            panic!("not a mapping");
        };
        assert_eq!((inner[0].0.line, inner[0].0.column), (2, 3));
        assert_eq!((inner[0].1.line, inner[0].1.column), (2, 10));
        let Value::Sequence(items) = &inner[1].1.value else {
            panic!("not a list");
        };
        assert_eq!((inner[1].1.line, inner[1].1.column), (3, 9));
        assert_eq!((items[1].line, items[1].column), (3, 13));
    }

    #[test]
    fn an_empty_value_is_placed_at_its_key() {
        let node = value_of("a:\n\nb: 1\n", "a");
        assert_eq!((node.line, node.column, node.value), (1, 1, Value::Null));
    }

    #[test]
    fn empty_document_is_an_empty_mapping() {
        for text in ["", "\n\n", "# comment only\n", "---\n", "--- ~\n", "...\n"] {
            assert_eq!(tree(text).value, Value::Mapping(Vec::new()), "{text:?}");
        }
    }

    #[test]
    fn byte_order_mark_and_crlf_line_ends_are_ignored() {
        let node = value_of("\u{feff}a:\r\n  b: 022\r\n", "a");
        assert_eq!((node.line, node.column), (2, 3));
        let Value::Mapping(pairs) = node.value else {
            panic!("not a mapping");
        };
        assert_eq!(pairs[0].1.value, scalar("022", false));
    }

    #[test]
    fn mapping_keeps_pairs_in_file_order() {
        let Value::Mapping(pairs) = tree("b: 1\na: 2\nc: 3\n").value else {
            panic!("not a mapping");
        };
        let keys: Vec<String> = pairs.iter().map(|(k, _)| key_text(k)).collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn a_duplicate_among_many_keys_is_found_before_and_after_they_are_many() {
        for (first, again) in [(3, FEW_KEYS + 4), (FEW_KEYS + 2, FEW_KEYS + 6), (2, 9)] {
            let mut text = String::new();
            for i in 0..FEW_KEYS + 8 {
                let key = if i == again { first } else { i };
                text.push_str(&format!("k{key}: {i}\n"));
            }
            let Err(errors) = parse(&text, Path::new("t.yaml")) else {
                panic!("accepted a duplicate of k{first}");
            };
            assert_eq!(
                errors.to_string(),
                format!(
                    "t.yaml:{}:1: duplicate key \"k{first}\" (first at line {}, column 1)",
                    again + 1,
                    first + 1
                )
            );
        }
        let many: String = (0..FEW_KEYS * 2).map(|i| format!("k{i}: {i}\n")).collect();
        assert!(parse(&many, Path::new("t.yaml")).is_ok());
    }

    #[test]
    fn duplicate_key_names_the_mapping_and_both_places() {
        let Err(errors) = parse("a:\n  x: 1\n  y: 2\n  x: 3\n", Path::new("t.yaml")) else {
            panic!("accepted a duplicate");
        };
        assert_eq!(
            errors.to_string(),
            "t.yaml:4:3: a: duplicate key \"x\" (first at line 2, column 3)"
        );
    }

    #[test]
    fn duplicate_null_keys_are_duplicates() {
        assert!(parse("~: 1\nnull: 2\n", Path::new("t.yaml")).is_err());
    }

    #[test]
    fn alias_copy_takes_the_alias_position() {
        let node = value_of("a: &x [1, 2]\nb: *x\n", "b");
        assert_eq!((node.line, node.column), (2, 4));
        assert_eq!(
            node.value,
            Value::Sequence(vec![
                Node {
                    line: 1,
                    column: 8,
                    value: scalar("1", false)
                },
                Node {
                    line: 1,
                    column: 11,
                    value: scalar("2", false)
                },
            ])
        );
    }

    #[test]
    fn depth_limit_allows_exactly_max_depth() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok, Path::new("t.yaml")).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep, Path::new("t.yaml")).is_err());
    }

    #[test]
    fn alias_that_would_nest_too_deep_is_rejected() {
        let half = MAX_DEPTH / 2 + 1;
        let text = format!(
            "a: &x {}{}\nb: {}*x{}\n",
            "[".repeat(half),
            "]".repeat(half),
            "[".repeat(half),
            "]".repeat(half)
        );
        assert!(parse(&text, Path::new("t.yaml")).is_err());
    }
}
