//! Sizes in configuration files: a whole number of bytes with an optional binary unit
//! (`B`, `KiB`, `MiB`, `GiB`), e.g. `"64MiB"`.

use serde::{Deserialize, Deserializer, de::Error};

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).ok_or_else(|| {
        D::Error::custom(format!(
            "{text:?} is not a size; write a whole number and a unit: B, KiB, MiB or GiB, e.g. \"64MiB\""
        ))
    })
}

pub fn parse(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn binary_units_multiply_and_anything_else_is_refused() {
        assert_eq!(parse("64MiB"), Some(64 << 20));
        assert_eq!(parse("512 KiB"), Some(512 << 10));
        assert_eq!(parse("1GiB"), Some(1 << 30));
        assert_eq!(parse("4096"), Some(4096));
        assert_eq!(parse("64MB"), None);
        assert_eq!(parse("MiB"), None);
        assert_eq!(parse("-1MiB"), None);
        assert_eq!(parse("99999999999999GiB"), None);
    }
}
