use rustix::time::{clock_gettime, ClockId};
use taskmaster_core::Time;

/// Reads CLOCK_MONOTONIC, the clock the supervisor's deadlines are on.
pub fn now() -> Time {
    let ts = clock_gettime(ClockId::Monotonic);
    let nanos = u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000
        + u64::try_from(ts.tv_nsec).unwrap_or(0);
    Time::from_nanos(nanos)
}

/// The moment `time` (on CLOCK_MONOTONIC) is, for tokio's timers.
pub fn instant_of(time: Time) -> tokio::time::Instant {
    tokio::time::Instant::now() + time.since(now())
}
