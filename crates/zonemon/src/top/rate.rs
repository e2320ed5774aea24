//! Transitions per second: a count per second for the last few minutes, for
//! `zonemon top`'s sparkline. Seconds are given by the caller (since the view
//! started), so the counter is pure and needs no clock of its own.

use std::collections::VecDeque;

/// Seconds of history kept (more than the widest sparkline drawn).
pub const KEEP_S: u64 = 600;

/// Counts per second, the newest last.
#[derive(Debug, Default)]
pub struct Rate {
    /// (second, count), seconds increasing; seconds without a count are absent.
    buckets: VecDeque<(u64, u64)>,
    total: u64,
}

impl Rate {
    /// Counts one transition at second `now_s` (never earlier than the last one counted).
    pub fn count(&mut self, now_s: u64) {
        self.total += 1;
        match self.buckets.back_mut() {
            Some((s, n)) if *s >= now_s => *n += 1,
            _ => self.buckets.push_back((now_s, 1)),
        }
        while self
            .buckets
            .front()
            .is_some_and(|&(s, _)| s + KEEP_S <= now_s)
        {
            self.buckets.pop_front();
        }
    }

    /// Every transition counted.
    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The counts of the `n` seconds ending with `now_s`, oldest first.
    pub fn series(&self, now_s: u64, n: usize) -> Vec<u64> {
        let first = (now_s + 1).saturating_sub(n as u64);
        let mut out = vec![0; n];
        let offset = n as u64 - (now_s + 1 - first); // leading seconds before time 0
        for &(s, c) in self
            .buckets
            .iter()
            .filter(|&&(s, _)| s >= first && s <= now_s)
        {
            out[(offset + s - first) as usize] = c;
        }
        out
    }

    /// The mean rate over the `n` seconds ending with `now_s`.
    pub fn per_second(&self, now_s: u64, n: usize) -> f64 {
        self.series(now_s, n).iter().sum::<u64>() as f64 / n.max(1) as f64
    }

    /// Whether anything was counted in the `n` seconds ending with `now_s`:
    /// while so, the sparkline moves as time passes.
    pub fn busy(&self, now_s: u64, n: usize) -> bool {
        let first = (now_s + 1).saturating_sub(n as u64);
        self.buckets.back().is_some_and(|&(s, _)| s >= first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_per_second() {
        let mut r = Rate::default();
        for s in [0, 0, 0, 2, 5, 5] {
            r.count(s);
        }
        assert_eq!(r.series(5, 6), [3, 0, 1, 0, 0, 2]);
        assert_eq!(r.series(5, 3), [0, 0, 2]);
        assert_eq!(r.series(1, 4), [0, 0, 3, 0], "before the start: zeros");
        assert_eq!(r.total(), 6);
        assert!((r.per_second(5, 3) - 2.0 / 3.0).abs() < 1e-9);
        assert!(r.busy(5, 1) && r.busy(10, 6) && !r.busy(11, 6));
    }

    #[test]
    fn forgets_what_is_older_than_it_keeps() {
        let mut r = Rate::default();
        r.count(0);
        r.count(KEEP_S + 1);
        assert_eq!(r.buckets.len(), 1);
        assert_eq!(r.total(), 2);
    }

    proptest! {
        #[test]
        fn the_series_sums_what_was_counted_in_its_window(
            mut secs in proptest::collection::vec(0u64..200, 0..300),
            n in 1usize..250,
        ) {
            secs.sort_unstable();
            let mut r = Rate::default();
            for &s in &secs {
                r.count(s);
            }
            let now = 199;
            let first = (now + 1u64).saturating_sub(n as u64);
            let want = secs.iter().filter(|&&s| s >= first).count() as u64;
            let got = r.series(now, n);
            prop_assert_eq!(got.len(), n);
            prop_assert_eq!(got.iter().sum::<u64>(), want);
        }
    }
}
