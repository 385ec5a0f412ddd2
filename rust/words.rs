//! Values in the words users read: numbers and strings written the way the
//! Python they configure with would show them.

/// A float as Python's `repr` (and `str`) shows it: the shortest text that
/// reads back as the same float (`2.0`, `0.1`, `1e-07`, `1e+16`).
pub fn py_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Python's repr does.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("a decimal exponent");
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{text}")
    } else {
        let fraction = if digits.len() > 1 { format!(".{}", &digits[1..]) } else { String::new() };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{}{fraction}e{exponent_sign}{:02}", &digits[..1], exponent.abs())
    }
}

/// A number as a user would have written it (`1000`, `0.5`); one too large or
/// too small for that (`1e+308`, `5e-324`) as Python shows it, never as the
/// hundreds of digits its plain decimal form takes.
pub fn plain(value: f64) -> String {
    let size = value.abs();
    if value == 0.0 || (1e-4..1e16).contains(&size) {
        format!("{value}")
    } else {
        py_float(value)
    }
}

/// Plain data as Python's `repr` shows it (`{'tier': 'gold', 'n': 3}`).
pub fn data_text(data: &crate::data::Data) -> String {
    use crate::data::Data;
    match data {
        Data::Null => "None".to_owned(),
        Data::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => py_float(*f),
        Data::Str(s) => py_str(s),
        Data::List(items) => format!("[{}]", items.iter().map(data_text).collect::<Vec<_>>().join(", ")),
        Data::Map(entries) => {
            format!("{{{}}}", entries.iter().map(|(k, v)| format!("{}: {}", py_str(k), data_text(v))).collect::<Vec<_>>().join(", "))
        }
    }
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

/// Characters of user text a message quotes: a megabyte string is named by
/// its start and length, not repeated whole.
pub const QUOTED_LENGTH: usize = 80;

/// User text as a message quotes it (`"payment"`, escaped as Rust's `{:?}`
/// does), clipped to `QUOTED_LENGTH` characters with its length said. A
/// password in it is masked first: clipped, a URL could lose the `@` that
/// marks its password as one.
pub fn quoted(text: &str) -> String {
    let text = crate::scrub::scrub(text);
    let length = text.chars().count();
    if length <= QUOTED_LENGTH {
        return format!("{text:?}");
    }
    let start: String = text.chars().take(QUOTED_LENGTH).collect();
    format!("{start:?}... ({} characters)", thousands(length as u64))
}

/// Text already rendered for a message (a list, say), masked and clipped the same way.
pub fn clipped(text: String) -> String {
    let text = crate::scrub::scrub(&text).into_owned();
    let length = text.chars().count();
    if length <= QUOTED_LENGTH {
        return text;
    }
    format!("{}... ({} characters)", text.chars().take(QUOTED_LENGTH).collect::<String>(), thousands(length as u64))
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
        assert_eq!(plain(0.5), "0.5");
        assert_eq!(plain(-2.5), "-2.5");
    }

    #[test]
    fn numbers_too_large_or_small_for_plain_digits_are_written_with_an_exponent() {
        // Written plainly, 1e308 takes 309 digits and 5e-324 takes 326.
        assert_eq!(plain(1e308), "1e+308");
        assert_eq!(plain(-1e308), "-1e+308");
        assert_eq!(plain(5e-324), "5e-324");
        assert_eq!(plain(1e22), "1e+22");
        assert_eq!(plain(123_456_789.5), "123456789.5");
        assert_eq!(plain(0.0), "0");
        assert_eq!(py_str("payment"), "'payment'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(thousands(50_000), "50,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn long_text_is_quoted_by_its_start_and_length() {
        assert_eq!(quoted("daily"), "\"daily\"");
        let long = "z".repeat(1_000_000);
        let shown = quoted(&long);
        assert_eq!(shown, format!("\"{}\"... (1,000,000 characters)", "z".repeat(QUOTED_LENGTH)));
        assert_eq!(quoted(&"é".repeat(QUOTED_LENGTH)), format!("{:?}", "é".repeat(QUOTED_LENGTH)));
        assert_eq!(clipped("[1, 2]".to_owned()), "[1, 2]");
        assert!(clipped("x".repeat(500)).ends_with("... (500 characters)"));
    }

    #[test]
    fn a_password_is_masked_before_the_text_is_clipped() {
        let url = format!("ftp://user:{}@host/", "S3CRET".repeat(20));
        assert_eq!(quoted(&url), "\"ftp://user:***@host/\"");
        let long = format!("ftp://user:{}@host/{}", "S3CRET".repeat(20), "p".repeat(100));
        assert!(!quoted(&long).contains("S3C") && !clipped(format!("[{long:?}]")).contains("S3C"));
    }

    #[test]
    fn floats_read_as_python_writes_them() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (123.456, "123.456"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (f64::INFINITY, "inf"),
        ];
        for (value, text) in cases {
            assert_eq!(py_float(value), text, "{value}");
        }
    }
}
