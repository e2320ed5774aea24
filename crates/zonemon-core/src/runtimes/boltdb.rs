//! A read-only reader of BoltDB (bbolt) files: the key/value store Podman 4
//! keeps its state in (`bolt_state.db`).
//!
//! It looks up one value below a path of nested buckets, reading only the
//! pages on the way (one positioned read each, never the whole file). It
//! takes no lock and never writes: the writer (Podman) holds an `flock` on
//! the file while it changes it, and zonemon must never wait for it or make
//! it wait. A lookup without a lock can see a transaction half written; the
//! caller checks that the file did not change during the lookup (see
//! `runtimes::libpod`).
//!
//! The file is hostile input: both meta pages are checked (magic, version,
//! page size, FNV-1a checksum; the valid one with the higher transaction id
//! wins), every page id is checked against the meta's high-water mark, the
//! file's size and the page's own header, every element offset and length
//! against its page, trees are followed at most [`MAX_DEPTH`] levels deep and a
//! lookup reads at most [`MAX_LOOKUP_BYTES`]. Any inconsistency is a `None`,
//! never a panic.
//!
//! The format (bbolt's `page.go`, `meta` and `bucket` structs), all little-endian:
//!
//! - every page starts with a 16-byte header: id `u64`, flags `u16`
//!   (branch 0x01, leaf 0x02, meta 0x04, freelist 0x10), element count `u16`,
//!   overflow `u32` (how many further pages the page spans);
//! - pages 0 and 1 hold the two metas after their header: magic `u32`
//!   (0xED0CDAED), version `u32` (2), page size `u32`, flags `u32`, the root
//!   bucket (root page `u64`, sequence `u64`), freelist page `u64`, high-water
//!   page id `u64`, transaction id `u64`, and the FNV-1a 64 checksum of the
//!   56 bytes before it;
//! - a branch page's elements (16 bytes each) are: key position `u32`
//!   (from the element's own start), key size `u32`, child page `u64`;
//! - a leaf page's elements are: flags `u32` (0x01: the value is a nested
//!   bucket), key position `u32`, key size `u32`, value size `u32`; the value
//!   follows the key;
//! - a nested bucket's value is its root page `u64` and sequence `u64`; a root
//!   of 0 means an inline bucket, whose leaf page follows in the value itself.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Bolt's magic number, in both metas.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The file format version bbolt writes.
pub const VERSION: u32 = 2;

/// Size of a page header.
const HEADER: usize = 16;
/// Size of a branch or leaf element.
const ELEMENT: usize = 16;
/// Size of a meta (after its page header), checksum included.
const META: usize = 64;
/// The part of a meta the checksum covers.
const META_SUMMED: usize = 56;
/// Size of a nested bucket's header in its value.
const BUCKET_HEADER: usize = 16;

const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const META_PAGE: u16 = 0x04;
const BUCKET_LEAF: u32 = 0x01;

/// The page size bbolt uses on most hosts (the OS page size): the second
/// meta is read with the first when the first says so.
const USUAL_PAGE: usize = 4096;

/// Smallest and largest page size accepted (bbolt uses the OS page size).
const PAGE_SIZES: std::ops::RangeInclusive<u32> = 1024..=65536;

/// Deepest tree followed within one bucket (a bbolt tree of millions of keys
/// is a handful of levels deep; a page that points back up is cut off here).
pub const MAX_DEPTH: usize = 16;

/// Most bytes one lookup reads, all pages (and their overflow) together.
pub const MAX_LOOKUP_BYTES: u64 = 8 << 20;

/// Most bytes one page (with its overflow pages) may span.
pub const MAX_PAGE_SPAN: u64 = 4 << 20;

/// Where a database's bytes are read from: positioned reads of a file, or
/// bytes in memory (tests).
pub trait ReadAt {
    /// Fills `buf` from `offset`; `false` if that many bytes are not there.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> bool;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> bool {
        FileExt::read_exact_at(self, buf, offset).is_ok()
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> bool {
        let Ok(start) = usize::try_from(offset) else {
            return false;
        };
        match start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

/// What a valid meta says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    page_size: u32,
    /// The root bucket's root page.
    root: u64,
    /// The high-water mark: every page in use has a lower id.
    high: u64,
    txid: u64,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// FNV-1a, 64 bits: bbolt's meta checksum.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Parses a meta page (its header and meta, [`HEADER`] + [`META`] bytes);
/// `None` unless it is a valid one.
fn parse_meta(page: &[u8]) -> Option<Meta> {
    if u16_at(page, 8)? & META_PAGE == 0 {
        return None;
    }
    let m = page.get(HEADER..HEADER + META)?;
    let page_size = u32_at(m, 8)?;
    let meta = Meta {
        page_size,
        root: u64_at(m, 16)?,
        high: u64_at(m, 40)?,
        txid: u64_at(m, 48)?,
    };
    let valid = u32_at(m, 0)? == MAGIC
        && u32_at(m, 4)? == VERSION
        && page_size.is_power_of_two()
        && PAGE_SIZES.contains(&page_size)
        && u64_at(m, META_SUMMED)? == fnv1a64(&m[..META_SUMMED])
        && meta.root >= 2
        && meta.root < meta.high;
    valid.then_some(meta)
}

/// The root of a bucket's tree: a page, or an inline bucket's leaf page.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Root {
    Page(u64),
    Inline(Vec<u8>),
}

/// A BoltDB file opened for lookups: its newest valid meta.
pub struct Bolt<'r, R: ReadAt + ?Sized> {
    src: &'r R,
    size: u64,
    meta: Meta,
    /// Bytes the current lookup may still read.
    budget: u64,
}

impl<'r, R: ReadAt + ?Sized> Bolt<'r, R> {
    /// Reads the metas of the database in `src`, whose size is `size` bytes;
    /// `None` when neither is valid.
    pub fn open(src: &'r R, size: u64) -> Option<Self> {
        let read_meta = |offset: u64| {
            let mut buf = [0u8; HEADER + META];
            src.read_exact_at(&mut buf, offset)
                .then(|| parse_meta(&buf))
                .flatten()
        };
        // Both metas in one read when the pages are the usual size.
        let mut head = [0u8; USUAL_PAGE + HEADER + META];
        let both = src.read_exact_at(&mut head, 0);
        let first = if both {
            parse_meta(&head)
        } else {
            read_meta(0)
        };
        // The second meta is one page further: the first's page size says
        // how far; without a valid first meta, each possible size is tried.
        let second = match first {
            Some(m) if both && m.page_size as usize == USUAL_PAGE => {
                parse_meta(&head[USUAL_PAGE..]).filter(|s| s.page_size == m.page_size)
            }
            Some(m) => read_meta(u64::from(m.page_size)).filter(|s| s.page_size == m.page_size),
            None => std::iter::successors(Some(*PAGE_SIZES.start()), |s| s.checked_mul(2))
                .take_while(|s| PAGE_SIZES.contains(s))
                .find_map(|s| read_meta(u64::from(s)).filter(|m| m.page_size == s)),
        };
        let meta = match (first, second) {
            (Some(a), Some(b)) => {
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            (a, b) => a.or(b)?,
        };
        Some(Bolt {
            src,
            size,
            meta,
            budget: 0,
        })
    }

    /// The transaction id of the meta in use.
    pub fn txid(&self) -> u64 {
        self.meta.txid
    }

    /// The value of `key` in the bucket reached from the root bucket through
    /// the nested buckets `path`; `None` when a bucket or the key is missing,
    /// the key names a bucket, the value is longer than `max_value`, or the
    /// file is inconsistent.
    pub fn get(&mut self, path: &[&[u8]], key: &[u8], max_value: usize) -> Option<Vec<u8>> {
        self.budget = MAX_LOOKUP_BYTES;
        let mut bucket = Root::Page(self.meta.root);
        for name in path {
            let (flags, value) = self.find(&bucket, name, usize::MAX)?;
            if flags & BUCKET_LEAF == 0 {
                return None;
            }
            bucket = bucket_root(&value)?;
        }
        let (flags, value) = self.find(&bucket, key, max_value)?;
        (flags & BUCKET_LEAF == 0).then_some(value)
    }

    /// Reads page `id` with its overflow pages, checking it against the meta,
    /// the file and its own header; only branch and leaf pages are taken.
    fn page(&mut self, id: u64) -> Option<Vec<u8>> {
        let ps = u64::from(self.meta.page_size);
        if id < 2 || id >= self.meta.high {
            return None;
        }
        let offset = id.checked_mul(ps)?;
        if offset.checked_add(ps)? > self.size || ps > self.budget {
            return None;
        }
        self.budget -= ps;
        let mut buf = vec![0u8; usize::try_from(ps).ok()?];
        if !self.src.read_exact_at(&mut buf, offset) {
            return None;
        }
        let flags = u16_at(&buf, 8)?;
        if u64_at(&buf, 0)? != id || (flags != BRANCH_PAGE && flags != LEAF_PAGE) {
            return None;
        }
        let overflow = u64::from(u32_at(&buf, 12)?);
        if overflow > 0 {
            let span = overflow.checked_add(1)?.checked_mul(ps)?;
            let rest = span - ps;
            if id.checked_add(overflow)? >= self.meta.high
                || span > MAX_PAGE_SPAN
                || offset.checked_add(span)? > self.size
                || rest > self.budget
            {
                return None;
            }
            self.budget -= rest;
            buf.resize(usize::try_from(span).ok()?, 0);
            if !self.src.read_exact_at(&mut buf[ps as usize..], offset + ps) {
                return None;
            }
        }
        Some(buf)
    }

    /// Finds `key` in the tree at `root`: its leaf flags and value (at most
    /// `max_value` bytes).
    fn find(&mut self, root: &Root, key: &[u8], max_value: usize) -> Option<(u32, Vec<u8>)> {
        let mut page = match root {
            Root::Page(id) => self.page(*id)?,
            Root::Inline(p) => p.clone(),
        };
        for _ in 0..MAX_DEPTH {
            let count = usize::from(u16_at(&page, 10)?);
            match u16_at(&page, 8)? {
                LEAF_PAGE => {
                    for i in 0..count {
                        let (flags, k, v) = leaf_element(&page, i)?;
                        if k == key {
                            return (v.len() <= max_value).then(|| (flags, v.to_vec()));
                        }
                    }
                    return None;
                }
                // Inline buckets are leaves only: a branch there is refused
                // (its children would be in the file, not in the value).
                BRANCH_PAGE if matches!(root, Root::Page(_)) => {
                    // The child whose first key is the last at or before `key`
                    // (the first child if `key` sorts before them all).
                    let mut child = None;
                    for i in 0..count {
                        let (k, id) = branch_element(&page, i)?;
                        if child.is_some() && k > key {
                            break;
                        }
                        child = Some(id);
                    }
                    page = self.page(child?)?;
                }
                _ => return None,
            }
        }
        None
    }
}

/// The `i`th element of leaf page `p`: its flags, key and value.
fn leaf_element(p: &[u8], i: usize) -> Option<(u32, &[u8], &[u8])> {
    let at = HEADER.checked_add(i.checked_mul(ELEMENT)?)?;
    let flags = u32_at(p, at)?;
    let pos = usize::try_from(u32_at(p, at + 4)?).ok()?;
    let ksize = usize::try_from(u32_at(p, at + 8)?).ok()?;
    let vsize = usize::try_from(u32_at(p, at + 12)?).ok()?;
    let kstart = at.checked_add(pos)?;
    let vstart = kstart.checked_add(ksize)?;
    let key = p.get(kstart..vstart)?;
    let value = p.get(vstart..vstart.checked_add(vsize)?)?;
    Some((flags, key, value))
}

/// The `i`th element of branch page `p`: its key and child page.
fn branch_element(p: &[u8], i: usize) -> Option<(&[u8], u64)> {
    let at = HEADER.checked_add(i.checked_mul(ELEMENT)?)?;
    let pos = usize::try_from(u32_at(p, at)?).ok()?;
    let ksize = usize::try_from(u32_at(p, at + 4)?).ok()?;
    let child = u64_at(p, at + 8)?;
    let kstart = at.checked_add(pos)?;
    let key = p.get(kstart..kstart.checked_add(ksize)?)?;
    Some((key, child))
}

/// Where a nested bucket's tree is, from its value in the parent.
fn bucket_root(value: &[u8]) -> Option<Root> {
    match u64_at(value, 0)? {
        0 => Some(Root::Inline(value.get(BUCKET_HEADER..)?.to_vec())),
        id => Some(Root::Page(id)),
    }
}

/// Writing BoltDB files for tests: the layout bbolt writes, with trees split
/// into as many branch levels as asked, inline buckets, overflow pages.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// What a key holds: a value or a nested bucket.
    #[derive(Debug, Clone)]
    pub enum Item {
        /// A plain value.
        Value(Vec<u8>),
        /// A nested bucket, its entries in any order.
        Bucket(Vec<(Vec<u8>, Item)>),
    }

    /// A BoltDB file being written.
    pub struct Writer {
        ps: usize,
        /// Most entries in one leaf or branch page (small: many levels).
        fanout: usize,
        /// Whether small buckets of plain values are written inline.
        inline: bool,
        pages: Vec<u8>,
    }

    impl Writer {
        /// A writer of `ps`-byte pages, `fanout` entries a page.
        pub fn new(ps: usize, fanout: usize, inline: bool) -> Self {
            // Pages 0 and 1 (metas) are written last; page 2 is an empty freelist.
            let mut pages = vec![0u8; 3 * ps];
            pages[2 * ps..2 * ps + 8].copy_from_slice(&2u64.to_le_bytes());
            pages[2 * ps + 8..2 * ps + 10].copy_from_slice(&0x10u16.to_le_bytes());
            Writer {
                ps,
                fanout: fanout.max(2),
                inline,
                pages,
            }
        }

        /// Appends a page (header and body, padded to whole pages); returns its id.
        fn push(&mut self, mut page: Vec<u8>) -> u64 {
            let id = (self.pages.len() / self.ps) as u64;
            let n = page.len().div_ceil(self.ps).max(1);
            page.resize(n * self.ps, 0);
            page[0..8].copy_from_slice(&id.to_le_bytes());
            page[12..16].copy_from_slice(&((n - 1) as u32).to_le_bytes());
            self.pages.extend_from_slice(&page);
            id
        }

        /// A page of `flags` with `elements` (16-byte headers whose first
        /// field is the data's position, to be filled in) and their data.
        fn page(flags: u16, elements: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
            let mut p = vec![0u8; HEADER + elements.len() * ELEMENT];
            p[8..10].copy_from_slice(&flags.to_le_bytes());
            p[10..12].copy_from_slice(&(elements.len() as u16).to_le_bytes());
            for (i, (head, data)) in elements.iter().enumerate() {
                let at = HEADER + i * ELEMENT;
                let pos = (p.len() - at) as u32;
                p[at..at + ELEMENT].copy_from_slice(head);
                // The position is the first field of a branch element, the second of a leaf's.
                let field = if flags == BRANCH_PAGE { at } else { at + 4 };
                p[field..field + 4].copy_from_slice(&pos.to_le_bytes());
                p.extend_from_slice(data);
            }
            p
        }

        /// A leaf page of `entries` (flags, key, value).
        fn leaf(entries: &[(u32, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
            let elements: Vec<(Vec<u8>, Vec<u8>)> = entries
                .iter()
                .map(|(flags, k, v)| {
                    let mut head = flags.to_le_bytes().to_vec();
                    head.extend_from_slice(&[0; 4]);
                    head.extend_from_slice(&(k.len() as u32).to_le_bytes());
                    head.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    (head, [k.as_slice(), v.as_slice()].concat())
                })
                .collect();
            Self::page(LEAF_PAGE, &elements)
        }

        /// Writes a bucket's entries; returns its value in its parent
        /// (header, and the inline page when inline).
        pub fn bucket(&mut self, entries: &[(Vec<u8>, Item)]) -> Vec<u8> {
            let mut sorted: Vec<&(Vec<u8>, Item)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let mut leaf: Vec<(u32, Vec<u8>, Vec<u8>)> = Vec::new();
            for (k, item) in sorted {
                match item {
                    Item::Value(v) => leaf.push((0, k.clone(), v.clone())),
                    Item::Bucket(e) => leaf.push((BUCKET_LEAF, k.clone(), self.bucket(e))),
                }
            }
            let inline_page = Self::leaf(&leaf);
            if self.inline && leaf.iter().all(|e| e.0 == 0) && inline_page.len() <= self.ps / 4 {
                return [vec![0u8; BUCKET_HEADER], inline_page].concat();
            }
            // Leaves of `fanout` entries, then branch levels until one page is left.
            let mut level: Vec<(Vec<u8>, u64)> = leaf
                .chunks(self.fanout)
                .map(|c| (c[0].1.clone(), self.push(Self::leaf(c))))
                .collect();
            if level.is_empty() {
                level.push((Vec::new(), self.push(Self::leaf(&[]))));
            }
            while level.len() > 1 {
                level = level
                    .chunks(self.fanout)
                    .map(|c| {
                        let elements: Vec<(Vec<u8>, Vec<u8>)> = c
                            .iter()
                            .map(|(k, id)| {
                                let mut head = vec![0u8; 4];
                                head.extend_from_slice(&(k.len() as u32).to_le_bytes());
                                head.extend_from_slice(&id.to_le_bytes());
                                (head, k.clone())
                            })
                            .collect();
                        (
                            c[0].0.clone(),
                            self.push(Self::page(BRANCH_PAGE, &elements)),
                        )
                    })
                    .collect();
            }
            let mut value = level[0].1.to_le_bytes().to_vec();
            value.extend_from_slice(&[0; 8]);
            value
        }

        /// The file, with the root bucket `entries` and both metas (the first
        /// with transaction id `txid`, the second `txid - 1`, both pointing at this root).
        pub fn finish(mut self, entries: &[(Vec<u8>, Item)], txid: u64) -> Vec<u8> {
            let inline = std::mem::replace(&mut self.inline, false);
            let root = u64_at(&self.bucket(entries), 0).expect("a root page");
            self.inline = inline;
            let high = (self.pages.len() / self.ps) as u64;
            for (i, tx) in [(0usize, txid), (1, txid.saturating_sub(1))] {
                let at = i * self.ps;
                let mut meta = Vec::with_capacity(META);
                meta.extend_from_slice(&MAGIC.to_le_bytes());
                meta.extend_from_slice(&VERSION.to_le_bytes());
                meta.extend_from_slice(&(self.ps as u32).to_le_bytes());
                meta.extend_from_slice(&0u32.to_le_bytes());
                meta.extend_from_slice(&root.to_le_bytes());
                meta.extend_from_slice(&0u64.to_le_bytes());
                meta.extend_from_slice(&2u64.to_le_bytes());
                meta.extend_from_slice(&high.to_le_bytes());
                meta.extend_from_slice(&tx.to_le_bytes());
                let sum = fnv1a64(&meta);
                meta.extend_from_slice(&sum.to_le_bytes());
                self.pages[at..at + 8].copy_from_slice(&(i as u64).to_le_bytes());
                self.pages[at + 8..at + 10].copy_from_slice(&META_PAGE.to_le_bytes());
                self.pages[at + HEADER..at + HEADER + META].copy_from_slice(&meta);
            }
            self.pages
        }
    }

    /// Recomputes both metas' checksums of a file of `ps`-byte pages (so that
    /// a mutated meta is still taken as valid).
    pub fn fix_checksums(file: &mut [u8], ps: usize) {
        for at in [HEADER, ps + HEADER] {
            if let Some(m) = file.get_mut(at..at + META) {
                let sum = fnv1a64(&m[..META_SUMMED]);
                m[META_SUMMED..].copy_from_slice(&sum.to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::{fix_checksums, Item, Writer};
    use super::*;
    use crate::runtimes::libpod::fixture::{LABELLED, MANY, PLAIN, PODMAN};
    use crate::runtimes::testutil::{mutated, Bytes, CASES};
    use proptest::prelude::*;

    fn config<R: ReadAt + ?Sized>(db: &mut Bolt<'_, R>, id: &str) -> Option<serde_json::Value> {
        let v = db.get(&[b"ctr", id.as_bytes()], b"config", 1 << 20)?;
        Some(serde_json::from_slice(&v).expect("JSON"))
    }

    #[test]
    fn reads_podmans_file() {
        let mut db = Bolt::open(PODMAN, PODMAN.len() as u64).expect("valid");
        assert_eq!(db.txid(), 17, "the newer meta");
        // Configs of ~11 KiB: on pages with overflow pages, in nested buckets.
        for (id, name) in [
            (LABELLED, "zmt-labelled"),
            (PLAIN, "zmt-plain"),
            (MANY, "zmt-many"),
        ] {
            let c = config(&mut db, id).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(c["name"], name);
            assert_eq!(c["id"], id);
        }
        let c = config(&mut db, LABELLED).unwrap();
        assert_eq!(c["labels"]["zmt.evil"], "$(touch /tmp/x)\n\u{1b}[31m");
        assert_eq!(
            config(&mut db, MANY).unwrap()["labels"]
                .as_object()
                .unwrap()
                .len(),
            70
        );
        // An inline bucket, and its key that is a bucket.
        assert_eq!(
            db.get(&[b"runtime-config"], b"graph-root", 100).as_deref(),
            Some(&b"/tmp/zmpl/st"[..])
        );
        assert_eq!(
            db.get(&[b"name-registry"], b"zmt-plain", 100).as_deref(),
            Some(PLAIN.as_bytes())
        );
        assert!(
            db.get(&[b"ctr", LABELLED.as_bytes()], b"dependencies", 100)
                .is_none(),
            "a bucket"
        );
        assert!(db
            .get(&[b"ctr", LABELLED.as_bytes(), b"dependencies"], b"x", 100)
            .is_none());
        assert!(
            db.get(&[b"ctr"], LABELLED.as_bytes(), 100).is_none(),
            "a bucket"
        );
        assert!(
            db.get(&[b"ctr", LABELLED.as_bytes()], b"config", 100)
                .is_none(),
            "too long"
        );
        assert!(db.get(&[b"ctr", &[b'f'; 64]], b"config", 1 << 20).is_none());
        assert!(db.get(&[b"nope"], b"config", 1 << 20).is_none());
        assert!(
            db.get(&[b"runtime-config", b"os"], b"x", 1 << 20).is_none(),
            "a value, not a bucket"
        );
        // The same through positioned reads of the file.
        let t = crate::runtimes::testutil::TempTree::new("boltdb");
        t.write("bolt.db", PODMAN);
        let f = File::open(t.path("bolt.db")).unwrap();
        let mut db = Bolt::open(&f, PODMAN.len() as u64).unwrap();
        assert_eq!(config(&mut db, MANY).unwrap()["name"], "zmt-many");
    }

    /// Bytes in memory that count what is read of them, and the reads.
    struct Counted<'a>(&'a [u8], std::cell::Cell<usize>, std::cell::Cell<usize>);

    impl ReadAt for Counted<'_> {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> bool {
            self.1.set(self.1.get() + buf.len());
            self.2.set(self.2.get() + 1);
            self.0.read_exact_at(buf, offset)
        }
    }

    #[test]
    fn reads_only_the_pages_on_the_way() {
        let src = Counted(PODMAN, Default::default(), Default::default());
        let mut db = Bolt::open(&src, PODMAN.len() as u64).unwrap();
        let metas = 4096 + HEADER + META;
        assert_eq!(
            (src.1.get(), src.2.get()),
            (metas, 1),
            "the two metas, in one read"
        );
        assert!(config(&mut db, LABELLED).is_some());
        // The root bucket's page, `ctr`'s, and the container's (with its two overflow pages).
        assert_eq!(src.1.get(), metas + 5 * 4096, "of {}", PODMAN.len());
    }

    #[test]
    fn a_broken_meta_falls_back_to_the_other() {
        // The newer meta (page 1) broken: the older one, from before zmt-many.
        let mut f = PODMAN.to_vec();
        f[4096 + HEADER + 50] ^= 1;
        let mut db = Bolt::open(&f[..], f.len() as u64).expect("meta 0");
        assert_eq!(db.txid(), 16);
        assert!(config(&mut db, LABELLED).is_some());
        assert!(config(&mut db, MANY).is_none(), "not in the older tree");
        // The first broken (so its page size is unknown): the second is found at 4096.
        let mut f = PODMAN.to_vec();
        f[HEADER] ^= 1;
        let mut db = Bolt::open(&f[..], f.len() as u64).expect("meta 1");
        assert_eq!(db.txid(), 17);
        assert!(config(&mut db, MANY).is_some());
        // Both broken, or a wrong version, magic or page size even with the right checksum.
        f[4096 + HEADER + 50] ^= 1;
        assert!(Bolt::open(&f[..], f.len() as u64).is_none());
        for (at, value) in [(0usize, 0u32), (4, 1), (8, 3000), (8, 1 << 20)] {
            let mut f = PODMAN.to_vec();
            for page in [0, 4096] {
                f[page + HEADER + at..page + HEADER + at + 4].copy_from_slice(&value.to_le_bytes());
            }
            fix_checksums(&mut f, 4096);
            assert!(
                Bolt::open(&f[..], f.len() as u64).is_none(),
                "field {at} = {value}"
            );
        }
        assert!(Bolt::open(&b""[..], 0).is_none());
        // Only the first meta there: no page behind it.
        let mut db = Bolt::open(&PODMAN[..100], 100).expect("meta 0");
        assert!(config(&mut db, LABELLED).is_none());
    }

    /// `n` keys `k00000`… with values `v<i>`, some of them nested buckets.
    fn entries(n: usize) -> Vec<(Vec<u8>, Item)> {
        (0..n)
            .map(|i| {
                let k = format!("k{i:05}").into_bytes();
                let v = format!("v{i}").into_bytes();
                let item = if i % 10 == 3 {
                    Item::Bucket(vec![(b"inner".to_vec(), Item::Value(v))])
                } else {
                    Item::Value(v)
                };
                (k, item)
            })
            .collect()
    }

    #[test]
    fn follows_branch_pages_and_overflow() {
        let big = vec![7u8; 3 * 1024 + 5];
        for (fanout, inline) in [(2, false), (3, true), (7, true), (500, false)] {
            let mut root = vec![(b"b".to_vec(), Item::Bucket(entries(300)))];
            root.push((b"big".to_vec(), Item::Value(big.clone())));
            let f = Writer::new(1024, fanout, inline).finish(&root, 9);
            let mut db = Bolt::open(&f[..], f.len() as u64).expect("valid");
            assert_eq!(db.txid(), 9);
            for i in 0..300 {
                let k = format!("k{i:05}");
                let got = if i % 10 == 3 {
                    db.get(&[b"b", k.as_bytes()], b"inner", 100)
                } else {
                    db.get(&[b"b"], k.as_bytes(), 100)
                };
                assert_eq!(
                    got,
                    Some(format!("v{i}").into_bytes()),
                    "{k}, fanout {fanout}"
                );
            }
            for missing in ["a", "k", "k00002x", "k00299x", "z"] {
                assert!(
                    db.get(&[b"b"], missing.as_bytes(), 100).is_none(),
                    "{missing}"
                );
            }
            assert_eq!(
                db.get(&[], b"big", 1 << 20),
                Some(big.clone()),
                "over overflow pages"
            );
        }
        // An empty database has an empty root leaf.
        let f = Writer::new(4096, 10, true).finish(&[], 1);
        assert!(Bolt::open(&f[..], f.len() as u64)
            .unwrap()
            .get(&[], b"x", 9)
            .is_none());
    }

    #[test]
    fn refuses_loops_and_pages_out_of_bounds() {
        let f =
            Writer::new(1024, 2, false).finish(&[(b"b".to_vec(), Item::Bucket(entries(64)))], 3);
        let mut db = Bolt::open(&f[..], f.len() as u64).unwrap();
        assert!(db.get(&[b"b"], b"k00062", 9).is_some());
        // Every branch element of every page points at the page itself: cut off at MAX_DEPTH.
        let mut looped = f.clone();
        let pages = f.len() / 1024;
        for id in 3..pages {
            let p = &mut looped[id * 1024..(id + 1) * 1024];
            if u16_at(p, 8) == Some(BRANCH_PAGE) {
                for i in 0..usize::from(u16_at(p, 10).unwrap()) {
                    let at = HEADER + i * ELEMENT + 8;
                    p[at..at + 8].copy_from_slice(&(id as u64).to_le_bytes());
                }
            }
        }
        let mut db = Bolt::open(&looped[..], looped.len() as u64).unwrap();
        assert!(db.get(&[b"b"], b"k00062", 9).is_none());
        // The file cut short (its last page is the root bucket's root), or the
        // high-water mark below the pages used.
        let cut = &f[..f.len() - 1024];
        let mut db = Bolt::open(cut, cut.len() as u64).unwrap();
        assert!(db.get(&[b"b"], b"k00062", 9).is_none());
        let mut low = f.clone();
        for page in [0, 1024] {
            low[page + HEADER + 40..page + HEADER + 48]
                .copy_from_slice(&((pages - 1) as u64).to_le_bytes());
        }
        fix_checksums(&mut low, 1024);
        assert!(
            Bolt::open(&low[..], low.len() as u64).is_none(),
            "the root (written last) at the high-water mark"
        );
    }

    /// Podman's file with bytes of its metas changed and their checksums
    /// made right again, so that page ids, sizes and the root are anything.
    fn checksummed(mut f: Bytes) -> Bytes {
        fix_checksums(&mut f.0, 4096);
        f
    }

    /// Looks up every container of the fixture and a few other keys; returns the bytes found.
    fn look_everywhere(f: &[u8]) -> usize {
        let Some(mut db) = Bolt::open(f, f.len() as u64) else {
            return 0;
        };
        let mut found = 0;
        for id in [LABELLED, PLAIN, MANY] {
            found += db
                .get(&[b"ctr", id.as_bytes()], b"config", 1 << 20)
                .map_or(0, |v| v.len());
            found += db
                .get(&[b"ctr", id.as_bytes()], b"state", 1 << 20)
                .map_or(0, |v| v.len());
        }
        found += db
            .get(&[b"runtime-config"], b"graph-root", 1 << 20)
            .map_or(0, |v| v.len());
        found
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES / 4))]
        #[test]
        fn mutated_files_never_panic(f in mutated(PODMAN)) {
            prop_assert!(look_everywhere(&f) <= f.len());
        }

        #[test]
        fn mutated_metas_never_panic(f in mutated(&PODMAN[..8192]).prop_map(|mut m| {
            m.0.extend_from_slice(PODMAN.get(8192..).unwrap_or_default());
            checksummed(m)
        })) {
            prop_assert!(look_everywhere(&f) <= f.len());
        }

        #[test]
        fn arbitrary_pages_never_panic(
            ps_log in 10u32..=12,
            root in 0u64..40,
            high in 0u64..40,
            pages in prop::collection::vec(any::<u8>(), 0..40 * 1024),
            ids in prop::collection::vec(0u64..40, 0..16),
        ) {
            // Random pages behind valid metas; page headers and child ids
            // sprinkled with small page ids, so that some chains go deep.
            let ps = 1usize << ps_log;
            let mut f = Writer::new(ps, 4, true).finish(&[], 2);
            f.truncate(2 * ps);
            f.extend_from_slice(&pages);
            for (i, id) in ids.iter().enumerate() {
                let at = (i * 97) % f.len().max(1);
                if let Some(s) = f.get_mut(at..at + 8) {
                    s.copy_from_slice(&id.to_le_bytes());
                }
            }
            for meta in [0, ps] {
                f[meta + HEADER + 16..meta + HEADER + 24].copy_from_slice(&root.to_le_bytes());
                f[meta + HEADER + 40..meta + HEADER + 48].copy_from_slice(&high.to_le_bytes());
            }
            fix_checksums(&mut f, ps);
            if let Some(mut db) = Bolt::open(&f[..], f.len() as u64) {
                for path in [&[][..], &[&b"ctr"[..]], &[&b"a"[..], &b"b"[..]]] {
                    if let Some(v) = db.get(path, b"config", 1 << 20) {
                        prop_assert!(v.len() <= f.len());
                    }
                }
            }
        }
    }
}
