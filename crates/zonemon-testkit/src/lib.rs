//! The harness shared by zonemon's root integration tests
//! (`crates/zonemon/tests`, through `tests/common`) and its benchmark
//! (`crates/zonemon-bench`): one definition of each piece both use.
//!
//! - [`require_root`]: may a privileged test run here (root), and if not,
//!   skip it or, under `CI=true`, fail it loudly.
//! - [`zone_cmd`]: the `unshare` recipe that boots a named zone.
//! - [`read_stderr`]: a child's stderr collected by a thread, with a signal
//!   when zonemon says it is [`WATCHING`].
//! - [`log_to`], [`wait_ready`], [`which`], [`container_run_args`]: starting
//!   daemons (dockerd, containerd) and containers.
//! - [`stat_fields`], [`ppid`]: reading `/proc/<pid>/stat`; [`status_field`],
//!   [`status_value`]: a number of `/proc/<pid>/status`; [`voluntary_switches`]: a thread's sleeps.
//! - [`within`], [`found_within`], [`wait_until`]: waiting, with patience bounded, for what a
//!   background thread or process does.
//! - [`MemCg`], [`MEMORY_HOG`]: a memory cgroup and a program the OOM killer takes in it.
//! - [`NatsServer`]: a JetStream `nats-server` on a loopback port (the fleet's tests and benchmark).
//!
//! The machine these run on is shared: callers name their zones with a prefix
//! of their own and count only those.

#![warn(missing_docs)]

mod daemon;
mod memcg;
mod nats;
mod procfs;
mod root;
mod stderr;
mod wait;
mod zone;

pub use daemon::{container_run_args, log_to, wait_ready, which, NotReady};
pub use memcg::{MemCg, MEMORY_HOG};
pub use nats::NatsServer;
pub use procfs::{ppid, stat_fields, status_field, status_value, voluntary_switches};
pub use root::{in_ci, require_root, require_root_and_program, require_root_for};
pub use stderr::{read_stderr, StderrReader, WATCHING};
pub use wait::{found_within, wait_until, within};
pub use zone::zone_cmd;
