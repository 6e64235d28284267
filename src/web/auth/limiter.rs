//! Login attempts limited per client IP and per account, and the client's address.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::HttpRequest;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::web::AppState;

/// Login attempts, limited per client IP and per account (the email tried). Keys are a hash
/// of the normalised, length-capped input, so that a flood of long unique emails costs a few
/// bytes each, and entries whose limit has refilled are dropped as the map grows.
pub struct LoginLimiter {
    per_ip: DefaultKeyedRateLimiter<[u8; 16]>,
    per_account: DefaultKeyedRateLimiter<[u8; 16]>,
    /// Attempts since the last sweep of refilled entries.
    since_sweep: std::sync::atomic::AtomicUsize,
    refill: Duration,
}

/// Entries kept before refilled ones are swept out.
const LIMITER_SWEEP_EVERY: usize = 1024;

/// The longest email or password a login form may carry; longer is refused at once.
pub const MAX_LOGIN_EMAIL: usize = 320;
pub const MAX_LOGIN_PASSWORD: usize = 1024;

fn limiter_key(kind: u8, value: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let value = crate::domain::normalize_address(value);
    let capped: String = value.chars().take(MAX_LOGIN_EMAIL).collect();
    let digest = Sha256::new()
        .chain_update([kind])
        .chain_update(capped.as_bytes())
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

impl LoginLimiter {
    pub fn new(settings: &crate::Settings) -> Self {
        let refill = Duration::from_secs(settings.login_refill_seconds.max(1));
        let quota = |burst: u32| {
            Quota::with_period(refill)
                .expect("a non-zero period")
                .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least one"))
        };
        LoginLimiter {
            per_ip: RateLimiter::keyed(quota(settings.login_burst_per_ip)),
            per_account: RateLimiter::keyed(quota(settings.login_burst_per_account)),
            since_sweep: std::sync::atomic::AtomicUsize::new(0),
            refill,
        }
    }

    /// Counts one attempt; false when either limit is exhausted.
    pub fn allow(&self, ip: &str, email: &str) -> bool {
        use std::sync::atomic::Ordering;
        if self.since_sweep.fetch_add(1, Ordering::Relaxed) >= LIMITER_SWEEP_EVERY {
            self.since_sweep.store(0, Ordering::Relaxed);
            self.per_ip.retain_recent();
            self.per_account.retain_recent();
            self.per_ip.shrink_to_fit();
            self.per_account.shrink_to_fit();
        }
        let ip_ok = self.per_ip.check_key(&limiter_key(b'i', ip)).is_ok();
        let account_ok = self
            .per_account
            .check_key(&limiter_key(b'a', email))
            .is_ok();
        ip_ok && account_ok
    }

    /// Keys held now (for tests and measurements).
    pub fn len(&self) -> usize {
        self.per_ip.len() + self.per_account.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long a refused client should wait: one refill period.
    pub fn retry_after_secs(&self) -> u64 {
        self.refill.as_secs().max(1)
    }
}

/// The client's address: the peer, or what a trusted proxy says the client was.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    if let Some(peer) = peer {
        if state.settings.trusted_proxies.contains(&peer) {
            let forwarded = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            if let Some(ip) = forwarded {
                return ip.to_string();
            }
        }
        return peer.to_string();
    }
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::LoginLimiter;

    #[test]
    fn the_login_limiter_keeps_small_keys_and_forgets_refilled_ones() {
        let mut settings = crate::Settings::new("sqlite://unused.db");
        settings.login_refill_seconds = 1;
        settings.login_burst_per_account = 1;
        let limiter = LoginLimiter::new(&settings);
        let long = "x".repeat(60_000);
        for i in 0..1_000 {
            limiter.allow("192.0.2.1", &format!("{i}-{long}@example.com"));
        }
        // One key per distinct email, each a 16-byte hash, and the one IP.
        assert_eq!(limiter.len(), 1_001);
        // The same email, however long, cased or padded, is one key.
        assert!(!limiter.allow(
            "192.0.2.2",
            &format!(" 0-{}@EXAMPLE.com ", long.to_uppercase())
        ));
        // A key is forgotten two refill periods after its last use.
        std::thread::sleep(std::time::Duration::from_millis(2_100));
        for i in 0..100 {
            limiter.allow("192.0.2.3", &format!("late-{i}@example.com"));
        }
        assert!(
            limiter.len() < 300,
            "refilled keys are swept: {} kept",
            limiter.len()
        );
    }
}
