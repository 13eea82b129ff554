//! The batching window: events within `batch` of the first go out together, as one message.
//! Pure: the time is given.

use std::time::{Duration, Instant};

/// Events waiting for their window to end.
#[derive(Debug)]
pub struct Batch<T> {
    pending: Vec<T>,
    /// When the first of them came.
    since: Option<Instant>,
}

impl<T> Default for Batch<T> {
    fn default() -> Batch<T> {
        Batch {
            pending: Vec::new(),
            since: None,
        }
    }
}

impl<T> Batch<T> {
    /// Adds one, which opens the window if none is open.
    pub fn push(&mut self, item: T, now: Instant) {
        self.since.get_or_insert(now);
        self.pending.push(item);
    }

    /// When the open window ends with a window of `window`: now for 0; `None` when nothing
    /// waits.
    pub fn due(&self, window: Duration) -> Option<Instant> {
        self.since.map(|since| since + window)
    }

    /// Whether the window has ended at `now`.
    pub fn is_due(&self, window: Duration, now: Instant) -> bool {
        self.due(window).is_some_and(|due| due <= now)
    }

    /// Takes what waits, and closes the window.
    pub fn take(&mut self) -> Vec<T> {
        self.since = None;
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_within_the_window_of_the_first_go_together() {
        let window = Duration::from_secs(30);
        let start = Instant::now();
        let mut batch = Batch::default();
        assert_eq!(batch.due(window), None);
        batch.push("a", start);
        batch.push("b", start + Duration::from_secs(20));
        // The window is the first one's: a later event does not push it back.
        assert_eq!(batch.due(window), Some(start + window));
        assert!(!batch.is_due(window, start + Duration::from_secs(29)));
        assert!(batch.is_due(window, start + window));
        assert_eq!(batch.take(), ["a", "b"]);
        assert_eq!(batch.due(window), None);
        // The next event opens a new window.
        batch.push("c", start + Duration::from_secs(40));
        assert_eq!(
            batch.due(window),
            Some(start + Duration::from_secs(40) + window)
        );
    }

    #[test]
    fn a_zero_window_is_due_at_once() {
        let now = Instant::now();
        let mut batch = Batch::default();
        batch.push(1, now);
        assert!(batch.is_due(Duration::ZERO, now));
    }
}
