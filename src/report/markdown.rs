//! Markdown (GitHub-flavoured tables), for cron jobs writing weekly reports and for PR
//! comments. Names come from the data, so `|`, backticks and line breaks in them are
//! escaped: a model called `a|b` must not add a column.

use super::text;
use crate::digest::Digest;

pub fn render(d: &Digest) -> String {
    let mut out = String::from("# Agent cost and usage digest\n\n");
    for line in text::heading(d) {
        out.push_str(&format!("- {}\n", escape(&line)));
    }
    out.push('\n');
    if d.is_empty() {
        out.push_str(&format!("**{}**\n\n", escape(&text::empty_notice(d))));
    }
    for t in text::tables(d) {
        if d.is_empty() && t.title != "Totals" {
            continue;
        }
        out.push_str(&format!("## {}\n\n", escape(&t.title)));
        let (names, right): (Vec<_>, Vec<_>) = t.columns().unzip();
        out.push_str(&format!("| {} |\n", names.join(" | ")));
        let rule: Vec<&str> = right.iter().map(|&r| if r { "---:" } else { "---" }).collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &t.rows {
            let cells: Vec<String> = row.iter().map(|c| escape(&c.text)).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out.push('\n');
    }
    if !d.warnings.is_empty() {
        out.push_str("## Warnings\n\n");
        for w in &d.warnings {
            out.push_str(&format!("- {}\n", escape(w)));
        }
        out.push('\n');
    }
    out
}

/// Makes text inert inside a table cell or list item.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '\\' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_what_would_break_a_table() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("`rm -rf`"), "\\`rm -rf\\`");
        assert_eq!(escape("line\nbreak"), "line break");
        assert_eq!(escape("claude-sonnet-4-5"), "claude-sonnet-4-5");
    }
}
