//! Waiting for what happens in the background: another thread, another process.

use std::time::{Duration, Instant};

/// How long [`within`] sleeps after its first look; each sleep after is twice the one
/// before, up to [`LOOK_AT_MOST_EVERY`]: what comes at once is seen at once, and a long wait
/// costs the host a look every 100 ms (a look may read a journal or walk `/proc`).
const FIRST_SLEEP: Duration = Duration::from_millis(5);
/// The longest sleep between two looks.
const LOOK_AT_MOST_EVERY: Duration = Duration::from_millis(100);

/// Whether `cond` holds within `limit`, asked at once and then after 5 ms, 10, 20, … (at
/// most every 100 ms);
/// on a loaded host the looks are as late as the scheduler makes them, so
/// `limit` is the test's patience, never a figure it measures.
pub fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    found_within(limit, || cond().then_some(())).is_some()
}

/// The first `Some` that `look` gives within `limit`, asked as [`within`] asks.
pub fn found_within<T>(limit: Duration, mut look: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    let mut sleep = FIRST_SLEEP;
    loop {
        if let Some(found) = look() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(LOOK_AT_MOST_EVERY);
    }
}

/// Waits until `cond` holds, for at most `limit`; if it never does, panics
/// with `what()`: what was awaited, and what there is instead.
pub fn wait_until(limit: Duration, what: impl FnOnce() -> String, cond: impl FnMut() -> bool) {
    assert!(
        within(limit, cond),
        "gave up after {limit:?} waiting: {}",
        what()
    );
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
        let mut n = 0;
        assert_eq!(
            found_within(Duration::from_secs(5), || {
                n += 1;
                (n == 2).then_some("second")
            }),
            Some("second")
        );
        assert_eq!(found_within(Duration::ZERO, || None::<()>), None);
    }

    #[test]
    #[should_panic(expected = "waiting: the thing")]
    fn wait_until_says_what_never_came() {
        wait_until(Duration::from_millis(10), || "the thing".into(), || false);
    }
}
