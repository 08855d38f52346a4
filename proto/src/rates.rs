//! Exact exchange-rate arithmetic. A rate is a decimal (mantissa x 10^exponent) taken
//! from its shortest text form, so 0.9 is exactly 9/10; a conversion is one integer
//! fraction in u128, floored. No floating point touches an amount.

use crate::limits::RATE_DIGITS_MAX;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RateError {
    #[error("no exchange rate for {0}")]
    MissingRate(String),
    #[error("rate {0:?} is not a positive decimal with at most 18 significant digits")]
    InvalidRate(String),
    #[error("converted amount does not fit in 64 bits")]
    Overflow,
}

/// A positive decimal rate: `mantissa x 10^exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    mantissa: u128,
    exponent: i32,
}

impl Rate {
    pub const ONE: Rate = Rate {
        mantissa: 1,
        exponent: 0,
    };

    /// Parses `12`, `0.9`, `1.5e-3`, `2E6`.
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        let invalid = || RateError::InvalidRate(text.to_owned());
        let (number, exponent_text) = match text.find(['e', 'E']) {
            Some(index) => (&text[..index], Some(&text[index + 1..])),
            None => (text, None),
        };
        let mut exponent: i32 = match exponent_text {
            Some(e) => e.parse().map_err(|_| invalid())?,
            None => 0,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let digits: String = whole.chars().chain(fraction.chars()).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        exponent = exponent
            .checked_sub(fraction.len() as i32)
            .ok_or_else(invalid)?;
        let significant = digits.trim_start_matches('0');
        let significant_trimmed = significant.trim_end_matches('0');
        let trailing_zeros = (significant.len() - significant_trimmed.len()) as i32;
        exponent = exponent.checked_add(trailing_zeros).ok_or_else(invalid)?;
        if significant_trimmed.is_empty() || significant_trimmed.len() > RATE_DIGITS_MAX {
            return Err(invalid());
        }
        let mantissa = significant_trimmed.parse::<u128>().map_err(|_| invalid())?;
        if !(-60..=60).contains(&exponent) {
            return Err(invalid());
        }
        Ok(Rate { mantissa, exponent })
    }

    /// From a JSON number, through its shortest decimal form.
    pub fn from_f64(value: f64) -> Result<Rate, RateError> {
        if !value.is_finite() || value <= 0.0 {
            return Err(RateError::InvalidRate(value.to_string()));
        }
        Rate::parse(&format!("{value:e}"))
    }
}

/// A code and scale, as a conversion needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetRef<'a> {
    pub code: &'a str,
    pub scale: u8,
}

/// Rates relative to a base: `rates[CODE]` units of CODE buy one unit of base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTable {
    pub base: String,
    rates: HashMap<String, Rate>,
}

impl RateTable {
    pub fn new(base: &str) -> RateTable {
        let mut rates = HashMap::new();
        rates.insert(base.to_owned(), Rate::ONE);
        RateTable {
            base: base.to_owned(),
            rates,
        }
    }

    pub fn from_f64_map(
        base: &str,
        values: &BTreeMap<String, f64>,
    ) -> Result<RateTable, RateError> {
        let mut table = RateTable::new(base);
        for (code, value) in values {
            table.rates.insert(code.clone(), Rate::from_f64(*value)?);
        }
        Ok(table)
    }

    pub fn insert(&mut self, code: &str, rate: Rate) {
        self.rates.insert(code.to_owned(), rate);
    }

    fn rate(&self, code: &str) -> Result<Rate, RateError> {
        self.rates
            .get(code)
            .copied()
            .ok_or_else(|| RateError::MissingRate(code.to_owned()))
    }

    /// `floor(amount x rate[destination] / rate[source] x 10^(scale difference))`.
    pub fn convert(
        &self,
        amount: u64,
        source: AssetRef<'_>,
        destination: AssetRef<'_>,
    ) -> Result<u64, RateError> {
        let (numerator_rate, denominator_rate) = if source.code == destination.code {
            (Rate::ONE, Rate::ONE)
        } else {
            (self.rate(destination.code)?, self.rate(source.code)?)
        };
        let power = numerator_rate.exponent - denominator_rate.exponent
            + i32::from(destination.scale)
            - i32::from(source.scale);
        let numerator = u128::from(amount)
            .checked_mul(numerator_rate.mantissa)
            .ok_or(RateError::Overflow)?;
        let denominator = denominator_rate.mantissa;
        let result = if power >= 0 {
            // Any overflow here means the quotient is above 10^21 at least: too large.
            let scaled = checked_pow10(power as u32)
                .and_then(|p| numerator.checked_mul(p))
                .ok_or(RateError::Overflow)?;
            scaled / denominator
        } else {
            match checked_pow10(power.unsigned_abs()).and_then(|p| denominator.checked_mul(p)) {
                Some(scaled) => numerator / scaled,
                // The denominator outgrew u128 while the numerator fits: less than one unit.
                None => 0,
            }
        };
        u64::try_from(result).map_err(|_| RateError::Overflow)
    }
}

fn checked_pow10(power: u32) -> Option<u128> {
    10u128.checked_pow(power)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD2: AssetRef = AssetRef {
        code: "USD",
        scale: 2,
    };
    const EUR2: AssetRef = AssetRef {
        code: "EUR",
        scale: 2,
    };

    fn table() -> RateTable {
        let mut values = BTreeMap::new();
        values.insert("EUR".to_owned(), 0.9);
        values.insert("XRP".to_owned(), 2.5);
        values.insert("JPY".to_owned(), 151.37);
        RateTable::from_f64_map("USD", &values).expect("valid")
    }

    #[test]
    fn parses_decimals_exactly() {
        assert_eq!(
            Rate::parse("0.9"),
            Ok(Rate {
                mantissa: 9,
                exponent: -1
            })
        );
        assert_eq!(
            Rate::parse("1200"),
            Ok(Rate {
                mantissa: 12,
                exponent: 2
            })
        );
        assert_eq!(
            Rate::parse("1.5e-3"),
            Ok(Rate {
                mantissa: 15,
                exponent: -4
            })
        );
        assert_eq!(
            Rate::from_f64(0.1),
            Ok(Rate {
                mantissa: 1,
                exponent: -1
            })
        );
        assert!(Rate::parse("0").is_err());
        assert!(Rate::parse("-1").is_err());
        assert!(Rate::parse("abc").is_err());
        assert!(Rate::from_f64(f64::NAN).is_err());
        assert!(Rate::parse("10e2147483647").is_err());
        assert!(Rate::parse("1e-2147483648").is_err());
    }

    #[test]
    fn conversions() {
        let table = table();
        assert_eq!(table.convert(1000, USD2, EUR2), Ok(900));
        assert_eq!(table.convert(999, USD2, EUR2), Ok(899), "899.1 floors");
        assert_eq!(table.convert(900, EUR2, USD2), Ok(1000));
        assert_eq!(table.convert(1, USD2, EUR2), Ok(0));
        assert_eq!(
            table.convert(
                123,
                USD2,
                AssetRef {
                    code: "USD",
                    scale: 9
                }
            ),
            Ok(1_230_000_000)
        );
        assert_eq!(
            table.convert(
                1_999_999,
                AssetRef {
                    code: "XRP",
                    scale: 6
                },
                USD2
            ),
            Ok(79),
            "1.999999 XRP is 0.79 USD"
        );
        assert_eq!(
            table.convert(
                100,
                USD2,
                AssetRef {
                    code: "JPY",
                    scale: 0
                }
            ),
            Ok(151)
        );
        assert_eq!(
            table.convert(
                5,
                USD2,
                AssetRef {
                    code: "GBP",
                    scale: 2
                }
            ),
            Err(RateError::MissingRate("GBP".into()))
        );
        assert_eq!(
            table.convert(
                u64::MAX,
                USD2,
                AssetRef {
                    code: "USD",
                    scale: 4
                }
            ),
            Err(RateError::Overflow)
        );
        assert_eq!(table.convert(u64::MAX, USD2, USD2), Ok(u64::MAX));
        assert_eq!(
            table.convert(
                u64::MAX,
                AssetRef {
                    code: "USD",
                    scale: 255
                },
                USD2
            ),
            Ok(0)
        );
    }

    proptest::proptest! {
        #[test]
        fn monotonic_and_never_panics(a: u64, b: u64, scale_a in 0u8..=255, scale_b in 0u8..=255, rate in 1e-9f64..1e9) {
            let mut table = RateTable::new("USD");
            table.insert("EUR", Rate::from_f64(rate).expect("positive"));
            let source = AssetRef { code: "USD", scale: scale_a };
            let destination = AssetRef { code: "EUR", scale: scale_b };
            let (low, high) = (a.min(b), a.max(b));
            if let (Ok(x), Ok(y)) = (table.convert(low, source, destination), table.convert(high, source, destination)) {
                proptest::prop_assert!(x <= y);
            }
            proptest::prop_assert_eq!(table.convert(a, source, AssetRef { code: "USD", scale: scale_a }), Ok(a));
        }
    }
}
