//! Values in the words users read: numbers and strings written the way the
//! Python they configure with would show them.

/// A float as Python's `repr` shows it (`2.0`, `0.1`, `1e-07`).
pub fn py_float(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

/// A number as a user would have written it (`1000`, `0.5`).
pub fn plain(value: f64) -> String {
    format!("{value}")
}

/// A string as Python's `repr` shows it (`'payment'`).
pub fn py_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A whole number with thousands separators (`50,000`).
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_read_like_python() {
        assert_eq!(py_float(2.0), "2.0");
        assert_eq!(py_float(0.225), "0.225");
        assert_eq!(plain(1000.0), "1000");
        assert_eq!(py_str("payment"), "'payment'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(thousands(50_000), "50,000");
        assert_eq!(thousands(999), "999");
    }
}
