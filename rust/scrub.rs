//! Passwords out of the words users read: in any text an error or a log line
//! shows, a URL's userinfo password (`scheme://user:pw@host`, also after a
//! path normalised `//` to `/`) and `password=`-style options become `***`.
//! Text is shown as given elsewhere; this is the net under every message.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;

/// `user:password@` where a URL's authority starts: after `/`, a separator or
/// the text's start. The password runs to the authority's last `@`, as URL
/// parsers (and so redis-py) read `redis://:p@ss@host`.
fn userinfo() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| Regex::new(r#"(^|[/\s,;=("'])([^/\s:@,;="']*):([^\s/,;"']+)@"#).expect("a valid pattern"))
}

/// `password=...` (and its kin) in a query string or a `key=value` list.
fn password_option() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| Regex::new(r#"(?i)\b(password|passwd|pwd|token|secret)=([^&\s,;"']+)"#).expect("a valid pattern"))
}

/// `text` with every password it seems to hold replaced by `***` (borrowed
/// when there is none, as in almost every message).
pub fn scrub(text: &str) -> Cow<'_, str> {
    if !text.contains('@') && !text.contains('=') {
        return Cow::Borrowed(text);
    }
    let without_userinfo = userinfo().replace_all(text, "$1$2:***@");
    match password_option().replace_all(&without_userinfo, "$1=***") {
        Cow::Borrowed(_) => without_userinfo,
        Cow::Owned(owned) => Cow::Owned(owned),
    }
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn hides_userinfo_passwords_and_password_options() {
        let cases = [
            ("endpoint=http://u:s3cret@127.0.0.1:1,x=1", "endpoint=http://u:***@127.0.0.1:1,x=1"),
            ("http:/u:s3cret@host/x.toml: no such file", "http:/u:***@host/x.toml: no such file"),
            ("store: \"redis://:s3cret@host:6379/0\" has", "store: \"redis://:***@host:6379/0\" has"),
            ("redis://host/0?username=a&password=s3cret", "redis://host/0?username=a&password=***"),
            ("file://u:s3cret@host/x names no absolute path", "file://u:***@host/x names no absolute path"),
            ("Token=abc def", "Token=*** def"),
            // An unencoded @ in the password: URL parsers split at the authority's last @.
            ("store: redis://:p@ss@host:6379/0 is down", "store: redis://:***@host:6379/0 is down"),
            ("http://u:a@b@c@host/x, http://v:d@host/y", "http://u:***@host/x, http://v:***@host/y"),
        ];
        for (text, shown) in cases {
            assert_eq!(scrub(text), shown, "{text}");
        }
    }

    #[test]
    fn leaves_everything_else_as_it_is() {
        for text in ["rules[0].rate: 3 is out of range; expected a number in [0, 1]", "redis://user@host/0", "a@b", "budget=1000", ""] {
            assert_eq!(scrub(text), text);
        }
    }
}
