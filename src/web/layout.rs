//! What every page's layout needs: language, the signed-in person, navigation, CSRF token.

use super::auth::Viewer;
use super::lang::Lang;

pub struct NavItem {
    pub href: &'static str,
    pub key: &'static str,
    pub active: bool,
    /// Keeps a staff view on the account being looked at.
    pub query: String,
}

/// Who sees a navigation item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    Everyone,
    OwnersAndStaff,
    Staff,
}

/// Pages that exist, in navigation order: (path, text key, who sees it).
const NAV: &[(&str, &str, Audience)] = &[
    ("/", "nav.overview", Audience::Everyone),
    ("/status", "nav.status", Audience::Everyone),
    ("/providers", "nav.providers", Audience::Everyone),
    ("/lookup", "nav.lookup", Audience::Everyone),
    ("/opens-clicks", "nav.opens_clicks", Audience::Everyone),
    ("/bounces", "nav.bounces", Audience::Everyone),
    ("/spam-reports", "nav.spam_reports", Audience::Everyone),
    ("/unsubscribes", "nav.unsubscribes", Audience::Everyone),
    ("/blacklist", "nav.blacklist", Audience::Everyone),
    ("/exports", "nav.exports", Audience::Everyone),
    ("/alerts", "nav.alerts", Audience::Everyone),
    ("/settings", "nav.settings", Audience::OwnersAndStaff),
    ("/staff", "nav.staff", Audience::Staff),
];

pub struct PageCtx {
    pub lang: Lang,
    pub csrf_token: String,
    pub user_email: Option<String>,
    pub role_label: String,
    pub account_name: String,
    pub time_zone: String,
    /// Set when staff look at another account: whose data this is.
    pub staff_banner: Option<String>,
    pub nav: Vec<NavItem>,
    /// The path to come back to after switching language.
    pub here: String,
}

impl PageCtx {
    pub fn anonymous(lang: Lang, csrf_token: String) -> Self {
        PageCtx {
            lang,
            csrf_token,
            user_email: None,
            role_label: String::new(),
            account_name: String::new(),
            time_zone: String::new(),
            staff_banner: None,
            nav: Vec::new(),
            here: "/login".into(),
        }
    }

    pub fn signed_in(viewer: &Viewer, active: &'static str, csrf_token: String) -> Self {
        let lang = viewer.lang;
        PageCtx {
            lang,
            csrf_token,
            user_email: Some(viewer.user.email.clone()),
            role_label: viewer.role().label(lang.code()).to_string(),
            account_name: viewer.account.name.clone(),
            time_zone: viewer.account.time_zone.clone(),
            staff_banner: viewer
                .is_staff_view()
                .then(|| format!("{} {}", lang.t("staff.viewing"), viewer.account.name)),
            nav: NAV
                .iter()
                .filter(|(_, _, audience)| match audience {
                    Audience::Everyone => true,
                    Audience::OwnersAndStaff => viewer.role() != crate::domain::Role::Member,
                    Audience::Staff => viewer.is_staff(),
                })
                .map(|(href, key, _)| NavItem {
                    href,
                    key,
                    active: *href == active,
                    query: if viewer.is_staff_view() && *href != "/staff" {
                        format!("?account={}", viewer.account.id)
                    } else {
                        String::new()
                    },
                })
                .collect(),
            here: viewer.path.clone(),
        }
    }

    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    /// The colon after a label: full width in Chinese.
    pub fn colon(&self) -> &'static str {
        match self.lang {
            Lang::Zh => "：",
            Lang::En => ": ",
        }
    }

    /// The formats an export form offers, CSV first (the default).
    pub fn export_formats(&self) -> &'static [crate::domain::ExportFormat] {
        crate::domain::ExportFormat::ALL
    }

    /// The link that switches to the other language and comes back here.
    pub fn switch_href(&self) -> String {
        format!(
            "/lang/{}?next={}",
            self.lang.other().code(),
            percent_encoding::utf8_percent_encode(&self.here, percent_encoding::NON_ALPHANUMERIC)
        )
    }
}

/// A download of the current filter as CSV: UTF-8 with a byte-order mark (so that Excel reads
/// it as UTF-8), a header row, then the records.
/// Every cell goes through [`crate::domain::export_cell`]: no formula, and with `mask` no full
/// address.
pub fn csv_download<R, F>(
    filename: &str,
    header: Vec<String>,
    records: impl IntoIterator<Item = R>,
    mask: bool,
) -> super::AppResult<actix_web::HttpResponse>
where
    R: IntoIterator<Item = F>,
    F: AsRef<str>,
{
    use super::AppError;
    let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    out.write_record(header).map_err(AppError::internal)?;
    for record in records {
        let cells = record
            .into_iter()
            .map(|f| crate::domain::export_cell(f.as_ref(), mask).into_owned());
        out.write_record(cells).map_err(AppError::internal)?;
    }
    let body = out.into_inner().map_err(AppError::internal)?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body))
}

/// A whole number with thousands separators: `12,345` (the same grouping in both languages).
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(-12345), "-12,345");
    }
}
