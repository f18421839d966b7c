//! Admin authentication: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.

use sha2::{Digest, Sha256};

/// True when `header` is exactly `Bearer <expected>`. Both sides are hashed first so the
/// comparison takes the same time whatever the length or the first differing byte.
pub fn bearer_matches(header: Option<&str>, expected: &str) -> bool {
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    !expected.is_empty() && constant_time_eq(&Sha256::digest(token), &Sha256::digest(expected))
}

/// Compares without an early exit; lengths are public.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_rules() {
        assert!(bearer_matches(Some("Bearer abc"), "abc"));
        for h in [
            None,
            Some(""),
            Some("abc"),
            Some("bearer abc"),
            Some("Bearer abcd"),
            Some("Bearer  abc"),
            Some("Basic abc"),
        ] {
            assert!(!bearer_matches(h, "abc"), "{h:?}");
        }
        assert!(
            !bearer_matches(Some("Bearer "), ""),
            "an unset token never matches"
        );
    }

    #[test]
    fn ct_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
