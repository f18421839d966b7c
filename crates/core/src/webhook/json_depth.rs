//! How deep a JSON text nests, measured without parsing it: the guard
//! [`crate::webhook::event::parse::parse_event`] runs before serde, which skips unknown fields
//! at any depth.

/// Counts brackets outside strings. It does not validate JSON (serde does that next); it
/// only bounds how deep any value goes, in one pass without allocating.
pub(crate) fn nesting_within(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'"' => i = string_end(body, i),
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// The index just past the quote closing a string whose contents start at `i`, or the
/// end. Strings are most of a payload (a push's diffs and messages), so eight bytes are
/// stepped over at once while none of them is a quote or a backslash.
fn string_end(body: &[u8], mut i: usize) -> usize {
    loop {
        let rest = body.get(i..).unwrap_or_default();
        let plain = rest
            .chunks_exact(8)
            .take_while(|c| {
                <[u8; 8]>::try_from(*c).is_ok_and(|c| !quote_or_backslash(u64::from_ne_bytes(c)))
            })
            .count()
            * 8;
        // The next quote or backslash is in the next eight bytes, or in a short tail.
        let rest = &rest[plain..];
        let Some(at) = rest.iter().position(|&b| b == b'"' || b == b'\\') else {
            return body.len();
        };
        if rest[at] == b'"' {
            return i + plain + at + 1;
        }
        i += plain + at + 2;
    }
}

/// Whether any byte of `w` is a quote or a backslash: the exact has-zero-byte test, applied
/// to `w` XOR each of them.
fn quote_or_backslash(w: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let q = w ^ (ONES * u64::from(b'"'));
    let b = w ^ (ONES * u64::from(b'\\'));
    ((q.wrapping_sub(ONES) & !q) | (b.wrapping_sub(ONES) & !b)) & HIGHS != 0
}

#[cfg(test)]
mod tests {
    use super::nesting_within;

    #[test]
    fn depth_scan_agrees_with_a_byte_at_a_time_reference() {
        fn reference(body: &[u8]) -> usize {
            let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
            for &b in body {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => {
                        depth += 1;
                        deepest = deepest.max(depth);
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            deepest
        }
        let alphabet = b"{}[]\"\\aaaaaaaaaa";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 58) as usize;
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    alphabet[(seed >> 60) as usize]
                })
                .collect();
            let deepest = reference(&body);
            assert!(
                nesting_within(&body, deepest),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
            if deepest > 0 {
                assert!(
                    !nesting_within(&body, deepest - 1),
                    "{:?}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
}
