//! X-Ray's rule patterns: `*` matches any run of characters (none included),
//! `?` exactly one, everything else itself, case-sensitive, over the whole
//! text. A lone `*` matches even a value the request does not have, as the
//! AWS samplers read it; any other pattern needs the value, as text.

/// A request's value for one rule field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Absent,
    Text(&'a str),
    /// Present, but not text (a number, a list): only `*` matches it.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Any,
    Exact(String),
    /// The literal text before the first wildcard (checked first: most
    /// requests differ from most rules there), then the rest.
    Glob {
        prefix: String,
        rest: Vec<char>,
    },
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        if text == "*" {
            Pattern::Any
        } else if let Some(at) = text.find(['*', '?']) {
            Pattern::Glob { prefix: text[..at].to_owned(), rest: text[at..].chars().collect() }
        } else {
            Pattern::Exact(text.to_owned())
        }
    }

    #[inline]
    pub fn matches(&self, field: Field<'_>) -> bool {
        match (self, field) {
            (Pattern::Any, _) => true,
            (Pattern::Exact(pattern), Field::Text(text)) => pattern == text,
            (Pattern::Glob { prefix, rest }, Field::Text(text)) => text.strip_prefix(prefix.as_str()).is_some_and(|tail| glob(rest, tail)),
            _ => false,
        }
    }

    /// Whether this is `*`.
    pub fn is_any(&self) -> bool {
        matches!(self, Pattern::Any)
    }

    pub fn text(&self) -> String {
        match self {
            Pattern::Any => "*".to_owned(),
            Pattern::Exact(text) => text.clone(),
            Pattern::Glob { prefix, rest } => prefix.chars().chain(rest.iter().copied()).collect(),
        }
    }
}

/// Whole-text wildcard match in time linear in pattern × text at worst (the
/// last `*` is the only backtracking point), so no pattern a server sends can
/// make a decision slow. ASCII text (nearly every path, host and method) is
/// matched byte by byte; other text character by character.
fn glob(pattern: &[char], text: &str) -> bool {
    if text.is_ascii() {
        return glob_in(pattern, text.as_bytes(), |p, t| *p == char::from(*t));
    }
    let chars: smallvec::SmallVec<[char; 64]> = text.chars().collect();
    glob_in(pattern, &chars, |p, t| p == t)
}

fn glob_in<T>(pattern: &[char], text: &[T], same: impl Fn(&char, &T) -> bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some('?') => {
                p += 1;
                t += 1;
            }
            Some(c) if same(c, &text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern).matches(Field::Text(text))
    }

    #[test]
    fn wildcards() {
        assert!(text("*", ""));
        assert!(text("", ""));
        assert!(!text("", "a"));
        assert!(text("/api/*", "/api/"));
        assert!(text("/api/*", "/api/users/7"));
        assert!(!text("/api/*", "/ap"));
        assert!(text("?ET", "GET"));
        assert!(!text("?et", "GET"), "case-sensitive");
        assert!(!text("get", "GET"));
        assert!(text("G?T", "GET"));
        assert!(!text("G?T", "GT"));
        assert!(text("*a*b*", "xxaxxbxx"));
        assert!(!text("*a*b", "xxaxxbxx"));
        assert!(text("a*b*c", "abc"));
        assert!(text("a**", "a"));
        assert!(text("é?", "éü"), "? is one character, not one byte");
        assert!(text("a.c", "a.c"));
        assert!(!text("a.c", "abc"), "only * and ? are special");
        assert!(!text("a*", "b"));
    }

    #[test]
    fn absent_and_non_text_values() {
        assert!(Pattern::new("*").matches(Field::Absent));
        assert!(Pattern::new("*").matches(Field::Other));
        assert!(!Pattern::new("?").matches(Field::Absent));
        assert!(!Pattern::new("").matches(Field::Absent));
        assert!(!Pattern::new("5").matches(Field::Other));
    }

    #[test]
    fn long_hostile_patterns_stay_fast() {
        let pattern = "*a".repeat(200) + "b";
        let subject = "a".repeat(5_000);
        let started = std::time::Instant::now();
        assert!(!text(&pattern, &subject));
        assert!(started.elapsed().as_secs_f64() < 1.0);
    }
}
