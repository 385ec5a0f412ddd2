//! Shell patterns with Python's `fnmatch.fnmatchcase` semantics (`*`, `?`,
//! `[seq]`, `[!seq]`, ranges, an unclosed `[` taken literally), which the
//! OpenTelemetry SDK's attribute-pattern predicate uses. Each pattern is
//! translated as `fnmatch.translate` does, then matched by a finite automaton
//! (linear in the input, whatever the pattern).

use regex::Regex;

/// A compiled shell pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    /// None when the pattern can never match (it holds an empty range).
    regex: Option<Regex>,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let regex = match translate(pattern) {
            Some(source) => {
                Some(Regex::new(&source).map_err(|e| format!("pattern {} cannot be compiled: {e}", crate::words::quoted(pattern)))?)
            }
            None => None,
        };
        Ok(Glob { pattern: pattern.to_owned(), regex })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(text))
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

/// One character of a character class, or a range of them.
enum Member {
    Char(char),
    Range(char, char),
}

/// The pattern as an anchored regular expression, or None if it can never match.
fn translate(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let n = chars.len();
    let mut out = String::from(r"(?s)\A(?:");
    let mut i = 0;
    while i < n {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                if !out.ends_with(".*") {
                    out.push_str(".*");
                }
            }
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if j < n && chars[j] == '!' {
                    j += 1;
                }
                if j < n && chars[j] == ']' {
                    j += 1;
                }
                while j < n && chars[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    out.push_str(r"\[");
                    continue;
                }
                let (negated, members) = class_members(&chars, i, j);
                i = j + 1;
                match (negated, members.is_empty()) {
                    // `[!]`: a negated empty class matches any character.
                    (true, true) => out.push('.'),
                    (false, true) => return None,
                    (negated, false) => {
                        out.push('[');
                        if negated {
                            out.push('^');
                        }
                        for member in members {
                            match member {
                                Member::Char(c) => push_class_char(&mut out, c),
                                Member::Range(a, b) => {
                                    push_class_char(&mut out, a);
                                    out.push('-');
                                    push_class_char(&mut out, b);
                                }
                            }
                        }
                        out.push(']');
                    }
                }
            }
            other => out.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
        }
    }
    out.push_str(r")\z");
    Some(out)
}

/// The members of the class `chars[start..end]` (between the brackets), as
/// `fnmatch.translate` reads them: `-` between two characters makes a range
/// (an empty range is dropped), any other `-` is literal, and a leading `!`
/// negates.
fn class_members(chars: &[char], start: usize, end: usize) -> (bool, Vec<Member>) {
    let stuff = &chars[start..end];
    let chunks: Vec<Vec<char>> = if !stuff.contains(&'-') {
        vec![stuff.to_vec()]
    } else {
        let mut chunks: Vec<Vec<char>> = Vec::new();
        let mut i = start;
        let mut k = if chars[start] == '!' { start + 2 } else { start + 1 };
        while let Some(dash) = (k..end).find(|&p| chars[p] == '-') {
            chunks.push(chars[i..dash].to_vec());
            i = dash + 1;
            k = dash + 3;
        }
        let last = chars[i..end].to_vec();
        if last.is_empty() {
            chunks.last_mut().expect("a dash was found").push('-');
        } else {
            chunks.push(last);
        }
        // Remove empty ranges (a start above its end), as `fnmatch` does.
        let mut k = chunks.len() - 1;
        while k > 0 {
            let (previous_last, first) = (*chunks[k - 1].last().expect("chunks are not empty"), chunks[k][0]);
            if previous_last > first {
                let mut merged = chunks[k - 1][..chunks[k - 1].len() - 1].to_vec();
                merged.extend_from_slice(&chunks[k][1..]);
                chunks[k - 1] = merged;
                chunks.remove(k);
            }
            k -= 1;
        }
        chunks
    };
    // Consecutive chunks are joined by a range from one's last character to the next one's first.
    let mut members: Vec<Member> = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        for (position, &c) in chunk.iter().enumerate() {
            if index > 0 && position == 0 {
                match members.pop() {
                    Some(Member::Char(start)) => members.push(Member::Range(start, c)),
                    Some(other) => {
                        members.push(other);
                        members.push(Member::Char(c));
                    }
                    None => members.push(Member::Char(c)),
                }
            } else {
                members.push(Member::Char(c));
            }
        }
    }
    let negated = matches!(members.first(), Some(Member::Char('!')));
    if negated {
        members.remove(0);
    }
    (negated, members)
}

/// A class member, escaped so no character is read as class syntax.
fn push_class_char(out: &mut String, c: char) {
    use std::fmt::Write as _;
    let _ = write!(out, "\\x{{{:x}}}", c as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("/api/*", "/api/users"));
        assert!(matches("/api/*", "/api/"));
        assert!(!matches("/api/*", "/API/users"));
        assert!(matches("*", ""));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*.txt", "notes.txt"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(matches("*", "line\nbreak"), "`*` crosses newlines, as fnmatch's (?s)");
    }

    #[test]
    fn classes() {
        assert!(matches("[abc]", "b"));
        assert!(!matches("[!abc]", "b"));
        assert!(matches("[!abc]", "d"));
        assert!(matches("[a-c]x", "bx"));
        assert!(matches("[]]", "]"));
        assert!(matches("[!]]", "a"));
        assert!(matches("[a-]", "-"));
        assert!(matches("[!]", "[!]"), "`]` right after `[!` is a member: the class is unclosed, so literal");
        assert!(!matches("[z-a]", "z"), "an empty range never matches");
        assert!(!matches("[z-a]", "-"));
        assert!(matches("[[]", "["));
        assert!(matches("[\\]", "\\"));
        assert!(matches("[a-c-e]", "-"));
        assert!(matches("[a-c-e]", "e"));
        assert!(!matches("[a-c-e]", "d"));
    }

    #[test]
    fn unclosed_bracket_is_literal_and_regex_syntax_is_not_special() {
        assert!(matches("[abc", "[abc"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "axb"));
        assert!(matches("(x)|{y}+^$", "(x)|{y}+^$"));
    }
}
