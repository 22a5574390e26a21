//! [`ShortText`]: the strings of a change record, kept inline when short.
//!
//! A rewrite reports a few changes per domain (`disk sda bus`, `1`, `2GiB`, ...); as `String`s
//! they were three heap allocations each, a good part of a rewrite's allocator work. Texts of up
//! to [`INLINE`] bytes live in the value itself; longer ones (iotune and bandwidth summaries) go
//! to the heap.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

/// The longest text kept inline (`interface 52:54:00:00:00:00 bandwidth` fits).
pub const INLINE: usize = 38;

/// A short immutable string: inline up to [`INLINE`] bytes, boxed beyond. Reads as a `str`
/// (`as_str`, `Deref`, `Display`), compares with `str`/`String`, serialises as a string.
#[derive(Clone)]
pub struct ShortText(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<str>),
}

impl ShortText {
    /// The pieces joined, without an allocation when they fit inline.
    pub fn concat(parts: &[&str]) -> Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > INLINE {
            return ShortText(Repr::Heap(parts.concat().into_boxed_str()));
        }
        let mut buf = [0u8; INLINE];
        let mut n = 0;
        for p in parts {
            buf[n..n + p.len()].copy_from_slice(p.as_bytes());
            n += p.len();
        }
        ShortText(Repr::Inline {
            len: len as u8,
            buf,
        })
    }

    /// A number's decimal digits followed by `suffix` (a unit, or nothing).
    pub fn number(v: u64, suffix: &str) -> Self {
        let mut d = [0u8; 20];
        let mut n = d.len();
        let mut v = v;
        loop {
            n -= 1;
            d[n] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let digits = std::str::from_utf8(&d[n..]).unwrap_or("0");
        Self::concat(&[digits, suffix])
    }

    /// Length in bytes (without the UTF-8 check `as_str` makes for inline texts).
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Inline { len, .. } => usize::from(*len),
            Repr::Heap(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only whole `str`s are ever copied in, so the bytes are UTF-8.
            Repr::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or("")
            }
            Repr::Heap(s) => s,
        }
    }
}

impl Default for ShortText {
    fn default() -> Self {
        Self::concat(&[])
    }
}

impl std::ops::Deref for ShortText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ShortText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for ShortText {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for ShortText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for ShortText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for ShortText {
    fn eq(&self, o: &Self) -> bool {
        self.as_str() == o.as_str()
    }
}

impl Eq for ShortText {}

impl std::hash::Hash for ShortText {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl PartialEq<str> for ShortText {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl PartialEq<&str> for ShortText {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

impl PartialEq<String> for ShortText {
    fn eq(&self, o: &String) -> bool {
        self.as_str() == o.as_str()
    }
}

impl PartialEq<ShortText> for &str {
    fn eq(&self, o: &ShortText) -> bool {
        *self == o.as_str()
    }
}

impl PartialEq<ShortText> for String {
    fn eq(&self, o: &ShortText) -> bool {
        self.as_str() == o.as_str()
    }
}

impl From<&str> for ShortText {
    fn from(s: &str) -> Self {
        Self::concat(&[s])
    }
}

impl From<&String> for ShortText {
    fn from(s: &String) -> Self {
        Self::concat(&[s])
    }
}

impl From<String> for ShortText {
    fn from(s: String) -> Self {
        if s.len() > INLINE {
            ShortText(Repr::Heap(s.into_boxed_str()))
        } else {
            Self::concat(&[&s])
        }
    }
}

impl From<Cow<'_, str>> for ShortText {
    fn from(s: Cow<'_, str>) -> Self {
        match s {
            Cow::Borrowed(s) => s.into(),
            Cow::Owned(s) => s.into(),
        }
    }
}

impl From<ShortText> for String {
    fn from(s: ShortText) -> Self {
        s.as_str().to_string()
    }
}

impl Serialize for ShortText {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ShortText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Cow::<'de, str>::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_texts_read_back() {
        for s in [
            "",
            "vcpu",
            "disk sda rotation_rate",
            &"x".repeat(INLINE),
            &"y".repeat(INLINE + 1),
        ] {
            let t = ShortText::from(s);
            assert_eq!(t.as_str(), s);
            assert_eq!(ShortText::from(s.to_string()), t);
            assert_eq!(t, s);
        }
        let long = ["interface ", "52:54:00:00:00:00", " bandwidth and more"];
        assert_eq!(ShortText::concat(&long).as_str(), long.concat());
        assert_eq!(ShortText::number(0, "").as_str(), "0");
        assert_eq!(
            ShortText::number(u64::MAX, "KiB").as_str(),
            "18446744073709551615KiB"
        );
        let json = serde_json::to_string(&ShortText::from("a\"b")).unwrap();
        assert_eq!(json, "\"a\\\"b\"");
        assert_eq!(serde_json::from_str::<ShortText>(&json).unwrap(), "a\"b");
    }
}
