//! The request a span describes, as X-Ray rules match it: the URL path (the
//! HTTP semantic conventions' new names, then the old, then the path of the
//! full URL), the method, the host, and a Lambda function's ARN.

use crate::rules::condition::AttrValue;
use crate::rules::{SpanView, ROUTE_KEYS};

use super::pattern::Field;

/// Attribute keys the X-Ray stage reads, after the plan's other keys (which
/// begin with [`ROUTE_KEYS`], whose `url.path` and `http.target` it reads too).
pub const XRAY_KEYS: [&str; 8] =
    ["url.full", "http.url", "http.request.method", "http.method", "server.address", "http.host", "cloud.resource_id", "faas.id"];

// In ROUTE_KEYS.
const URL_PATH: usize = 1;
const HTTP_TARGET: usize = 2;
// After the plan's other keys, in XRAY_KEYS' order.
const URL_FULL: usize = 0;
const HTTP_URL: usize = 1;
const METHOD: usize = 2;
const HTTP_METHOD: usize = 3;
const SERVER_ADDRESS: usize = 4;
const HTTP_HOST: usize = 5;
const RESOURCE_ID: usize = 6;
const FAAS_ID: usize = 7;
const _: () =
    assert!(matches!(ROUTE_KEYS[URL_PATH].as_bytes(), b"url.path") && matches!(ROUTE_KEYS[HTTP_TARGET].as_bytes(), b"http.target"));

#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub url_path: Field<'a>,
    pub method: Field<'a>,
    pub host: Field<'a>,
    /// `cloud.resource_id`, else `faas.id`, else "" (read only for a Lambda
    /// function whose resource has no id).
    pub lambda_arn: Field<'a>,
}

pub fn field(value: Option<AttrValue<'_>>) -> Field<'_> {
    match value {
        None => Field::Absent,
        Some(AttrValue::Str(text)) => Field::Text(text),
        Some(_) => Field::Other,
    }
}

impl<'a> Request<'a> {
    /// The request's fields, X-Ray's keys at `keys_at` in the span's key
    /// table; the Lambda ARN only `with_arn` (some rule reads it from the span).
    pub fn read<S: SpanView + ?Sized>(span: &'a S, keys_at: usize, with_arn: bool) -> Request<'a> {
        // The new name when the span has it (whatever its value), else the old.
        let either = |new: usize, old: usize| field(span.attribute(new).or_else(|| span.attribute(old)));
        let mut url_path = either(URL_PATH, HTTP_TARGET);
        let at = |key: usize| keys_at + key;
        if url_path == Field::Absent {
            url_path = match either(at(URL_FULL), at(HTTP_URL)) {
                Field::Text(full) => path_of_url(full).map_or(Field::Absent, Field::Text),
                // No URL at all: the path is taken to be "/".
                Field::Absent => Field::Text("/"),
                Field::Other => Field::Absent,
            };
        }
        let lambda_arn = match with_arn.then(|| either(at(RESOURCE_ID), at(FAAS_ID))) {
            None | Some(Field::Absent) => Field::Text(""),
            Some(other) => other,
        };
        Request { url_path, method: either(at(METHOD), at(HTTP_METHOD)), host: either(at(SERVER_ADDRESS), at(HTTP_HOST)), lambda_arn }
    }
}

/// The path of `scheme://host[:port][/path][;params][?query][#fragment]`
/// ("/" when empty), as Python's `urlparse(...).path` gives it; None for a
/// URL with no scheme (not a full URL: bad instrumentation, ignored).
pub fn path_of_url(full: &str) -> Option<&str> {
    let after = &full[full.find("://")? + 3..];
    let rest = &after[after.find(['/', '?', '#']).unwrap_or(after.len())..];
    let mut path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    // Parameters of the last segment are not part of the path.
    if let Some(slash) = path.rfind('/') {
        if let Some(semicolon) = path[slash..].find(';') {
            path = &path[..slash + semicolon];
        }
    }
    Some(if path.is_empty() { "/" } else { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths() {
        for (url, path) in [
            ("http://example.com/a/b?x=1#f", Some("/a/b")),
            ("https://example.com:8443", Some("/")),
            ("https://example.com?q", Some("/")),
            ("http://h/a;p/b;q?x", Some("/a;p/b")),
            ("example.com/a", None),
        ] {
            assert_eq!(path_of_url(url), path, "{url}");
        }
    }
}
