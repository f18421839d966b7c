//! Lowercase hexadecimal, the one encoder: MACs, fingerprints, key ids and random ids.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The lowercase hex `text` back into exactly `N` bytes; `None` for any other length, an
/// uppercase digit or any other character.
pub fn decode_lower<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        // `+`, not `|`: the same here (the nibbles never overlap), and written so that no
        // mutation of the operator is equivalent (`|` made `^` would be; see docs/testing.md).
        *byte = (nibble(pair[0])? << 4) + nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert_eq!(&text[..8], "00010203");
        assert_eq!(&text[text.len() - 4..], "feff");
        assert_eq!(decode_lower::<256>(&text).map(|b| b.to_vec()), Some(all));
    }

    #[test]
    fn decoding_is_strict() {
        assert_eq!(decode_lower::<2>("0aff"), Some([0x0a, 0xff]));
        for bad in ["0aFF", "0af", "0aff0", "0ag0", " 0af", "+0af"] {
            assert_eq!(decode_lower::<2>(bad), None, "{bad:?}");
        }
    }
}
