//! Reading and rewriting the OpenTelemetry (`ot`) tracestate entry, whose value
//! is a `;`-separated list of `key:value` sub-keys such as `th:c;rv:0123456789abcd`.
//!
//! The value arrives from the network, so parsing is bounded, linear and never
//! fails. The rules are the specification's (tracestate-handling.md), as the
//! Collector and the Java contrib samplers apply them:
//! - a value that breaks the grammar (a bad key or character, an empty member
//!   such as a trailing `;`, a repeated key, more than 256 characters) is
//!   malformed: nothing in it is used and it is not passed on;
//! - in a well-formed value, `th` must be 1 to 14 lowercase hex digits and `rv`
//!   exactly 14; one that is not is neither used nor passed on, and the rest of
//!   the value is kept.

use crate::threshold::{decode_rv, decode_th, encode_th};

/// W3C limit on a tracestate member value; longer `ot` values are malformed.
pub const MAX_VALUE_LEN: usize = 256;

/// What a sampler needs from an `ot` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtFields {
    /// The rejection threshold, if present and valid.
    pub th: Option<u64>,
    /// The explicit randomness, if present and valid.
    pub rv: Option<u64>,
}

/// How an `ot` value may be passed on to children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Form {
    /// Well formed, with valid `th` and `rv` where present: passed on as it is.
    #[default]
    Sound,
    /// Well formed, but an invalid `th` or `rv` must be removed first.
    InvalidSubKey,
    /// Breaks the grammar: dropped whole.
    Malformed,
}

/// An `ot` value read: its fields and its form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    pub fields: OtFields,
    pub form: Form,
}

/// Parse the `th` and `rv` sub-keys (see the module's rules).
pub fn read(value: &str) -> OtFields {
    parse(value).fields
}

/// Parse an `ot` value and judge its form.
pub fn parse(value: &str) -> Reading {
    let malformed = Reading { fields: OtFields::default(), form: Form::Malformed };
    if value.is_empty() || value.len() > MAX_VALUE_LEN {
        return malformed;
    }
    let mut reading = Reading::default();
    // Keys are short and few (at most 128 members fit in 256 characters):
    // a linear scan for repeats stays bounded.
    let mut seen: [&str; 128] = [""; 128];
    for (count, member) in value.split(';').enumerate() {
        let Some((key, sub_value)) = member.split_once(':') else { return malformed };
        if !valid_key(key) || !valid_value(sub_value) || seen[..count].contains(&key) {
            return malformed;
        }
        seen[count] = key;
        match key {
            "th" => match decode_th(sub_value) {
                Some(th) => reading.fields.th = Some(th),
                None => reading.form = Form::InvalidSubKey,
            },
            "rv" => match decode_rv(sub_value) {
                Some(rv) => reading.fields.rv = Some(rv),
                None => reading.form = Form::InvalidSubKey,
            },
            _ => {}
        }
    }
    reading
}

/// The sub-keys of a well-formed value other than `th` and `rv`, in order;
/// None for a malformed value.
pub fn others(value: &str) -> Option<Vec<&str>> {
    if parse(value).form == Form::Malformed {
        return None;
    }
    Some(value.split(';').filter(|member| !member.starts_with("th:") && !member.starts_with("rv:")).collect())
}

/// Build the new `ot` value with `th` set to `threshold` (or removed when `None`),
/// then a valid `rv`, then every other sub-key in its order (the order the
/// OpenTelemetry SDKs write). A malformed previous value contributes nothing;
/// an invalid `th` or `rv` in it is dropped. Returns `None` when nothing would
/// remain, meaning the `ot` entry should be removed. If the result would exceed
/// the W3C length limit, sub-keys are dropped from the end until it fits.
pub fn rewrite(previous: Option<&str>, threshold: Option<u64>) -> Option<String> {
    let mut out = String::with_capacity(32);
    if let Some(t) = threshold {
        out.push_str("th:");
        out.push_str(&encode_th(t));
    }
    let previous = previous.filter(|v| parse(v).form != Form::Malformed);
    if let Some(previous) = previous {
        let members = previous.split(';').filter_map(|member| member.split_once(':'));
        let rv = members.clone().filter(|(key, value)| *key == "rv" && decode_rv(value).is_some());
        let others = members.filter(|(key, _)| *key != "th" && *key != "rv");
        for (key, sub_value) in rv.chain(others) {
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

/// A lowercase letter, then lowercase letters or digits (the spec's grammar).
fn valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z')) && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Letters, digits, `.`, `_` or `-`; possibly empty (the spec's grammar).
fn valid_value(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::decode_th;

    /// Read then pass on unchanged (`th` kept as read): what children inherit.
    fn passed_on(value: &str) -> Option<String> {
        rewrite(Some(value), read(value).th)
    }

    #[test]
    fn reads_th_and_rv() {
        let fields = read("th:c;rv:0123456789abcd");
        assert_eq!(fields.th, decode_th("c"));
        assert_eq!(fields.rv, Some(0x0123456789abcd));
        assert_eq!(parse("th:c;rv:0123456789abcd").form, Form::Sound);
    }

    /// Inputs and what children inherit, after the Java contrib's `OtelTraceState`
    /// parse-then-serialize table (consistent56), with the specification's rules
    /// where the two differ (an empty `th` is invalid: 1 to 14 digits).
    #[test]
    fn java_contrib_table() {
        let xs = |n: usize| "X".repeat(n);
        let cases: Vec<(String, Option<String>)> = vec![
            ("a".into(), None),
            ("#".into(), None),
            (" ".into(), None),
            ("rv:1234567890abcd".into(), Some("rv:1234567890abcd".into())),
            ("rv:01020304050607".into(), Some("rv:01020304050607".into())),
            ("rv:1234567890abcde".into(), None),
            ("th:1234567890abcd".into(), Some("th:1234567890abcd".into())),
            ("th:01020304050607".into(), Some("th:01020304050607".into())),
            ("th:10000000000000".into(), Some("th:1".into())),
            ("th:1234500000000".into(), Some("th:12345".into())),
            ("th:0".into(), Some("th:0".into())),
            ("th:100000000000000".into(), None),
            ("th:1234567890abcde".into(), None),
            (
                format!("a:{};rv:1234567890abcd;th:1234567890abcd;x:3", xs(214)),
                Some(format!("th:1234567890abcd;rv:1234567890abcd;a:{};x:3", xs(214))),
            ),
            (format!("a:{};rv:1234567890abcd;th:1234567890abcd;x:3", xs(215)), None),
            ("th:x".into(), None),
            ("th:100".into(), Some("th:1".into())),
            ("th:10000000000001".into(), Some("th:10000000000001".into())),
            ("th:10000000000010".into(), Some("th:1000000000001".into())),
            ("rv:x".into(), None),
            ("rv:100000000000000".into(), None),
            ("rv:10000000000000".into(), Some("rv:10000000000000".into())),
            ("rv:1000000000000".into(), None),
        ];
        for (input, expected) in cases {
            assert_eq!(passed_on(&input), expected, "{input:?}");
        }
    }

    /// The Collector's `pkg/sampling` parse table: syntax errors make the whole
    /// value malformed; a bad `rv` or `th` alone is dropped, the rest kept.
    #[test]
    fn collector_table() {
        let malformed = [
            "",
            "th:1;",
            "th:1=p:2",
            "th:1;p:2=s:3",
            ":1;p:2=s:3",
            ":;p:2=s:3",
            ":;:",
            ":",
            "th:;p=1",
            "th:$",
            "th:0x1p+3",
            "1:1;u:V",
            "X:1;u:V",
            "x:1;",
        ];
        for input in malformed {
            assert_eq!(parse(input).form, Form::Malformed, "{input:?}");
            assert_eq!(passed_on(input), None, "{input:?}");
        }
        // input, th, rv, passed on
        type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let read_as: &[Case] = &[
            ("th:2", Some("2"), None, Some("th:2")),
            ("th:ab", Some("ab"), None, Some("th:ab")),
            ("th:abcdefabcdefab", Some("abcdefabcdefab"), None, Some("th:abcdefabcdefab")),
            ("th:1000", Some("1"), None, Some("th:1")),
            ("th:-1", None, None, None),
            ("th:14.5", None, None, None),
            ("th:ffffffffffffffff", None, None, None),
            ("e100:1", None, None, Some("e100:1")),
            ("e1:1;e2:2", None, None, Some("e1:1;e2:2")),
            ("th:2;extra:stuff", Some("2"), None, Some("th:2;extra:stuff")),
            ("extra:stuff;th:2", Some("2"), None, Some("th:2;extra:stuff")),
            ("e100:100;th:1;e101:101", Some("1"), None, Some("th:1;e100:100;e101:101")),
            ("x:1;u:V", None, None, Some("x:1;u:V")),
            ("rv:22222222222222;extra:stuff", None, Some("22222222222222"), Some("rv:22222222222222;extra:stuff")),
            ("extra:stuff;rv:22222222222222", None, Some("22222222222222"), Some("rv:22222222222222;extra:stuff")),
            ("rv:3;p:2", None, None, Some("p:2")),
            ("rv:100000000000000", None, None, None),
            ("x:", None, None, Some("x:")),
            ("x:0X1FFF;y:.-_-.;z:", None, None, Some("x:0X1FFF;y:.-_-.;z:")),
            ("x1y2z3:1-2-3;y1:y_1;xy:-;th:50", Some("5"), None, Some("th:5;x1y2z3:1-2-3;y1:y_1;xy:-")),
        ];
        for (input, th, rv, out) in read_as {
            let fields = read(input);
            assert_eq!(fields.th, th.map(|t| decode_th(t).unwrap()), "{input:?}");
            assert_eq!(fields.rv, rv.map(|r| crate::threshold::decode_rv(r).unwrap()), "{input:?}");
            assert_eq!(passed_on(input).as_deref(), *out, "{input:?}");
        }
        let long = format!("x:{}", "_".repeat(254));
        assert_eq!(passed_on(&long), Some(long.clone()));
        assert_eq!(parse(&format!("x:{}", "_".repeat(255))).form, Form::Malformed);
    }

    #[test]
    fn upper_case_th_and_rv_are_invalid_and_not_passed_on() {
        let reading = parse("th:C;rv:D29D6A7215CED0;k:v");
        assert_eq!(reading.fields, OtFields::default());
        assert_eq!(reading.form, Form::InvalidSubKey);
        assert_eq!(rewrite(Some("th:C;rv:D29D6A7215CED0;k:v"), decode_th("e")), Some("th:e;k:v".to_owned()));
        assert_eq!(passed_on("th:FD70A4"), None);
        // An upper-case rv does not erase a valid th.
        assert_eq!(passed_on("th:c;rv:D29D6A7215CED0"), Some("th:c".to_owned()));
    }

    #[test]
    fn repeated_keys_make_the_value_malformed() {
        assert_eq!(parse("th:8;th:c").form, Form::Malformed);
        assert_eq!(parse("k:1;rv:0123456789abcd;k:2").form, Form::Malformed);
        assert_eq!(read("th:8;th:c"), OtFields::default());
    }

    #[test]
    fn oversized_value_is_malformed() {
        let long = format!("th:8;pad:{}", "a".repeat(300));
        assert_eq!(read(&long), OtFields::default());
        assert_eq!(rewrite(Some(&long), Some(0)), Some("th:0".to_owned()));
    }

    #[test]
    fn rewrite_sets_th_first_then_rv_then_the_rest() {
        assert_eq!(rewrite(Some("x:y;rv:0123456789abcd;th:8"), decode_th("c")), Some("th:c;rv:0123456789abcd;x:y".to_owned()));
        assert_eq!(rewrite(None, Some(0)), Some("th:0".to_owned()));
    }

    #[test]
    fn rewrite_removes_th() {
        assert_eq!(rewrite(Some("th:8;rv:0123456789abcd"), None), Some("rv:0123456789abcd".to_owned()));
        assert_eq!(rewrite(Some("th:8"), None), None);
        assert_eq!(rewrite(None, None), None);
    }

    #[test]
    fn rewrite_drops_a_malformed_value_whole() {
        assert_eq!(rewrite(Some("bad member;ok:1"), Some(0)), Some("th:0".to_owned()));
        assert_eq!(rewrite(Some("ok:1;"), None), None);
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
        let many = vec!["a:"; 85].join(";");
        assert_eq!(parse(&many).form, Form::Malformed, "repeated keys");
        let distinct: Vec<String> = (0..85).map(|i| format!("k{i}:")).collect();
        let distinct = distinct.join(";");
        if distinct.len() <= MAX_VALUE_LEN {
            assert_eq!(parse(&distinct).form, Form::Sound);
        }
    }
}
