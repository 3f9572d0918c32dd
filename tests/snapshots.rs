//! Every format of the fixture digest, snapshotted: a change in what users see is a
//! visible diff in review (`cargo insta review`).

mod common;

use common::{fixture_cmd, fixture_digest, stdout_of};

#[test]
fn markdown() {
    insta::assert_snapshot!(stdout_of(&mut fixture_digest(&["--format", "markdown"])));
}

#[test]
fn table() {
    insta::assert_snapshot!(stdout_of(&mut fixture_digest(&["--format", "table"])));
}

#[test]
fn json() {
    insta::assert_snapshot!(stdout_of(&mut fixture_digest(&["--format", "json"])));
}

#[test]
fn csv_sections() {
    for section in ["totals", "by_model", "by_agent", "by_variant", "by_session", "daily"] {
        let csv = stdout_of(&mut fixture_digest(&["--format", "csv", "--csv-section", section]));
        insta::assert_snapshot!(format!("csv_{section}"), csv);
    }
}

#[test]
fn markdown_in_berlin_without_comparison() {
    let args = ["--week", "2026-W47", "--tz", "Europe/Berlin", "--format", "markdown", "--no-compare", "--top", "3"];
    insta::assert_snapshot!(stdout_of(&mut fixture_cmd(&args)));
}
