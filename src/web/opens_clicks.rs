//! `/opens-clicks` (打开点击数据): the opens and clicks of a period, newest first by keyset,
//! and the CSV download of the same filter.

use actix_web::{web, HttpResponse, Responder};
use askama::Template;
use askama_web::WebTemplate;
use chrono::Utc;

use super::auth::Viewer;
use super::filters::{
    account_param, decode_tracking_cursor, encode_tracking_cursor, text, FormError, ListForm,
};
use super::layout::{csv_download, PageCtx};
use super::status::ONLINE_EXPORT_LIMIT;
use super::{with_db, AppError, AppResult};
use crate::domain::{browser_and_os, format_in_zone, Period};
use crate::store::tracking::{self, TrackingRow};

const PER_PAGE: i64 = 50;

pub struct TrackRow {
    pub id: i64,
    pub kind: &'static str,
    pub kind_label: String,
    pub time: String,
    pub url: String,
    pub ip: String,
    pub browser: &'static str,
    pub os: &'static str,
    pub recipient: String,
    pub api_user: String,
    pub email_id: String,
    pub message_id: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "lists/tracking.html")]
pub struct TrackingPage {
    ctx: PageCtx,
    form: ListForm,
    period_from: String,
    period_to: String,
    kind: String,
    error: FormError,
    notice: Option<String>,
    rows: Vec<TrackRow>,
    next_href: Option<String>,
    csv_href: String,
    account_param: String,
    export_allowed: bool,
    export_kind: &'static str,
    export_fields: Vec<(String, String)>,
}

/// `GET /opens-clicks`: one page of the period's opens and clicks.
pub async fn page(viewer: Viewer, form: web::Query<ListForm>) -> AppResult<impl Responder> {
    let form = form.into_inner();
    let mut notice = None;
    let after = text(&form.cursor).and_then(|c| {
        let p = decode_tracking_cursor(&c);
        if p.is_none() {
            notice = Some(viewer.lang.t("filter.bad_cursor"));
        }
        p
    });
    let (rows, error, period) = match form.tracking_filter(&viewer) {
        Ok((filter, period)) => {
            let scope = viewer.scope();
            let rows = with_db(viewer.state(), move |conn| {
                Ok(tracking::page(conn, &scope, &filter, after, PER_PAGE + 1)?)
            })
            .await?;
            (rows, FormError(None), period)
        }
        Err(e) => {
            let today = Utc::now()
                .with_timezone(&viewer.account.zone())
                .date_naive();
            (Vec::new(), FormError(Some(e)), Period::today(today))
        }
    };
    let status = error.status();
    let page = tracking_page(&viewer, form, rows, period, error, notice);
    Ok(page.customize().with_status(status))
}

/// The view of one page: `rows` holds one more than a page when there is more.
fn tracking_page(
    viewer: &Viewer,
    form: ListForm,
    mut rows: Vec<TrackingRow>,
    period: Period,
    error: FormError,
    notice: Option<String>,
) -> TrackingPage {
    let more = rows.len() as i64 > PER_PAGE;
    rows.truncate(PER_PAGE as usize);
    let next_href = rows.last().filter(|_| more).map(|r| {
        let cursor = encode_tracking_cursor(r.occurred_at, r.id);
        format!("/opens-clicks?{}", form.query(&[("cursor", cursor)]))
    });
    // The export form calls the open/click choice `track`: its `kind` is the export's.
    let export_fields = form
        .export_fields()
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "kind" => ("track".to_string(), v),
            _ => (k, v),
        })
        .collect();
    TrackingPage {
        ctx: viewer.page("/opens-clicks"),
        period_from: text(&form.from).unwrap_or_else(|| period.from.to_string()),
        period_to: text(&form.to).unwrap_or_else(|| period.to.to_string()),
        kind: text(&form.kind).unwrap_or_default(),
        rows: rows.iter().map(|r| track_row(viewer, r)).collect(),
        next_href,
        csv_href: format!("/opens-clicks.csv?{}", form.query(&[])),
        account_param: account_param(viewer),
        export_allowed: viewer.account.export_allowed,
        export_kind: "opens_clicks",
        export_fields,
        error,
        notice,
        form,
    }
}

fn track_row(viewer: &Viewer, r: &TrackingRow) -> TrackRow {
    let (browser, os) = browser_and_os(r.user_agent.as_deref().unwrap_or(""));
    TrackRow {
        id: r.id,
        kind: r.kind.code(),
        kind_label: r.kind.label(viewer.lang.code()).to_string(),
        time: format_in_zone(r.occurred_at, &viewer.account.zone()),
        url: viewer.show_text(&r.url),
        ip: r.ip.clone().unwrap_or_default(),
        browser,
        os,
        recipient: viewer.show_address(&r.recipient),
        api_user: r.api_user.clone(),
        email_id: viewer.show_text(&r.email_id),
        message_id: r.message_id,
    }
}

/// `GET /opens-clicks.csv`: the current filter, UTF-8 with BOM, at most 10,000 rows.
pub async fn csv(viewer: Viewer, form: web::Query<ListForm>) -> AppResult<HttpResponse> {
    if !viewer.account.export_allowed {
        return Err(AppError::forbidden(viewer.lang.t("export.forbidden")));
    }
    let (filter, _) = form
        .tracking_filter(&viewer)
        .map_err(|(_, m)| AppError::bad_request(m))?;
    let scope = viewer.scope();
    let rows = with_db(viewer.state(), move |conn| {
        let limit = ONLINE_EXPORT_LIMIT + 1;
        Ok(tracking::page(conn, &scope, &filter, None, limit)?)
    })
    .await?;
    if rows.len() as i64 > ONLINE_EXPORT_LIMIT {
        return Err(AppError::bad_request(viewer.lang.t("export.too_many_rows")));
    }
    let presenter = viewer.presenter();
    csv_download(
        "opens-clicks.csv",
        presenter.tracking_header(),
        rows.iter().map(|r| presenter.tracking_record(r)),
        presenter.mask,
    )
}
