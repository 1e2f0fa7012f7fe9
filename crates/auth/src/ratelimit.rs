//! An in-memory limiter of failed sign-ins, keyed by string.
//!
//! Callers use two kinds of key: [`account_key`] (`acct:<email>`) and [`address_key`]
//! (`addr:<ip>`); keys starting with `addr:` get the address rule, every other key the
//! account rule. Each key counts failures in a fixed window that opens at its first
//! failure; once `max_failures` are counted, [`LoginLimiter::reserve`] refuses the key until
//! the window ends. An attempt is counted as it starts, before its password hash runs, so
//! N concurrent attempts let exactly the limit through; [`LoginLimiter::release`] gives it
//! back (it succeeded, or was never tried), and a successful sign-in resets the account's
//! counter ([`LoginLimiter::record_success`]). A client's address is taken at
//! [`client_scope`]: an IPv4 address, or the /64 of an IPv6 one.
//!
//! Memory is bounded by [`LoginLimiterConfig::max_keys`]: when full, expired entries are
//! dropped, then (if still full) the oldest tenth, unlocked keys before locked ones.
//! State is per process: with several nodes each node counts on its own.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::RetryAfter;

/// Prefix of account keys.
pub const ACCOUNT_PREFIX: &str = "acct:";
/// Prefix of client address keys.
pub const ADDRESS_PREFIX: &str = "addr:";

/// The limiter key of an account (`acct:<email>`; pass the normalised email).
pub fn account_key(email: &str) -> String {
    format!("{ACCOUNT_PREFIX}{email}")
}

/// One client for per-address limits and scopes: an IPv4 address (also when written
/// IPv4-mapped), or the /64 network of an IPv6 one (what one host is usually given, so
/// rotating addresses inside it does not make new clients).
pub fn client_scope(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The limiter key of a client (`addr:<client_scope>`).
pub fn address_key(ip: impl std::fmt::Display) -> String {
    format!("{ADDRESS_PREFIX}{ip}")
}

/// At most `max_failures` failures per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitRule {
    /// Failures that lock the key.
    pub max_failures: u32,
    /// Length of the window, from the first failure.
    pub window: Duration,
}

/// Rules and bounds of a [`LoginLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimiterConfig {
    /// For account keys (and any key that is not an address key). Default 5 per 15 min.
    pub account: LimitRule,
    /// For `addr:` keys. Default 20 per 15 min.
    pub address: LimitRule,
    /// Most keys tracked at once. Default 100 000.
    pub max_keys: usize,
}

impl Default for LoginLimiterConfig {
    fn default() -> Self {
        LoginLimiterConfig {
            account: LimitRule {
                max_failures: 5,
                window: Duration::from_secs(15 * 60),
            },
            address: LimitRule {
                max_failures: 20,
                window: Duration::from_secs(15 * 60),
            },
            max_keys: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
}

/// Counts failed sign-ins per key; thread-safe (one short mutex section per call).
#[derive(Debug)]
pub struct LoginLimiter {
    config: LoginLimiterConfig,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(LoginLimiterConfig::default())
    }
}

impl LoginLimiter {
    /// A limiter with these rules.
    pub fn new(config: LoginLimiterConfig) -> LoginLimiter {
        LoginLimiter {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The rules in use.
    pub fn config(&self) -> &LoginLimiterConfig {
        &self.config
    }

    fn rule(&self, key: &str) -> LimitRule {
        if key.starts_with(ADDRESS_PREFIX) {
            self.config.address
        } else {
            self.config.account
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves the map consistent (every update is a
        // single insert or remove), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt for `key` as it starts, under one lock with the check, so that
    /// N concurrent attempts let exactly the limit through: `Err(RetryAfter)` when the
    /// key has used up its window, else the attempt counts as a failure until
    /// [`LoginLimiter::release`] gives it back (it succeeded, or was never tried).
    pub fn reserve(&self, key: &str, now: Instant) -> Result<(), RetryAfter> {
        let rule = self.rule(key);
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            let elapsed = now.saturating_duration_since(entry.window_start);
            if elapsed >= rule.window {
                *entry = Entry {
                    window_start: now,
                    failures: 1,
                };
                return Ok(());
            }
            if entry.failures >= rule.max_failures {
                return Err(RetryAfter(rule.window - elapsed));
            }
            entry.failures = entry.failures.saturating_add(1);
            return Ok(());
        }
        self.open_window(&mut entries, key, now);
        Ok(())
    }

    /// A first failure for `key`, making room among the tracked keys if needed.
    fn open_window(&self, entries: &mut HashMap<String, Entry>, key: &str, now: Instant) {
        if entries.len() >= self.config.max_keys {
            self.evict(entries, now);
        }
        entries.insert(
            key.to_owned(),
            Entry {
                window_start: now,
                failures: 1,
            },
        );
    }

    /// Gives back one attempt [`LoginLimiter::reserve`] counted.
    pub fn release(&self, key: &str) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            entry.failures = entry.failures.saturating_sub(1);
            if entry.failures == 0 {
                entries.remove(key);
            }
        }
    }

    /// Forgets `key`'s failures. Call it with the account key after a successful sign-in;
    /// not with the address key (one valid account would otherwise let an address keep
    /// guessing other accounts' passwords).
    pub fn record_success(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for at least one entry: drops expired entries, then, if still full, the
    /// oldest tenth (unlocked before locked), so a flood of keys costs amortised O(1).
    fn evict(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        entries
            .retain(|key, e| now.saturating_duration_since(e.window_start) < self.rule(key).window);
        if entries.len() < self.config.max_keys {
            return;
        }
        let excess = entries.len() + 1 - self.config.max_keys;
        let remove = excess.max(self.config.max_keys / 10).min(entries.len());
        let mut order: Vec<(bool, Instant)> = entries
            .iter()
            .map(|(key, e)| (e.failures >= self.rule(key).max_failures, e.window_start))
            .collect();
        if remove == 0 {
            return;
        }
        let (_, cutoff, _) = order.select_nth_unstable(remove - 1);
        let cutoff = *cutoff;
        let mut removed = 0;
        entries.retain(|key, e| {
            let k = (e.failures >= self.rule(key).max_failures, e.window_start);
            if removed < remove && k <= cutoff {
                removed += 1;
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    impl LoginLimiter {
        /// `Ok` when `key` may try to sign in at `now`; `Err(RetryAfter)` with the time left
        /// in its window when it has used up its failures. Counts nothing (a probe).
        fn check(&self, key: &str, now: Instant) -> Result<(), RetryAfter> {
            let rule = self.rule(key);
            let mut entries = self.lock();
            let Some(entry) = entries.get(key).copied() else {
                return Ok(());
            };
            let elapsed = now.saturating_duration_since(entry.window_start);
            if elapsed >= rule.window {
                entries.remove(key);
                return Ok(());
            }
            if entry.failures >= rule.max_failures {
                return Err(RetryAfter(rule.window - elapsed));
            }
            Ok(())
        }

        /// One failed attempt (a reservation that is not given back).
        fn record_failure(&self, key: &str, now: Instant) {
            self.reserve(key, now).expect("under the limit");
        }
    }

    #[test]
    fn five_failures_lock_the_account_until_the_window_ends() {
        let limiter = LoginLimiter::default();
        let key = account_key("alice@example.com");
        let t0 = Instant::now();
        for i in 0..5 {
            let now = t0 + Duration::from_secs(i);
            assert_eq!(limiter.check(&key, now), Ok(()), "attempt {i}");
            limiter.record_failure(&key, now);
        }
        let now = t0 + MIN;
        let RetryAfter(wait) = limiter.check(&key, now).unwrap_err();
        assert!(wait <= 15 * MIN, "{wait:?}");
        assert_eq!(wait, 14 * MIN);
        assert_eq!(RetryAfter(wait).secs(), 14 * 60);
        // Still locked just before the window ends, free at its end.
        assert!(
            limiter
                .check(&key, t0 + 15 * MIN - Duration::from_millis(1))
                .is_err()
        );
        assert_eq!(limiter.check(&key, t0 + 15 * MIN), Ok(()));
        // A fresh window after that.
        limiter.record_failure(&key, t0 + 15 * MIN);
        assert_eq!(limiter.check(&key, t0 + 15 * MIN), Ok(()));
    }

    #[test]
    fn ipv6_clients_are_their_64_and_mapped_ipv4_is_ipv4() {
        let scope = |text: &str| client_scope(text.parse().unwrap());
        assert_eq!(scope("203.0.113.7"), "203.0.113.7");
        assert_eq!(scope("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(scope("2001:db8::1"), "2001:db8:0:0::/64");
        assert_eq!(scope("2001:db8::1"), scope("2001:db8::ffff:1234"));
        assert_ne!(scope("2001:db8::1"), scope("2001:db8:0:1::1"));
    }

    #[test]
    fn concurrent_reservations_let_exactly_the_limit_through() {
        let limiter = std::sync::Arc::new(LoginLimiter::default());
        let key = account_key("carol@example.com");
        let t0 = Instant::now();
        let granted: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..32)
                .map(|_| scope.spawn(|| limiter.reserve(&key, t0).is_ok()))
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(granted, 5);
        // A released attempt (it succeeded) gives its place back.
        limiter.release(&key);
        assert_eq!(limiter.reserve(&key, t0), Ok(()));
        assert!(limiter.reserve(&key, t0).is_err());
        // A new window after the old one.
        assert_eq!(limiter.reserve(&key, t0 + 15 * MIN), Ok(()));
    }

    #[test]
    fn success_resets_the_account() {
        let limiter = LoginLimiter::default();
        let key = account_key("bob@example.com");
        let t0 = Instant::now();
        for _ in 0..4 {
            limiter.record_failure(&key, t0);
        }
        limiter.record_success(&key);
        for _ in 0..4 {
            limiter.record_failure(&key, t0);
        }
        assert_eq!(limiter.check(&key, t0), Ok(()));
        limiter.record_failure(&key, t0);
        assert!(limiter.check(&key, t0).is_err());
        limiter.record_success(&key);
        assert_eq!(limiter.check(&key, t0), Ok(()));
    }

    #[test]
    fn address_limit_is_independent() {
        let limiter = LoginLimiter::default();
        let addr = address_key("203.0.113.7");
        assert_eq!(addr, "addr:203.0.113.7");
        let t0 = Instant::now();
        // 19 failures over many accounts from one address: no account and not the address
        // is locked yet.
        for i in 0..19 {
            let acct = account_key(&format!("user{i}@example.com"));
            limiter.record_failure(&acct, t0);
            limiter.record_failure(&addr, t0);
            assert_eq!(limiter.check(&acct, t0), Ok(()));
        }
        assert_eq!(limiter.check(&addr, t0), Ok(()));
        limiter.record_failure(&addr, t0);
        assert_eq!(limiter.check(&addr, t0 + MIN), Err(RetryAfter(14 * MIN)));
        // Another address and the accounts are unaffected.
        assert_eq!(limiter.check(&address_key("198.51.100.1"), t0), Ok(()));
        assert_eq!(limiter.check(&account_key("user0@example.com"), t0), Ok(()));
        // Locking an account does not lock the address of a different limiter key.
        let victim = account_key("victim@example.com");
        for _ in 0..5 {
            limiter.record_failure(&victim, t0);
        }
        assert!(limiter.check(&victim, t0).is_err());
        assert_eq!(limiter.check(&address_key("198.51.100.1"), t0), Ok(()));
    }

    #[test]
    fn configurable_rules() {
        let limiter = LoginLimiter::new(LoginLimiterConfig {
            account: LimitRule {
                max_failures: 2,
                window: MIN,
            },
            ..LoginLimiterConfig::default()
        });
        let key = account_key("c@example.com");
        let t0 = Instant::now();
        limiter.record_failure(&key, t0);
        limiter.record_failure(&key, t0);
        assert_eq!(limiter.check(&key, t0), Err(RetryAfter(MIN)));
        assert_eq!(limiter.check(&key, t0 + MIN), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = LoginLimiter::new(LoginLimiterConfig {
            max_keys: 100,
            ..LoginLimiterConfig::default()
        });
        let t0 = Instant::now();
        // A locked account survives a flood of newer, unlocked keys.
        let locked = account_key("locked@example.com");
        for _ in 0..5 {
            limiter.record_failure(&locked, t0);
        }
        for i in 0..1_000u64 {
            let now = t0 + Duration::from_millis(i);
            limiter.record_failure(&address_key(format!("10.0.{}.{}", i / 256, i % 256)), now);
            assert!(limiter.len() <= 100);
        }
        assert!(limiter.check(&locked, t0 + MIN).is_err());
        // Expired entries go first once the limiter is full.
        let mut i = 0;
        while limiter.len() < 100 {
            limiter.record_failure(&account_key(&format!("fill{i}@example.com")), t0);
            i += 1;
        }
        let later = t0 + 16 * MIN;
        limiter.record_failure(&account_key("new@example.com"), later);
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn retry_after_secs_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1_500)).secs(), 2);
        assert_eq!(RetryAfter(Duration::from_secs(3)).secs(), 3);
        assert_eq!(RetryAfter(Duration::ZERO).secs(), 1);
    }

    #[test]
    fn thread_safe() {
        let limiter = std::sync::Arc::new(LoginLimiter::default());
        let t0 = Instant::now();
        let key = account_key("shared@example.com");
        std::thread::scope(|s| {
            for _ in 0..4 {
                let limiter = limiter.clone();
                let key = key.clone();
                s.spawn(move || {
                    for _ in 0..10 {
                        let _ = limiter.reserve(&key, t0);
                    }
                });
            }
        });
        assert!(limiter.check(&key, t0).is_err());
    }
}
