//! Amazon SES events delivered by Amazon SNS over HTTP(S). SNS signs each post with RSA
//! (`SignatureVersion` 1: SHA1withRSA, 2: SHA256withRSA) under the certificate its
//! `SigningCertURL` names; a server here may not reach the internet, so the owner pastes that
//! certificate (PEM) in the settings and posts are checked against it.
//!
//! Send → request; Delivery → deliver; DeliveryDelay → deferred (still requesting); Bounce:
//! Permanent and Undetermined → a bounce report (soft_bounce after a Delivery, else invalid),
//! Transient (a soft bounce SES gave up on) → soft_bounce; Reject → invalid; Complaint → report_spam; Open, Click → open, click. Both the
//! event-publishing form (`eventType`) and the identity notifications (`notificationType`).

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::Value;
use x509_cert::der::{DecodePem, Encode};

use super::{email_id, request_for, rfc3339_ms};
use crate::domain::Millis;
use crate::ingest::{Event, EventKind};

/// The RSA key of a PEM certificate, when it is one.
pub fn certificate_key(pem: &str) -> Option<rsa::RsaPublicKey> {
    let cert = x509_cert::Certificate::from_pem(pem.trim().as_bytes()).ok()?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().ok()?;
    rsa::RsaPublicKey::from_public_key_der(&spki).ok()
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The string SNS signs: the message's fields by name, in this order, each as `Name\nvalue\n`.
pub fn string_to_sign(post: &Value) -> Option<String> {
    let kind = text(post, "Type")?;
    let fields: &[&str] = match kind {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        _ => return None,
    };
    let mut out = String::new();
    for name in fields {
        match text(post, name) {
            Some(value) => {
                out.push_str(name);
                out.push('\n');
                out.push_str(value);
                out.push('\n');
            }
            // Subject is optional; every other field is signed and must be there.
            None if *name == "Subject" => {}
            None => return None,
        }
    }
    Some(out)
}

/// Whether the post's `Signature` signs it under the certificate `pem`.
pub fn signature_is_valid(pem: &str, post: &Value) -> bool {
    use base64::Engine;
    let (Some(key), Some(message)) = (certificate_key(pem), string_to_sign(post)) else {
        return false;
    };
    let Some(signature) = text(post, "Signature")
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|s| Signature::try_from(s.as_slice()).ok())
    else {
        return false;
    };
    match text(post, "SignatureVersion") {
        Some("1") => VerifyingKey::<sha1::Sha1>::new(key)
            .verify(message.as_bytes(), &signature)
            .is_ok(),
        Some("2") => VerifyingKey::<sha2::Sha256>::new(key)
            .verify(message.as_bytes(), &signature)
            .is_ok(),
        _ => false,
    }
}

pub fn timestamp_ms(post: &Value) -> Option<Millis> {
    text(post, "Timestamp").and_then(rfc3339_ms)
}

/// The SES events of a `Notification`'s `Message` (itself JSON): every recipient the event is
/// about gets its request first, then the event.
pub fn events(post: &Value) -> Result<Vec<Event>, String> {
    let raw = text(post, "Message").ok_or("the notification has no Message")?;
    let message: Value =
        serde_json::from_str(raw).map_err(|e| format!("Message is not SES JSON: {e}"))?;
    let kind = text(&message, "eventType")
        .or(text(&message, "notificationType"))
        .ok_or("Message has no eventType")?;
    let mail = Mail::read(message.get("mail").ok_or("Message has no mail")?)?;
    let notice = Notice {
        kind,
        detail: message.get(match kind.to_ascii_lowercase().as_str() {
            "deliverydelay" => "deliveryDelay",
            other => other,
        }),
        sent_at: mail.sent_at,
        id_prefix: format!(
            "ses:{}:{kind}:{}:",
            text(post, "MessageId").unwrap_or(""),
            mail.message_id
        ),
    };
    let about: Vec<(&str, Option<Event>)> = match kind {
        "Send" => mail.destination.iter().map(|r| (*r, None)).collect(),
        "Delivery" => notice.deliveries(),
        "Bounce" | "DeliveryDelay" => notice.bounces_or_delays(),
        "Reject" => notice.rejects(&mail.destination),
        "Complaint" => notice.complaints(),
        "Open" | "Click" => notice.engagement(&mail.destination),
        // Rendering failures, subscription events: nothing about delivery.
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (recipient, event) in about {
        let id = email_id(mail.message_id, recipient);
        out.push(request_for(
            &id,
            recipient,
            mail.sent_at,
            mail.from,
            mail.subject,
            mail.tags.clone(),
        ));
        if let Some(mut e) = event {
            e.email_id = Some(id);
            e.recipient = Some(recipient.to_string());
            out.push(e);
        }
    }
    Ok(out)
}

/// The `mail` part of an SES event: the message as it was sent.
struct Mail<'a> {
    message_id: &'a str,
    sent_at: Millis,
    from: &'a str,
    subject: &'a str,
    destination: Vec<&'a str>,
    /// The message's own tags as `name:value` (SES's `ses:` tags left out).
    tags: Vec<String>,
}

impl<'a> Mail<'a> {
    fn read(mail: &'a Value) -> Result<Mail<'a>, String> {
        let message_id = text(mail, "messageId").ok_or("mail has no messageId")?;
        let sent_at = text(mail, "timestamp")
            .and_then(rfc3339_ms)
            .ok_or("mail has no timestamp")?;
        let subject = mail
            .get("commonHeaders")
            .and_then(|h| text(h, "subject"))
            .unwrap_or("");
        let destination = mail
            .get("destination")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let tags = mail
            .get("tags")
            .and_then(Value::as_object)
            .map(|t| {
                t.iter()
                    .filter(|(k, _)| !k.starts_with("ses:"))
                    .flat_map(|(k, v)| {
                        v.as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(move |v| format!("{k}:{v}"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Mail {
            message_id,
            sent_at,
            from: text(mail, "source").unwrap_or(""),
            subject,
            destination,
            tags,
        })
    }
}

/// One SES notification: its kind and the part of it that says what happened.
struct Notice<'a> {
    kind: &'a str,
    detail: Option<&'a Value>,
    sent_at: Millis,
    /// What every event id of this notification starts with; the recipient ends it.
    id_prefix: String,
}

impl<'a> Notice<'a> {
    /// When it happened: the detail's timestamp, or when the mail was sent.
    fn at(&self) -> Millis {
        self.detail
            .and_then(|d| text(d, "timestamp"))
            .and_then(rfc3339_ms)
            .unwrap_or(self.sent_at)
    }

    fn detail_text(&self, key: &str) -> Option<&'a str> {
        self.detail.and_then(|d| text(d, key))
    }

    /// The detail's array `key`, each element as it is.
    fn detail_list(&self, key: &str) -> impl Iterator<Item = &'a Value> {
        self.detail
            .and_then(|d| d.get(key))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }

    fn event(&self, kind: EventKind, at: Millis, recipient: &str) -> Event {
        let mut e = Event::new(kind, at);
        e.event_id = Some(format!("{}{recipient}", self.id_prefix));
        e
    }

    fn deliveries(&self) -> Vec<(&'a str, Option<Event>)> {
        self.detail_list("recipients")
            .filter_map(Value::as_str)
            .map(|r| {
                let mut e = self.event(EventKind::Deliver, self.at(), r);
                e.smtp_reply = self.detail_text("smtpResponse").map(str::to_string);
                e.mx = self.detail_text("reportingMTA").map(str::to_string);
                (r, Some(e))
            })
            .collect()
    }

    /// Bounce (Transient: a soft bounce; otherwise a bounce report) and DeliveryDelay.
    fn bounces_or_delays(&self) -> Vec<(&'a str, Option<Event>)> {
        let (list, kind) = if self.kind == "Bounce" {
            let kind = match self.detail_text("bounceType") {
                Some("Transient") => EventKind::SoftBounce,
                _ => EventKind::Bounce,
            };
            ("bouncedRecipients", kind)
        } else {
            ("delayedRecipients", EventKind::Deferred)
        };
        self.detail_list(list)
            .filter_map(|r| {
                let address = text(r, "emailAddress")?;
                let mut e = self.event(kind, self.at(), address);
                let diagnostic = text(r, "diagnosticCode")
                    .map(|d| d.trim_start_matches("smtp;").trim().to_string());
                e.smtp_reply = match (diagnostic, text(r, "status")) {
                    (Some(d), Some(s)) if !d.contains(s) => Some(format!("{s} {d}")),
                    (Some(d), _) => Some(d),
                    (None, s) => s.map(str::to_string),
                };
                e.mx = self
                    .detail_text("reportingMTA")
                    .or(self.detail_text("remoteMtaIp"))
                    .map(|m| m.trim_start_matches("dsn;").trim().to_string());
                Some((address, Some(e)))
            })
            .collect()
    }

    fn rejects(&self, destination: &[&'a str]) -> Vec<(&'a str, Option<Event>)> {
        destination
            .iter()
            .map(|r| {
                let mut e = self.event(EventKind::Invalid, self.sent_at, r);
                e.smtp_reply = self
                    .detail_text("reason")
                    .map(|reason| format!("rejected by SES: {reason}"));
                (*r, Some(e))
            })
            .collect()
    }

    fn complaints(&self) -> Vec<(&'a str, Option<Event>)> {
        self.detail_list("complainedRecipients")
            .filter_map(|r| text(r, "emailAddress"))
            .map(|r| (r, Some(self.event(EventKind::ReportSpam, self.at(), r))))
            .collect()
    }

    /// Open and Click, which SES reports for the whole destination.
    fn engagement(&self, destination: &[&'a str]) -> Vec<(&'a str, Option<Event>)> {
        let kind = if self.kind == "Open" {
            EventKind::Open
        } else {
            EventKind::Click
        };
        destination
            .iter()
            .map(|r| {
                let mut e = self.event(kind, self.at(), r);
                e.ip = self.detail_text("ipAddress").map(str::to_string);
                e.user_agent = self.detail_text("userAgent").map(str::to_string);
                e.url = self.detail_text("link").map(str::to_string);
                (*r, Some(e))
            })
            .collect()
    }
}

/// Whether `raw` may be visited to confirm an SNS subscription: an https URL on
/// `sns.<region>.amazonaws.com` (or `.amazonaws.com.cn`), default port, no user part. Anything
/// else would let a poster make this server fetch an address of its choosing (SSRF).
pub fn is_sns_url(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw.trim()) else {
        return false;
    };
    let Some(url::Host::Domain(host)) = url.host() else {
        return false;
    };
    let region = host
        .strip_prefix("sns.")
        .and_then(|h| {
            h.strip_suffix(".amazonaws.com")
                .or(h.strip_suffix(".amazonaws.com.cn"))
        })
        .unwrap_or("");
    url.scheme() == "https"
        && url.port().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Visits SNS's SubscribeURL (blocking: call it off the async threads), which confirms the
/// subscription. Only URLs [`is_sns_url`] accepts are fetched; `via` (tests only, never from
/// configuration) sends the request to another scheme and host with the same path and query.
pub fn confirm_subscription(url: &str, via: Option<&str>) -> Result<(), String> {
    if !is_sns_url(url) {
        return Err(
            "SubscribeURL is not an https URL on an sns.<region>.amazonaws.com host".into(),
        );
    }
    let mut target = url::Url::parse(url.trim()).map_err(|e| e.to_string())?;
    if let Some(via) = via {
        let base = url::Url::parse(via).map_err(|e| e.to_string())?;
        let mut moved = base;
        moved.set_path(target.path());
        moved.set_query(target.query());
        target = moved;
    }
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(10))
        .redirects(0)
        .build();
    match agent.get(target.as_str()).call() {
        Ok(r) if (200..300).contains(&r.status()) => Ok(()),
        Ok(r) => Err(format!("SNS answered {}", r.status())),
        Err(ureq::Error::Status(code, _)) => Err(format!("SNS answered {code}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::is_sns_url;

    #[test]
    fn only_sns_hosts_are_fetched() {
        for ok in [
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=x",
            "https://sns.cn-north-1.amazonaws.com.cn/?Action=ConfirmSubscription",
            "https://SNS.eu-central-1.amazonaws.com/?Action=ConfirmSubscription",
        ] {
            assert!(is_sns_url(ok), "{ok}");
        }
        for bad in [
            "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com:8443/",
            "https://sns.us-west-2.amazonaws.com.evil.example/",
            "https://evil.example/?https://sns.us-west-2.amazonaws.com/",
            "https://user@sns.us-west-2.amazonaws.com/",
            "https://sns..amazonaws.com/",
            "https://sns.us_west.amazonaws.com/",
            "https://169.254.169.254/latest/meta-data/",
            "https://s3.amazonaws.com/",
            "file:///etc/passwd",
            "",
        ] {
            assert!(!is_sns_url(bad), "{bad}");
        }
    }
}
