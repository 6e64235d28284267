//! Classifier tests on fixtures written for this project: whole messages (`messages`),
//! single SMTP replies and the rules (`replies`), and garbage that must not panic
//! (`robustness`).

mod messages;
mod replies;
mod robustness;

use super::*;

fn classify(raw: &str) -> Classification {
    Classifier::new().classify_message(raw.as_bytes())
}

fn reply(line: &str) -> Classification {
    Classifier::new().classify_reply(line)
}

/// The reason and detail decided, with the rule that decided them said on failure.
#[track_caller]
fn assert_outcome(c: &Classification, expected: (Option<&str>, Option<&str>)) {
    assert_eq!((c.reason, c.detail), expected, "{}", c.rule);
}

/// The reason decided, with the rule that decided it said on failure.
#[track_caller]
fn assert_reason(c: &Classification, expected: Option<&str>) {
    assert_eq!(c.reason, expected, "{}", c.rule);
}
