//! The price list and free tier, and the TOML file an operator edits to change them.
//!
//! Floats in the file are read from their text, not from the `f64` a TOML parser would
//! make: the document is parsed with `toml::de::DeTable`, whose number values keep the
//! characters written, so `gb_second = 0.0000166667` is the decimal 0.0000166667 and
//! `0.20` stays 0.20. Strings are still preferred because every TOML tool keeps them
//! verbatim when it rewrites the file.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

use crate::serde_decimal::{DecimalString, parse_decimal};

/// The keys of the price file, in the order `to_toml` writes them.
pub const PRICE_KEYS: [&str; 4] = [
    "requests_per_million",
    "gb_second",
    "free_requests_per_month",
    "free_gb_seconds_per_month",
];

/// Largest accepted unit price, in USD (per million requests, per GB-second). A million
/// times the public price is no real price list, and the bound keeps every product of a
/// month's usage and a price far inside `Decimal`'s range, so billing math cannot overflow.
pub const MAX_UNIT_PRICE_USD: u64 = 1_000_000;

/// Largest accepted monthly free GB-seconds (10^15, a thousand times what a `u64` of
/// MB-milliseconds can reach in a month); a larger allowance means "free", which this is.
pub const MAX_FREE_GB_SECONDS: u64 = 1_000_000_000_000_000;

/// What the platform charges and gives away each month. Defaults are AWS Lambda's public
/// x86 prices, so a bill reads as "what this would cost on Lambda".
///
/// On the wire (JSON) the decimal fields are strings ("0.0000166667") and the field names
/// are the price file's keys; omitted fields keep their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PricesWire", into = "PricesWire")]
pub struct Prices {
    /// USD per 1,000,000 requests.
    pub requests_per_million: Decimal,
    /// USD per GB-second.
    pub gb_second: Decimal,
    /// Requests free each calendar month (UTC), for the whole installation.
    pub free_requests_per_month: u64,
    /// GB-seconds free each calendar month (UTC), for the whole installation.
    pub free_gb_seconds_per_month: Decimal,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            requests_per_million: Decimal::new(20, 2),
            gb_second: Decimal::new(166_667, 10),
            free_requests_per_month: 1_000_000,
            free_gb_seconds_per_month: Decimal::from(400_000),
        }
    }
}

/// A price file or price object that cannot be used. Each message names the key and says
/// what it accepts.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PriceError {
    /// The text is not TOML.
    #[error("the price file is not valid TOML: {0}")]
    Syntax(String),
    /// A key that is not one of [`PRICE_KEYS`].
    #[error(
        "unknown key `{key}` in the price file{}; the keys are requests_per_million, gb_second, free_requests_per_month and free_gb_seconds_per_month",
        did_you_mean(.suggestion)
    )]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The known key it most likely meant.
        suggestion: Option<&'static str>,
    },
    /// A value of the wrong TOML type (a boolean, date, array or table).
    #[error("`{key}` is {found}; it must be {}", expected(.key))]
    WrongType {
        /// The key.
        key: &'static str,
        /// The TOML type found, with its article ("a boolean").
        found: &'static str,
    },
    /// A string or float that is not a finite decimal number.
    #[error("`{key}` = {value} is not a number; it must be {}", expected(.key))]
    NotANumber {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
    },
    /// A negative amount.
    #[error("`{key}` = {value} is negative; it must be {}", expected(.key))]
    Negative {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
    },
    /// A fraction where only whole numbers make sense.
    #[error("`{key}` = {value} is not a whole number; it must be {}", expected(.key))]
    NotWhole {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
    },
    /// An amount past the accepted maximum.
    #[error("`{key}` = {value} is too large; it must be at most {max}")]
    TooLarge {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// The largest accepted value.
        max: String,
    },
}

fn did_you_mean(suggestion: &Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"))
}

fn expected(key: &str) -> &'static str {
    match key {
        "requests_per_million" => "an amount in USD per million requests, like \"0.20\"",
        "gb_second" => "an amount in USD per GB-second, like \"0.0000166667\"",
        "free_requests_per_month" => "a whole number of requests, like 1000000",
        _ => "a number of GB-seconds, like \"400000\"",
    }
}

impl Prices {
    /// Reads a price file: any of the four [`PRICE_KEYS`] at the top level (omitted ones
    /// keep their defaults), each a string ("0.0000166667", preferred) or a TOML number.
    pub fn from_toml(text: &str) -> Result<Prices, PriceError> {
        let document = DeTable::parse(text).map_err(|e| PriceError::Syntax(e.to_string()))?;
        let mut prices = Prices::default();
        for (key, value) in document.get_ref().iter() {
            let written = key.get_ref().as_ref();
            let Some(key) = PRICE_KEYS.iter().copied().find(|k| *k == written) else {
                return Err(PriceError::UnknownKey {
                    key: written.to_string(),
                    suggestion: suggest(written),
                });
            };
            let (amount, text) = toml_number(key, value.get_ref())?;
            match key {
                "requests_per_million" => prices.requests_per_million = amount,
                "gb_second" => prices.gb_second = amount,
                "free_requests_per_month" => {
                    prices.free_requests_per_month = whole(key, amount, &text)?;
                }
                _ => prices.free_gb_seconds_per_month = amount,
            }
            check_amount(key, amount, || text.clone())?;
        }
        Ok(prices)
    }

    /// The prices as a price file `from_toml` reads back to an equal value, decimals as
    /// strings so no digit is lost.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# USD per 1,000,000 requests.");
        let _ = writeln!(
            out,
            "requests_per_million = \"{}\"",
            self.requests_per_million
        );
        let _ = writeln!(out, "# USD per GB-second (1 GB of memory for 1 second).");
        let _ = writeln!(out, "gb_second = \"{}\"", self.gb_second);
        let _ = writeln!(
            out,
            "# Free each calendar month (UTC), shared by the whole installation."
        );
        let _ = writeln!(
            out,
            "free_requests_per_month = {}",
            self.free_requests_per_month
        );
        let _ = writeln!(
            out,
            "free_gb_seconds_per_month = \"{}\"",
            self.free_gb_seconds_per_month
        );
        out
    }

    /// Checks what `from_toml` and deserialization check, for prices built in code: no
    /// negative amounts, unit prices at most [`MAX_UNIT_PRICE_USD`], free GB-seconds at
    /// most [`MAX_FREE_GB_SECONDS`].
    pub fn validate(&self) -> Result<(), PriceError> {
        check_amount(PRICE_KEYS[0], self.requests_per_million, || {
            self.requests_per_million.to_string()
        })?;
        check_amount(PRICE_KEYS[1], self.gb_second, || self.gb_second.to_string())?;
        check_amount(PRICE_KEYS[3], self.free_gb_seconds_per_month, || {
            self.free_gb_seconds_per_month.to_string()
        })
    }
}

/// The number a TOML value holds, read from its text, with that text for messages.
fn toml_number(key: &'static str, value: &DeValue<'_>) -> Result<(Decimal, String), PriceError> {
    let not_a_number = |value: String| PriceError::NotANumber { key, value };
    match value {
        DeValue::String(s) => {
            let shown = format!("{:?}", s.as_ref());
            parse_decimal(s)
                .map(|d| (d, shown.clone()))
                .ok_or_else(|| not_a_number(shown))
        }
        DeValue::Integer(i) => {
            let shown = i.to_string();
            match Decimal::from_str_radix(i.as_str(), i.radix()) {
                Ok(d) => Ok((d, shown)),
                Err(_) => Err(not_a_number(shown)),
            }
        }
        // The float's characters as written (underscores removed), never its f64.
        DeValue::Float(f) => {
            let shown = f.as_str().to_string();
            parse_decimal(f.as_str())
                .map(|d| (d, shown.clone()))
                .ok_or_else(|| not_a_number(shown))
        }
        DeValue::Boolean(_) => Err(PriceError::WrongType {
            key,
            found: "a boolean",
        }),
        DeValue::Datetime(_) => Err(PriceError::WrongType {
            key,
            found: "a date",
        }),
        DeValue::Array(_) => Err(PriceError::WrongType {
            key,
            found: "an array",
        }),
        DeValue::Table(_) => Err(PriceError::WrongType {
            key,
            found: "a table",
        }),
    }
}

fn whole(key: &'static str, amount: Decimal, text: &str) -> Result<u64, PriceError> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(PriceError::Negative {
            key,
            value: text.to_string(),
        });
    }
    if !amount.fract().is_zero() {
        return Err(PriceError::NotWhole {
            key,
            value: text.to_string(),
        });
    }
    amount.to_u64().ok_or_else(|| PriceError::TooLarge {
        key,
        value: text.to_string(),
        max: u64::MAX.to_string(),
    })
}

fn check_amount(
    key: &'static str,
    amount: Decimal,
    text: impl Fn() -> String,
) -> Result<(), PriceError> {
    if amount < Decimal::ZERO {
        return Err(PriceError::Negative { key, value: text() });
    }
    let max = match key {
        "requests_per_million" | "gb_second" => MAX_UNIT_PRICE_USD,
        "free_gb_seconds_per_month" => MAX_FREE_GB_SECONDS,
        _ => return Ok(()),
    };
    if amount > Decimal::from(max) {
        return Err(PriceError::TooLarge {
            key,
            value: text(),
            max: max.to_string(),
        });
    }
    Ok(())
}

/// The known key an unknown one most likely meant: a small edit away, or a piece of it.
fn suggest(written: &str) -> Option<&'static str> {
    let written_lower = written.to_ascii_lowercase().replace('-', "_");
    PRICE_KEYS
        .iter()
        .copied()
        .map(|known| (edit_distance(&written_lower, known), known))
        .filter(|(distance, known)| {
            *distance <= (known.len() / 3).max(2)
                || (written_lower.len() >= 4 && known.contains(written_lower.as_str()))
                || written_lower.contains(known)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance (insertions, deletions and substitutions all cost one).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// `Prices` as JSON carries it: decimals as strings, every field optional on input.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricesWire {
    #[serde(default)]
    requests_per_million: Option<DecimalString>,
    #[serde(default)]
    gb_second: Option<DecimalString>,
    #[serde(default)]
    free_requests_per_month: Option<u64>,
    #[serde(default)]
    free_gb_seconds_per_month: Option<DecimalString>,
}

impl From<Prices> for PricesWire {
    fn from(p: Prices) -> Self {
        PricesWire {
            requests_per_million: Some(DecimalString(p.requests_per_million)),
            gb_second: Some(DecimalString(p.gb_second)),
            free_requests_per_month: Some(p.free_requests_per_month),
            free_gb_seconds_per_month: Some(DecimalString(p.free_gb_seconds_per_month)),
        }
    }
}

impl TryFrom<PricesWire> for Prices {
    type Error = PriceError;

    fn try_from(wire: PricesWire) -> Result<Self, PriceError> {
        let defaults = Prices::default();
        let prices = Prices {
            requests_per_million: wire
                .requests_per_million
                .map_or(defaults.requests_per_million, |d| d.0),
            gb_second: wire.gb_second.map_or(defaults.gb_second, |d| d.0),
            free_requests_per_month: wire
                .free_requests_per_month
                .unwrap_or(defaults.free_requests_per_month),
            free_gb_seconds_per_month: wire
                .free_gb_seconds_per_month
                .map_or(defaults.free_gb_seconds_per_month, |d| d.0),
        };
        prices.validate()?;
        Ok(prices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn defaults_are_lambda_x86_prices() {
        let p = Prices::default();
        assert_eq!(p.requests_per_million.to_string(), "0.20");
        assert_eq!(p.gb_second.to_string(), "0.0000166667");
        assert_eq!(p.free_requests_per_month, 1_000_000);
        assert_eq!(p.free_gb_seconds_per_month.to_string(), "400000");
        assert_eq!(Prices::from_toml("").unwrap(), p);
        assert_eq!(Prices::from_toml("# nothing set\n").unwrap(), p);
    }

    #[test]
    fn one_key_overrides_its_default_only() {
        let p = Prices::from_toml("gb_second = \"0.0000133334\"\n").unwrap();
        assert_eq!(p.gb_second, d("0.0000133334"));
        assert_eq!(p.requests_per_million, d("0.20"));
        assert_eq!(p.free_requests_per_month, 1_000_000);
        let p = Prices::from_toml("free_requests_per_month = 0\nfree_gb_seconds_per_month = 0")
            .unwrap();
        assert_eq!(p.free_requests_per_month, 0);
        assert_eq!(p.free_gb_seconds_per_month, Decimal::ZERO);
    }

    #[test]
    fn floats_are_read_from_their_text() {
        // As f64, 0.2 is 0.200000000000000011102230246251565404236316680908203125; the
        // parsed decimal must be exactly two tenths, keeping the written scale.
        let p = Prices::from_toml("requests_per_million = 0.20").unwrap();
        assert_eq!(p.requests_per_million, d("0.2"));
        assert_eq!(p.requests_per_million.to_string(), "0.20");
        let p = Prices::from_toml("requests_per_million = \"0.2\"").unwrap();
        assert_eq!(p.requests_per_million.to_string(), "0.2");
        let p = Prices::from_toml("gb_second = 0.0000166667").unwrap();
        assert_eq!(p.gb_second.to_string(), "0.0000166667");
        let p = Prices::from_toml("gb_second = 1.66667e-5").unwrap();
        assert_eq!(p.gb_second, d("0.0000166667"));
        let p = Prices::from_toml("free_gb_seconds_per_month = 400_000.5").unwrap();
        assert_eq!(p.free_gb_seconds_per_month, d("400000.5"));
        let p =
            Prices::from_toml("free_requests_per_month = 2e6\nrequests_per_million = 1").unwrap();
        assert_eq!(p.free_requests_per_month, 2_000_000);
        assert_eq!(p.requests_per_million, Decimal::ONE);
        let p = Prices::from_toml("free_requests_per_month = 0x10").unwrap();
        assert_eq!(p.free_requests_per_month, 16);
    }

    #[test]
    fn unknown_keys_suggest_the_close_one() {
        let err = Prices::from_toml("gb_seconds = \"0.1\"").unwrap_err();
        assert_eq!(
            err,
            PriceError::UnknownKey {
                key: "gb_seconds".into(),
                suggestion: Some("gb_second")
            }
        );
        assert_eq!(
            err.to_string(),
            "unknown key `gb_seconds` in the price file (did you mean `gb_second`?); the keys \
             are requests_per_million, gb_second, free_requests_per_month and \
             free_gb_seconds_per_month"
        );
        let err = Prices::from_toml("free_requests = 5").unwrap_err();
        assert!(
            err.to_string()
                .contains("did you mean `free_requests_per_month`"),
            "{err}"
        );
        let err = Prices::from_toml("requests-per-million = 5").unwrap_err();
        assert!(
            err.to_string()
                .contains("did you mean `requests_per_million`"),
            "{err}"
        );
        let err = Prices::from_toml("currency = \"EUR\"").unwrap_err();
        assert_eq!(
            err,
            PriceError::UnknownKey {
                key: "currency".into(),
                suggestion: None
            }
        );
        // A section header is a key too, and not one of ours.
        let err = Prices::from_toml("[prices]\ngb_second = \"1\"").unwrap_err();
        assert!(matches!(err, PriceError::UnknownKey { .. }), "{err}");
    }

    #[test]
    fn bad_values_name_the_key_and_what_is_valid() {
        let err = Prices::from_toml("gb_second = -0.1").unwrap_err();
        assert_eq!(
            err,
            PriceError::Negative {
                key: "gb_second",
                value: "-0.1".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "`gb_second` = -0.1 is negative; it must be an amount in USD per GB-second, like \
             \"0.0000166667\""
        );
        let err = Prices::from_toml("requests_per_million = \"-1\"").unwrap_err();
        assert_eq!(
            err,
            PriceError::Negative {
                key: "requests_per_million",
                value: "\"-1\"".into()
            }
        );
        let err = Prices::from_toml("free_requests_per_month = -5").unwrap_err();
        assert_eq!(
            err,
            PriceError::Negative {
                key: "free_requests_per_month",
                value: "-5".into()
            }
        );
        let err = Prices::from_toml("free_requests_per_month = 1.5").unwrap_err();
        assert_eq!(
            err,
            PriceError::NotWhole {
                key: "free_requests_per_month",
                value: "1.5".into()
            }
        );
        assert!(
            err.to_string()
                .ends_with("a whole number of requests, like 1000000")
        );
        let err = Prices::from_toml("gb_second = \"cheap\"").unwrap_err();
        assert_eq!(
            err,
            PriceError::NotANumber {
                key: "gb_second",
                value: "\"cheap\"".into()
            }
        );
        let err = Prices::from_toml("gb_second = nan").unwrap_err();
        assert_eq!(
            err,
            PriceError::NotANumber {
                key: "gb_second",
                value: "nan".into()
            }
        );
        let err = Prices::from_toml("gb_second = true").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`gb_second` is a boolean; it must be an amount in USD per GB-second, like \
             \"0.0000166667\""
        );
        let err = Prices::from_toml("gb_second = \"2000000\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`gb_second` = \"2000000\" is too large; it must be at most 1000000"
        );
        let err = Prices::from_toml("gb_second = ").unwrap_err();
        assert!(matches!(err, PriceError::Syntax(_)), "{err}");
    }

    #[test]
    fn toml_round_trips() {
        let p = Prices {
            requests_per_million: d("0.20"),
            gb_second: d("0.0000133334"),
            free_requests_per_month: 0,
            free_gb_seconds_per_month: d("12.5"),
        };
        let text = p.to_toml();
        assert!(text.contains("requests_per_million = \"0.20\"\n"), "{text}");
        let back = Prices::from_toml(&text).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.requests_per_million.to_string(), "0.20");
        assert_eq!(
            Prices::from_toml(&Prices::default().to_toml()).unwrap(),
            Prices::default()
        );
    }

    #[test]
    fn json_uses_strings_for_decimals() {
        let json = serde_json::to_string(&Prices::default()).unwrap();
        assert_eq!(
            json,
            r#"{"requests_per_million":"0.20","gb_second":"0.0000166667","free_requests_per_month":1000000,"free_gb_seconds_per_month":"400000"}"#
        );
        let back: Prices = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Prices::default());
        let p: Prices = serde_json::from_str(r#"{"gb_second":"0.00001"}"#).unwrap();
        assert_eq!(p.gb_second, d("0.00001"));
        assert_eq!(p.requests_per_million, d("0.20"));
        let err = serde_json::from_str::<Prices>(r#"{"gb_second":"-1"}"#).unwrap_err();
        assert!(
            err.to_string().contains("`gb_second` = -1 is negative"),
            "{err}"
        );
        let err = serde_json::from_str::<Prices>(r#"{"gb_secnd":"1"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
