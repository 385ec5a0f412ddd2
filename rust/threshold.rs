//! Consistent-probability arithmetic from the OpenTelemetry tracestate
//! probability-sampling spec: probability <-> 56-bit rejection threshold,
//! the `th` / `rv` hex encodings and adjusted counts.

/// Number of random bits a consistent decision compares (W3C Trace Context level 2).
pub const RANDOMNESS_BITS: u32 = 56;
/// 2^56: a threshold equal to this rejects every span (probability zero).
pub const NEVER: u64 = 1 << RANDOMNESS_BITS;
/// Mask selecting the randomness bits of a trace id.
pub const RANDOMNESS_MASK: u64 = NEVER - 1;
/// Hex digits in a full-precision threshold or randomness value.
pub const HEX_DIGITS: usize = 14;
/// Default significant hex digits of a threshold. The spec's table shows
/// 1% -> `fd70a4` at this precision; the error in the adjusted count is < 1e-5.
pub const DEFAULT_PRECISION: u32 = 5;
/// Largest precision we accept: an f64 mantissa carries 13 hex digits.
pub const MAX_PRECISION: u32 = 12;

/// Rejection threshold for `probability`, rounded to `precision` significant hex
/// digits (extra digits are granted for each leading `f`, as the spec's reference
/// algorithm does). Returns [`NEVER`] for probability 0 and 0 for probability 1.
///
/// `probability` must be finite and within [0, 1]; callers validate first.
pub fn threshold_for_probability(probability: f64, precision: u32) -> u64 {
    debug_assert!((0.0..=1.0).contains(&probability));
    if probability <= 0.0 {
        return NEVER;
    }
    if probability >= 1.0 {
        return 0;
    }
    let (_, exponent) = frexp(probability);
    // Python's `exp // -4` (a floor division), in integers.
    let extra = -i64::from((exponent + 3).div_euclid(4));
    let digits = (precision as i64 + extra).clamp(1, MAX_PRECISION as i64) as u32;

    // Map (0, 1) onto [1, 2) so the 52 mantissa bits hold the rejection fraction,
    // then add half a unit of the last kept digit so truncation rounds.
    let rejection = 2.0 - probability + ldexp_half(digits);
    let mantissa = if rejection >= 2.0 { (1u64 << 52) - 1 } else { rejection.to_bits() & ((1u64 << 52) - 1) };
    let drop_bits = 4 * (13 - digits);
    let kept = (mantissa >> drop_bits) << drop_bits;
    // 13 mantissa hex digits become the top 13 of 14 threshold digits.
    let threshold = kept << 4;
    threshold.min(RANDOMNESS_MASK)
}

/// 0.5 * 2^(-4 * digits), i.e. half of one unit in the last kept hex digit.
fn ldexp_half(digits: u32) -> f64 {
    f64::from_bits(((1023 - 1 - 4 * digits as i64) as u64) << 52)
}

/// Split a positive finite float into mantissa in [0.5, 1) and a power-of-two exponent.
fn frexp(value: f64) -> (f64, i32) {
    let bits = value.to_bits();
    let raw_exponent = ((bits >> 52) & 0x7ff) as i32;
    if raw_exponent == 0 {
        // Subnormal: scale into the normal range first.
        let (mantissa, exponent) = frexp(value * f64::from_bits(0x4350_0000_0000_0000)); // 2^54
        return (mantissa, exponent - 54);
    }
    let exponent = raw_exponent - 1022;
    let mantissa = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (mantissa, exponent)
}

/// Probability that a span is kept under `threshold`.
pub fn probability_for_threshold(threshold: u64) -> f64 {
    if threshold >= NEVER {
        return 0.0;
    }
    (NEVER - threshold) as f64 / NEVER as f64
}

/// How many spans a span kept under `threshold` stands for (1 / probability).
pub fn adjusted_count(threshold: u64) -> f64 {
    if threshold >= NEVER {
        return 0.0;
    }
    NEVER as f64 / (NEVER - threshold) as f64
}

/// Encode a threshold as the `th` value: 14 hex digits with trailing zeros
/// removed, `0` for a threshold of zero (100%). `threshold` must be below 2^56.
pub fn encode_th(threshold: u64) -> String {
    debug_assert!(threshold < NEVER);
    if threshold == 0 {
        return "0".to_owned();
    }
    let full = format!("{:014x}", threshold & RANDOMNESS_MASK);
    full.trim_end_matches('0').to_owned()
}

/// Decode a `th` value: 1 to 14 lowercase hex digits, implicitly padded with
/// trailing zeros. Anything else (upper case included) is invalid: `None`.
pub fn decode_th(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > HEX_DIGITS {
        return None;
    }
    let value = parse_hex(text)?;
    Some(value << (4 * (HEX_DIGITS - text.len())))
}

/// Decode an `rv` value: exactly 14 lowercase hex digits.
pub fn decode_rv(text: &str) -> Option<u64> {
    if text.len() != HEX_DIGITS {
        return None;
    }
    parse_hex(text)
}

/// Encode an `rv` value: 14 lowercase hex digits.
pub fn encode_rv(randomness: u64) -> String {
    format!("{:014x}", randomness & RANDOMNESS_MASK)
}

fn parse_hex(text: &str) -> Option<u64> {
    let mut value = 0u64;
    for byte in text.bytes() {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u64::from(digit);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn th(p: f64, precision: u32) -> String {
        encode_th(threshold_for_probability(p, precision))
    }

    #[test]
    fn spec_table_values_at_precisions_3_4_5() {
        // Rows of the spec's 1-in-N table.
        let rows: &[(f64, [&str; 3])] = &[
            (1.0, ["0", "0", "0"]),
            (0.5, ["8", "8", "8"]),
            (1.0 / 3.0, ["aab", "aaab", "aaaab"]),
            (0.25, ["c", "c", "c"]),
            (0.2, ["ccd", "cccd", "ccccd"]),
            (0.125, ["e", "e", "e"]),
            (0.1, ["e66", "e666", "e6666"]),
            (0.0625, ["f", "f", "f"]),
            (0.01, ["fd71", "fd70a", "fd70a4"]),
            (0.001, ["ffbe7", "ffbe77", "ffbe76d"]),
            (0.0001, ["fff972", "fff9724", "fff97247"]),
            (0.00001, ["ffff584", "ffff583a", "ffff583a5"]),
            (0.000001, ["ffffef4", "ffffef39", "ffffef391"]),
        ];
        for (p, expected) in rows {
            for (i, precision) in [3, 4, 5].into_iter().enumerate() {
                assert_eq!(th(*p, precision), expected[i], "p={p} precision={precision}");
            }
        }
    }

    #[test]
    fn default_precision_matches_design_examples() {
        assert_eq!(th(1.0, DEFAULT_PRECISION), "0");
        assert_eq!(th(0.25, DEFAULT_PRECISION), "c");
        assert_eq!(th(0.01, DEFAULT_PRECISION), "fd70a4");
    }

    #[test]
    fn zero_probability_never_keeps() {
        assert_eq!(threshold_for_probability(0.0, 5), NEVER);
        assert_eq!(probability_for_threshold(NEVER), 0.0);
        assert_eq!(adjusted_count(NEVER), 0.0);
    }

    #[test]
    fn tiny_probability_still_keeps_the_top_value() {
        let t = threshold_for_probability(1e-300, 5);
        assert!(t < NEVER);
        assert!(RANDOMNESS_MASK >= t);
    }

    #[test]
    fn th_round_trips_for_every_precision() {
        for precision in 1..=MAX_PRECISION {
            for i in 1..1000 {
                let p = i as f64 / 1000.0;
                let t = threshold_for_probability(p, precision);
                assert_eq!(decode_th(&encode_th(t)), Some(t), "p={p} precision={precision}");
            }
        }
    }

    #[test]
    fn thresholds_are_monotone_in_probability() {
        let mut previous = NEVER;
        for i in 0..=10_000 {
            let t = threshold_for_probability(i as f64 / 10_000.0, DEFAULT_PRECISION);
            assert!(t <= previous, "threshold rose at {i}");
            previous = t;
        }
    }

    #[test]
    fn rounded_probability_is_close() {
        for i in 1..=1000 {
            let p = i as f64 / 1000.0;
            let actual = probability_for_threshold(threshold_for_probability(p, DEFAULT_PRECISION));
            assert!((actual - p).abs() / p < 1e-4, "p={p} actual={actual}");
        }
    }

    #[test]
    fn decode_rejects_malformed_values() {
        for bad in ["", "g", "0x1", "123456789abcdef", " 8", "8 "] {
            assert_eq!(decode_th(bad), None, "{bad:?}");
        }
        assert_eq!(decode_th("C"), None, "th is lowercase hex only");
        assert_eq!(decode_th("8"), Some(1 << 55));
        assert_eq!(decode_th("ffffffffffffff"), Some(RANDOMNESS_MASK));
        assert_eq!(decode_rv("0123456789abcd"), Some(0x0123456789abcd));
        for bad in ["", "123", "0123456789abcde", "0123456789abc-"] {
            assert_eq!(decode_rv(bad), None, "{bad:?}");
        }
        assert_eq!(decode_rv("D29D6A7215CED0"), None, "rv is lowercase hex only");
        assert_eq!(encode_rv(0xd29d6a7215ced0), "d29d6a7215ced0");
    }

    #[test]
    fn adjusted_count_is_inverse_probability() {
        assert_eq!(adjusted_count(0), 1.0);
        assert_eq!(adjusted_count(decode_th("c").unwrap()), 4.0);
        assert_eq!(adjusted_count(decode_th("8").unwrap()), 2.0);
    }

    #[test]
    fn frexp_matches_definition() {
        for value in [1e-310, 1e-20, 0.01, 0.25, 0.5, 0.75, 0.999] {
            let (m, e) = frexp(value);
            assert!((0.5..1.0).contains(&m), "{value}");
            assert_eq!(m * 2f64.powi(e + 200) * 2f64.powi(-200), value);
        }
    }
}
