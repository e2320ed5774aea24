//! A record's fields as a hook's `ZONEMON_*` environment variables.

use serde_json::{Map, Value};

/// `ZONEMON_<FIELD>` for every field of `object` that is not null: strings as
/// they are (a NUL, which no variable can hold, becomes `\0`), numbers and
/// booleans as in JSON, arrays and objects as compact JSON. Field names are
/// upper-cased, anything but letters and digits becoming `_`.
pub fn vars(object: &Map<String, Value>) -> Vec<(String, String)> {
    object
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let key: String = k
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            let value = match v {
                Value::String(s) => s.replace('\0', "\\0"),
                other => other.to_string(),
            };
            (format!("ZONEMON_{key}"), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_become_variables() {
        let object = json!({
            "seq": 7, "event": "shutdown", "name": "$(touch /tmp/x); 'a\"\nb\0",
            "exit_code": 1, "exit_signal": null, "resynced": true, "k8s-ns": "x",
            "labels": {"a": "b"}
        });
        let mut got = vars(object.as_object().unwrap());
        got.sort();
        let want: Vec<(String, String)> = [
            ("ZONEMON_EVENT", "shutdown"),
            ("ZONEMON_EXIT_CODE", "1"),
            ("ZONEMON_K8S_NS", "x"),
            ("ZONEMON_LABELS", "{\"a\":\"b\"}"),
            ("ZONEMON_NAME", "$(touch /tmp/x); 'a\"\nb\\0"),
            ("ZONEMON_RESYNCED", "true"),
            ("ZONEMON_SEQ", "7"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }
}
