//! Signed links of the recipient's side (DESIGN §4): the open pixel, the click redirect and
//! the unsubscribe page carry a token that only this server can make, so that nobody can
//! record events for another message or turn the click route into an open redirect.
//!
//! A token is URL-safe base64 (no padding) of
//! `kind · account id (LEB128) · length of emailId (LEB128) · emailId · URL (clicks only)`
//! followed by the first 16 bytes of HMAC-SHA256 of everything before it. The kind is inside
//! the signature, so an open token is not a valid unsubscribe token for the same message.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// 128 bits of the MAC: far beyond guessing, and keeps links short.
const TAG_LEN: usize = 16;

/// The label the link key is derived under. Changing it (a new version) invalidates every
/// link already sent without touching session cookies, and vice versa the cookie key is the
/// raw secret, so knowing one key tells nothing about the other.
const KEY_LABEL: &[u8] = b"mailtrail tracking links v1";

/// What a signed link does; its byte is the first byte of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Open,
    Click,
    Unsubscribe,
}

impl LinkKind {
    fn byte(self) -> u8 {
        match self {
            LinkKind::Open => b'o',
            LinkKind::Click => b'c',
            LinkKind::Unsubscribe => b'u',
        }
    }

    fn from_byte(b: u8) -> Option<LinkKind> {
        match b {
            b'o' => Some(LinkKind::Open),
            b'c' => Some(LinkKind::Click),
            b'u' => Some(LinkKind::Unsubscribe),
            _ => None,
        }
    }

    /// The path a link of this kind lives under (contract, DESIGN §4).
    pub fn path_prefix(self) -> &'static str {
        match self {
            LinkKind::Open => "/t/o/",
            LinkKind::Click => "/t/c/",
            LinkKind::Unsubscribe => "/u/",
        }
    }
}

/// What a token binds: which account's message, and for a click the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub kind: LinkKind,
    pub account_id: i64,
    pub email_id: String,
    /// Clicks only: where the click goes.
    pub url: Option<String>,
}

impl Link {
    pub fn open(account_id: i64, email_id: &str) -> Link {
        Link {
            kind: LinkKind::Open,
            account_id,
            email_id: email_id.to_string(),
            url: None,
        }
    }

    pub fn click(account_id: i64, email_id: &str, url: &str) -> Link {
        Link {
            kind: LinkKind::Click,
            account_id,
            email_id: email_id.to_string(),
            url: Some(url.to_string()),
        }
    }

    pub fn unsubscribe(account_id: i64, email_id: &str) -> Link {
        Link {
            kind: LinkKind::Unsubscribe,
            account_id,
            email_id: email_id.to_string(),
            url: None,
        }
    }
}

/// Why a link cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the emailId is empty")]
    EmptyEmailId,
    #[error("account ids are positive")]
    BadAccount,
    #[error("a click link needs an http:// or https:// URL, not {0:?}")]
    BadUrl(String),
}

/// True for the destinations a click may lead to: absolute http(s) URLs only, so that a
/// signed link can never become `javascript:` or a path on this site.
pub fn is_click_destination(url: &str) -> bool {
    url::Url::parse(url)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false)
}

/// The key links are signed with, derived from the server's secret.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(…)")
    }
}

impl LinkKey {
    /// HMAC-SHA256(secret, label): the same secret always gives the same key, so the server
    /// and `mailtrail sign-link` agree.
    pub fn derive(secret: &[u8]) -> LinkKey {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(KEY_LABEL);
        LinkKey(mac.finalize().into_bytes().into())
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts 32-byte keys");
        mac.update(payload);
        mac
    }

    /// The token of `link`.
    pub fn sign(&self, link: &Link) -> Result<String, LinkError> {
        if link.email_id.is_empty() {
            return Err(LinkError::EmptyEmailId);
        }
        if link.account_id <= 0 {
            return Err(LinkError::BadAccount);
        }
        let url = match (link.kind, link.url.as_deref()) {
            (LinkKind::Click, Some(u)) if is_click_destination(u) => u,
            (LinkKind::Click, other) => {
                return Err(LinkError::BadUrl(other.unwrap_or("").to_string()))
            }
            _ => "",
        };
        let mut payload = vec![link.kind.byte()];
        put_varint(&mut payload, link.account_id as u64);
        put_varint(&mut payload, link.email_id.len() as u64);
        payload.extend_from_slice(link.email_id.as_bytes());
        payload.extend_from_slice(url.as_bytes());
        let tag = self.mac(&payload).finalize().into_bytes();
        payload.extend_from_slice(&tag[..TAG_LEN]);
        Ok(URL_SAFE_NO_PAD.encode(payload))
    }

    /// The link a token binds, when it is a token of `kind` that this key signed; `None` for
    /// anything forged, altered, truncated or of another kind.
    pub fn verify(&self, kind: LinkKind, token: &str) -> Option<Link> {
        // The strict decoder refuses padding and non-zero trailing bits, so each token has
        // exactly one spelling.
        let bytes = URL_SAFE_NO_PAD.decode(token.as_bytes()).ok()?;
        if bytes.len() < 3 + TAG_LEN {
            return None;
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        // Constant time: where a forged tag differs must not show in the answer's timing.
        self.mac(payload).verify_truncated_left(tag).ok()?;
        let link = parse_payload(payload)?;
        (link.kind == kind).then_some(link)
    }
}

fn parse_payload(payload: &[u8]) -> Option<Link> {
    let (&kind, mut rest) = payload.split_first()?;
    let kind = LinkKind::from_byte(kind)?;
    let account_id = i64::try_from(take_varint(&mut rest)?).ok()?;
    let len = usize::try_from(take_varint(&mut rest)?).ok()?;
    if len == 0 || len > rest.len() {
        return None;
    }
    let (email_id, url) = rest.split_at(len);
    let email_id = std::str::from_utf8(email_id).ok()?.to_string();
    let url = std::str::from_utf8(url).ok()?;
    let url = match kind {
        LinkKind::Click if is_click_destination(url) => Some(url.to_string()),
        LinkKind::Click => return None,
        _ if url.is_empty() => None,
        _ => return None,
    };
    Some(Link {
        kind,
        account_id,
        email_id,
        url,
    })
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        n |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// The full URL of a signed link under the server's public base URL.
pub fn link_url(base_url: &str, kind: LinkKind, token: &str) -> String {
    format!(
        "{}{}{}",
        base_url.trim_end_matches('/'),
        kind.path_prefix(),
        token
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LinkKey {
        LinkKey::derive(&[7u8; 64])
    }

    #[test]
    fn tokens_round_trip() {
        let k = key();
        for link in [
            Link::open(1, "a1"),
            Link::unsubscribe(123_456_789, "20261127.abc@mx.example"),
            Link::click(42, "e-9", "https://shop.example/p?id=3&x=%20y#top"),
        ] {
            let token = k.sign(&link).unwrap();
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(k.verify(link.kind, &token), Some(link.clone()));
        }
    }

    #[test]
    fn tokens_are_compact() {
        let token = key()
            .sign(&Link::open(12, "1700000000000_42_abcd"))
            .unwrap();
        assert!(token.len() < 60, "{token}");
    }

    #[test]
    fn forged_altered_truncated_or_misused_tokens_fail() {
        let k = key();
        let link = Link::click(5, "m1", "https://good.example/");
        let token = k.sign(&link).unwrap();
        assert!(k.verify(LinkKind::Open, &token).is_none(), "wrong kind");
        assert!(LinkKey::derive(&[8u8; 64])
            .verify(LinkKind::Click, &token)
            .is_none());
        for cut in 0..token.len() {
            assert!(k.verify(LinkKind::Click, &token[..cut]).is_none(), "{cut}");
        }
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            let mut altered = bytes.to_vec();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(k.verify(LinkKind::Click, &altered).is_none(), "byte {i}");
        }
        assert!(k.verify(LinkKind::Click, &format!("{token}=")).is_none());
        assert!(k.verify(LinkKind::Click, "").is_none());
        assert!(k.verify(LinkKind::Click, "not a token!").is_none());

        // The destination is inside the signature: swapping it breaks the token.
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let at = raw.windows(4).position(|w| w == b"good").unwrap();
        raw[at..at + 4].copy_from_slice(b"evil");
        assert!(k
            .verify(LinkKind::Click, &URL_SAFE_NO_PAD.encode(raw))
            .is_none());
    }

    #[test]
    fn only_web_destinations_are_signed() {
        let k = key();
        for bad in ["javascript:alert(1)", "/local", "", "ftp://x.example/"] {
            assert!(k.sign(&Link::click(1, "m", bad)).is_err(), "{bad}");
        }
        assert!(k.sign(&Link::open(1, "")).is_err());
        assert!(k.sign(&Link::open(0, "m")).is_err());
    }

    #[test]
    fn varints_round_trip() {
        for n in [0u64, 1, 127, 128, 300, u32::MAX as u64, i64::MAX as u64] {
            let mut v = Vec::new();
            put_varint(&mut v, n);
            let mut s = v.as_slice();
            assert_eq!(take_varint(&mut s), Some(n));
            assert!(s.is_empty());
        }
    }

    #[test]
    fn urls_join_the_base() {
        assert_eq!(
            link_url("https://t.example/", LinkKind::Unsubscribe, "abc"),
            "https://t.example/u/abc"
        );
        assert_eq!(
            link_url("https://t.example", LinkKind::Open, "abc"),
            "https://t.example/t/o/abc"
        );
    }
}
