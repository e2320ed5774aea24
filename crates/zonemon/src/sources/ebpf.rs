//! The eBPF source: records from the kernel side's ring buffer.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use libbpf_rs::{OpenObject, RingBuffer, RingBufferBuilder};

use super::{ebpf_load, Source, DISABLE_EBPF_ENV};
use crate::decode::{decode, DecodeError, Record};
use crate::pipeline::{boot_time_ns, Pipeline};
use crate::skel::ZonemonSkel;

/// Records taken from the ring buffer at a time: bounds the queue below.
const BATCH: usize = 64;

/// Records decoded by the ring buffer's callback, waiting for the pipeline.
type Queue = Rc<RefCell<VecDeque<Result<Record, DecodeError>>>>;

/// The BPF programs, attached, and the consumer of their ring buffer.
pub struct EbpfSource {
    // Field order is drop order: the consumer goes before the object it reads.
    ring: RingBuffer<'static>,
    queue: Queue,
    skel: ZonemonSkel<'static>,
    /// Kernel-side losses already reported and recovered from.
    lost_seen: u64,
}

impl EbpfSource {
    /// Loads and attaches the BPF programs with a ring buffer of `ring_bytes`.
    pub fn open(ring_bytes: u32) -> Result<Self> {
        if std::env::var_os(DISABLE_EBPF_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
            bail!("disabled by the environment variable {DISABLE_EBPF_ENV}");
        }
        // The object's storage must outlive the skeleton, which lives as long as the watch: one small leak per process.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let skel = ebpf_load::load(storage, ring_bytes)?;
        let queue = Queue::new(RefCell::new(VecDeque::with_capacity(BATCH)));
        let mut builder = RingBufferBuilder::new();
        let sink = Rc::clone(&queue);
        builder.add(&skel.maps.events, move |bytes: &[u8]| {
            sink.borrow_mut().push_back(decode(bytes));
            0
        })?;
        let ring = builder
            .build()
            .context("setting up the ring buffer consumer")?;
        Ok(EbpfSource {
            ring,
            queue,
            skel,
            lost_seen: 0,
        })
    }

    /// What the kernel side could not deliver so far: ring-buffer drops, and
    /// dying zones it could not track (their `down` would be missing).
    fn lost_total(&self) -> u64 {
        match self.skel.maps.bss_data.as_deref() {
            // SAFETY: the counters live in the object's mmap'd .bss, updated
            // atomically by the kernel; a volatile read sees a whole u64.
            Some(bss) => unsafe {
                std::ptr::read_volatile(&bss.dropped) + std::ptr::read_volatile(&bss.dying_overflow)
            },
            None => 0,
        }
    }

    /// Consumes the ring buffer and hands every record to the pipeline, a
    /// batch at a time, so that a burst never piles up in memory here.
    fn consume(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        loop {
            let n = self.ring.consume_raw_n(BATCH);
            if n < 0 {
                return Err(std::io::Error::from_raw_os_error(-n))
                    .context("reading the ring buffer");
            }
            while let Some(rec) = self.queue.borrow_mut().pop_front() {
                match rec {
                    Ok(rec) => pipeline.handle(rec.observation)?,
                    Err(e) => eprintln!("zonemon: warning: {e}"),
                }
            }
            if (n as usize) < BATCH {
                return Ok(());
            }
        }
    }
}

impl Source for EbpfSource {
    fn description(&self) -> String {
        "eBPF".into()
    }

    fn wait_fd(&self) -> RawFd {
        self.ring.epoll_fd()
    }

    fn drain(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        self.consume(pipeline)?;
        let lost = self.lost_total();
        if lost > self.lost_seen {
            // Handle everything that was delivered, then rebuild the truth from /proc.
            self.consume(pipeline)?;
            pipeline.recover(Some(lost - self.lost_seen), boot_time_ns())?;
            self.lost_seen = lost;
        }
        Ok(())
    }
}
