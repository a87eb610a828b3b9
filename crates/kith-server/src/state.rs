//! Shared state of the HTTP layer: the store, the realtime bus, limits and rate limiters.

use crate::realtime::Bus;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use kith_store::Store;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            sessions_per_ip_per_minute: 600,
            visitor_per_second: 10,
            admin_per_second: 100,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub limits: Limits,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

/// A keyed token bucket; `None` when the limit is off.
pub struct Limiter(Option<DefaultKeyedRateLimiter<String>>);

impl Limiter {
    fn new(quota: Option<Quota>) -> Self {
        Limiter(quota.map(RateLimiter::keyed))
    }

    /// `Err(seconds to wait)` when `key` is over its limit.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let Some(l) = &self.0 else { return Ok(()) };
        l.check_key(&key.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + 1
        })
    }

    /// Forgets keys whose buckets are full again, so memory follows active clients.
    pub fn shrink(&self) {
        if let Some(l) = &self.0 {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

pub struct Limiters {
    pub sessions_per_ip: Limiter,
    pub per_visitor: Limiter,
    pub per_admin: Limiter,
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
        }
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
