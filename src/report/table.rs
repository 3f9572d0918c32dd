//! The terminal format: comfy-table tables under plain headings.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{modifiers::UTF8_ROUND_CORNERS, Attribute, CellAlignment, Color, Table};

use super::text::{self, Tone};
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
            let cell = comfy_table::Cell::new(&c.text).set_alignment(alignment(right));
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
