//! What a runtime's state says of a zone besides its name: its image, its
//! labels, its pod's uid, whether it is a pod's sandbox. All of it is written
//! by whoever made the container, so it is bounded here (at most
//! [`MAX_LABELS`] labels and [`MAX_META_BYTES`] in all) and escaped by the
//! output formats like a name.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::escape::{bound, MAX_NAME_LEN};

/// Most labels kept of a zone.
pub const MAX_LABELS: usize = 64;
/// Most bytes of labels (keys and values) and image kept of a zone.
pub const MAX_META_BYTES: usize = 4096;

/// A zone's metadata from its runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneMeta {
    /// The image it was made from, as the runtime names it (`docker.io/library/nginx:1.27`).
    pub image: Option<String>,
    /// Its labels (Docker's `Config.Labels`, OCI/CRI annotations), bounded.
    pub labels: BTreeMap<String, String>,
    /// The uid of the Kubernetes pod it belongs to.
    pub pod_uid: Option<String>,
    /// Whether it is a Kubernetes pod's sandbox ("pause") container.
    pub sandbox: bool,
}

impl ZoneMeta {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.image.is_none() && self.labels.is_empty() && self.pod_uid.is_none() && !self.sandbox
    }

    /// Sets the image (bounded as a name; blank is none).
    pub fn with_image(mut self, image: Option<&str>) -> Self {
        self.image = image
            .filter(|i| !i.trim().is_empty())
            .map(|i| bound(i, MAX_NAME_LEN));
        self
    }

    /// Keeps the string-valued entries of `labels`, in key order, while they
    /// fit: at most [`MAX_LABELS`], their bytes with the image's at most
    /// [`MAX_META_BYTES`] (an entry that does not fit is left out).
    pub fn with_labels(self, labels: Option<&Map<String, Value>>) -> Self {
        self.with_label_pairs(
            labels
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))),
        )
    }

    /// Keeps the labels `labels`, in their order, while they fit, as
    /// [`ZoneMeta::with_labels`] does.
    pub fn with_label_pairs<'a>(
        mut self,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut used = self.image.as_ref().map_or(0, String::len);
        for (k, v) in labels {
            if self.labels.len() >= MAX_LABELS {
                break;
            }
            if used + k.len() + v.len() > MAX_META_BYTES {
                continue;
            }
            used += k.len() + v.len();
            self.labels.insert(k.to_string(), v.to_string());
        }
        self
    }

    /// The labels as a JSON object, or null when there are none.
    pub fn labels_json(&self) -> Value {
        if self.labels.is_empty() {
            return Value::Null;
        }
        Value::Object(
            self.labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_bounded_in_number_and_bytes() {
        let many: Map<String, Value> = (0..100)
            .map(|i| (format!("k{i:03}"), json!("v")))
            .chain([("zz-not-a-string".to_string(), json!(7))])
            .collect();
        let m = ZoneMeta::default().with_labels(Some(&many));
        assert_eq!(m.labels.len(), MAX_LABELS);
        assert_eq!(m.labels.keys().next().map(String::as_str), Some("k000"));
        let big: Map<String, Value> = [
            ("a".to_string(), json!("x".repeat(3000))),
            ("b".to_string(), json!("y".repeat(3000))),
            ("c".to_string(), json!("small")),
        ]
        .into_iter()
        .collect();
        let m = ZoneMeta::default()
            .with_image(Some("img"))
            .with_labels(Some(&big));
        assert_eq!(
            m.labels.keys().collect::<Vec<_>>(),
            ["a", "c"],
            "b does not fit"
        );
        assert!(
            m.labels
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
                + 3
                <= MAX_META_BYTES
        );
        assert!(ZoneMeta::default().with_image(Some("  ")).is_empty());
        assert_eq!(ZoneMeta::default().labels_json(), Value::Null);
    }
}
