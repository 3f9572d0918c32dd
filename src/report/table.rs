//! The terminal format: comfy-table tables under plain headings, the daily cost's chart a
//! sparkline beside its heading.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{modifiers::UTF8_ROUND_CORNERS, Attribute, CellAlignment, Color, Table};

use super::text::{self, Chart, Tone};
use crate::digest::Digest;

pub fn render(d: &Digest, color: bool) -> String {
    let mut out = String::new();
    for line in text::heading(d) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
    if d.is_empty() {
        out.push_str(&text::empty_notice(d));
        out.push('\n');
    }
    for t in text::tables(d) {
        if d.is_empty() && t.title != "Totals" {
            continue;
        }
        out.push_str(&t.title);
        if let Some(chart) = &t.chart {
            out.push_str("  ");
            out.push_str(&sparkline(chart));
        }
        out.push('\n');
        out.push_str(&draw(&t, color).to_string());
        out.push_str("\n\n");
    }
    // Warnings go to standard error, beside the table rather than inside it.
    out
}

fn draw(t: &text::TextTable, color: bool) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).apply_modifier(UTF8_ROUND_CORNERS);
    if !color {
        table.force_no_tty();
    } else {
        table.enforce_styling();
    }
    let align: Vec<bool> = t.columns().map(|(_, right)| right).collect();
    table.set_header(t.columns().map(|(h, right)| {
        let cell = comfy_table::Cell::new(h).set_alignment(alignment(right));
        if color {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }));
    for row in &t.rows {
        table.add_row(row.iter().zip(&align).map(|(c, &right)| {
            let cell = comfy_table::Cell::new(super::visible(&c.text)).set_alignment(alignment(right));
            match (color, c.tone) {
                (true, Tone::Worse) => cell.fg(Color::Red),
                (true, Tone::Better) => cell.fg(Color::Green),
                (true, Tone::Muted) => cell.fg(Color::DarkGrey),
                _ => cell,
            }
        }));
    }
    table
}

fn alignment(right: bool) -> CellAlignment {
    if right {
        CellAlignment::Right
    } else {
        CellAlignment::Left
    }
}

/// `▄█▅▇▃▂▆`: zero to the highest point in eight steps, `▁` to `█`, each point on the
/// nearest (any cost shows as at least `▁`); a point that cost nothing is a blank.
fn sparkline(chart: &Chart) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = chart.max().pico().max(1);
    chart
        .points
        .iter()
        .map(|(_, cost)| match cost.pico() {
            p if p <= 0 => ' ',
            p => BARS[((p * 14 + max) / (2 * max)).clamp(0, 7) as usize],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usd::Usd;

    fn chart(costs: &[f64]) -> Chart {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 16).unwrap();
        Chart { points: costs.iter().map(|&c| (day, Usd::from_f64(c).unwrap())).collect() }
    }

    #[test]
    fn sparkline_is_scaled_to_the_highest_point() {
        assert_eq!(sparkline(&chart(&[0.4, 1.0, 3.0, 4.4, 7.0])), "▁▂▄▅█");
        assert_eq!(sparkline(&chart(&[0.0, 0.0001, 7.0, 6.0, 6.6, 3.5])), " ▁█▇█▅");
        assert_eq!(sparkline(&chart(&[0.0042, 0.0021])), "█▅");
    }
}
