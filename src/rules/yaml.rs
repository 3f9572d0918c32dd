//! A small YAML emitter for rule files: block mappings and sequences, every scalar a
//! double-quoted string.
//!
//! Rule files need only strings, maps and lists, and Prometheus and Loki read every field
//! of a rule file (`interval: "1m"`, `for: "5m"`) from a string. Quoting every scalar one
//! way means no value is ever read as something else: not `no` as a boolean, not `1e3` as a
//! number, not a `#` as a comment, and a newline or quote in a value cannot end the string
//! and start a new key (what a template would allow). Why not a crate: `serde_yaml` is
//! deprecated, and this is all a rule file needs; the tests read the output back with an
//! independent YAML parser, and `promtool check rules` and Loki's ruler read it with Go's.
//!
//! Keys are fixed words of this program (`groups`, `expr`, a validated label name), so they
//! are written plain; [`Yaml::render`] refuses any other key.

use std::fmt::Write as _;

/// A YAML document made of strings, mappings (in order) and sequences.
#[derive(Clone, Debug, PartialEq)]
pub enum Yaml {
    Str(String),
    Map(Vec<(String, Yaml)>),
    Seq(Vec<Yaml>),
}

impl Yaml {
    pub fn str(s: impl Into<String>) -> Yaml {
        Yaml::Str(s.into())
    }

    /// The document, ending in a newline.
    ///
    /// # Panics
    /// When a key is not a plain word (`[A-Za-z_][A-Za-z0-9_]*`): keys come from this
    /// program, never from its input.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write_block(&mut out, 0);
        out
    }

    /// Writes `self` as the value after `key:` or a `- `, or as the document, at `indent`.
    fn write_block(&self, out: &mut String, indent: usize) {
        match self {
            Yaml::Str(s) => {
                out.push_str(&quote(s));
                out.push('\n');
            }
            Yaml::Map(entries) if entries.is_empty() => out.push_str("{}\n"),
            Yaml::Seq(items) if items.is_empty() => out.push_str("[]\n"),
            Yaml::Map(entries) => {
                for (i, (key, value)) in entries.iter().enumerate() {
                    // The first key of a map in a sequence goes on the `- ` line.
                    if i > 0 || !out.ends_with("- ") {
                        pad(out, indent);
                    }
                    assert!(is_plain_key(key), "YAML key {key:?} is not a plain word");
                    out.push_str(key);
                    out.push(':');
                    value.write_value(out, indent + 2);
                }
            }
            Yaml::Seq(items) => {
                for item in items {
                    pad(out, indent);
                    out.push_str("- ");
                    item.write_block(out, indent + 2);
                }
            }
        }
    }

    /// Writes `self` after `key:`: inline for a string or an empty collection, else on the
    /// next lines.
    fn write_value(&self, out: &mut String, indent: usize) {
        let nested = match self {
            Yaml::Map(m) => !m.is_empty(),
            Yaml::Seq(s) => !s.is_empty(),
            Yaml::Str(_) => false,
        };
        if nested {
            out.push('\n');
            // A sequence under a key may sit at the key's own indentation; two more reads
            // better and is just as valid.
            self.write_block(out, indent);
        } else {
            out.push(' ');
            self.write_block(out, indent);
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    let _ = write!(out, "{:indent$}", "");
}

fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A YAML double-quoted scalar holding exactly `s`. Escapes `"` and `\`, and writes every
/// character YAML does not allow raw (C0 and C1 controls, DEL, U+FEFF, U+FFFE, U+FFFF) as
/// an escape, so that any string, newlines included, stays one scalar on one line.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A YAML comment line (`# …`) holding `text` with anything that could end the comment
/// (a line break, a control character) escaped.
pub fn comment(text: &str) -> String {
    let quoted = quote(text);
    format!("# {}\n", &quoted[1..quoted.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Yaml)]) -> Yaml {
        Yaml::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn block_layout() {
        let doc = map(&[(
            "groups",
            Yaml::Seq(vec![map(&[
                ("name", Yaml::str("g")),
                ("rules", Yaml::Seq(vec![map(&[("alert", Yaml::str("A")), ("labels", map(&[]))])])),
                ("empty", Yaml::Seq(vec![])),
            ])]),
        )]);
        assert_eq!(
            doc.render(),
            "groups:\n  - name: \"g\"\n    rules:\n      - alert: \"A\"\n        labels: {}\n    empty: []\n"
        );
    }

    #[test]
    fn strings_stay_one_scalar() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(quote("\u{7f}\u{85}\u{feff}x"), r#""\u007f\u0085\ufeffx""#);
        assert_eq!(quote("no"), "\"no\"");
        assert_eq!(comment("a\n- alert: X"), "# a\\n- alert: X\n");
    }

    #[test]
    #[should_panic(expected = "not a plain word")]
    fn keys_are_words() {
        map(&[("a: b", Yaml::str("x"))]).render();
    }
}
