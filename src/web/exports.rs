//! `/exports` (离线数据): request an export of the current filter of any list page, watch its
//! progress, download the file while it exists, retry or cancel.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::auth::{redirect, Viewer};
use super::filters::ListForm;
use super::lang::Lang;
use super::layout::{grouped, PageCtx};
use super::status::StatusForm;
use super::{with_db, AppError, AppResult};
use crate::db::DbConn;
use crate::domain::ListKind;
use crate::domain::{format_in_zone, now_ms, ExportFormat, Millis};
use crate::store::exports::{self, ExportJob};
use crate::store::exports::{ExportSpec, JobFilter};
use crate::store::{AccountScope, StoreResult};

fn require_exports(viewer: &Viewer) -> AppResult<()> {
    if viewer.account.export_allowed {
        Ok(())
    } else {
        Err(AppError::forbidden(viewer.lang.t("export.forbidden")))
    }
}

/// `POST /exports`: `kind`, `format`, `gzip`, the list's filter fields and `csrf_token`.
pub async fn create(viewer: Viewer, body: web::Bytes) -> AppResult<HttpResponse> {
    require_exports(&viewer)?;
    if viewer.is_staff_view() {
        return Err(AppError::forbidden(viewer.lang.t("staff.read_only")));
    }
    let lang = viewer.lang;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let format = match get("format") {
        None => ExportFormat::Csv,
        Some(code) => ExportFormat::from_code(&code)
            .ok_or_else(|| AppError::bad_request(lang.t("export.bad_format")))?,
    };
    // An XLSX file is a zip already; gzip is for CSV only.
    let gzip = format.can_gzip() && get("gzip").is_some_and(|v| v == "1");
    let kind = get("kind").unwrap_or_default();
    let summary = summary(&fields);
    let spec = export_spec(&viewer, &kind, &fields)?;
    let description = JobFilter {
        spec,
        lang: lang.code().to_string(),
        summary: summary.clone(),
    };
    let json = serde_json::to_string(&description).map_err(AppError::internal)?;
    let scope = viewer.scope();
    let user = viewer.user.id;
    let kind_code = if kind.is_empty() {
        "status".to_string()
    } else {
        kind
    };
    let stored_kind = kind_code.clone();
    let id = with_db(viewer.state(), move |conn| {
        Ok(exports::create(
            conn,
            &scope,
            &exports::NewJob {
                requested_by: user,
                kind: &stored_kind,
                filter: &json,
                format: format.code(),
                gzip,
            },
            now_ms(),
        )?)
    })
    .await?;
    viewer
        .audit("export.request", format!("#{id} {kind_code} {summary}"))
        .await?;
    Ok(redirect("/exports"))
}

/// What the export form asks for: the filter of the page it was sent from, parsed the way
/// that page parses it.
fn export_spec(viewer: &Viewer, kind: &str, fields: &[(String, String)]) -> AppResult<ExportSpec> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let spec = match kind {
        "status" => {
            let form = StatusForm {
                from: get("from"),
                to: get("to"),
                recipient: get("recipient"),
                email_id: get("email_id"),
                mail_type: get("mail_type"),
                tag: get("tag"),
                api_user: get("api_user"),
                status: get("status"),
                reason: get("reason"),
                subject: get("subject"),
                sender: get("sender"),
                ..StatusForm::default()
            };
            let parsed = form.parse(viewer);
            if let Some(e) = parsed.errors.first() {
                return Err(AppError::bad_request(e.message.clone()));
            }
            ExportSpec::Status {
                filter: parsed.filter,
            }
        }
        "opens_clicks" => {
            let form = list_form(fields);
            let (filter, _) = form
                .tracking_filter(viewer)
                .map_err(|(_, m)| AppError::bad_request(m))?;
            ExportSpec::OpensClicks { filter }
        }
        other => {
            let list = ListKind::from_code(other)
                .ok_or_else(|| AppError::bad_request(viewer.lang.t("export.bad_kind")))?;
            let filter = list_form(fields)
                .filter(viewer)
                .map_err(|(_, m)| AppError::bad_request(m))?;
            ExportSpec::List {
                list: list.code().to_string(),
                filter,
            }
        }
    };
    Ok(spec)
}

/// The form's filter fields as one line for the jobs page.
fn summary(fields: &[(String, String)]) -> String {
    // A query string, so that values with spaces read back; the jobs page shows it in the
    // viewer's language.
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields.iter().filter(|(k, v)| {
        !v.is_empty()
            && !matches!(
                k.as_str(),
                "csrf_token" | "kind" | "format" | "gzip" | "account" | "start" | "cursor"
            )
    }) {
        out.append_pair(k, v);
    }
    out.finish()
}

/// The filter of a list or opens/clicks export: the page's form, whose open/click choice is
/// called `track` here (`kind` is the export's).
fn list_form(fields: &[(String, String)]) -> ListForm {
    let track = fields.iter().find(|(n, _)| n == "track");
    ListForm {
        kind: track.map(|(_, v)| v.clone()),
        account: None,
        ..ListForm::from_pairs(fields)
    }
}

pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub summary: String,
    pub format: String,
    pub state: String,
    pub state_label: String,
    pub percent: i64,
    pub rows_done: i64,
    pub progress: String,
    pub rows_total: String,
    pub available_until: String,
    pub size: String,
    pub created: String,
    pub started: String,
    pub finished: String,
    pub error: String,
    pub can_download: bool,
    pub can_retry: bool,
    pub can_cancel: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "exports/page.html")]
pub struct ExportsPage {
    ctx: PageCtx,
    jobs: Vec<JobRow>,
    active: bool,
    allowed: bool,
    account_param: String,
    /// The export folder cannot take files now: requested exports wait (the cause is logged).
    folder_blocked: bool,
}

fn human_size(bytes: i64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// A stored filter summary in the viewer's language: `from=…&status=invalid` becomes
/// "From 2026-11-01 · Status: Invalid". Older jobs stored `k=v k=v`.
pub fn summary_shown(lang: Lang, stored: &str) -> String {
    use crate::domain::{MailType, Reason, Status};
    let pairs: Vec<(String, String)> = if stored.contains('&') || !stored.contains(' ') {
        url::form_urlencoded::parse(stored.as_bytes())
            .into_owned()
            .collect()
    } else {
        stored
            .split(' ')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let colon = match lang {
        Lang::Zh => "：",
        Lang::En => ": ",
    };
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            let (key, value) = match k.as_str() {
                "from" => ("filter.from", v),
                "to" => ("filter.to", v),
                "recipient" | "address" => ("filter.recipient", v),
                "subject" => ("filter.subject", v),
                "sender" => ("filter.sender", v),
                "email_id" => ("filter.email_id", v),
                "tag" => ("filter.tag", v),
                "api_user" => ("filter.api_user", v),
                "per_page" => return String::new(),
                "mail_type" => (
                    "filter.mail_type",
                    MailType::from_code(&v)
                        .map(|m| m.label(lang.code()).to_string())
                        .unwrap_or(v),
                ),
                "status" => (
                    "filter.status",
                    Status::from_code(&v)
                        .map(|s| s.label(lang.code()).to_string())
                        .unwrap_or(v),
                ),
                "reason" => {
                    let code = v.rsplit(':').next().unwrap_or_default().to_string();
                    (
                        "filter.reason",
                        Reason::from_code(&code)
                            .map(|r| r.label(lang.code()).to_string())
                            .unwrap_or(v),
                    )
                }
                "track" => (
                    "lists.kind",
                    match v.as_str() {
                        "open" => lang.t("event.open"),
                        "click" => lang.t("event.click"),
                        _ => v,
                    },
                ),
                _ => return format!("{k}{colon}{v}"),
            };
            format!("{}{colon}{value}", lang.t(key))
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// What the job exports, in the viewer's words.
fn kind_label(lang: Lang, kind: &str) -> String {
    match kind {
        "status" => lang.t("nav.status"),
        "opens_clicks" => lang.t("nav.opens_clicks"),
        other => ListKind::from_code(other)
            .map(|l| l.label(lang.code()).to_string())
            .unwrap_or_else(|| other.to_string()),
    }
}

fn percent_done(job: &ExportJob) -> i64 {
    match (job.state.as_str(), job.rows_total) {
        ("succeeded", _) => 100,
        (_, Some(total)) if total > 0 => (job.rows_done * 100 / total).min(100),
        _ => 0,
    }
}

/// Rows done of the estimate, the rate so far and the time left, while it runs.
fn progress(lang: Lang, job: &ExportJob) -> String {
    let ("running", Some(started), total) = (job.state.as_str(), job.started_at, job.rows_total)
    else {
        return grouped(job.rows_done);
    };
    let seconds = ((now_ms() - started) as f64 / 1000.0).max(0.001);
    let rate = job.rows_done as f64 / seconds;
    let mut parts = vec![match total {
        Some(t) => format!("{} / {}", grouped(job.rows_done), grouped(t)),
        None => grouped(job.rows_done),
    }];
    if job.rows_done > 0 {
        parts.push(
            lang.t("export.rate")
                .replace("{n}", &grouped(rate.round() as i64)),
        );
        if let Some(t) = total.filter(|t| *t > job.rows_done) {
            let left = ((t - job.rows_done) as f64 / rate).ceil() as i64;
            parts.push(lang.t("export.time_left").replace(
                "{time}",
                &if left >= 60 {
                    format!("{} min", (left + 59) / 60)
                } else {
                    format!("{left} s")
                },
            ));
        }
    }
    parts.join(" · ")
}

fn row(viewer: &Viewer, job: ExportJob) -> JobRow {
    let lang = viewer.lang;
    let zone = viewer.account.zone();
    let when = |t: Option<i64>| t.map(|t| format_in_zone(t, &zone)).unwrap_or_default();
    let summary = serde_json::from_str::<JobFilter>(&job.filter)
        .map(|f| f.summary)
        .unwrap_or_default();
    let percent = percent_done(&job);
    let progress = progress(lang, &job);
    JobRow {
        id: job.id,
        kind: kind_label(lang, &job.kind),
        summary: match summary_shown(lang, &summary) {
            s if s.is_empty() => lang.t("export.whole_default"),
            s => s,
        },
        format: format!(
            "{}{}",
            ExportFormat::from_code(&job.format)
                .map(ExportFormat::label)
                .unwrap_or(&job.format),
            if job.gzip { " (gzip)" } else { "" }
        ),
        state_label: lang.t(&format!("export.state_{}", job.state)),
        percent,
        rows_done: job.rows_done,
        progress,
        rows_total: job.rows_total.map(grouped).unwrap_or_default(),
        available_until: match (job.state.as_str(), job.expires_at) {
            ("succeeded", Some(t)) => format_in_zone(t, &zone),
            _ => String::new(),
        },
        size: job.file_size.map(human_size).unwrap_or_default(),
        created: when(Some(job.created_at)),
        started: when(job.started_at),
        finished: when(job.finished_at),
        error: job.error.clone().unwrap_or_default(),
        can_download: job.state == "succeeded",
        can_retry: matches!(job.state.as_str(), "failed" | "cancelled"),
        can_cancel: matches!(job.state.as_str(), "queued" | "running"),
        state: job.state,
    }
}

pub async fn page(viewer: Viewer) -> AppResult<ExportsPage> {
    let scope = viewer.scope();
    let jobs = with_db(viewer.state(), move |conn| {
        Ok(exports::list(conn, &scope, 100)?)
    })
    .await?;
    let active = jobs
        .iter()
        .any(|j| matches!(j.state.as_str(), "queued" | "running"));
    let dir = viewer.state().settings.exports_dir();
    let folder_blocked = web::block(move || crate::jobs::exports::folder_problem(&dir))
        .await
        .map_err(AppError::internal)?
        .inspect(|problem| log::error!("/exports: {problem}"))
        .is_some();
    let page = ExportsPage {
        ctx: viewer.page("/exports"),
        jobs: jobs.into_iter().map(|j| row(&viewer, j)).collect(),
        active,
        allowed: viewer.account.export_allowed,
        account_param: crate::web::filters::account_query(&viewer),
        folder_blocked,
    };
    Ok(page)
}

fn job_id(raw: &str) -> AppResult<i64> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// `GET /exports/{id}/download`: only for the job's account (staff through their audited
/// view), streamed from disk.
pub async fn download(viewer: Viewer, id: web::Path<String>) -> AppResult<HttpResponse> {
    require_exports(&viewer)?;
    let id = job_id(&id)?;
    let scope = viewer.scope();
    let job = with_db(viewer.state(), move |conn| {
        Ok(exports::get(conn, &scope, id)?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    let name = job
        .file_name
        .clone()
        .filter(|_| job.state == "succeeded")
        .ok_or(AppError::NotFound)?;
    let path = viewer.state().settings.exports_dir().join(&name);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| AppError::NotFound)?;
    let size = file.metadata().await.map_err(AppError::internal)?.len();
    if viewer.is_staff_view() {
        viewer
            .audit("staff.export_download", format!("#{id}"))
            .await?;
    }
    let format = ExportFormat::from_code(&job.format).ok_or(AppError::NotFound)?;
    let download_name = format!(
        "mailtrail-{}-{}.{}",
        job.kind,
        job.id,
        format.extension(job.gzip)
    );
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Ok(HttpResponse::Ok()
        .content_type(format.content_type(job.gzip))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{download_name}\""),
        ))
        .body(actix_web::body::SizedStream::new(size, stream)))
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn retry(viewer: Viewer, id: web::Path<String>) -> AppResult<HttpResponse> {
    change_job(viewer, &id, "export.retry", exports::retry).await
}

pub async fn cancel(viewer: Viewer, id: web::Path<String>) -> AppResult<HttpResponse> {
    change_job(viewer, &id, "export.cancel", exports::cancel).await
}

/// Retry or cancel: `change` the job `raw_id` of the viewer's account, audited as `action`;
/// 404 when there is no such job in a state that allows it.
async fn change_job(
    viewer: Viewer,
    raw_id: &str,
    action: &str,
    change: fn(&mut DbConn, &AccountScope, i64, Millis) -> StoreResult<bool>,
) -> AppResult<HttpResponse> {
    require_exports(&viewer)?;
    let id = job_id(raw_id)?;
    let scope = viewer.scope();
    if !with_db(viewer.state(), move |conn| {
        Ok(change(conn, &scope, id, now_ms())?)
    })
    .await?
    {
        return Err(AppError::NotFound);
    }
    viewer.audit(action, format!("#{id}")).await?;
    Ok(redirect("/exports"))
}
