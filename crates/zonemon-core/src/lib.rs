//! zonemon's pure logic: what a zone is, how kernel observations become zone
//! transitions, how zones are named, and how transitions are written out.
//!
//! Nothing here needs root or BPF; the kernel side lives in the `zonemon`
//! crate and hands this crate [`Observation`]s.

pub mod clock;
pub mod escape;
pub mod event;
pub mod exit;
pub mod filter;
pub mod lineage;
pub mod listing;
pub mod meta;
pub mod naming;
pub mod observation;
pub mod output;
pub mod pidns;
pub mod procscan;
pub mod recent;
pub mod runtimes;
pub mod timefmt;
pub mod tracker;

pub use event::{EventKind, ZoneEvent};
pub use exit::{ExitStatus, Oom};
pub use meta::ZoneMeta;
pub use naming::{Lookup, NameResolver, NameSource, ResolvedName, ZoneFacts};
pub use observation::{Observation, ObservationKind};
pub use pidns::PidNs;
pub use tracker::{HostInfo, Tracker};
