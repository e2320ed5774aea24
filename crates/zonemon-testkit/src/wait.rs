//! Waiting for what happens in the background: another thread, another process.

use std::time::{Duration, Instant};

/// How long [`within`] sleeps between two looks.
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// Whether `cond` holds within `limit`, asked at once and then every 5 ms;
/// on a loaded host the looks are as late as the scheduler makes them, so
/// `limit` is the test's patience, never a figure it measures.
pub fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(LOOK_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_soon_as_the_condition_holds_and_no_later_than_the_limit() {
        let mut asked = 0;
        assert!(within(Duration::from_secs(5), || {
            asked += 1;
            asked == 3
        }));
        assert_eq!(asked, 3, "asked until it held, then no more");
        let t0 = Instant::now();
        assert!(!within(Duration::from_millis(30), || false));
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(30),
            "gave up after {waited:?}"
        );
    }
}
