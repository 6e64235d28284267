//! The machine API (DESIGN §7): `POST /api/v1/events` and `POST /api/v1/bounce-messages`,
//! authenticated by an API_USER's key (`Authorization: Bearer KEY`). The key decides the
//! account: everything a call reads or changes is in that account's scope.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;
use super::{with_db, AppError, AppResult};
use crate::domain::{MailType, Millis, Reason, UnsubscribeReason};
use crate::ingest::{self, bounce, Event, EventKind, Outcome, RequestFields, Sender};
use crate::store::models::ApiUser;
use crate::store::{accounts, AccountScope};

/// At most this many events per call.
pub const MAX_EVENTS: usize = 10_000;

/// The API user behind the request's key, as the scope and default sender of its calls.
pub struct ApiCaller {
    pub scope: AccountScope,
    pub sender: Sender,
}

/// Finds the live API user whose key the request carries; 401 otherwise.
pub async fn authenticate(state: &AppState, req: &HttpRequest) -> AppResult<ApiCaller> {
    let key = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            AppError::Unauthorized("send your API key as Authorization: Bearer KEY".into())
        })?;
    let api_user = with_db(state, move |conn| {
        Ok(accounts::api_user_by_key(conn, &key)?)
    })
    .await?
    .ok_or_else(|| AppError::Unauthorized("the API key is wrong or revoked".into()))?;
    Ok(ApiCaller::of(api_user))
}

impl ApiCaller {
    /// Calls made with `api_user`'s key: its account's scope, itself as the default sender.
    pub fn of(api_user: ApiUser) -> ApiCaller {
        ApiCaller {
            scope: AccountScope::new(api_user.account_id),
            sender: Sender {
                mail_type: MailType::from_i16(api_user.mail_type).unwrap_or(MailType::Trigger),
                api_user: api_user.name,
            },
        }
    }
}

/// The largest events call: 10,000 events of a few hundred bytes of fields each leave ample
/// room under this for the raw contents (S+) that some of them carry. Larger: split the batch.
pub const MAX_EVENTS_BODY: usize = 64 * 1024 * 1024;

/// The largest raw bounce message.
pub const MAX_BOUNCE_BODY: usize = 32 * 1024 * 1024;

/// At most this many tags and send-log lines on one event, so that a body of tiny strings
/// cannot become gigabytes of them.
pub const MAX_TAGS: usize = 100;
pub const MAX_SEND_LOG_LINES: usize = 1_000;

/// `POST /api/v1/events`: a JSON array or NDJSON of events; one result per event. The key is
/// checked from the headers before the body is read; the body is read within
/// [`MAX_EVENTS_BODY`], split and decoded on the blocking pool, never on the async workers.
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let caller = authenticate(&state, &req).await?;
    let _turn = super::body::turn(&req).await;
    let body = match super::body::read(&req, payload, MAX_EVENTS_BODY).await {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    let (valid, decode_errors) = web::block(move || decode_batch(&body))
        .await
        .map_err(AppError::internal)??;
    let outcomes = with_db(&state, move |conn| {
        Ok(ingest::ingest(conn, &caller.scope, &caller.sender, &valid)?)
    })
    .await?;
    let mut outcomes = outcomes.into_iter();
    let results: Vec<Value> = decode_errors
        .iter()
        .enumerate()
        .map(|(index, error)| match error {
            Some(e) => json!({"index": index, "ok": false, "error": e}),
            None => match outcomes.next() {
                Some(Outcome::Applied) => json!({"index": index, "ok": true}),
                Some(Outcome::Waiting) => json!({"index": index, "ok": true, "waiting": true}),
                Some(Outcome::Duplicate) => {
                    json!({"index": index, "ok": true, "duplicate": true})
                }
                Some(Outcome::Rejected(e)) => json!({"index": index, "ok": false, "error": e}),
                None => json!({"index": index, "ok": false, "error": "not processed"}),
            },
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "results": results })))
}

/// The events of a call that decode, and per event its decoding error (None when it decoded).
type DecodedBatch = (Vec<Event>, Vec<Option<String>>);

/// A JSON array, or one JSON object per line. Anything unreadable rejects the whole call, so
/// that nothing of a garbled upload is stored; an event with wrong fields is reported alone.
fn decode_batch(body: &[u8]) -> AppResult<DecodedBatch> {
    let spans = super::body::split_batch(body, MAX_EVENTS).map_err(AppError::bad_request)?;
    if spans.is_empty() {
        return Err(AppError::bad_request(
            "no events: send a JSON array or one JSON object per line",
        ));
    }
    let mut valid = Vec::with_capacity(spans.len());
    let mut decode_errors: Vec<Option<String>> = Vec::with_capacity(spans.len());
    for span in spans {
        match decode_event(span) {
            Ok(event) => {
                valid.push(event);
                decode_errors.push(None);
            }
            Err(e) => decode_errors.push(Some(e)),
        }
    }
    Ok((valid, decode_errors))
}

/// An event's time as sent: RFC 3339 text or epoch milliseconds, read without building any
/// other JSON value (an array or object here is refused, not stored).
#[derive(Debug)]
enum Timestamp {
    Text(String),
    Number(Option<i64>),
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 time or epoch milliseconds")
            }
            fn visit_str<E>(self, v: &str) -> Result<Timestamp, E> {
                Ok(Timestamp::Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp::Number(Some(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp::Number(i64::try_from(v).ok()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Timestamp, E> {
                Ok(Timestamp::Number(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of strings of at most `N` items; refused as soon as item `N + 1` is met.
fn bounded<'de, D: serde::Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    struct V<const N: usize>;
    impl<'de, const N: usize> serde::de::Visitor<'de> for V<N> {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list of at most {N} strings")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                if out.len() == N {
                    return Err(serde::de::Error::custom(format!("more than {N} items")));
                }
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V::<N>)
}

/// The fields of DESIGN §7; unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct EventFields {
    event: String,
    event_id: Option<String>,
    email_id: Option<String>,
    recipient: Option<String>,
    timestamp: Option<Timestamp>,
    api_user: Option<String>,
    mail_type: Option<String>,
    #[serde(default, deserialize_with = "bounded::<_, MAX_TAGS>")]
    tags: Vec<String>,
    from: Option<String>,
    subject: Option<String>,
    content: Option<String>,
    #[serde(default, deserialize_with = "bounded::<_, MAX_SEND_LOG_LINES>")]
    send_log: Vec<String>,
    smtp_reply: Option<String>,
    mx: Option<String>,
    attempt: Option<i32>,
    reason: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    url: Option<String>,
}

/// RFC 3339, or epoch milliseconds as a number.
fn parse_time(value: &Option<Timestamp>) -> Result<Millis, String> {
    match value {
        Some(Timestamp::Text(s)) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.timestamp_millis())
            .map_err(|_| format!("timestamp {s:?} is not an RFC 3339 time")),
        Some(Timestamp::Number(n)) => {
            n.ok_or_else(|| "timestamp must be RFC 3339 or epoch milliseconds".to_string())
        }
        None => Err("timestamp is required".into()),
    }
}

fn decode_event(span: &[u8]) -> Result<Event, String> {
    let fields: EventFields = serde_json::from_slice(span).map_err(|e| e.to_string())?;
    let kind = EventKind::from_code(fields.event.trim())
        .filter(|k| *k != EventKind::AutoReply)
        .ok_or_else(|| format!("unknown event type {:?}", fields.event))?;
    let mut event = Event::new(kind, parse_time(&fields.timestamp)?);
    event.event_id = fields.event_id;
    event.email_id = fields.email_id;
    event.recipient = fields.recipient;
    event.smtp_reply = fields.smtp_reply;
    event.mx = fields.mx;
    event.attempt = fields.attempt;
    event.send_log = fields.send_log;
    event.ip = fields.ip;
    event.user_agent = fields.user_agent;
    event.url = fields.url;
    match (kind, fields.reason.as_deref()) {
        (_, None) => {}
        (EventKind::Unsubscribe, Some(code)) => {
            event.unsubscribe_reason = Some(UnsubscribeReason::from_code(code).ok_or_else(
                || format!("unknown unsubscribe reason {code:?}: not_wanted, not_subscribed, spam or fraud"),
            )?);
        }
        (EventKind::SoftBounce | EventKind::Invalid | EventKind::Bounce, Some(code)) => {
            event.reason =
                Some(Reason::from_code(code).ok_or_else(|| format!("unknown reason {code:?}"))?);
        }
        (_, Some(_)) => {}
    }
    if kind == EventKind::Request {
        let mail_type = match fields.mail_type.as_deref() {
            None => None,
            Some(code) => Some(
                MailType::from_code(code)
                    .ok_or_else(|| format!("mail_type {code:?} must be trigger or batch"))?,
            ),
        };
        let content = match fields.content {
            None => None,
            Some(b64) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| "content must be the raw message in base64".to_string())?,
            ),
        };
        event.request = Some(RequestFields {
            api_user: fields.api_user,
            mail_type,
            tags: fields.tags,
            from: fields.from.unwrap_or_default(),
            subject: fields.subject.unwrap_or_default(),
            content,
        });
    }
    match event.problem() {
        Some(problem) => Err(problem),
        None => Ok(event),
    }
}

/// `POST /api/v1/bounce-messages`: one raw bounce message; answers what it was and what it
/// changed.
pub async fn bounce_messages(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let caller = authenticate(&state, &req).await?;
    let _turn = super::body::turn(&req).await;
    let body = match super::body::read(&req, payload, MAX_BOUNCE_BODY).await {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::bad_request(
            "send the raw bounce message as the body",
        ));
    }
    let result = with_db(&state, move |conn| {
        Ok(bounce::apply_bounce_message(
            conn,
            &caller.scope,
            &caller.sender,
            &body,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(result))
}
