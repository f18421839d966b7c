//! CORS for the admin SPA: only the exact origins of `ADMIN_ORIGINS` get CORS headers, with
//! credentials, and never `*`. Every answer varies on `Origin`, so a cache never hands one
//! origin's answer to another.

/// Headers a preflight may ask for.
pub const ALLOWED_HEADERS: &str = "authorization, content-type";
/// Headers the SPA may read on an answer.
pub const EXPOSED_HEADERS: &str = "retry-after";
/// How long a browser may reuse a preflight answer.
pub const MAX_AGE_SECS: u32 = 600;

/// The allowlist. An entry is a serialized origin: `http(s)://host[:port]`, lowercase, no
/// path; anything else (including `null` and wildcards) makes the whole list invalid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Origins(Vec<String>);

fn is_origin(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || !p.is_empty() => (h, Some(p)),
        _ => (rest, None),
    };
    !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
        })
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

impl Origins {
    /// Parses `ADMIN_ORIGINS`: a comma-separated list; empty means no cross-origin access.
    pub fn parse(var: Option<&str>) -> Result<Origins, String> {
        let mut list = Vec::new();
        for entry in var
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if !is_origin(entry) {
                return Err(format!(
                    "ADMIN_ORIGINS entry {:?} is not an origin like https://admin.example.com",
                    crate::ids::truncate(entry, 80)
                ));
            }
            list.push(entry.to_owned());
        }
        Ok(Origins(list))
    }

    /// Exact match only: no suffix, prefix, scheme or port leniency.
    pub fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o == origin)
    }
}

/// CORS headers of an answer to `origin`: none unless it is allowed.
pub fn response_headers(origins: &Origins, origin: Option<&str>) -> Vec<(&'static str, String)> {
    match origin.filter(|o| origins.allows(o)) {
        Some(o) => vec![
            ("access-control-allow-origin", o.to_owned()),
            ("access-control-allow-credentials", "true".to_owned()),
            ("access-control-expose-headers", EXPOSED_HEADERS.to_owned()),
        ],
        None => Vec::new(),
    }
}

/// Headers of a preflight answer for a path that serves `methods`.
pub fn preflight_headers(
    origins: &Origins,
    origin: Option<&str>,
    methods: &[&str],
) -> Vec<(&'static str, String)> {
    let mut headers = response_headers(origins, origin);
    if !headers.is_empty() {
        headers.retain(|(k, _)| *k != "access-control-expose-headers");
        headers.push(("access-control-allow-methods", methods.join(", ")));
        headers.push(("access-control-allow-headers", ALLOWED_HEADERS.to_owned()));
        headers.push(("access-control-max-age", MAX_AGE_SECS.to_string()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Origins {
        Origins::parse(Some("https://admin.example.com, http://localhost:5173")).unwrap()
    }

    #[test]
    fn exact_origins_only() {
        let o = list();
        assert!(o.allows("https://admin.example.com"));
        assert!(o.allows("http://localhost:5173"));
        for bad in [
            "null",
            "",
            "*",
            "https://admin.example.com.evil.test",
            "https://evil-admin.example.com",
            "https://admin.example.com:443",
            "http://admin.example.com",
            "https://ADMIN.example.com",
            "https://admin.example.com/",
            "http://localhost:5174",
        ] {
            assert!(!o.allows(bad), "{bad}");
            assert!(response_headers(&o, Some(bad)).is_empty(), "{bad}");
        }
        assert!(response_headers(&o, None).is_empty());
    }

    #[test]
    fn headers_never_wildcard() {
        let h = response_headers(&list(), Some("https://admin.example.com"));
        assert!(h.contains(&(
            "access-control-allow-origin",
            "https://admin.example.com".into()
        )));
        assert!(h.contains(&("access-control-allow-credentials", "true".into())));
        let p = preflight_headers(&list(), Some("https://admin.example.com"), &["GET", "POST"]);
        assert!(p.contains(&("access-control-allow-methods", "GET, POST".into())));
        assert!(p.iter().all(|(_, v)| v != "*"));
        assert!(preflight_headers(&list(), Some("null"), &["GET"]).is_empty());
    }

    #[test]
    fn list_must_be_origins() {
        assert_eq!(Origins::parse(None).unwrap(), Origins::default());
        assert_eq!(Origins::parse(Some(" , ")).unwrap(), Origins::default());
        for bad in [
            "*",
            "null",
            "admin.example.com",
            "https://a.example/path",
            "https://*.example.com",
            "ftp://x",
        ] {
            assert!(Origins::parse(Some(bad)).is_err(), "{bad}");
        }
        assert!(Origins::parse(Some("http://127.0.0.1:8080,https://[::1]:3000")).is_ok());
    }
}
