//! Reading only the parts of a runtime's JSON state that a resolver uses.
//!
//! Runtime state files are mostly things zonemon does not read (a Docker
//! `config.v2.json` carries the whole container config, an OCI bundle the
//! whole spec, Podman's `containers.json` every container of the host).
//! [`parse`] walks the document once and builds a [`serde_json::Value`] of
//! only the keys a [`Keep`] pattern names: everything else is skipped
//! without being allocated. The result is read with the usual `Value`
//! accessors, so a field of an unexpected type reads as missing, as before.
//! Kept strings are checked as a full parse checks them; skipped ones are
//! not (invalid UTF-8 there does not fail the parse).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// What to keep of a JSON value.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// The whole value.
    All,
    /// Of an object, only these keys, each with what to keep of its value;
    /// of an array, each element so; a scalar is kept as is.
    Keys(&'static [(&'static str, Keep)]),
}

/// Parses `bytes` as JSON, keeping only what `keep` names; `None` if it is not valid JSON.
pub fn parse(bytes: &[u8], keep: Keep) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = keep.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(v)
}

impl<'de> DeserializeSeed<'de> for Keep {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self {
            Keep::All => serde::Deserialize::deserialize(d),
            Keep::Keys(keys) => d.deserialize_any(Picker(keys)),
        }
    }
}

/// Visits one value, keeping only `self.0`'s keys of objects.
struct Picker(&'static [(&'static str, Keep)]);

impl<'de> Visitor<'de> for Picker {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Keep::Keys(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(wanted) = map.next_key_seed(KeyMatch(self.0))? {
            match wanted {
                Some((k, keep)) => {
                    let v = map.next_value_seed(keep)?;
                    out.insert(k.to_string(), v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Reads an object's key without allocating it: which of `self.0` it is, if any.
struct KeyMatch(&'static [(&'static str, Keep)]);

impl<'de> DeserializeSeed<'de> for KeyMatch {
    type Value = Option<(&'static str, Keep)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch {
    type Value = Option<(&'static str, Keep)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().find(|(k, _)| *k == s).copied())
    }
}

/// Where the JSON value that starts at `bytes[start]` ends (the index after
/// it), found by counting brackets outside strings: strings are skipped a
/// run at a time (to their next quote or backslash), and nothing is
/// checked but that strings end and brackets balance (a `}` may close a
/// `[`). For a valid document, the end a full parse finds; `None` when the
/// value does not end within `bytes`. For skipping a large value whose
/// content is not read (the OCI spec in a libpod config).
pub fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    loop {
        match *bytes.get(i)? {
            b'"' => {
                i += 1;
                loop {
                    i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
                    if bytes[i] == b'"' {
                        break;
                    }
                    i += 2; // the backslash and the byte it escapes
                }
                i += 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                i += 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ if depth == 0 => {
                // A number or literal: up to the byte that ends it.
                let len = bytes[i..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(bytes.len() - i);
                return (len > 0).then_some(i + len);
            }
            _ => i += 1,
        }
    }
}

/// Of the JSON object `bytes`, the values of `keys` only, each parsed
/// whole; the other values are skipped by [`value_end`] (not checked but
/// for strings ending and brackets balancing: a large value that is not
/// read costs a scan of its strings' quotes and backslashes). Keys are
/// compared decoded (`"na\u006de"` is `name`); of a key given twice, the
/// last value wins, as in a full parse. `None` unless `bytes` is one object
/// with nothing but whitespace after it. For a valid document, what
/// [`parse`] with [`Keep::All`] for `keys` finds.
pub fn pick_top(bytes: &[u8], keys: &[&str]) -> Option<Value> {
    let ws = |mut i: usize| {
        while bytes
            .get(i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            i += 1;
        }
        i
    };
    let mut out = Map::new();
    let mut i = ws(0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    if bytes.get(i) == Some(&b'}') {
        return (ws(i + 1) == bytes.len()).then_some(Value::Object(out));
    }
    loop {
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = value_end(bytes, i)?;
        let raw = &bytes[i + 1..key_end - 1];
        let key: std::borrow::Cow<'_, str> = if raw.contains(&b'\\') {
            serde_json::from_slice::<String>(&bytes[i..key_end])
                .ok()?
                .into()
        } else {
            std::str::from_utf8(raw).ok()?.into()
        };
        i = ws(key_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        i = ws(i + 1);
        let end = value_end(bytes, i)?;
        if let Some(k) = keys.iter().find(|k| **k == key) {
            let v: Value = serde_json::from_slice(&bytes[i..end]).ok()?;
            out.insert(k.to_string(), v);
        }
        i = ws(end);
        match bytes.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => return (ws(i + 1) == bytes.len()).then_some(Value::Object(out)),
            _ => return None,
        }
    }
}

/// The string at `key` of a JSON object, if it is one.
pub(crate) fn json_str<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v str> {
    v.get(key)?.as_str()
}

/// The part of an OCI runtime spec (`config.json`) read: its annotations (the
/// rest, the whole process, mounts and Linux config, is skipped).
pub(crate) const SPEC_KEYS: Keep = Keep::Keys(&[("annotations", Keep::All)]);

/// The OCI annotations of a runtime spec (`config.json`), if any.
pub(crate) fn annotations(
    spec: &serde_json::Value,
) -> Option<&serde_json::Map<String, serde_json::Value>> {
    spec.get("annotations")?.as_object()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtimes::testutil::{mutated, CASES};
    use proptest::prelude::*;
    use serde_json::json;

    const PATTERN: Keep = Keep::Keys(&[
        ("ID", Keep::All),
        (
            "State",
            Keep::Keys(&[("Pid", Keep::All), ("Running", Keep::All)]),
        ),
        ("labels", Keep::All),
    ]);

    #[test]
    fn keeps_only_what_is_named() {
        let doc = br#"{"Big":{"a":[1,2,{"b":"c\"d"}]},"ID":"x\u0041","State":{"Pid":7,"Running":true,"Other":[null]},"labels":{"k":"v"},"n":-1.5}"#;
        assert_eq!(
            parse(doc, PATTERN),
            Some(json!({"ID":"xA","State":{"Pid":7,"Running":true},"labels":{"k":"v"}}))
        );
    }

    #[test]
    fn arrays_of_objects_and_odd_types() {
        let doc = br#"[{"ID":"a","x":1},3,"s",null,{"State":"not an object"}]"#;
        assert_eq!(
            parse(doc, PATTERN),
            Some(json!([{"ID":"a"},3,"s",null,{"State":"not an object"}]))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn value_end_finds_what_a_full_parse_finds(
            b in mutated(br#"{"spec":{"process":{"args":["sh","-c","echo \"}\""]},"n":[1,-2.5e3,true,null,{}]},"id":"abc"}"#)
        ) {
            // Where the document is valid JSON, its end is the full parse's end.
            // The value starts at its first byte (callers skip the whitespace before it).
            let start = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
            let end = value_end(&b, start);
            if serde_json::from_slice::<IgnoredAny>(&b).is_ok() {
                let trimmed = b.len() - b.iter().rev().take_while(|c| c.is_ascii_whitespace()).count();
                prop_assert_eq!(end, Some(trimmed));
            }
            if let Some(e) = end {
                prop_assert!(e <= b.len());
            }
        }

        #[test]
        fn pick_top_agrees_with_a_full_parse(
            b in mutated(br#"{"spec":{"process":{"args":["sh","-c","x\"}"]},"n":[1,-2.5e3,true,null,{}]},"ID":"abc","labels":{"a":"b"},"ID2":[1]}"#)
        ) {
            let picked = pick_top(&b, &["ID", "labels"]);
            if let Ok(full) = serde_json::from_slice::<Value>(&b) {
                match full.as_object() {
                    Some(o) => {
                        let mut want = Map::new();
                        for k in ["ID", "labels"] {
                            if let Some(v) = o.get(k) {
                                want.insert(k.to_string(), v.clone());
                            }
                        }
                        prop_assert_eq!(picked, Some(Value::Object(want)));
                    }
                    None => prop_assert_eq!(picked, None),
                }
            }
        }

        #[test]
        fn the_same_answer_as_a_full_parse_on_hostile_input(
            b in mutated(br#"{"ID":"abc","State":{"Pid":12,"Running":false},"Config":{"Labels":{"a":"b"}},"labels":{"x":[1,{"y":2}]}}"#)
        ) {
            let full: Option<Value> = serde_json::from_slice(&b).ok();
            let picked = parse(&b, PATTERN);
            // Where both parse, the kept keys are the same.
            if let (Some(f), Some(p)) = (&full, &picked) {
                for key in ["ID", "labels"] {
                    prop_assert_eq!(f.get(key), p.get(key));
                }
            }
        }
    }

    #[test]
    fn value_ends() {
        let doc = br#"{"a":{"b":["}",{"c":"\\\""}],"d":-1.5e3},"e":true} "#;
        assert_eq!(value_end(doc, 0), Some(doc.len() - 1));
        let inner_end = doc.windows(4).position(|w| w == br#","e""#);
        assert_eq!(value_end(doc, 5), inner_end);
        assert_eq!(value_end(b"-1.5e3,", 0), Some(6));
        assert_eq!(value_end(b"true", 0), Some(4));
        assert_eq!(value_end(br#""x\"y""#, 0), Some(6));
        for unended in [&b"{"[..], br#"{"a":"b}"#, br#""\"#, b"[[]", b"]", b""] {
            assert_eq!(value_end(unended, 0), None, "{unended:?}");
        }
    }

    #[test]
    fn picks_top_level_keys() {
        let doc = br#" { "Big" : {"a":[1,"}"]}, "n\u0061me":"x\u0041", "ID":7,"ID":8 ,"labels":{"k":"v"}} "#;
        assert_eq!(
            pick_top(doc, &["name", "ID", "labels", "none"]),
            Some(json!({"name":"xA","ID":8,"labels":{"k":"v"}}))
        );
        assert_eq!(pick_top(b"{}", &["a"]), Some(json!({})));
        for bad in [
            &br#"{"a":1} x"#[..],
            br#"{"a":1,}"#,
            br#"{"a" 1}"#,
            br#"{"a":}"#,
            br#"{"a":"b"#,
            br#"[{"a":1}]"#,
            br#"{"a":tru}"#,
            b"",
        ] {
            assert_eq!(
                pick_top(bad, &["a"]),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rejects_trailing_garbage_and_deep_nesting() {
        assert_eq!(parse(b"{\"ID\":1} x", PATTERN), None, "trailing garbage");
        assert_eq!(parse(&[b'['; 10_000], PATTERN), None, "deep nesting");
    }
}
