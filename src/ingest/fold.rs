//! How one status event moves a message (DESIGN §2), with no I/O.
//!
//! A message's status is the one its latest status event says, by event time, so the order in
//! which events arrive does not matter: an event older than the message's current status is
//! logged and changes nothing. At the same instant a later stage wins (request < deliver <
//! soft_bounce / invalid). A message that was suppressed at request never changes again.
//!
//! A *bounce report* (an ESP's bounce notice, which does not say whether the mail had been
//! accepted) lands as `soft_bounce` when the message is known delivered at or before it, else
//! as `invalid` (DESIGN §2). Its rule is marked, so that a delivery older than it that arrives
//! later turns the `invalid` into `soft_bounce`: the end state is the same in any arrival order.

use crate::domain::{Millis, Reason, Status};
use crate::store::models::Message;

/// The prefix of the rule of a message that suppression made invalid at request.
pub const SUPPRESSED: &str = "suppressed";
/// The prefix of the rule of a message whose latest failure is a bounce report.
pub const BOUNCE_REPORT: &str = "bounce report";

/// A status event's verdict on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusStep {
    pub status: Status,
    pub reason: Option<Reason>,
    pub smtp_reply: Option<String>,
    pub rule: Option<String>,
    pub at: Millis,
    /// A bounce report: `status` is decided by whether the message was delivered before it.
    pub bounce_report: bool,
}

fn stage(status: Status) -> u8 {
    match status {
        Status::Requesting => 0,
        Status::Delivered => 1,
        Status::SoftBounce | Status::Invalid => 2,
    }
}

/// True when suppression at request made this message invalid for good.
pub fn is_locked(message: &Message) -> bool {
    message.status() == Status::Invalid
        && message
            .rule
            .as_deref()
            .is_some_and(|r| r.starts_with(SUPPRESSED))
}

/// True when the message's latest failure is a bounce report.
pub fn is_bounce_report(message: &Message) -> bool {
    message
        .rule
        .as_deref()
        .is_some_and(|r| r.starts_with(BOUNCE_REPORT))
}

/// Applies `step` to `message` when it is at least as recent as the message's status;
/// answers whether the message changed. `first_delivery` is the earliest delivery of the
/// message known so far (this step's included), which decides what a bounce report is.
pub fn apply(message: &mut Message, step: &StatusStep, first_delivery: Option<Millis>) -> bool {
    if is_locked(message) {
        return false;
    }
    // Nothing happens to a message before its request; an event stamped earlier (a clock
    // that counts whole seconds, say) happened just after it.
    let at = step.at.max(message.requested_at);
    let status = if step.bounce_report {
        let delivered_before = first_delivery.is_some_and(|d| d.max(message.requested_at) <= at);
        if delivered_before {
            Status::SoftBounce
        } else {
            Status::Invalid
        }
    } else {
        step.status
    };
    let current = (message.updated_at, stage(message.status()));
    if (at, stage(status)) < current {
        // A delivery older than a bounce report that found the message undelivered: the mail
        // had been accepted after all.
        let late_delivery = status == Status::Delivered
            && message.status() == Status::Invalid
            && is_bounce_report(message);
        if late_delivery {
            message.status = Status::SoftBounce.as_i16();
            let reason = message.reason().unwrap_or(Reason::Other);
            message.reason = Some(reason.project(Status::SoftBounce).as_i16());
            return true;
        }
        return false;
    }
    let reason = step.reason.map(|r| r.project(status));
    message.status = status.as_i16();
    message.reason = match status {
        Status::SoftBounce | Status::Invalid => Some(reason.unwrap_or(Reason::Other).as_i16()),
        Status::Requesting | Status::Delivered => None,
    };
    message.smtp_reply = step.smtp_reply.clone();
    message.rule = match (&step.rule, step.bounce_report) {
        (Some(rule), true) => Some(format!("{BOUNCE_REPORT}: {rule}")),
        (None, true) => Some(BOUNCE_REPORT.to_string()),
        (rule, false) => rule.clone(),
    };
    message.updated_at = at;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(at: Millis) -> Message {
        Message {
            id: 1,
            account_id: 1,
            email_id: "e".into(),
            recipient: "a@x.com".into(),
            api_user: "u".into(),
            mail_type: 1,
            tags: String::new(),
            sender: String::new(),
            subject: String::new(),
            status: Status::Requesting.as_i16(),
            reason: None,
            smtp_reply: None,
            rule: None,
            requested_at: at,
            updated_at: at,
            provider: "x.com".into(),
        }
    }

    fn step(status: Status, reason: Option<Reason>, at: Millis) -> StatusStep {
        StatusStep {
            status,
            reason,
            smtp_reply: None,
            rule: None,
            at,
            bounce_report: false,
        }
    }

    fn report(reason: Reason, at: Millis) -> StatusStep {
        StatusStep {
            bounce_report: true,
            ..step(Status::Invalid, Some(reason), at)
        }
    }

    #[test]
    fn the_latest_event_wins_whatever_the_arrival_order() {
        let steps = [
            step(Status::Delivered, None, 20),
            step(Status::SoftBounce, Some(Reason::BadAddress), 30),
            step(Status::Requesting, None, 10),
        ];
        for order in [[0, 1, 2], [1, 0, 2], [2, 1, 0], [1, 2, 0]] {
            let mut m = requested(10);
            for i in order {
                apply(&mut m, &steps[i], None);
            }
            assert_eq!(m.status(), Status::SoftBounce);
            assert_eq!(m.reason(), Some(Reason::AddressNotFound), "projected");
            assert_eq!(m.updated_at, 30);
        }
    }

    #[test]
    fn suppressed_messages_never_change() {
        let mut m = requested(10);
        m.status = Status::Invalid.as_i16();
        m.reason = Some(Reason::Blacklisted.as_i16());
        m.rule = Some(format!("{SUPPRESSED}: blacklist a@x.com"));
        assert!(!apply(&mut m, &step(Status::Delivered, None, 50), Some(50)));
        assert_eq!(m.status(), Status::Invalid);
    }

    #[test]
    fn at_the_same_instant_the_later_stage_wins() {
        let mut m = requested(10);
        assert!(apply(&mut m, &step(Status::Invalid, None, 10), None));
        assert!(!apply(&mut m, &step(Status::Delivered, None, 10), Some(10)));
        assert_eq!(m.status(), Status::Invalid);
        assert_eq!(m.reason(), Some(Reason::Other));
    }

    #[test]
    fn events_stamped_before_the_request_count_from_the_request() {
        let mut m = requested(10_700);
        assert!(apply(
            &mut m,
            &step(Status::Delivered, None, 10_000),
            Some(10_000)
        ));
        assert_eq!(m.status(), Status::Delivered);
        assert_eq!(m.updated_at, 10_700);
    }

    #[test]
    fn a_bounce_report_is_soft_after_a_delivery_in_any_order() {
        let delivered = step(Status::Delivered, None, 20);
        let bounced = report(Reason::ServerUnreachable, 30);
        // Delivery first: the report finds it delivered.
        let mut m = requested(10);
        assert!(apply(&mut m, &delivered, Some(20)));
        assert!(apply(&mut m, &bounced, Some(20)));
        assert_eq!(m.status(), Status::SoftBounce);
        let first = m.clone();
        // The report first: invalid until the older delivery arrives.
        let mut m = requested(10);
        assert!(apply(&mut m, &bounced, None));
        assert_eq!(m.status(), Status::Invalid);
        assert_eq!(m.reason(), Some(Reason::ServerUnreachable));
        assert!(apply(&mut m, &delivered, Some(20)));
        let key = |m: &Message| (m.status, m.reason, m.rule.clone(), m.updated_at);
        assert_eq!(key(&m), key(&first));
        assert_eq!(m.reason(), Some(Reason::ServiceUnavailable), "projected");
        assert!(m.rule.as_deref().unwrap().starts_with(BOUNCE_REPORT));
    }

    #[test]
    fn a_bounce_report_without_a_delivery_before_it_is_invalid() {
        let mut m = requested(10);
        assert!(apply(&mut m, &report(Reason::AddressNotFound, 30), None));
        assert_eq!(m.status(), Status::Invalid);
        // A delivery after the report is the latest word.
        assert!(apply(&mut m, &step(Status::Delivered, None, 40), Some(40)));
        assert_eq!(m.status(), Status::Delivered);
        // An explicit invalid is never turned soft by a late delivery.
        let mut m = requested(10);
        assert!(apply(&mut m, &step(Status::Invalid, None, 30), None));
        assert!(!apply(&mut m, &step(Status::Delivered, None, 20), Some(20)));
        assert_eq!(m.status(), Status::Invalid);
    }
}
