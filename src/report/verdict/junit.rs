//! The verdict as JUnit XML (quick-junit), the report GitLab, Jenkins, CircleCI and
//! Buildkite show natively: one test case per check. A regression is a `failure`; data
//! that could not decide a check is an `error` (or `skipped` with `--allow-missing`).

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::sentence;
use crate::gate::{Outcome, Verdict};

pub fn render(v: &Verdict) -> Vec<u8> {
    let mut suite = TestSuite::new("obsctl gate");
    for c in &v.checks {
        let mut status = match c.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type("regression");
                s
            }
            _ if v.allow_missing => TestCaseStatus::skipped(),
            _ => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_type("insufficient data");
                s
            }
        };
        if c.outcome != Outcome::Pass {
            status.set_message(sentence(c));
        }
        let name = match &c.subject {
            Some(s) => format!("{} ({s})", c.name),
            None => c.name.clone(),
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(format!("obsctl.gate.{}", c.id));
        case.set_system_out(sentence(c));
        suite.add_test_case(case);
    }
    let mut report = Report::new("obsctl gate");
    report.add_test_suite(suite);
    // Serialising into memory fails only on an I/O error, which a Vec does not have.
    report.to_string().map(String::into_bytes).unwrap_or_default()
}
