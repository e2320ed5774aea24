//! Test helpers: an output the test can read after a sink took it, and a
//! pipeline writing to it.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use zonemon_core::output::TextSink;
use zonemon_core::tracker::HostInfo;
use zonemon_core::Tracker;

use crate::pipeline::{Pipeline, Resolvers};

/// A writer whose bytes stay readable through its clones.
#[derive(Clone, Default)]
pub struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl SharedBuf {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A pipeline with no runtime resolvers writing every transition as text to `out`.
pub fn pipeline(out: SharedBuf) -> Pipeline {
    let host = HostInfo {
        utsns: 1,
        hostname: "host".into(),
    };
    let sink = Box::new(TextSink::new(out, true, None));
    Pipeline::new(Tracker::new(host, Resolvers::new()), sink, None)
}
