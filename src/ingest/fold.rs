//! How one status event moves a message (DESIGN §2), with no I/O.
//!
//! A message's status is the one its latest status event says, by event time, so the order in
//! which events arrive does not matter: an event older than the message's current status is
//! logged and changes nothing. At the same instant a later stage wins (request < deliver <
//! soft_bounce / invalid). A message that was suppressed at request never changes again.

use crate::domain::{Millis, Reason, Status};
use crate::store::models::Message;

/// The prefix of the rule of a message that suppression made invalid at request.
pub const SUPPRESSED: &str = "suppressed";

/// A status event's verdict on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusStep {
    pub status: Status,
    pub reason: Option<Reason>,
    pub smtp_reply: Option<String>,
    pub rule: Option<String>,
    pub at: Millis,
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

/// Applies `step` to `message` when it is at least as recent as the message's status;
/// answers whether the message changed.
pub fn apply(message: &mut Message, step: &StatusStep) -> bool {
    if is_locked(message) {
        return false;
    }
    // Nothing happens to a message before its request; an event stamped earlier (a clock
    // that counts whole seconds, say) happened just after it.
    let at = step.at.max(message.requested_at);
    let current = (message.updated_at, stage(message.status()));
    if (at, stage(step.status)) < current {
        return false;
    }
    let reason = step.reason.map(|r| r.project(step.status));
    message.status = step.status.as_i16();
    message.reason = match step.status {
        Status::SoftBounce | Status::Invalid => Some(reason.unwrap_or(Reason::Other).as_i16()),
        Status::Requesting | Status::Delivered => None,
    };
    message.smtp_reply = step.smtp_reply.clone();
    message.rule = step.rule.clone();
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
                apply(&mut m, &steps[i]);
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
        assert!(!apply(&mut m, &step(Status::Delivered, None, 50)));
        assert_eq!(m.status(), Status::Invalid);
    }

    #[test]
    fn at_the_same_instant_the_later_stage_wins() {
        let mut m = requested(10);
        assert!(apply(&mut m, &step(Status::Invalid, None, 10)));
        assert!(!apply(&mut m, &step(Status::Delivered, None, 10)));
        assert_eq!(m.status(), Status::Invalid);
        assert_eq!(m.reason(), Some(Reason::Other));
    }

    #[test]
    fn events_stamped_before_the_request_count_from_the_request() {
        let mut m = requested(10_700);
        assert!(apply(&mut m, &step(Status::Delivered, None, 10_000)));
        assert_eq!(m.status(), Status::Delivered);
        assert_eq!(m.updated_at, 10_700);
    }
}
