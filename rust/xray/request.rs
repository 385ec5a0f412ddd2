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

/// Which request fields some rule for this service constrains: the others are
/// neither read from the span nor part of the memo's key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fields {
    pub url_path: bool,
    pub method: bool,
    pub host: bool,
    /// Some rule reads the Lambda ARN from the span.
    pub lambda_arn: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub url_path: Field<'a>,
    pub method: Field<'a>,
    pub host: Field<'a>,
    /// `cloud.resource_id`, else `faas.id`, else "".
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
    /// The request's `fields`, X-Ray's keys at `keys_at` in the span's key
    /// table; a field not asked for is `Absent` (every rule matches it with `*`).
    pub fn read<S: SpanView + ?Sized>(span: &'a S, keys_at: usize, fields: Fields) -> Request<'a> {
        let at = |key: usize| keys_at + key;
        let url_path = match fields.url_path.then(|| either(span, URL_PATH, HTTP_TARGET)) {
            None => Field::Absent,
            Some(Field::Absent) => match either(span, at(URL_FULL), at(HTTP_URL)) {
                Field::Text(full) => path_of_url(full).map_or(Field::Absent, Field::Text),
                // No URL at all: the path is taken to be "/".
                Field::Absent => Field::Text("/"),
                Field::Other => Field::Absent,
            },
            Some(found) => found,
        };
        let lambda_arn = match fields.lambda_arn.then(|| either(span, at(RESOURCE_ID), at(FAAS_ID))) {
            None => Field::Absent,
            Some(Field::Absent) => Field::Text(""),
            Some(other) => other,
        };
        let method = if fields.method { either(span, at(METHOD), at(HTTP_METHOD)) } else { Field::Absent };
        let host = if fields.host { either(span, at(SERVER_ADDRESS), at(HTTP_HOST)) } else { Field::Absent };
        Request { url_path, method, host, lambda_arn }
    }
}

/// The attribute under its new name when the span has it (whatever its value), else the old.
#[inline]
fn either<S: SpanView + ?Sized>(span: &S, new: usize, old: usize) -> Field<'_> {
    field(span.attribute(new).or_else(|| span.attribute(old)))
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
