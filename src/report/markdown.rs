//! Markdown (GitHub-flavoured tables), for cron jobs writing weekly reports and for PR
//! comments. Names come from the data, so `|`, backticks and line breaks in them are
//! escaped: a model called `a|b` must not add a column. The daily cost is also a Mermaid
//! bar chart, which GitHub and GitLab draw; only dates and numbers reach it.

use super::text::{self, Chart};
use crate::digest::Digest;
use crate::usd::Usd;

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
        if let Some(chart) = &t.chart {
            out.push_str(&mermaid(&t.title, chart));
        }
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

/// A Mermaid `xychart-beta` block: a bar per point, labelled `11-16`, on a USD axis from
/// zero (Mermaid would start it at the lowest bar) to the highest bar rounded up. Values
/// are exact decimals.
fn mermaid(title: &str, chart: &Chart) -> String {
    let labels: Vec<String> = chart.points.iter().map(|(date, _)| format!("\"{}\"", date.format("%m-%d"))).collect();
    let values: Vec<String> = chart.points.iter().map(|(_, cost)| cost.decimal()).collect();
    format!(
        "```mermaid\nxychart-beta\n    title \"{}\"\n    x-axis [{}]\n    y-axis \"USD\" 0 --> {}\n    bar [{}]\n```\n\n",
        mermaid_text(title),
        labels.join(", "),
        axis_top(chart.max()).decimal(),
        values.join(", "),
    )
}

/// `usd` rounded up to two significant digits: $1.46 → 1.5, $0.0042 → 0.0042.
fn axis_top(usd: Usd) -> Usd {
    let pico = usd.pico().max(1);
    let unit = 10i128.pow(pico.ilog10().saturating_sub(1));
    Usd::from_pico((pico + unit - 1) / unit * unit)
}

/// Text inside a Mermaid string: a `"` would end it and a line break the statement, and
/// Mermaid has no escapes, so only plain characters are kept.
fn mermaid_text(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric() || " ()/_+-.,:".contains(*c)).collect()
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
            // Spelled out, so a name shows whole and a row stays on its line.
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn mermaid_chart_of_small_costs() {
        let day = |d: u32, usd: f64| (NaiveDate::from_ymd_opt(2026, 11, d).unwrap(), Usd::from_f64(usd).unwrap());
        let chart = Chart { points: vec![day(16, 0.0042), day(17, 0.0), day(18, 0.00042)] };
        assert_eq!(
            mermaid("Daily cost (Europe/Berlin) \"x\"\n%%{init}", &chart),
            "```mermaid\nxychart-beta\n    title \"Daily cost (Europe/Berlin) xinit\"\n    \
             x-axis [\"11-16\", \"11-17\", \"11-18\"]\n    y-axis \"USD\" 0 --> 0.0042\n    \
             bar [0.0042, 0, 0.00042]\n```\n\n"
        );
    }

    #[test]
    fn the_axis_ends_just_above_the_highest_bar() {
        let top = |usd: f64| axis_top(Usd::from_f64(usd).unwrap()).decimal();
        assert_eq!(top(1.46), "1.5");
        assert_eq!(top(1.5), "1.5");
        assert_eq!(top(391.898925), "400");
        assert_eq!(top(0.004213), "0.0043");
        assert_eq!(top(9.91), "10");
        assert_eq!(axis_top(Usd::from_pico(7)).pico(), 7);
    }

    #[test]
    fn escapes_what_would_break_a_table() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("`rm -rf`"), "\\`rm -rf\\`");
        assert_eq!(escape("line\nbreak"), "line\\u{a}break");
        assert_eq!(escape("esc\x1b[0m"), "esc\\u{1b}\\[0m");
        assert_eq!(escape("claude-sonnet-4-5"), "claude-sonnet-4-5");
    }
}
