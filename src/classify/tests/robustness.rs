//! Garbage, truncated and deeply nested input: never a panic.

use super::messages::*;
use super::*;

/// xorshift64: deterministic pseudo-random bytes without a dependency.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn never_panics_on_garbage() {
    let classifier = Classifier::new();
    let mut rng = Prng(0x9e37_79b9_7f4a_7c15);
    // Mostly-random bytes, with mail-ish fragments mixed in so the parsers get past their first checks.
    let fragments: [&[u8]; 14] = [
        "Éé® 日本語 ".as_bytes(),
        b"Subject: Out of office\r\n",
        b"Content-Type: multipart/report; boundary=\"b\"\r\n",
        b"--b\r\n",
        b"Content-Type: message/delivery-status\r\n\r\n",
        b"Status: 5.1.1\r\nAction: failed\r\n",
        b"Diagnostic-Code: smtp; 550 ",
        b"\r\n\r\n",
        b"<a@b>",
        b"{\"notificationType\":\"Bounce\",\"bounce\":{",
        b"=?utf-8?B?AAAA?=",
        b"\xff\xfe\xc3",
        b"said: 5",
        b"<html><style",
    ];
    for _ in 0..5000 {
        let len = (rng.next() % 600) as usize;
        let mut input = Vec::with_capacity(len);
        while input.len() < len {
            let r = rng.next();
            if r.is_multiple_of(4) {
                input.extend_from_slice(fragments[(r >> 8) as usize % fragments.len()]);
            } else {
                input.push((r >> 16) as u8);
            }
        }
        let c = classifier.classify_input(&input);
        assert!(c.kind != Kind::Bounce || c.reason.is_some());
        let _ = c.to_json_line();
    }
}

#[test]
fn never_panics_on_truncated_messages() {
    let classifier = Classifier::new();
    for fixture in [
        POSTFIX_DSN_USER_UNKNOWN,
        QMAIL_BOUNCE,
        EXCHANGE_BOUNCE,
        ARF_REPORT,
        AUTO_REPLY,
        DELIVERED_DSN,
    ] {
        let bytes = fixture.as_bytes();
        for end in 0..=bytes.len() {
            let _ = classifier.classify_message(&bytes[..end]);
            let _ = classifier.classify_input(&bytes[..end]);
        }
    }
}

#[test]
fn never_panics_on_deep_nesting() {
    let mut raw = String::new();
    for depth in 0..300 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{depth}\"\n\n--b{depth}\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\n\n550 5.1.1 user unknown\n");
    let _ = classify(&raw);
    let _ = classify(&"a".repeat(200_000));
    let _ = classify(&"550 ".repeat(50_000));
}
