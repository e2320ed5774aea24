//! For tests that read a thread's `/proc/self/task/<tid>` entry: the kernel's
//! id of a thread the code under test starts, recorded by that thread.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A thread's kernel id, shared between the thread that records it and the test that reads it.
#[derive(Debug, Clone, Default)]
pub struct ThreadTid(Arc<AtomicI32>);

impl ThreadTid {
    /// Records the calling thread's id (called first thing in the thread).
    pub fn record(&self) {
        // SAFETY: gettid has no preconditions.
        self.0.store(unsafe { libc::gettid() }, Ordering::SeqCst);
    }

    /// The thread's id, waiting (up to 10 s) for the thread to record it.
    pub fn get(&self) -> i32 {
        for _ in 0..10_000 {
            match self.0.load(Ordering::SeqCst) {
                0 => std::thread::sleep(Duration::from_millis(1)),
                tid => return tid,
            }
        }
        panic!("the thread never recorded its id");
    }
}
