//! The one paginator of GitHub listings: the next page is the one GitHub's `Link` header
//! names `rel="next"`, never a guess from a page's length (GitHub may send short pages, and
//! cursor-paged listings such as `GET /app/hook/deliveries` have no page numbers at all).
//!
//! **Invariant:** only a link on GitHub's own API base is followed, as a path relative to
//! it, so a listing never sends a token to another host; and no more than the cap's pages
//! are read. The adapter loops `while let Some(path) = pager.next_path()`, fetches, and
//! hands the answer's `Link` to [`Pager::advance`].

/// Walks a listing from its first page, up to `cap` pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pager {
    next: Option<String>,
    read: u32,
    cap: u32,
    /// GitHub named a next page the cap kept us from reading.
    capped: bool,
}

impl Pager {
    /// Starts at `first` (a path with its query, e.g. `/installation/repositories?per_page=100`).
    pub fn new(first: impl Into<String>, cap: u32) -> Pager {
        Pager {
            next: Some(first.into()).filter(|_| cap > 0),
            read: 0,
            cap,
            capped: false,
        }
    }

    /// The path to fetch next; `None` once the listing ended or the cap was reached.
    pub fn next_path(&self) -> Option<&str> {
        self.next.as_deref()
    }

    /// Pages read so far (the 1-based number of the page just read, after `advance`).
    pub fn pages_read(&self) -> u32 {
        self.read
    }

    /// Records that the page from [`Pager::next_path`] was read, with its `Link` header and
    /// the API base the request went to.
    pub fn advance(&mut self, link: Option<&str>, api_base: &str) {
        self.read += 1;
        let next = link
            .and_then(next_link)
            .and_then(|url| relative_to(url, api_base));
        self.capped = next.is_some() && self.read >= self.cap;
        self.next = next.filter(|_| self.read < self.cap);
    }

    /// Stops the walk early (e.g. the wanted entry was found).
    pub fn stop(&mut self) {
        self.next = None;
    }

    /// True when GitHub had more pages than the cap let us read.
    pub fn capped(&self) -> bool {
        self.capped
    }
}

/// The URL of `rel="next"` in a `Link` header
/// (`<https://api.github.com/…&page=2>; rel="next", <…>; rel="last"`).
pub fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("rel="))
            .any(|rel| rel.trim_matches('"').split(' ').any(|r| r == "next"))
            .then_some(url)
    })
}

/// `url` as a path relative to `api_base` (`https://api.github.com`, or an Enterprise base
/// with a path such as `https://ghe.example/api/v3`); `None` for a URL elsewhere.
pub fn relative_to(url: &str, api_base: &str) -> Option<String> {
    let base = api_base.trim_end_matches('/');
    let rest = url.strip_prefix(base)?;
    rest.starts_with('/').then(|| rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://api.github.com";

    #[test]
    fn finds_next_among_githubs_relations() {
        let h = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
        assert_eq!(
            next_link(h),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        let last_page = r#"<https://api.github.com/x?page=1>; rel="first", <https://api.github.com/x?page=4>; rel="prev""#;
        assert_eq!(next_link(last_page), None);
        let cursor = r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_123>; rel="next""#;
        assert_eq!(
            next_link(cursor),
            Some("https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_123")
        );
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link("<x>; rel=nextish"), None);
        assert_eq!(next_link("<x>; rel=next"), Some("x"), "unquoted");
    }

    #[test]
    fn follows_only_githubs_own_base() {
        assert_eq!(
            relative_to("https://api.github.com/user/installations?page=2", BASE),
            Some("/user/installations?page=2".into())
        );
        assert_eq!(
            relative_to(
                "https://ghe.example/api/v3/installation/repositories?page=3",
                "https://ghe.example/api/v3/"
            ),
            Some("/installation/repositories?page=3".into())
        );
        assert_eq!(relative_to("https://evil.example/user?page=2", BASE), None);
        assert_eq!(
            relative_to("https://api.github.com.evil.example/x", BASE),
            None,
            "a look-alike host"
        );
        assert_eq!(relative_to("/relative?page=2", BASE), None);
    }

    #[test]
    fn walks_while_github_says_next_even_after_short_pages() {
        let link = |n: u32| {
            format!(r#"<{BASE}/installation/repositories?per_page=100&page={n}>; rel="next""#)
        };
        let mut p = Pager::new("/installation/repositories?per_page=100", 10);
        let mut fetched = Vec::new();
        while let Some(path) = p.next_path().map(str::to_owned) {
            fetched.push(path);
            // Three short pages: 2 links, then none.
            let n = p.pages_read() + 2;
            let header = (n <= 3).then(|| link(n));
            p.advance(header.as_deref(), BASE);
        }
        assert_eq!(
            fetched,
            [
                "/installation/repositories?per_page=100",
                "/installation/repositories?per_page=100&page=2",
                "/installation/repositories?per_page=100&page=3",
            ]
        );
        assert_eq!(p.pages_read(), 3);
        assert!(!p.capped());
    }

    #[test]
    fn a_full_page_without_next_ends_the_listing() {
        let mut p = Pager::new("/x", 10);
        p.advance(None, BASE);
        assert_eq!(p.next_path(), None);
        assert!(!p.capped());
    }

    #[test]
    fn the_cap_stops_and_says_so() {
        let mut p = Pager::new("/x", 2);
        p.advance(Some(&format!(r#"<{BASE}/x?page=2>; rel="next""#)), BASE);
        assert_eq!(p.next_path(), Some("/x?page=2"));
        assert!(!p.capped());
        p.advance(Some(&format!(r#"<{BASE}/x?page=3>; rel="next""#)), BASE);
        assert_eq!(p.next_path(), None);
        assert!(p.capped());
        assert_eq!(Pager::new("/x", 0).next_path(), None);
    }

    #[test]
    fn an_off_site_next_is_not_followed() {
        let mut p = Pager::new("/x", 10);
        p.advance(Some(r#"<https://evil.example/x?page=2>; rel="next""#), BASE);
        assert_eq!(p.next_path(), None);
        let mut p = Pager::new("/x", 10);
        p.advance(Some(&format!(r#"<{BASE}/x?page=2>; rel="next""#)), BASE);
        p.stop();
        assert_eq!(p.next_path(), None);
    }
}
