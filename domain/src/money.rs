//! Exact money: `rust_decimal` amounts tagged with an ISO-4217 currency.
//!
//! Arithmetic never mixes currencies (it returns [`MoneyError::CurrencyMismatch`]) and never
//! rounds by itself: rounding happens only where a caller asks for it, with an explicit
//! [`RoundingMode`] and precision. Two precisions exist: the *charge precision* (decimal places
//! of a rated charge, e.g. 4, set by the catalogue) and the *invoice precision* (the currency's
//! minor units, e.g. 2 for EUR, 0 for JPY, 3 for KWD), see [`Money::round_to_minor`].

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Errors of money arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} vs {right}")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The result does not fit a decimal (28 significant digits).
    #[error("amount overflow")]
    Overflow,
    /// The text is not an ISO-4217 currency code known to Tollgate.
    #[error("unknown currency code {0:?}")]
    UnknownCurrency(String),
    /// The amount has more decimal places than the currency's minor units.
    #[error("amount {amount} has more decimals than {currency} minor units ({minor_units})")]
    NotMinorUnits {
        /// The offending amount.
        amount: Decimal,
        /// Its currency.
        currency: Currency,
        /// Decimal places allowed.
        minor_units: u32,
    },
}

impl MoneyError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::CurrencyMismatch { .. } => "money.currency_mismatch",
            MoneyError::Overflow => "money.overflow",
            MoneyError::UnknownCurrency(_) => "money.unknown_currency",
            MoneyError::NotMinorUnits { .. } => "money.not_minor_units",
        }
    }
}

/// ISO-4217 codes with their minor units (decimal places), active codes as of 2024.
#[rustfmt::skip]
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2),
    ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2),
    ("CLF", 4), ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2),
    ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2),
    ("ETB", 2), ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2),
    ("GIP", 2), ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2),
    ("HTG", 2), ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2),
    ("ISK", 0), ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2),
    ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2),
    ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2),
    ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2),
    ("MVR", 2), ("MWK", 2), ("MXN", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2),
    ("NIO", 2), ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2),
    ("PGK", 2), ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2),
    ("RSD", 2), ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2),
    ("SEK", 2), ("SGD", 2), ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2),
    ("STN", 2), ("SVC", 2), ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2),
    ("TND", 3), ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2),
    ("UGX", 0), ("USD", 2), ("UYU", 2), ("UYW", 4), ("UZS", 2), ("VES", 2), ("VND", 0),
    ("VUV", 0), ("WST", 2), ("XAF", 0), ("XCD", 2), ("XOF", 0), ("XPF", 0), ("YER", 2),
    ("ZAR", 2), ("ZMW", 2), ("ZWL", 2),
];

/// An ISO-4217 currency: its three-letter code and its minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    minor_units: u8,
}

impl Currency {
    /// Euro.
    pub const EUR: Currency = Currency {
        code: *b"EUR",
        minor_units: 2,
    };
    /// US dollar.
    pub const USD: Currency = Currency {
        code: *b"USD",
        minor_units: 2,
    };

    /// Looks a code up (case-sensitive, upper case as ISO-4217 writes it).
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .and_then(|(c, minor)| {
                let bytes: [u8; 3] = c.as_bytes().try_into().ok()?;
                Some(Currency {
                    code: bytes,
                    minor_units: *minor,
                })
            })
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // The code bytes always come from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Decimal places of the currency's minor unit (the invoice precision).
    pub fn minor_units(&self) -> u32 {
        u32::from(self.minor_units)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::from_code(&s).map_err(serde::de::Error::custom)
    }
}

/// How an amount is rounded to a number of decimal places.
///
/// Negative amounts (credits, discounts) round symmetrically: `half-up` means half away from
/// zero, `up` means away from zero, `down` means towards zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RoundingMode {
    /// Halves away from zero (commercial rounding): 0.125 -> 0.13.
    #[default]
    HalfUp,
    /// Halves to the even neighbour (banker's rounding): 0.125 -> 0.12, 0.135 -> 0.14.
    HalfEven,
    /// Always away from zero: 0.121 -> 0.13.
    Up,
    /// Always towards zero (truncation): 0.129 -> 0.12.
    Down,
}

impl RoundingMode {
    /// Rounds `amount` to `dp` decimal places in this mode.
    pub fn round(self, amount: Decimal, dp: u32) -> Decimal {
        let strategy = match self {
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::Up => RoundingStrategy::AwayFromZero,
            RoundingMode::Down => RoundingStrategy::ToZero,
        };
        let mut rounded = amount.round_dp_with_strategy(dp, strategy);
        // Keep a fixed scale so that 0.1 at 4 dp prints as 0.1000 everywhere.
        rounded.rescale(dp);
        rounded
    }

    /// The name used in files and explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            RoundingMode::HalfUp => "half-up",
            RoundingMode::HalfEven => "half-even",
            RoundingMode::Up => "up",
            RoundingMode::Down => "down",
        }
    }
}

impl fmt::Display for RoundingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exact amount of money in one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount, as an exact decimal.
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
}

impl Money {
    /// Builds an amount.
    pub fn new(amount: Decimal, currency: Currency) -> Money {
        Money { amount, currency }
    }

    /// Zero in a currency.
    pub fn zero(currency: Currency) -> Money {
        Money {
            amount: Decimal::ZERO,
            currency,
        }
    }

    /// The same amount written with at least the currency's minor units (`0` -> `0.00`), for
    /// display; never rounds (a finer amount keeps its digits).
    pub fn at_minor_scale(self) -> Money {
        let mut amount = self.amount;
        if amount.scale() < self.currency.minor_units() {
            amount.rescale(self.currency.minor_units());
        }
        Money {
            amount,
            currency: self.currency,
        }
    }

    /// Builds an amount from integer minor units (cents for EUR).
    pub fn from_minor(minor: i64, currency: Currency) -> Money {
        Money {
            amount: Decimal::new(minor, currency.minor_units()),
            currency,
        }
    }

    /// The amount in integer minor units; fails if it is not already at invoice precision.
    pub fn to_minor(&self) -> Result<i64, MoneyError> {
        let minor_units = self.currency.minor_units();
        let not_minor = || MoneyError::NotMinorUnits {
            amount: self.amount,
            currency: self.currency,
            minor_units,
        };
        if self.amount.normalize().scale() > minor_units {
            return Err(not_minor());
        }
        let mut scaled = self.amount;
        scaled.rescale(minor_units);
        i64::try_from(scaled.mantissa()).map_err(|_| MoneyError::Overflow)
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`, refusing to mix currencies.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount,
            currency: self.currency,
        })
    }

    /// `self - other`, refusing to mix currencies.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount,
            currency: self.currency,
        })
    }

    /// `self * factor` (exact; no rounding).
    pub fn checked_mul(self, factor: Decimal) -> Result<Money, MoneyError> {
        let amount = self
            .amount
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount,
            currency: self.currency,
        })
    }

    /// The amount with the opposite sign.
    pub fn negate(self) -> Money {
        Money {
            amount: -self.amount,
            currency: self.currency,
        }
    }

    /// Rounds to `dp` decimal places (the charge precision) with `mode`.
    pub fn round(self, dp: u32, mode: RoundingMode) -> Money {
        Money {
            amount: mode.round(self.amount, dp),
            currency: self.currency,
        }
    }

    /// Rounds to the currency's minor units (the invoice precision) with `mode`.
    pub fn round_to_minor(self, mode: RoundingMode) -> Money {
        self.round(self.currency.minor_units(), mode)
    }

    /// True if the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Sums amounts of one currency, refusing to mix currencies.
pub fn sum(
    currency: Currency,
    amounts: impl IntoIterator<Item = Money>,
) -> Result<Money, MoneyError> {
    amounts
        .into_iter()
        .try_fold(Money::zero(currency), Money::checked_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn currencies_have_their_minor_units() {
        assert_eq!(Currency::from_code("EUR").unwrap().minor_units(), 2);
        assert_eq!(Currency::from_code("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::from_code("KWD").unwrap().minor_units(), 3);
        assert_eq!(
            Currency::from_code("eur").unwrap_err().code(),
            "money.unknown_currency"
        );
        assert_eq!(
            Currency::from_code("XXX").unwrap_err().code(),
            "money.unknown_currency"
        );
    }

    #[test]
    fn arithmetic_refuses_to_mix_currencies() {
        let eur = Money::new(dec!(1.00), Currency::EUR);
        let usd = Money::new(dec!(1.00), Currency::USD);
        let err = eur.checked_add(usd).unwrap_err();
        assert_eq!(err.code(), "money.currency_mismatch");
        assert!(eur.checked_sub(usd).is_err());
        assert_eq!(eur.checked_add(eur).unwrap().amount, dec!(2.00));
        assert!(sum(Currency::EUR, [eur, usd]).is_err());
    }

    #[test]
    fn rounding_modes_match_hand_computed_values() {
        let cases = [
            (dec!(0.125), RoundingMode::HalfUp, dec!(0.13)),
            (dec!(0.125), RoundingMode::HalfEven, dec!(0.12)),
            (dec!(0.135), RoundingMode::HalfEven, dec!(0.14)),
            (dec!(0.121), RoundingMode::Up, dec!(0.13)),
            (dec!(0.129), RoundingMode::Down, dec!(0.12)),
            (dec!(-0.125), RoundingMode::HalfUp, dec!(-0.13)),
            (dec!(-0.121), RoundingMode::Up, dec!(-0.13)),
            (dec!(-0.129), RoundingMode::Down, dec!(-0.12)),
        ];
        for (amount, mode, expected) in cases {
            assert_eq!(mode.round(amount, 2), expected, "{amount} {mode}");
        }
        // Fixed scale after rounding.
        assert_eq!(
            RoundingMode::HalfUp.round(dec!(0.1), 4).to_string(),
            "0.1000"
        );
    }

    #[test]
    fn charge_precision_is_distinct_from_invoice_precision() {
        let charge = Money::new(dec!(0.208333), Currency::EUR).round(4, RoundingMode::HalfUp);
        assert_eq!(charge.amount.to_string(), "0.2083");
        let invoice = charge.round_to_minor(RoundingMode::HalfUp);
        assert_eq!(invoice.amount.to_string(), "0.21");
        assert_eq!(invoice.to_minor().unwrap(), 21);
        assert_eq!(
            charge.to_minor().unwrap_err().code(),
            "money.not_minor_units"
        );
        let yen = Money::new(dec!(1234.5), Currency::from_code("JPY").unwrap());
        assert_eq!(
            yen.round_to_minor(RoundingMode::HalfEven).amount,
            dec!(1234)
        );
        assert_eq!(
            Money::from_minor(12345, Currency::EUR).amount.to_string(),
            "123.45"
        );
    }

    proptest! {
        #[test]
        fn minor_units_round_trip(minor in -1_000_000_000_000i64..1_000_000_000_000i64) {
            let m = Money::from_minor(minor, Currency::EUR);
            prop_assert_eq!(m.to_minor().unwrap(), minor);
        }

        #[test]
        fn addition_is_exact_and_reversible(a in -1_000_000_000i64..1_000_000_000, b in -1_000_000_000i64..1_000_000_000, scale in 0u32..8) {
            let x = Money::new(Decimal::new(a, scale), Currency::EUR);
            let y = Money::new(Decimal::new(b, scale), Currency::EUR);
            let s = x.checked_add(y).unwrap();
            prop_assert_eq!(s.checked_sub(y).unwrap(), x);
            prop_assert_eq!(s.amount, Decimal::new(a + b, scale));
        }

        #[test]
        fn rounding_moves_less_than_one_unit(a in -1_000_000_000i64..1_000_000_000, scale in 0u32..8, dp in 0u32..6) {
            let x = Decimal::new(a, scale);
            let unit = Decimal::new(1, dp);
            for mode in [RoundingMode::HalfUp, RoundingMode::HalfEven, RoundingMode::Up, RoundingMode::Down] {
                let r = mode.round(x, dp);
                prop_assert!((r - x).abs() < unit);
                prop_assert!(r.scale() == dp);
            }
            // Down never grows the magnitude, up never shrinks it.
            prop_assert!(RoundingMode::Down.round(x, dp).abs() <= x.abs());
            prop_assert!(RoundingMode::Up.round(x, dp).abs() >= x.abs());
        }
    }
}
