//! Go's string semantics, where fullsend's answers depend on them.
//!
//! **Invariant:** every comparison, split and quote the mint makes goes through here, so a
//! value fullsend's Go accepts (or refuses) is accepted (or refused) the same way: CSV lists
//! are trimmed and drop empty entries, case-insensitive equality is Go's simple folding,
//! lowercasing is rune by rune, and `%q` quoting looks like Go's.

/// `SplitCSV`/`ParseAllowedOrgs`: split on `,`, trim each entry, drop empty ones.
pub(crate) fn split_csv(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `strings.ToLower`: Go maps each rune on its own (simple case mapping), so the one rune
/// whose full lowercase is two runes (U+0130) becomes plain `i`, and final sigma is not
/// context-sensitive.
pub(crate) fn go_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars().map(lower_rune).collect()
}

fn lower_rune(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

fn fold_rune(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    // Go folds within a SimpleFold orbit (ſ ~ s, K ~ k, ς ~ σ); lower(upper(c)) lands on
    // the same representative for every orbit a name or login can plausibly contain.
    let mut up = c.to_uppercase();
    let u = match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    };
    lower_rune(u)
}

/// `strings.EqualFold`.
pub(crate) fn eq_fold(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    let mut x = a.chars().map(fold_rune);
    let mut y = b.chars().map(fold_rune);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

/// `fmt.Sprintf("%q", s)` for the strings that appear in fullsend's configuration errors.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What Go's `json.Encoder` adds over plain JSON escaping (`SetEscapeHTML(true)` is its
/// default): fullsend's bodies carry these escapes, and a byte-for-byte replacement should
/// too. Those characters only ever occur inside JSON strings, so replacing them in the
/// serialized text is safe.
pub(crate) fn go_json_escape(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `^[a-z][a-z0-9_-]*$` (fullsend's `RolePattern`).
pub(crate) fn is_role_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

/// `ValidateRoleName`: the role pattern and no `--` (custom role names only).
pub(crate) fn is_strict_role_name(s: &str) -> bool {
    is_role_name(s) && !s.contains("--")
}

/// `^[a-zA-Z0-9_.][a-zA-Z0-9._-]{0,99}$` (fullsend's `RepoNamePattern`).
pub(crate) fn is_repo_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 100
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_' || b[0] == b'.')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// `ValidateOrgName`: `^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,37}[a-zA-Z0-9])?$` and no `--`.
pub(crate) fn is_org_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 39
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        && !s.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_csv_trims_and_drops_empty() {
        assert_eq!(split_csv(" org-a , org-b "), ["org-a", "org-b"]);
        assert_eq!(split_csv(" , ,"), Vec::<String>::new());
        assert!(split_csv("").is_empty());
        assert_eq!(split_csv("*"), ["*"]);
    }

    #[test]
    fn folding_matches_go() {
        assert!(eq_fold("MyOrg", "myorg"));
        assert!(eq_fold("ſ", "S"));
        assert!(eq_fold("\u{212a}", "k"));
        assert!(!eq_fold("a", "ab"));
        assert!(!eq_fold("é", "e"));
        assert_eq!(go_lower("Fullsend-AI/Repo"), "fullsend-ai/repo");
        assert_eq!(go_lower("\u{130}X"), "ix");
    }

    #[test]
    fn quote_like_go() {
        assert_eq!(go_quote("coder"), "\"coder\"");
        assert_eq!(go_quote("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\x01\"");
    }

    #[test]
    fn html_escapes_like_go_encoder() {
        assert_eq!(
            go_json_escape(r#"{"a":"<&>"}"#.to_owned()),
            r#"{"a":"\u003c\u0026\u003e"}"#
        );
    }

    #[test]
    fn patterns() {
        for ok in ["coder", "a", "my-role_2"] {
            assert!(is_role_name(ok), "{ok}");
        }
        for bad in ["", "Coder", "1a", "-a", "a b", "a.b"] {
            assert!(!is_role_name(bad), "{bad}");
        }
        assert!(is_role_name("a--b") && !is_strict_role_name("a--b"));
        for ok in [".fullsend", "_x", "a.b-c_d", &"a".repeat(100)] {
            assert!(is_repo_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a/b", "my repo", "*", &"a".repeat(101), "é"] {
            assert!(!is_repo_name(bad), "{bad}");
        }
        for ok in ["halfsend-01", "a", "A1", &"a".repeat(39)] {
            assert!(is_org_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "bad--org", "a_b", &"a".repeat(40)] {
            assert!(!is_org_name(bad), "{bad}");
        }
    }
}
