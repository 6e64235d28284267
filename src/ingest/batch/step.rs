//! What applying one event needs, from a fresh event or from the log.

use super::super::{classifier, Event, EventKind};
use crate::domain::{Millis, Reason, Status, UnsubscribeReason};
use crate::store::models::MessageEvent;

/// An event as the log keeps it, which is also all that applying it needs — so that events
/// that waited in the log for their request apply exactly like fresh ones.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) kind: EventKind,
    pub(super) at: Millis,
    pub(super) smtp_reply: Option<String>,
    pub(super) reason: Option<Reason>,
    /// Failures: the classifier's detail; clicks: the URL; unsubscribes: the reason code.
    pub(super) detail: Option<String>,
    pub(super) rule: Option<String>,
    pub(super) ip: Option<String>,
    pub(super) user_agent: Option<String>,
    pub(super) send_log: Vec<String>,
    /// The MX host the MTA spoke to, when reported.
    pub(super) mx: Option<String>,
}

impl Step {
    pub(super) fn of(event: &Event) -> Step {
        let mut step = Step {
            kind: event.kind,
            at: event.occurred_at,
            smtp_reply: event.smtp_reply.clone().filter(|r| !r.trim().is_empty()),
            reason: event.reason,
            detail: event.detail.clone(),
            rule: event.rule.clone(),
            ip: event.ip.clone(),
            user_agent: event.user_agent.clone(),
            send_log: event.send_log.clone(),
            mx: event.mx.clone(),
        };
        match event.kind {
            EventKind::SoftBounce | EventKind::Invalid | EventKind::Bounce => step.resolve_reason(),
            EventKind::Click => step.detail = event.url.clone(),
            EventKind::Unsubscribe => {
                let reason = event
                    .unsubscribe_reason
                    .unwrap_or(UnsubscribeReason::NotWanted);
                step.detail = Some(reason.code().to_string());
            }
            _ => {}
        }
        step
    }

    /// A failure without a reason gets the classifier's verdict on its SMTP reply.
    fn resolve_reason(&mut self) {
        if let Some(reason) = self.reason {
            self.rule
                .get_or_insert_with(|| format!("reason given: {}", reason.code()));
            return;
        }
        match &self.smtp_reply {
            Some(reply) => {
                let verdict = classifier().classify_reply(reply);
                self.reason = Some(
                    verdict
                        .reason
                        .and_then(Reason::from_code)
                        .unwrap_or(Reason::Other),
                );
                if self.detail.is_none() {
                    self.detail = verdict.detail.map(str::to_string);
                }
                self.rule.get_or_insert(verdict.rule);
            }
            None => {
                self.reason = Some(Reason::Other);
                self.rule
                    .get_or_insert_with(|| "no SMTP reply or reason given".to_string());
            }
        }
    }

    pub(super) fn of_log(row: &MessageEvent) -> Option<Step> {
        let kind = EventKind::from_code(&row.kind)?;
        let reason = row.reason.and_then(Reason::from_i16);
        Some(Step {
            kind,
            at: row.occurred_at,
            smtp_reply: row.smtp_reply.clone(),
            reason,
            detail: row.detail.clone(),
            rule: reason.map(|r| format!("reason: {}", r.code())),
            ip: None,
            user_agent: None,
            send_log: Vec::new(),
            mx: row.mx.clone(),
        })
    }

    pub(super) fn status(&self) -> Option<Status> {
        match self.kind {
            EventKind::Deliver => Some(Status::Delivered),
            EventKind::SoftBounce => Some(Status::SoftBounce),
            // A bounce report's state is decided in `fold` (for the lists: invalid).
            EventKind::Invalid | EventKind::Bounce => Some(Status::Invalid),
            _ => None,
        }
    }
}
