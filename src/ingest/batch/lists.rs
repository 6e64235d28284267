//! What a batch adds to the suppression lists, kept in memory as well so that a later
//! request in the same batch sees it.

use super::{Batch, Step};
use crate::domain::{
    bounce_backoff_ms, ListEntry, ListKind, Millis, Reason, UnsubscribeReason, SPAM_REPORT_TTL_MS,
};
use crate::ingest::EventKind;
use crate::store::lists::{BounceHit, SpamHit, UnsubscribeHit};

impl Batch<'_> {
    pub(super) fn add_bounce(&mut self, address: &str, email_id: &str, step: &Step) {
        let entries = self.list_entries.entry(address.to_string()).or_default();
        let count = entries
            .iter()
            .filter(|e| e.list == ListKind::Bounces)
            .filter_map(|e| e.bounce_count)
            .max()
            .unwrap_or(0)
            + 1;
        entries.push(ListEntry {
            list: ListKind::Bounces,
            id: 0,
            address: address.to_string(),
            reason: step.smtp_reply.clone(),
            source: Some("delivery".into()),
            email_id: Some(email_id.to_string()),
            api_user: None,
            tag: None,
            created_at: step.at,
            expires_at: Some(step.at + bounce_backoff_ms(count)),
            bounce_count: Some(count),
        });
        self.bounces.push(BounceHit {
            address: address.to_string(),
            reason_text: step
                .smtp_reply
                .clone()
                .unwrap_or_else(|| Reason::AddressNotFound.label("en").to_string()),
            email_id: Some(email_id.to_string()),
            at: step.at,
        });
    }

    /// Unsubscribes and complaints fill their lists, with or without a message.
    pub(super) fn list_effects(
        &mut self,
        address: &str,
        email_id: Option<&str>,
        api_user: Option<String>,
        tag: Option<String>,
        step: &Step,
    ) {
        let mut complaint = step.kind == EventKind::ReportSpam;
        if step.kind == EventKind::Unsubscribe {
            let reason = step
                .detail
                .as_deref()
                .and_then(UnsubscribeReason::from_code)
                .unwrap_or(UnsubscribeReason::NotWanted);
            complaint = reason.is_complaint();
            self.unsubscribes.push(UnsubscribeHit {
                address: address.to_string(),
                reason: reason.code().to_string(),
                source: "recipient".into(),
                email_id: email_id.map(str::to_string),
                api_user: api_user.clone(),
                tag,
                at: step.at,
            });
            self.remember(address, ListKind::Unsubscribes, step.at, None);
        }
        if complaint {
            self.spam_reports.push(SpamHit {
                address: address.to_string(),
                email_id: email_id.map(str::to_string),
                api_user,
                at: step.at,
            });
            let until = step.at + SPAM_REPORT_TTL_MS;
            self.remember(address, ListKind::SpamReports, step.at, Some(until));
        }
    }

    /// Keeps a list entry this batch adds, so a later request in the same batch sees it.
    fn remember(&mut self, address: &str, list: ListKind, at: Millis, until: Option<Millis>) {
        self.list_entries
            .entry(address.to_string())
            .or_default()
            .push(ListEntry {
                list,
                id: 0,
                address: address.to_string(),
                reason: None,
                source: None,
                email_id: None,
                api_user: None,
                tag: None,
                created_at: at,
                expires_at: until,
                bounce_count: None,
            });
    }
}
