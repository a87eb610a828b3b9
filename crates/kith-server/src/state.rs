//! Shared state of the HTTP layer: the store, the realtime bus, limits and rate limiters.

use crate::realtime::Bus;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use kith_store::Store;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Limits from SPEC "Limits"; `0` turns one off.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// New visitor sessions per client IP per minute.
    pub sessions_per_ip_per_minute: u32,
    /// Widget calls per visitor per second (bursts of three times that).
    pub visitor_per_second: u32,
    /// Admin API calls per token per second (bursts of three times that).
    pub admin_per_second: u32,
    /// Failed authentications (bad API token, unknown website key, forged visitor token) per
    /// client IP per second, bursts of three times that; past it the IP gets 429 before any
    /// credential is looked at.
    pub failed_auth_per_ip_per_second: u32,
    /// Open widget event streams per visitor.
    pub streams_per_visitor: u32,
    /// Open widget event streams per client IP.
    pub streams_per_ip: u32,
    /// Open admin event streams per API token.
    pub streams_per_token: u32,
    /// Admin-panel sign-in attempts per client IP and email per minute.
    pub signin_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            sessions_per_ip_per_minute: 600,
            visitor_per_second: 10,
            admin_per_second: 100,
            failed_auth_per_ip_per_second: 10,
            streams_per_visitor: 3,
            streams_per_ip: 20,
            streams_per_token: 20,
            signin_per_minute: 10,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub limits: Limits,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Turns off `/demo` (on by default: a new user sees the widget at once).
    pub disable_demo: bool,
    /// Webhook delivery and retries.
    pub webhooks: crate::webhooks::WebhookConfig,
}

/// A keyed token bucket; `None` when the limit is off.
pub struct Limiter(Option<DefaultKeyedRateLimiter<String>>);

impl Limiter {
    fn new(quota: Option<Quota>) -> Self {
        Limiter(quota.map(RateLimiter::keyed))
    }

    /// `Err(seconds to wait)` when `key` is over its limit.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_for(key).map_err(retry_after_secs)
    }

    /// `Err(time to wait)` when `key` is over its limit.
    fn check_for(&self, key: &str) -> Result<(), Duration> {
        let Some(l) = &self.0 else { return Ok(()) };
        l.check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets keys whose buckets are full again, so memory follows active clients.
    pub fn shrink(&self) {
        if let Some(l) = &self.0 {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// How many keys the limiter holds (what an attacker could try to grow).
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |l| l.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `Retry-After` in whole seconds, rounded up and never 0.
fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + 1
}

/// Throttles failed authentication per client IP. Only failures spend the IP's budget, so a
/// busy client with good credentials is never slowed by it; once the budget is spent, the IP
/// is refused before its credential is even looked up, until a failure would fit again.
/// (governor has no way to test a bucket without spending it, hence the `blocked` map; it
/// only ever holds IPs that went over, and `shrink` drops the expired ones.)
pub struct FailedAuth {
    failures: Limiter,
    blocked: RwLock<HashMap<IpAddr, Instant>>,
}

impl FailedAuth {
    fn new(quota: Option<Quota>) -> Self {
        FailedAuth {
            failures: Limiter::new(quota),
            blocked: RwLock::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` while `ip` is over its failure budget.
    pub fn admit(&self, ip: IpAddr) -> Result<(), u64> {
        let blocked = self.blocked.read().unwrap_or_else(|e| e.into_inner());
        match blocked.get(&ip) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(retry_after_secs(wait)),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Counts one failed authentication of `ip`: `Err(seconds to wait)` when it went over.
    pub fn failed(&self, ip: IpAddr) -> Result<(), u64> {
        self.failures.check_for(&ip.to_string()).map_err(|wait| {
            self.blocked
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(ip, Instant::now() + wait);
            retry_after_secs(wait)
        })
    }

    pub fn shrink(&self) {
        self.failures.shrink();
        let now = Instant::now();
        self.blocked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }
}

/// Caps how many long-lived streams one key (a visitor, an IP, a token) holds open at once.
#[derive(Clone)]
pub struct StreamSlots {
    cap: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One held stream slot; dropping it (the stream ended or the client went away) frees it.
pub struct StreamSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    /// `None` when the cap is off (nothing was counted).
    key: Option<String>,
}

impl StreamSlots {
    /// `cap` 0: no cap.
    pub fn new(cap: u32) -> Self {
        StreamSlots {
            cap: cap as usize,
            open: Arc::default(),
        }
    }

    /// A slot for `key`, or `None` when it already holds `cap` streams.
    pub fn acquire(&self, key: &str) -> Option<StreamSlot> {
        if self.cap == 0 {
            return Some(StreamSlot {
                open: Arc::clone(&self.open),
                key: None,
            });
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key.to_string()).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            open: Arc::clone(&self.open),
            key: Some(key.to_string()),
        })
    }

    /// Keys holding at least one stream.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let Some(key) = &self.key else { return };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                // Keys leave with their last stream, so the map follows open streams only.
                open.remove(key);
            }
        }
    }
}

pub struct Limiters {
    pub sessions_per_ip: Limiter,
    pub per_visitor: Limiter,
    /// Keyed by the authenticated credential (never by what a caller merely sent).
    pub per_admin: Limiter,
    pub failed_auth: FailedAuth,
    pub streams_per_visitor: StreamSlots,
    pub streams_per_ip: StreamSlots,
    pub streams_per_token: StreamSlots,
    /// Keyed by client IP and the email tried.
    pub signin: Limiter,
}

impl Limiters {
    pub fn new(l: &Limits) -> Self {
        let per_second_with_burst = |n: u32| {
            NonZeroU32::new(n).map(|n| {
                Quota::per_second(n).allow_burst(n.saturating_mul(NonZeroU32::new(3).unwrap()))
            })
        };
        Limiters {
            sessions_per_ip: Limiter::new(
                NonZeroU32::new(l.sessions_per_ip_per_minute).map(Quota::per_minute),
            ),
            per_visitor: Limiter::new(per_second_with_burst(l.visitor_per_second)),
            per_admin: Limiter::new(per_second_with_burst(l.admin_per_second)),
            failed_auth: FailedAuth::new(per_second_with_burst(l.failed_auth_per_ip_per_second)),
            streams_per_visitor: StreamSlots::new(l.streams_per_visitor),
            streams_per_ip: StreamSlots::new(l.streams_per_ip),
            streams_per_token: StreamSlots::new(l.streams_per_token),
            signin: Limiter::new(NonZeroU32::new(l.signin_per_minute).map(Quota::per_minute)),
        }
    }

    /// Drops idle keys (called every minute).
    pub fn shrink(&self) {
        self.sessions_per_ip.shrink();
        self.per_visitor.shrink();
        self.per_admin.shrink();
        self.failed_auth.shrink();
        self.signin.shrink();
    }
}

pub struct Inner {
    pub store: Store,
    pub bus: Bus,
    pub config: Config,
    pub limiters: Limiters,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl AppState {
    pub fn new(store: Store, bus: Bus, config: Config) -> Self {
        let limiters = Limiters::new(&config.limits);
        AppState(Arc::new(Inner {
            store,
            bus,
            config,
            limiters,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_slots_cap_and_free() {
        let slots = StreamSlots::new(2);
        let a = slots.acquire("v").unwrap();
        let _b = slots.acquire("v").unwrap();
        assert!(slots.acquire("v").is_none());
        assert!(slots.acquire("w").is_some());
        drop(a);
        assert!(slots.acquire("v").is_some());
        assert_eq!(slots.len(), 1, "keys leave with their last stream");
        let off = StreamSlots::new(0);
        let held: Vec<_> = (0..100).map(|_| off.acquire("v").unwrap()).collect();
        assert_eq!((held.len(), off.len()), (100, 0));
    }

    #[test]
    fn only_failures_spend_the_budget_and_going_over_blocks() {
        let gate = FailedAuth::new(Some(Quota::per_minute(NonZeroU32::new(2).unwrap())));
        let ip = IpAddr::from([10, 0, 0, 1]);
        assert!(gate.admit(ip).is_ok());
        assert!(gate.failed(ip).is_ok());
        assert!(gate.failed(ip).is_ok());
        assert!(gate.failed(ip).is_err());
        assert!(gate.admit(ip).is_err());
        assert!(gate.admit(IpAddr::from([10, 0, 0, 2])).is_ok());
    }
}
