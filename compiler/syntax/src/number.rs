//! Validation and conversion of KDL numbers.

use crate::ast::{Number, NumberForm};

/// Checks that `text` (a run of identifier characters that starts like a
/// number) is a valid KDL 2.0 number. Returns its form, or a reason.
pub(crate) fn classify(text: &str) -> Result<NumberForm, &'static str> {
    let bytes = text.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let rest = &bytes[i..];
    let radix = match rest {
        [b'0', b'x', ..] => 16,
        [b'0', b'o', ..] => 8,
        [b'0', b'b', ..] => 2,
        _ => 10,
    };
    if radix != 10 {
        i += 2;
        let digits = &bytes[i..];
        let Some(first) = digits.first() else {
            return Err("a radix prefix needs at least one digit");
        };
        if !(*first as char).is_digit(radix) {
            return Err("the first digit after a radix prefix must be a digit, not `_`");
        }
        if digits.iter().all(|&b| b == b'_' || (b as char).is_digit(radix)) {
            return Ok(NumberForm::Integer { radix });
        }
        return Err(match radix {
            16 => "a hexadecimal number may only contain 0-9, a-f, A-F and `_`",
            8 => "an octal number may only contain 0-7 and `_`",
            _ => "a binary number may only contain 0, 1 and `_`",
        });
    }
    let digits = |i: &mut usize| -> bool {
        if !bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        while bytes.get(*i).is_some_and(|b| b.is_ascii_digit() || *b == b'_') {
            *i += 1;
        }
        true
    };
    if !digits(&mut i) {
        return Err("a number must start with a digit");
    }
    let mut decimal = false;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return Err("a decimal point must be followed by a digit");
        }
        decimal = true;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return Err("an exponent must have digits");
        }
        decimal = true;
    }
    if i != bytes.len() {
        return Err("unexpected characters in a number");
    }
    Ok(if decimal { NumberForm::Decimal } else { NumberForm::Integer { radix: 10 } })
}

impl Number<'_> {
    fn sign_and_digits(&self) -> (bool, String) {
        let negative = self.raw.starts_with('-');
        let unsigned = self.raw.trim_start_matches(['+', '-']);
        let body = match self.form {
            NumberForm::Integer { radix } if radix != 10 => &unsigned[2..],
            _ => unsigned,
        };
        (negative, body.chars().filter(|&c| c != '_').collect())
    }

    /// The value as an `i64`, if it is an integer that fits.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        let NumberForm::Integer { radix } = self.form else {
            return None;
        };
        let (negative, digits) = self.sign_and_digits();
        let magnitude = i128::from_str_radix(&digits, radix).ok()?;
        i64::try_from(if negative { -magnitude } else { magnitude }).ok()
    }

    /// The value as an `f64` (integers convert, possibly losing precision).
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match self.form {
            NumberForm::Inf => Some(f64::INFINITY),
            NumberForm::NegInf => Some(f64::NEG_INFINITY),
            NumberForm::NaN => Some(f64::NAN),
            NumberForm::Decimal | NumberForm::Integer { radix: 10 } => {
                let (negative, digits) = self.sign_and_digits();
                let value: f64 = digits.parse().ok()?;
                Some(if negative { -value } else { value })
            }
            NumberForm::Integer { .. } => self.as_i64().map(|v| v as f64),
        }
    }

    /// The number in the KDL test suite's normal form: decimal integers of
    /// any size, decimals with an upper-case exponent and explicit sign.
    #[must_use]
    pub fn normal_form(&self) -> String {
        let (negative, digits) = self.sign_and_digits();
        let sign = if negative { "-" } else { "" };
        match self.form {
            NumberForm::Inf => "#inf".into(),
            NumberForm::NegInf => "#-inf".into(),
            NumberForm::NaN => "#nan".into(),
            // Base conversion is quadratic in the digits: a 120,000-digit hex
            // literal took seconds. Past `EXACT_DIGITS` the number keeps its
            // radix in a canonical spelling (lower case, no `_`, no leading
            // zeros), which still tells equal from unequal for the literals a
            // formatter keeps as written.
            NumberForm::Integer { radix } if radix != 10 && digits.len() > EXACT_DIGITS => {
                let stripped = strip_leading_zeros(&digits).to_ascii_lowercase();
                let prefix = match radix {
                    16 => "0x",
                    8 => "0o",
                    _ => "0b",
                };
                if stripped == "0" { stripped } else { format!("{sign}{prefix}{stripped}") }
            }
            NumberForm::Integer { radix } => {
                let decimal = to_decimal(&digits, radix);
                if decimal == "0" { decimal } else { format!("{sign}{decimal}") }
            }
            NumberForm::Decimal => {
                let (mantissa, exponent) = match digits.find(['e', 'E']) {
                    Some(at) => (&digits[..at], Some(&digits[at + 1..])),
                    None => (digits.as_str(), None),
                };
                let (int_part, fraction) = match mantissa.split_once('.') {
                    Some((i, f)) => (i, Some(f)),
                    None => (mantissa, None),
                };
                let int_part = strip_leading_zeros(int_part);
                let mut out = format!("{sign}{int_part}");
                if let Some(fraction) = fraction {
                    out.push('.');
                    out.push_str(fraction);
                }
                if let Some(exponent) = exponent {
                    let (exp_sign, exp_digits) = match exponent.as_bytes().first() {
                        Some(b'-') => ("-", &exponent[1..]),
                        Some(b'+') => ("+", &exponent[1..]),
                        _ => ("+", exponent),
                    };
                    out.push('E');
                    out.push_str(exp_sign);
                    out.push_str(strip_leading_zeros(exp_digits));
                }
                out
            }
        }
    }
}

/// Non-decimal integers up to this many digits are converted to decimal
/// exactly (the KDL suite's longest is 22 digits).
const EXACT_DIGITS: usize = 512;

fn strip_leading_zeros(digits: &str) -> &str {
    let stripped = digits.trim_start_matches('0');
    if stripped.is_empty() { "0" } else { stripped }
}

/// Converts a digit string in `radix` to decimal, of any length.
fn to_decimal(digits: &str, radix: u32) -> String {
    if radix == 10 {
        return strip_leading_zeros(digits).to_owned();
    }
    // Little-endian limbs in base 10^9.
    let mut limbs: Vec<u64> = vec![0];
    for c in digits.chars() {
        let mut carry = u64::from(c.to_digit(radix).unwrap_or(0));
        for limb in &mut limbs {
            let value = *limb * u64::from(radix) + carry;
            *limb = value % 1_000_000_000;
            carry = value / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
    }
    let mut out = limbs.last().map(u64::to_string).unwrap_or_default();
    for limb in limbs.iter().rev().skip(1) {
        out.push_str(&format!("{limb:09}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(raw: &str) -> String {
        Number { raw, form: classify(raw).unwrap() }.normal_form()
    }

    #[test]
    fn normal_forms_match_the_suite() {
        assert_eq!(normal("0xABCDEF0123456789abcdef"), "207698809136909011942886895");
        assert_eq!(normal("1e10"), "1E+10");
        assert_eq!(normal("1.0e-10_0"), "1.0E-100");
        assert_eq!(normal("+10"), "10");
        assert_eq!(normal("011"), "11");
        assert_eq!(normal("-1.0"), "-1.0");
        // Long literals keep their radix, canonically, instead of a quadratic conversion.
        let long = format!("0x00{}", "aB_".repeat(400));
        assert_eq!(normal(&long), format!("0x{}", "ab".repeat(400)));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["1.", "1.e5", "0x", "0x_1", "1._0", "1.0.0", "1e", "0b2", "1abc"] {
            assert!(classify(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn converts() {
        let n = |raw| Number { raw, form: classify(raw).unwrap() };
        assert_eq!(n("0x10").as_i64(), Some(16));
        assert_eq!(n("-1_000").as_i64(), Some(-1000));
        assert_eq!(n("2.5").as_f64(), Some(2.5));
    }
}
