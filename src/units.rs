//! libvirt's size units, parsed and printed the way libvirt does (`virScaleInteger`).
//!
//! A suffix's first letter picks the power (b, k, m, g, t, p, e); `XiB` or a bare letter means
//! powers of 1024, `XB` powers of 1000. No suffix means the caller's default unit.

use crate::Error;

/// Bytes per unit for a libvirt unit string (case-insensitive first letter, like libvirt).
pub fn unit_bytes(unit: &str) -> Result<u64, Error> {
    let u = unit.trim();
    if u.is_empty() {
        return Err(Error::Invalid("empty unit".into()));
    }
    let lower = u.to_ascii_lowercase();
    if lower == "b" || lower == "bytes" {
        return Ok(1);
    }
    let mut chars = lower.chars();
    let power = match chars.next() {
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        Some('p') => 5,
        Some('e') => 6,
        _ => return Err(Error::Invalid(format!("unknown unit '{unit}'"))),
    };
    let rest: String = chars.collect();
    let base: u64 = match rest.as_str() {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return Err(Error::Invalid(format!("unknown unit '{unit}'"))),
    };
    base.checked_pow(power)
        .ok_or_else(|| Error::Invalid(format!("unit '{unit}' overflows")))
}

/// Parses `value` in `unit` (libvirt's unit attribute; `None` = `default_unit`) into bytes.
pub fn to_bytes(value: u64, unit: Option<&str>, default_unit: &str) -> Result<u64, Error> {
    let scale = unit_bytes(unit.unwrap_or(default_unit))?;
    value.checked_mul(scale).ok_or_else(|| {
        Error::Invalid(format!(
            "{value} {} overflows",
            unit.unwrap_or(default_unit)
        ))
    })
}

/// Parses an operator's size such as `512MiB`, `3GiB`, `2G` or `1048576` (KiB, as virsh) into KiB.
/// Sizes that are not a whole number of KiB are rounded up.
pub fn parse_size_kib(s: &str) -> Result<u64, Error> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(Error::Invalid(format!(
            "size '{s}' has no number (examples: 512MiB, 3GiB)"
        )));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| Error::Invalid(format!("size '{s}' is too large")))?;
    let unit = unit.trim();
    let bytes = to_bytes(n, if unit.is_empty() { None } else { Some(unit) }, "KiB")
        .map_err(|e| Error::Invalid(format!("size '{s}': {e}")))?;
    Ok(bytes.div_ceil(1024))
}

/// Formats KiB the way an operator reads it: `512MiB`, `3GiB`, `1536KiB`.
pub fn format_kib(kib: u64) -> String {
    if kib != 0 && kib.is_multiple_of(1024 * 1024) {
        format!("{}GiB", kib / (1024 * 1024))
    } else if kib != 0 && kib.is_multiple_of(1024) {
        format!("{}MiB", kib / 1024)
    } else {
        format!("{kib}KiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libvirt_units() {
        assert_eq!(parse_size_kib("512MiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size_kib("3GiB").unwrap(), 3 * 1024 * 1024);
        assert_eq!(parse_size_kib("2G").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_size_kib("1048576").unwrap(), 1024 * 1024);
        assert_eq!(parse_size_kib("1000KB").unwrap(), 977); // 1,000,000 bytes rounded up
        assert_eq!(parse_size_kib("1mb").unwrap(), 977);
        assert_eq!(unit_bytes("bytes").unwrap(), 1);
        assert_eq!(unit_bytes("TiB").unwrap(), 1 << 40);
    }

    #[test]
    fn rejects_bad_sizes() {
        for bad in [
            "",
            "MiB",
            "12XB",
            "-1GiB",
            "1.5GiB",
            "99999999999999999999",
            "16EiB",
        ] {
            assert!(parse_size_kib(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_round_units() {
        assert_eq!(format_kib(512 * 1024), "512MiB");
        assert_eq!(format_kib(3 * 1024 * 1024), "3GiB");
        assert_eq!(format_kib(1536), "1536KiB");
    }
}
