//! Money on the wire is a decimal string with a currency code; here it is
//! a `Decimal` rounded to cents (banker's rounding is never applied
//! silently: more than two fractional digits is an error).

use cg_proto::r#type::v1::Money;
use rust_decimal::Decimal;

/// The only currency properties are valued in today.
pub const CURRENCY: &str = "USD";
/// Fractional digits stored for amounts.
pub const SCALE: u32 = 2;

/// Parses a non-negative amount in USD with at most two fractional digits.
pub fn parse_amount(money: &Money) -> Result<Decimal, &'static str> {
    if money.currency_code != CURRENCY {
        return Err("currency_code must be USD");
    }
    let text = money.amount.trim();
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match text.strip_prefix('-').unwrap_or(text).split_once('.') {
        Some((whole, fraction)) => plain(whole) && plain(fraction),
        None => plain(text.strip_prefix('-').unwrap_or(text)),
    };
    if !well_formed {
        return Err("amount must be a decimal number such as 350000.00");
    }
    let amount: Decimal = text
        .parse()
        .map_err(|_| "amount must be a decimal number such as 350000.00")?;
    if amount.is_sign_negative() {
        return Err("amount must not be negative");
    }
    if amount.scale() > SCALE {
        return Err("amount must have at most two fractional digits");
    }
    if amount > Decimal::new(99_999_999_999_999, SCALE) {
        return Err("amount is too large");
    }
    Ok(amount)
}

/// Formats an amount with exactly two fractional digits.
pub fn to_wire(amount: Decimal) -> Money {
    let mut amount = amount;
    amount.rescale(SCALE);
    Money {
        currency_code: CURRENCY.to_owned(),
        amount: amount.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(amount: &str) -> Money {
        Money {
            currency_code: "USD".to_owned(),
            amount: amount.to_owned(),
        }
    }

    #[test]
    fn parses_to_the_cent() {
        assert_eq!(
            parse_amount(&usd("350000.10")),
            Ok(Decimal::new(35_000_010, 2))
        );
        assert_eq!(to_wire(Decimal::new(35, 0)).amount, "35.00");
        assert!(parse_amount(&usd("0.001")).is_err());
        assert!(parse_amount(&usd("-1")).is_err());
        assert!(parse_amount(&usd("1e3")).is_err());
        assert!(
            parse_amount(&Money {
                currency_code: "EUR".into(),
                amount: "1".into()
            })
            .is_err()
        );
    }
}
