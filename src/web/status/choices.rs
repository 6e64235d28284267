//! The choices of the filter form (statuses, reasons, mail types, rows per page, date
//! presets) and the one-line summary of the filter.

use chrono::Utc;

use super::tabs::show_count;
use super::Viewer;
use crate::domain::{MailType, Reason, Status};
use crate::store::status::Count;
use crate::web::filters::{
    text, Choice, ChoiceGroup, Parsed, Preset, StatusForm, PER_PAGE_CHOICES,
};

/// The rows-per-page choices, the current one selected.
pub(super) fn per_page_choices(per_page: i64) -> Vec<Choice> {
    PER_PAGE_CHOICES
        .iter()
        .map(|n| Choice {
            value: n.to_string(),
            label: n.to_string(),
            selected: *n == per_page,
        })
        .collect()
}

pub(super) fn status_choices(viewer: &Viewer, chosen: Option<Status>) -> Vec<Choice> {
    let lang = viewer.lang;
    std::iter::once(Choice {
        value: String::new(),
        label: lang.t("filter.any"),
        selected: chosen.is_none(),
    })
    .chain(Status::ALL.iter().map(|s| Choice {
        value: s.code().into(),
        label: s.label(lang.code()).into(),
        selected: chosen == Some(*s),
    }))
    .collect()
}

/// The reasons grouped under the status they occur with; with a status chosen, only its own.
pub(super) fn reason_groups(
    viewer: &Viewer,
    chosen_status: Option<Status>,
    chosen_reason: Option<Reason>,
    counts: &[(Status, Option<Reason>, Count)],
) -> Vec<ChoiceGroup> {
    let lang = viewer.lang;
    let reason_label = |s: Status, r: Reason| {
        let count = counts
            .iter()
            .find(|(st, rr, _)| *st == s && *rr == Some(r))
            .map(|(_, _, c)| format!(" ({})", show_count(c)))
            .unwrap_or_default();
        format!("{}{count}", r.label_in(s, lang.code()))
    };
    let mut groups = vec![ChoiceGroup {
        label: String::new(),
        choices: vec![Choice {
            value: String::new(),
            label: lang.t("filter.any"),
            selected: chosen_reason.is_none(),
        }],
    }];
    let offered: Vec<Status> = match chosen_status {
        Some(s) => vec![s],
        None => Status::ALL.to_vec(),
    };
    for s in offered
        .into_iter()
        .filter(|s| !s.allowed_reasons().is_empty())
    {
        groups.push(ChoiceGroup {
            label: s.label(lang.code()).to_string(),
            choices: s
                .allowed_reasons()
                .iter()
                .map(|&r| Choice {
                    value: if chosen_status.is_some() {
                        r.code().to_string()
                    } else {
                        format!("{}:{}", s.code(), r.code())
                    },
                    label: reason_label(s, r),
                    selected: chosen_status == Some(s) && chosen_reason == Some(r),
                })
                .collect(),
        });
    }
    groups
}

pub(super) fn mail_type_choices(viewer: &Viewer, form: &StatusForm) -> Vec<Choice> {
    let lang = viewer.lang;
    let value = text(&form.mail_type).unwrap_or_default();
    std::iter::once(Choice {
        value: String::new(),
        label: lang.t("filter.any"),
        selected: value.is_empty(),
    })
    .chain(MailType::ALL.iter().map(|m| Choice {
        value: m.code().into(),
        label: m.label(lang.code()).into(),
        selected: value == m.code(),
    }))
    .collect()
}

/// Presets beside the dates: whole days in the account's time zone.
pub(super) fn presets(viewer: &Viewer, form: &StatusForm, parsed: &Parsed) -> Vec<Preset> {
    let failed = !parsed.errors.is_empty();
    let today = Utc::now()
        .with_timezone(&viewer.account.zone())
        .date_naive();
    [
        ("today", "filter.preset_today", 0),
        ("24h", "filter.preset_24h", 1),
        ("7d", "filter.preset_7d", 6),
        ("30d", "filter.preset_30d", 29),
    ]
    .into_iter()
    .map(|(code, key, back)| {
        let from = (today - chrono::Duration::days(back)).to_string();
        let to = today.to_string();
        Preset {
            code,
            label: viewer.lang.t(key),
            active: !failed
                && parsed.period.from.to_string() == from
                && parsed.period.to.to_string() == to,
            href: format!(
                "/status?{}",
                form.query_with(&[("from", &from), ("to", &to)])
            ),
        }
    })
    .collect()
}

/// One line that says what the folded filter holds.
pub(super) fn summary(viewer: &Viewer, parsed: &Parsed) -> String {
    let lang = viewer.lang;
    let f = &parsed.filter;
    let mut summary = vec![format!("{} – {}", parsed.period.from, parsed.period.to)];
    if let Some(s) = f.status {
        summary.push(s.label(lang.code()).to_string());
    }
    if let Some(r) = f.reason {
        summary.push(r.label(lang.code()).to_string());
    }
    if let Some(p) = &f.provider {
        summary.push(crate::domain::providers::provider_name(p, lang.code()));
    }
    for v in [
        &f.recipient,
        &f.subject,
        &f.sender,
        &f.email_id,
        &f.tag,
        &f.api_user,
    ]
    .into_iter()
    .flatten()
    {
        summary.push(v.clone());
    }
    if let Some(m) = f.mail_type {
        summary.push(m.label(lang.code()).to_string());
    }
    summary.join(" · ")
}
