//! How a zone's init ended, decoded from a wait()-style status word.

/// How the zone's init ended, as its parent's `wait()` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The init exited with this code (0–255).
    Code(u8),
    /// The init was killed by this signal; `core_dumped` when it left a core.
    Signal {
        /// The signal number.
        signal: u8,
        /// Whether a core dump was written.
        core_dumped: bool,
    },
}

impl ExitStatus {
    /// Decodes a wait()-style status (`code << 8`, or the signal number in the low 7 bits).
    pub fn from_wait_status(status: i32) -> Self {
        let sig = (status & 0x7f) as u8;
        if sig == 0 {
            ExitStatus::Code(((status >> 8) & 0xff) as u8)
        } else {
            ExitStatus::Signal {
                signal: sig,
                core_dumped: status & 0x80 != 0,
            }
        }
    }
}

/// What the OOM killer took of a zone while it lived (on `shutdown`, from a
/// source that sees OOM kills).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Oom {
    /// Its init was the OOM killer's victim (alone, or with its whole cgroup).
    pub killed: bool,
    /// How many of its other processes the OOM killer took.
    pub kills: u32,
}

impl Oom {
    /// Counts one victim: the zone's init (`init`) or another of its processes.
    pub fn mark(&mut self, init: bool) {
        if init {
            self.killed = true;
        } else {
            self.kills = self.kills.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_codes_and_signals() {
        assert_eq!(ExitStatus::from_wait_status(0), ExitStatus::Code(0));
        assert_eq!(ExitStatus::from_wait_status(3 << 8), ExitStatus::Code(3));
        assert_eq!(
            ExitStatus::from_wait_status(255 << 8),
            ExitStatus::Code(255)
        );
        assert_eq!(
            ExitStatus::from_wait_status(9),
            ExitStatus::Signal {
                signal: 9,
                core_dumped: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(0x80 | 11),
            ExitStatus::Signal {
                signal: 11,
                core_dumped: true
            }
        );
    }
}
