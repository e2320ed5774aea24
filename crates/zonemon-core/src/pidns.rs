//! Telling PID namespaces apart.
//!
//! A namespace's inode number is reused once the namespace is freed, often
//! within milliseconds; since Linux 6.18 the kernel also gives every
//! namespace an id (`ns_common.ns_id`) that is never reused. Both sides of a
//! comparison that know the id compare ids; only when one of them does not
//! (an older kernel, a namespace gone before it could be asked) do they
//! fall back to the inode.

use std::collections::HashMap;

/// A PID namespace as a source saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PidNs {
    /// Inode number (as `readlink /proc/PID/ns/pid`); reused after the namespace is freed.
    pub inode: u32,
    /// The kernel's never-reused namespace id; 0 when unknown (kernels before 6.18).
    pub id: u64,
}

impl PidNs {
    /// A namespace the source could not tell (inode and id both 0).
    pub const UNKNOWN: PidNs = PidNs { inode: 0, id: 0 };

    /// Whether `self` and `other` are the same namespace: by id when both
    /// know theirs, else by inode.
    pub fn same_as(self, other: PidNs) -> bool {
        match (self.id, other.id) {
            (0, _) | (_, 0) => self.inode == other.inode,
            (a, b) => a == b,
        }
    }
}

/// The newest value recorded for each PID namespace, looked up by
/// [`PidNs::same_as`] in at most two probes of a hash table.
#[derive(Debug, Clone)]
pub struct NsIndex<V> {
    /// By namespace id, for namespaces whose id is known.
    by_id: HashMap<u64, V>,
    /// By inode number: the newest namespace of that inode (its id, 0 if unknown) and its value.
    by_inode: HashMap<u32, (u64, V)>,
}

impl<V> Default for NsIndex<V> {
    fn default() -> Self {
        NsIndex {
            by_id: HashMap::new(),
            by_inode: HashMap::new(),
        }
    }
}

impl<V: Copy + Eq> NsIndex<V> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `value` as the newest of namespace `ns`.
    pub fn insert(&mut self, ns: PidNs, value: V) {
        if ns.id != 0 {
            self.by_id.insert(ns.id, value);
        }
        self.by_inode.insert(ns.inode, (ns.id, value));
    }

    /// The newest value of the namespace that is [`PidNs::same_as`] `ns`.
    /// An entry found by inode whose id is known and differs from a known
    /// `ns.id` belongs to another namespace that reused the inode: not returned.
    pub fn get(&self, ns: PidNs) -> Option<V> {
        if ns.id != 0 {
            if let Some(v) = self.by_id.get(&ns.id) {
                return Some(*v);
            }
        }
        self.by_inode
            .get(&ns.inode)
            .filter(|(id, _)| {
                PidNs {
                    inode: ns.inode,
                    id: *id,
                }
                .same_as(ns)
            })
            .map(|(_, v)| *v)
    }

    /// Forgets `value` as namespace `ns`'s, unless a newer value replaced it.
    pub fn remove(&mut self, ns: PidNs, value: V) {
        if ns.id != 0 && self.by_id.get(&ns.id) == Some(&value) {
            self.by_id.remove(&ns.id);
        }
        if self.by_inode.get(&ns.inode) == Some(&(ns.id, value)) {
            self.by_inode.remove(&ns.inode);
        }
    }

    /// Every (namespace, value) recorded, for consistency checks: those
    /// recorded by id (with inode 0), then those by inode.
    pub fn entries(&self) -> impl Iterator<Item = (PidNs, V)> + '_ {
        let by_id = self
            .by_id
            .iter()
            .map(|(id, v)| (PidNs { inode: 0, id: *id }, *v));
        let by_inode = self.by_inode.iter().map(|(inode, (id, v))| {
            (
                PidNs {
                    inode: *inode,
                    id: *id,
                },
                *v,
            )
        });
        by_id.chain(by_inode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ns(inode: u32, id: u64) -> PidNs {
        PidNs { inode, id }
    }

    #[test]
    fn ids_decide_when_both_are_known() {
        assert!(ns(7, 100).same_as(ns(7, 100)));
        assert!(!ns(7, 100).same_as(ns(7, 200)), "a reused inode");
        assert!(ns(7, 100).same_as(ns(8, 100)), "the id is what counts");
        assert!(ns(7, 0).same_as(ns(7, 100)), "unknown id: the inode");
        assert!(ns(7, 100).same_as(ns(7, 0)));
        assert!(!ns(7, 0).same_as(ns(8, 0)));
    }

    #[test]
    fn index_finds_by_id_and_refuses_a_reused_inode() {
        let mut ix = NsIndex::new();
        ix.insert(ns(7, 100), 'a');
        assert_eq!(ix.get(ns(7, 100)), Some('a'));
        assert_eq!(ix.get(ns(7, 0)), Some('a'), "no id: by inode");
        assert_eq!(
            ix.get(ns(7, 200)),
            None,
            "another namespace with that inode"
        );
        ix.insert(ns(7, 200), 'b');
        assert_eq!(ix.get(ns(7, 100)), Some('a'), "still found by its id");
        assert_eq!(ix.get(ns(7, 200)), Some('b'));
        assert_eq!(ix.get(ns(7, 0)), Some('b'), "the newest of the inode");
        ix.remove(ns(7, 100), 'a');
        assert_eq!(ix.get(ns(7, 100)), None);
        assert_eq!(ix.get(ns(7, 0)), Some('b'), "a newer value is kept");
        ix.remove(ns(7, 200), 'b');
        assert_eq!(ix.get(ns(7, 0)), None);
        assert_eq!(ix.entries().count(), 0);
    }

    #[test]
    fn index_without_ids_is_by_inode() {
        let mut ix = NsIndex::new();
        ix.insert(ns(7, 0), 1u32);
        assert_eq!(ix.get(ns(7, 0)), Some(1));
        assert_eq!(ix.get(ns(7, 100)), Some(1), "the stored side has no id");
        ix.insert(ns(7, 0), 2);
        ix.remove(ns(7, 0), 1);
        assert_eq!(ix.get(ns(7, 0)), Some(2));
    }
}
