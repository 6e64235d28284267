//! The filter forms of the list pages and the opens/clicks page, as typed and as parsed, their
//! page cursors, and the small helpers every filter form shares. Adding a filter field is one
//! edit here plus the template.

use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::auth::Viewer;
use crate::domain::providers::is_provider_id;
use crate::domain::{
    day_start, EmailAddress, MailType, Period, PeriodError, Reason, Status, TrackKind,
};
use crate::store::lists::{ListFilter, ListPosition};
use crate::store::status::{Direction, Position, StatusFilter};
use crate::store::tracking::TrackingFilter;

mod status_form;
pub use status_form::*;

/// A form field with its surrounding blanks trimmed; None when nothing is left.
pub fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The field a period error belongs to and the message key that explains it.
pub fn period_error(e: PeriodError) -> (&'static str, &'static str) {
    match e {
        PeriodError::BadFrom => ("from", "filter.bad_date"),
        PeriodError::BadTo => ("to", "filter.bad_date"),
        PeriodError::Reversed => ("to", "filter.reversed"),
        PeriodError::TooLong => ("to", "filter.too_long"),
    }
}

/// `account=ID` for links of a staff member viewing a customer's account; empty otherwise.
pub fn account_param(viewer: &Viewer) -> String {
    if viewer.is_staff_view() {
        format!("account={}", viewer.account.id)
    } else {
        String::new()
    }
}

/// `?account=ID` for a staff member viewing a customer's account; empty otherwise.
pub fn account_query(viewer: &Viewer) -> String {
    if viewer.is_staff_view() {
        format!("?account={}", viewer.account.id)
    } else {
        String::new()
    }
}

/// A filter field that is wrong, with the message for it.
pub type FieldError = (&'static str, String);

/// What a page says about its filter form: nothing, or one field's message.
#[derive(Debug, Clone, Default)]
pub struct FormError(pub Option<FieldError>);

impl FormError {
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// The message of `field`, when it is the one that is wrong.
    pub fn for_field(&self, field: &str) -> Option<&str> {
        self.0
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    /// 400 when the form is wrong, so that scripts notice; the page still renders.
    pub fn status(&self) -> actix_web::http::StatusCode {
        match self.0 {
            Some(_) => actix_web::http::StatusCode::BAD_REQUEST,
            None => actix_web::http::StatusCode::OK,
        }
    }
}

/// The query string of a list page or of the opens/clicks page, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListForm {
    pub address: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub api_user: Option<String>,
    pub tag: Option<String>,
    /// Opens/clicks: `open` or `click`.
    pub kind: Option<String>,
    pub cursor: Option<String>,
    pub account: Option<String>,
    pub deleted: Option<String>,
    pub added: Option<String>,
}

impl ListForm {
    /// The filter fields of a posted form (paging and notices left out).
    pub fn from_pairs(pairs: &[(String, String)]) -> ListForm {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        ListForm {
            address: get("address"),
            from: get("from"),
            to: get("to"),
            api_user: get("api_user"),
            tag: get("tag"),
            kind: get("kind"),
            account: get("account"),
            ..ListForm::default()
        }
    }

    /// The filter's fields as a query string (paging and notices left out), then `extra`.
    pub fn query(&self, extra: &[(&str, String)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("address", &self.address),
            ("from", &self.from),
            ("to", &self.to),
            ("api_user", &self.api_user),
            ("tag", &self.tag),
            ("kind", &self.kind),
            ("account", &self.account),
        ] {
            if let Some(v) = text(v) {
                s.append_pair(k, &v);
            }
        }
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        s.finish()
    }

    /// The filter's fields as pairs, for the hidden fields of the export form (`account`
    /// left out: the export belongs to the account viewed anyway).
    pub fn export_fields(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query(&[]).as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "account")
            .collect()
    }

    /// The typed value of a filter field, for the form's inputs.
    pub fn value(&self, field: &str) -> String {
        match field {
            "address" => self.address.clone(),
            "from" => self.from.clone(),
            "to" => self.to.clone(),
            "api_user" => self.api_user.clone(),
            "tag" => self.tag.clone(),
            _ => None,
        }
        .unwrap_or_default()
    }

    /// The list filter, or the field that is wrong.
    pub fn filter(&self, viewer: &Viewer) -> Result<ListFilter, FieldError> {
        let lang = viewer.lang;
        let zone = viewer.account.zone();
        let date = |v: &Option<String>, field| match text(v) {
            None => Ok(None),
            Some(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| (field, lang.t("filter.bad_date"))),
        };
        let from = date(&self.from, "from")?;
        let to = date(&self.to, "to")?;
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                return Err(("to", lang.t("filter.reversed")));
            }
        }
        let address = match text(&self.address) {
            None => None,
            Some(a) if a.starts_with('@') && a.len() > 1 => Some(a.to_lowercase()),
            Some(a) => Some(self.address_of(viewer, &a)?),
        };
        Ok(ListFilter {
            address,
            from_ms: from.map(|d| day_start(&zone, d)),
            to_ms: to.map(|d| day_start(&zone, d + chrono::Duration::days(1))),
            api_user: text(&self.api_user),
            tag: text(&self.tag),
        })
    }

    /// The opens/clicks filter and its period (required; today when not given), or the
    /// field that is wrong.
    pub fn tracking_filter(&self, viewer: &Viewer) -> Result<(TrackingFilter, Period), FieldError> {
        let lang = viewer.lang;
        let zone = viewer.account.zone();
        let today = Utc::now().with_timezone(&zone).date_naive();
        let period =
            Period::parse(self.from.as_deref(), self.to.as_deref(), today).map_err(|e| {
                let (field, key) = period_error(e);
                (field, lang.t(key))
            })?;
        let kind = match text(&self.kind) {
            None => None,
            Some(k) => Some(TrackKind::from_code(&k).ok_or(("kind", lang.t("lists.bad_kind")))?),
        };
        let address = match text(&self.address) {
            None => None,
            Some(a) => Some(self.address_of(viewer, &a)?),
        };
        let (from_ms, to_ms) = period.bounds(&zone);
        let filter = TrackingFilter {
            from_ms,
            to_ms,
            kind,
            address,
            api_user: text(&self.api_user),
            tag: text(&self.tag),
        };
        Ok((filter, period))
    }

    fn address_of(&self, viewer: &Viewer, typed: &str) -> Result<String, FieldError> {
        EmailAddress::parse(typed)
            .map(|a| a.as_str().to_string())
            .ok_or(("address", viewer.lang.t("lookup.bad_address")))
    }
}

/// A list page's cursor: `AT_RANK_ID`.
pub fn encode_list_cursor(p: ListPosition) -> String {
    format!("{}_{}_{}", p.at, p.rank, p.id)
}

pub fn decode_list_cursor(s: &str) -> Option<ListPosition> {
    let mut parts = s.split('_');
    let p = ListPosition {
        at: parts.next()?.parse().ok()?,
        rank: parts.next()?.parse().ok()?,
        id: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(p)
}

/// The opens/clicks page's cursor: `AT_ID`.
pub fn encode_tracking_cursor(at: i64, id: i64) -> String {
    format!("{at}_{id}")
}

pub fn decode_tracking_cursor(s: &str) -> Option<(i64, i64)> {
    let (at, id) = s.split_once('_')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_refuse_garbage() {
        let p = ListPosition {
            at: 1_764_201_600_000,
            rank: 2,
            id: 42,
        };
        assert_eq!(decode_list_cursor(&encode_list_cursor(p)), Some(p));
        assert_eq!(decode_list_cursor("1_2"), None);
        assert_eq!(decode_list_cursor("1_2_3_4"), None);
        assert_eq!(
            decode_tracking_cursor(&encode_tracking_cursor(5, 6)),
            Some((5, 6))
        );
        assert_eq!(decode_tracking_cursor("5-6"), None);
    }
}
