//! `GET /metrics`: the server's own figures in Prometheus' text format, for the operator's
//! monitoring. Answered to loopback clients, to the addresses in `MAILTRAIL_METRICS_ALLOW`,
//! and to whoever presents `MAILTRAIL_METRICS_TOKEN` as a bearer token; to nobody else.
//!
//! The figures live in one process-wide registry: counters and histograms are counted where
//! the work happens (the HTTP middleware here, ingestion, the export workers); the pool and
//! the export queue are read when scraped. Nothing here names an account or an address.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::{with_db, AppResult, AppState};

/// Every figure the server keeps, registered once.
struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
    events: IntCounterVec,
    batch_seconds: Histogram,
    batch_events: Histogram,
    export_rows: IntCounter,
    export_running: IntGauge,
    export_rate: Gauge,
    export_jobs: IntCounterVec,
}

/// Latency buckets from a millisecond to a minute: pages answer in milliseconds, a large
/// ingestion batch or a CSV download of a big page in seconds.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Events per ingestion batch: one to the API's 10,000.
const BATCH_SIZES: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let http_requests = counter_vec(
            &r,
            "mailtrail_http_requests_total",
            "HTTP requests answered, by route pattern, method and status",
            &["route", "method", "status"],
        );
        let http_seconds = registered(
            &r,
            HistogramVec::new(
                HistogramOpts::new(
                    "mailtrail_http_request_duration_seconds",
                    "Time to answer an HTTP request (until its body starts), by route pattern and method",
                )
                .buckets(SECONDS.to_vec()),
                &["route", "method"],
            ),
        );
        let events = counter_vec(
            &r,
            "mailtrail_events_ingested_total",
            "Events taken by ingestion (API, webhooks, feeds), by kind and outcome \
             (applied, waiting, duplicate, rejected)",
            &["kind", "outcome"],
        );
        let batch_seconds = histogram(
            &r,
            "mailtrail_ingest_batch_duration_seconds",
            "Time to apply one ingestion batch, its transaction included",
            SECONDS,
        );
        let batch_events = histogram(
            &r,
            "mailtrail_ingest_batch_events",
            "Events in one ingestion batch",
            BATCH_SIZES,
        );
        let export_rows = registered(
            &r,
            IntCounter::new(
                "mailtrail_export_rows_total",
                "Rows written by export jobs (rate() of it is rows per second)",
            ),
        );
        let export_running = registered(
            &r,
            IntGauge::new(
                "mailtrail_export_jobs_running",
                "Export jobs this process is running now",
            ),
        );
        let export_rate = registered(
            &r,
            Gauge::new(
                "mailtrail_export_rows_per_second",
                "Rows per second of the running export jobs of this process, added up",
            ),
        );
        let export_jobs = counter_vec(
            &r,
            "mailtrail_export_jobs_total",
            "Export jobs this process finished, by outcome",
            &["outcome"],
        );
        Metrics {
            registry: r,
            http_requests,
            http_seconds,
            events,
            batch_seconds,
            batch_events,
            export_rows,
            export_running,
            export_rate,
            export_jobs,
        }
    }
}

/// A new figure, registered in `registry` (once: the names are fixed).
fn registered<C>(registry: &Registry, made: prometheus::Result<C>) -> C
where
    C: prometheus::core::Collector + Clone + 'static,
{
    let metric = made.expect("metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    registered(
        registry,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())),
    )
}

/// Counts the events of one ingestion batch, as (kind code, outcome) pairs, and how long the
/// batch took.
pub fn ingested<'a>(
    outcomes: impl Iterator<Item = (&'a str, &'static str)>,
    events: usize,
    took: Duration,
) {
    let m = &*METRICS;
    let mut counted: Vec<((&str, &str), u64)> = Vec::new();
    for pair in outcomes {
        match counted.iter_mut().find(|(p, _)| *p == pair) {
            Some((_, n)) => *n += 1,
            None => counted.push((pair, 1)),
        }
    }
    for ((kind, outcome), n) in counted {
        m.events.with_label_values(&[kind, outcome]).inc_by(n);
    }
    m.batch_seconds.observe(took.as_secs_f64());
    m.batch_events.observe(events as f64);
}

/// An export job this process runs: counted as running until dropped, its rows counted as
/// they are written, its rate part of the running jobs' rate.
pub struct ExportRun {
    started: Instant,
    rows: i64,
    rate: f64,
}

impl ExportRun {
    pub fn start() -> ExportRun {
        METRICS.export_running.inc();
        ExportRun {
            started: Instant::now(),
            rows: 0,
            rate: 0.0,
        }
    }

    /// The job has written `total` rows so far.
    pub fn rows(&mut self, total: i64) {
        let m = &*METRICS;
        if total > self.rows {
            m.export_rows.inc_by((total - self.rows) as u64);
            self.rows = total;
        }
        let seconds = self.started.elapsed().as_secs_f64();
        if seconds > 0.0 {
            let rate = self.rows as f64 / seconds;
            m.export_rate.add(rate - self.rate);
            self.rate = rate;
        }
    }
}

/// An export job of this process ended: `succeeded`, `failed` or `cancelled`.
pub fn export_ended(outcome: &str) {
    METRICS.export_jobs.with_label_values(&[outcome]).inc();
}

impl Drop for ExportRun {
    fn drop(&mut self) {
        METRICS.export_running.dec();
        METRICS.export_rate.sub(self.rate);
    }
}

/// The HTTP figures of every request, by the route pattern it matched (never its path, whose
/// ids would make a series per message).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let answered = next.call(req).await;
    let (route, status) = match &answered {
        Ok(res) => (
            res.request().match_pattern(),
            res.status().as_u16().to_string(),
        ),
        Err(e) => (
            None,
            e.as_response_error().status_code().as_u16().to_string(),
        ),
    };
    let route = route.unwrap_or_else(|| "(unmatched)".to_string());
    let m = &*METRICS;
    m.http_requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    m.http_seconds
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    answered
}

/// May this request read the figures? Loopback, an allowed address, or the bearer token.
/// Behind a trusted proxy the client is the one it names, so that a proxy on loopback does not
/// open the figures to the world.
fn allowed(req: &HttpRequest, state: &AppState) -> bool {
    let settings = &state.settings;
    if let Some(token) = &settings.metrics_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(presented) = presented {
            if crate::domain::constant_time_eq(presented.as_bytes(), token.as_bytes()) {
                return true;
            }
        }
    }
    let forwarded = req.headers().contains_key("x-forwarded-for");
    let client: Option<IpAddr> = super::auth::client_ip(req, state).parse().ok();
    let Some(client) = client else {
        return false;
    };
    let peer_is_proxy = req
        .peer_addr()
        .is_some_and(|p| settings.trusted_proxies.contains(&p.ip()));
    // A trusted proxy that named no client stands for someone we cannot see.
    if peer_is_proxy && !forwarded {
        return settings.metrics_allow.contains(&client);
    }
    client.is_loopback() || settings.metrics_allow.contains(&client)
}

/// The figures read at scrape time, in a registry of this scrape's own: each server's pool
/// and database are its own, and two scrapes never overwrite each other's values.
fn read_now(
    pool: &r2d2::State,
    queue: &[(&str, i64)],
) -> prometheus::Result<Vec<prometheus::proto::MetricFamily>> {
    let registry = Registry::new();
    let connections = IntGaugeVec::new(
        Opts::new(
            "mailtrail_db_pool_connections",
            "Database pool connections, by state (in_use, idle)",
        ),
        &["state"],
    )?;
    connections
        .with_label_values(&["in_use"])
        .set(i64::from(pool.connections - pool.idle_connections));
    connections
        .with_label_values(&["idle"])
        .set(i64::from(pool.idle_connections));
    registry.register(Box::new(connections))?;
    let jobs = IntGaugeVec::new(
        Opts::new(
            "mailtrail_export_queue",
            "Export jobs in the queue of every server, by state (queued, running)",
        ),
        &["state"],
    )?;
    for (state, count) in queue {
        jobs.with_label_values(&[*state]).set(*count);
    }
    registry.register(Box::new(jobs))?;
    Ok(registry.gather())
}

/// `GET /metrics`.
pub async fn scrape(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    if !allowed(&req, &state) {
        return Ok(HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body(
                "403 Forbidden: /metrics answers loopback clients, the addresses in \
                 MAILTRAIL_METRICS_ALLOW, and the bearer token MAILTRAIL_METRICS_TOKEN.\n",
            ));
    }
    let pool = state.pool.state();
    let queue = with_db(&state, |conn| Ok(crate::store::exports::queue_depth(conn)?)).await?;
    let mut families = METRICS.registry.gather();
    families.extend(read_now(&pool, &queue).map_err(super::AppError::internal)?);
    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut text)
        .map_err(super::AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text))
}
