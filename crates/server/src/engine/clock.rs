//! The engine's clock: wall-clock seconds in production, a hand-moved clock in tests, so the
//! engine's time-dependent decisions (time limits, scheduler timestamps) are tested without
//! sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch, as the engine sees them.
pub trait Clock: Send + Sync {
    /// The current time in whole seconds since the Unix epoch.
    fn now_s(&self) -> i64;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_s(&self) -> i64 {
        super::now_s()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    now_s: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `now_s`.
    pub fn new(now_s: i64) -> Self {
        ManualClock {
            now_s: AtomicI64::new(now_s),
        }
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance_s(&self, seconds: i64) {
        self.now_s.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_s(&self) -> i64 {
        self.now_s.load(Ordering::SeqCst)
    }
}
