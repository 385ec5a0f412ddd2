//! Reading and rewriting the OpenTelemetry (`ot`) tracestate entry, whose value
//! is a `;`-separated list of `key:value` sub-keys such as `th:c;rv:0123456789abcd`.
//!
//! The value arrives from the network, so parsing is bounded, linear and never
//! fails: malformed sub-keys are skipped when read and dropped when rewritten,
//! so what we emit is always well formed.

use crate::threshold::{decode_rv, decode_th, encode_rv, encode_th};

/// W3C limit on a tracestate member value; longer `ot` values are ignored whole.
pub const MAX_VALUE_LEN: usize = 256;

/// What a sampler needs from an `ot` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtFields {
    /// The rejection threshold, if present and well formed.
    pub th: Option<u64>,
    /// The explicit randomness, if present and well formed.
    pub rv: Option<u64>,
}

/// Parse the `th` and `rv` sub-keys. A value over [`MAX_VALUE_LEN`] yields nothing.
/// A repeated sub-key is malformed and ignored.
pub fn read(value: &str) -> OtFields {
    let mut fields = OtFields::default();
    if value.len() > MAX_VALUE_LEN {
        return fields;
    }
    let (mut th_seen, mut rv_seen) = (0u8, 0u8);
    for (key, sub_value) in sub_keys(value) {
        match key {
            "th" => {
                th_seen += 1;
                fields.th = decode_th(sub_value);
            }
            "rv" => {
                rv_seen += 1;
                fields.rv = decode_rv(sub_value);
            }
            _ => {}
        }
    }
    if th_seen > 1 {
        fields.th = None;
    }
    if rv_seen > 1 {
        fields.rv = None;
    }
    fields
}

/// Build the new `ot` value with `th` set to `threshold` (or removed when `None`),
/// keeping every other well-formed sub-key in its order (a well-formed `rv` is
/// written in lowercase). `th` goes first, as in the spec's examples. Returns `None` when nothing would remain, meaning the
/// `ot` entry should be removed. If the result would exceed the W3C length
/// limit, foreign sub-keys are dropped from the end until it fits.
pub fn rewrite(previous: Option<&str>, threshold: Option<u64>) -> Option<String> {
    let mut out = String::with_capacity(32);
    if let Some(t) = threshold {
        out.push_str("th:");
        out.push_str(&encode_th(t));
    }
    if let Some(previous) = previous.filter(|v| v.len() <= MAX_VALUE_LEN) {
        for (key, sub_value) in sub_keys(previous) {
            if key == "th" {
                continue;
            }
            let lowered;
            let sub_value = match (key, decode_rv(sub_value)) {
                ("rv", Some(rv)) => {
                    lowered = encode_rv(rv);
                    lowered.as_str()
                }
                _ => sub_value,
            };
            let added = usize::from(!out.is_empty()) + key.len() + 1 + sub_value.len();
            if out.len() + added > MAX_VALUE_LEN {
                break;
            }
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str(key);
            out.push(':');
            out.push_str(sub_value);
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Iterate the well-formed `key:value` sub-keys of an `ot` value.
/// Keys are a lowercase letter then lowercase letters or digits; values are
/// letters, digits, `.`, `_` or `-` (the spec's grammar).
fn sub_keys(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(';').filter_map(|member| {
        let (key, sub_value) = member.split_once(':')?;
        (valid_key(key) && valid_value(sub_value)).then_some((key, sub_value))
    })
}

fn valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z')) && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn valid_value(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::decode_th;

    #[test]
    fn reads_th_and_rv() {
        let fields = read("th:c;rv:0123456789abcd");
        assert_eq!(fields.th, decode_th("c"));
        assert_eq!(fields.rv, Some(0x0123456789abcd));
    }

    #[test]
    fn upper_case_hex_is_read_and_written_lower_case() {
        let fields = read("th:C;rv:D29D6A7215CED0");
        assert_eq!(fields.th, decode_th("c"));
        assert_eq!(fields.rv, Some(0xd29d6a7215ced0));
        assert_eq!(rewrite(Some("th:C;rv:D29D6A7215CED0"), decode_th("e")), Some("th:e;rv:d29d6a7215ced0".to_owned()));
    }

    #[test]
    fn malformed_members_are_skipped() {
        assert_eq!(read("garbage;th:8;;x"), OtFields { th: decode_th("8"), rv: None });
        assert_eq!(read("th:XYZ"), OtFields::default());
        assert_eq!(read("th:8G"), OtFields::default());
        assert_eq!(read("th:8;th:c"), OtFields::default(), "duplicate th is ambiguous");
        assert_eq!(read("rv:123"), OtFields::default(), "rv needs 14 digits");
        assert_eq!(read(""), OtFields::default());
        assert_eq!(read(":::;;;"), OtFields::default());
    }

    #[test]
    fn oversized_value_is_ignored_whole() {
        let long = format!("th:8;pad:{}", "a".repeat(300));
        assert_eq!(read(&long), OtFields::default());
        assert_eq!(rewrite(Some(&long), Some(0)), Some("th:0".to_owned()));
    }

    #[test]
    fn rewrite_sets_th_first_and_keeps_others() {
        assert_eq!(rewrite(Some("rv:0123456789abcd;th:8;x:y"), decode_th("c")), Some("th:c;rv:0123456789abcd;x:y".to_owned()));
        assert_eq!(rewrite(None, Some(0)), Some("th:0".to_owned()));
    }

    #[test]
    fn rewrite_removes_th() {
        assert_eq!(rewrite(Some("th:8;rv:0123456789abcd"), None), Some("rv:0123456789abcd".to_owned()));
        assert_eq!(rewrite(Some("th:8"), None), None);
        assert_eq!(rewrite(None, None), None);
    }

    #[test]
    fn rewrite_drops_malformed_members() {
        assert_eq!(rewrite(Some("bad member;Up:x;k:v v;ok:1"), Some(0)), Some("th:0;ok:1".to_owned()));
    }

    #[test]
    fn rewrite_stays_within_the_w3c_limit() {
        let previous = format!("a:{};b:{}", "x".repeat(125), "y".repeat(125));
        let out = rewrite(Some(&previous), decode_th("fd70a4")).unwrap();
        assert!(out.len() <= MAX_VALUE_LEN);
        assert!(out.starts_with("th:fd70a4;a:"));
        assert!(!out.contains("b:"));
    }

    #[test]
    fn parsing_is_linear_on_hostile_input() {
        let hostile = ";".repeat(MAX_VALUE_LEN);
        assert_eq!(read(&hostile), OtFields::default());
        let hostile = ":".repeat(10_000_000);
        assert_eq!(read(&hostile), OtFields::default());
    }
}
