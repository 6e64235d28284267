//! Request bodies of the machine API, read only after the caller is known and never past a
//! bound (DESIGN §9): the size is checked against `Content-Length` before a byte is read and
//! again while reading, and only a few large bodies are read and parsed at once.

use std::sync::OnceLock;

use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use tokio::sync::{Semaphore, SemaphorePermit};

/// How many large bodies the whole process reads and parses at once; the others wait with
/// their bytes still in the network, costing no memory.
const LARGE_BODIES_AT_ONCE: usize = 2;

fn large_bodies() -> &'static Semaphore {
    static SEMAPHORE: OnceLock<Semaphore> = OnceLock::new();
    SEMAPHORE.get_or_init(|| Semaphore::new(LARGE_BODIES_AT_ONCE))
}

/// Bodies announced at most this large are read without waiting for a turn.
const SMALL_BODY: usize = 1024 * 1024;

/// A turn to read and parse the request's body when it is large (or of unknown size), held
/// until the call is answered; None for a small body, which needs none.
pub async fn turn(req: &HttpRequest) -> Option<SemaphorePermit<'static>> {
    if declared_length(req).is_some_and(|n| n <= SMALL_BODY) {
        return None;
    }
    Some(
        large_bodies()
            .acquire()
            .await
            .expect("the semaphore is never closed"),
    )
}

fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
}

/// The answer for a body over `limit` bytes, in the API's error shape.
pub fn too_large(limit: usize) -> HttpResponse {
    HttpResponse::PayloadTooLarge().json(serde_json::json!({"error": {
        "code": "payload_too_large",
        "message": format!("the body is larger than {} MiB; send fewer events a call", limit / (1024 * 1024)),
    }}))
}

/// Reads the whole body, or answers [`too_large`] as soon as it is known to exceed `limit`.
pub async fn read(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, HttpResponse> {
    let declared = declared_length(req);
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            HttpResponse::BadRequest().json(serde_json::json!({"error": {
                "code": "bad_request", "message": format!("the body could not be read: {e}"),
            }}))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The top-level values of a JSON array, or of NDJSON (one value a line), as byte spans of
/// the body: each is checked to be well-formed JSON without building it, and more than
/// `max` values refuse the call as soon as the one past the cap is met.
pub fn split_batch(body: &[u8], max: usize) -> Result<Vec<&[u8]>, String> {
    use serde::de::IgnoredAny;
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_string())?;
    let start = text.len() - text.trim_start().len();
    let mut spans = Vec::new();
    let too_many = |max: usize| format!("more than {max} events in one call; at most {max}");
    if text[start..].starts_with('[') {
        let mut pos = start + 1;
        let skip_ws = |mut p: usize| {
            while p < body.len() && body[p].is_ascii_whitespace() {
                p += 1;
            }
            p
        };
        pos = skip_ws(pos);
        if body.get(pos) == Some(&b']') {
            pos = skip_ws(pos + 1);
        } else {
            loop {
                if spans.len() == max {
                    return Err(too_many(max));
                }
                let mut values =
                    serde_json::Deserializer::from_slice(&body[pos..]).into_iter::<IgnoredAny>();
                match values.next() {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("invalid JSON: {e}")),
                    None => return Err("invalid JSON: the array is not closed".into()),
                }
                let end = pos + values.byte_offset();
                spans.push(&body[pos..end]);
                pos = skip_ws(end);
                match body.get(pos) {
                    Some(b',') => pos = skip_ws(pos + 1),
                    Some(b']') => {
                        pos = skip_ws(pos + 1);
                        break;
                    }
                    _ => return Err("invalid JSON: expected `,` or `]` after an event".into()),
                }
            }
        }
        if pos != body.len() {
            return Err("invalid JSON: trailing characters after the array".into());
        }
    } else {
        let mut offset = 0;
        for (n, line) in text.split('\n').enumerate() {
            let span = &body[offset..offset + line.len()];
            offset += line.len() + 1;
            if line.trim().is_empty() {
                continue;
            }
            if spans.len() == max {
                return Err(too_many(max));
            }
            serde_json::from_slice::<IgnoredAny>(span)
                .map_err(|e| format!("invalid JSON on line {}: {e}", n + 1))?;
            spans.push(span);
        }
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::split_batch;

    #[test]
    fn batches_split_without_building_values() {
        let spans = split_batch(br#" [ {"a": [1, 2]} , {"b": "]"} ] "#, 10).unwrap();
        assert_eq!(spans, vec![&br#"{"a": [1, 2]}"#[..], &br#"{"b": "]"}"#[..]]);
        assert_eq!(split_batch(b"[]", 10).unwrap().len(), 0);
        let nd = split_batch(b"{\"a\":1}\n\n{\"b\":2}\r\n", 10).unwrap();
        assert_eq!(nd.len(), 2);
        assert!(split_batch(b"[0,0,0]", 2)
            .unwrap_err()
            .contains("at most 2"));
        assert!(split_batch(b"1\n2\n3", 2)
            .unwrap_err()
            .contains("at most 2"));
        assert!(split_batch(b"[{\"a\":1},", 10).is_err());
        assert!(split_batch(b"[{\"a\":1}] x", 10).is_err());
        assert!(split_batch(b"{\"a\":\n1}", 10)
            .unwrap_err()
            .contains("line 1"));
    }
}
