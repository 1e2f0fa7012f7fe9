//! Decimals on the wire as strings ("0.0000166667"), so JSON clients never route money
//! through a binary float.
//!
//! Whole numbers are accepted too (`400000`), being exact in every JSON parser; fractional
//! JSON numbers are refused because by the time serde sees them they are already `f64`.

use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `Decimal` that serializes as its exact string form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecimalString(pub(crate) Decimal);

impl Serialize for DecimalString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DecimalString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DecimalVisitor)
            .map(DecimalString)
    }
}

struct DecimalVisitor;

impl Visitor<'_> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal as a string, like \"0.0000166667\", or a whole number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        parse_decimal(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        Err(E::custom(format_args!(
            "the number {v} would be inexact: write it as a string, like \"{v}\""
        )))
    }
}

/// Parses a plain ("0.20", "-3", "+1") or scientific ("1.66667e-5") decimal exactly;
/// `None` when the text is not a number or needs more than 28 significant digits.
pub(crate) fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    let text = match text.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => text,
    };
    if text.is_empty() {
        return None;
    }
    if text.contains(['e', 'E']) {
        // from_scientific rejects what it cannot hold exactly rather than rounding.
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str_exact(text).ok()
    }
}

/// `#[serde(with = "...")]` form for `Option<Decimal>` fields.
pub(crate) mod option {
    use super::DecimalString;
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.map(DecimalString).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Ok(Option::<DecimalString>::deserialize(deserializer)?.map(|d| d.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_scientific_text_exactly() {
        assert_eq!(parse_decimal("0.20"), Some(Decimal::new(20, 2)));
        assert_eq!(parse_decimal("+0.2"), Some(Decimal::new(2, 1)));
        assert_eq!(parse_decimal("1.66667e-5"), Some(Decimal::new(166_667, 10)));
        assert_eq!(parse_decimal("4E5"), Some(Decimal::from(400_000)));
        assert_eq!(parse_decimal("-1"), Some(Decimal::from(-1)));
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("+-1"), None);
        assert_eq!(parse_decimal("nan"), None);
        assert_eq!(parse_decimal("inf"), None);
    }

    #[test]
    fn json_takes_strings_and_whole_numbers_but_not_floats() {
        let parsed: DecimalString = serde_json::from_str("\"0.0000166667\"").unwrap();
        assert_eq!(parsed.0, Decimal::new(166_667, 10));
        let parsed: DecimalString = serde_json::from_str("400000").unwrap();
        assert_eq!(parsed.0, Decimal::from(400_000));
        let err = serde_json::from_str::<DecimalString>("0.2").unwrap_err();
        assert!(err.to_string().contains("write it as a string"), "{err}");
        assert_eq!(
            serde_json::to_string(&DecimalString(Decimal::new(20, 2))).unwrap(),
            "\"0.20\""
        );
    }
}
