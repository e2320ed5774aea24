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
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
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
        let first = read_meta(0);
        // The second meta is one page further: the first's page size says
        // how far; without a valid first meta, each possible size is tried.
        let second = match first {
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
