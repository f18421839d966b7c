//! Repository discovery for one installation, as the signed-in user sees it
//! (`GET /user/installations/{id}/repositories`: GitHub decides what the user may see).
//!
//! The full listing is cached per user and installation, page by page with GitHub's ETags,
//! so revalidating an unchanged list is answered `304` and costs no rate limit. The SPA
//! pages through the cached rows with an opaque cursor (the sort key of the last row it
//! got), which stays correct when the list changes between two pages.

use serde::{Deserialize, Serialize};

use super::{b64url, b64url_decode};
use crate::error::ApiError;
use crate::ids::InstallationId;

pub const PER_PAGE: usize = 100;
/// GitHub pages followed per installation (1,000 repositories); beyond, `incomplete`.
pub const PAGE_CAP: usize = 10;
/// Rows per answer of `GET /api/integrations/github/repos`.
pub const RESPONSE_LIMIT: usize = 50;
/// A cached listing older than this is revalidated (cheaply, with ETags) on read.
pub const CACHE_TTL_SECS: i64 = 5 * 60;
const MAX_QUERY_LEN: usize = 100;
const MAX_CURSOR_LEN: usize = 400;

pub fn page_path(installation: InstallationId, page: usize) -> String {
    format!("/user/installations/{installation}/repositories?per_page={PER_PAGE}&page={page}")
}

#[derive(Debug, Deserialize)]
pub struct Page {
    pub total_count: u64,
    pub repositories: Vec<RawRepo>,
}

#[derive(Debug, Deserialize)]
pub struct RawRepo {
    pub id: u64,
    pub node_id: String,
    pub full_name: String,
    #[serde(default)]
    pub default_branch: Option<String>,
    pub private: bool,
    #[serde(default)]
    pub archived: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRow {
    pub repo_id: u64,
    pub node_id: String,
    pub full_name: String,
    pub default_branch: Option<String>,
    pub private: bool,
    pub archived: bool,
}

impl From<RawRepo> for RepoRow {
    fn from(r: RawRepo) -> RepoRow {
        RepoRow {
            repo_id: r.id,
            node_id: r.node_id,
            full_name: r.full_name,
            default_branch: r.default_branch,
            private: r.private,
            archived: r.archived,
        }
    }
}

/// One cached GitHub page with the ETag it came with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPage {
    pub etag: Option<String>,
    pub total_count: u64,
    pub rows: Vec<RepoRow>,
    /// The `Link` header the page came with (a `304` revalidation carries none).
    #[serde(default)]
    pub link: Option<String>,
    /// False for a page cached before ghplane kept `Link`s.
    #[serde(default)]
    pub link_known: bool,
}

impl CachedPage {
    pub fn from_github(page: Page, etag: Option<String>, link: Option<String>) -> CachedPage {
        CachedPage {
            etag,
            total_count: page.total_count,
            rows: page.repositories.into_iter().map(RepoRow::from).collect(),
            link,
            link_known: true,
        }
    }

    /// The `Link` to follow from this page (page `number`, 1-based, of `installation`'s
    /// listing on `api_base`). A page cached before ghplane kept `Link`s gets one from the
    /// page-length rule it was read with.
    pub fn link(
        &self,
        installation: InstallationId,
        number: usize,
        api_base: &str,
    ) -> Option<String> {
        if self.link_known {
            return self.link.clone();
        }
        self.has_next(number).then(|| {
            format!(
                "<{}{}>; rel=\"next\"",
                api_base.trim_end_matches('/'),
                page_path(installation, number + 1)
            )
        })
    }

    /// The page-length rule of caches written before `Link`s were kept.
    fn has_next(&self, number: usize) -> bool {
        self.rows.len() == PER_PAGE && ((number * PER_PAGE) as u64) < self.total_count
    }
}

/// What the cache knows about one installation's listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheMeta {
    pub pages: usize,
    pub synced_at: i64,
}

impl CacheMeta {
    pub fn fresh(&self, now: i64) -> bool {
        now.saturating_sub(self.synced_at) < CACHE_TTL_SECS
    }
}

/// The whole listing: rows of every page, and whether the page cap cut it.
pub fn assemble(pages: &[CachedPage]) -> (Vec<RepoRow>, bool) {
    let rows: Vec<RepoRow> = pages.iter().flat_map(|p| p.rows.iter().cloned()).collect();
    let total = pages.last().map_or(0, |p| p.total_count);
    let incomplete = (rows.len() as u64) < total;
    (rows, incomplete)
}

/// `?installation_id=` (required).
pub fn installation_param(param: Option<&str>) -> Result<InstallationId, ApiError> {
    let text = param.ok_or_else(|| ApiError::Validation("installation_id: is required".into()))?;
    InstallationId::parse(text).map_err(ApiError::InvalidId)
}

/// The body of `POST /api/integrations/github/repos/sync`: `{"installation_id": 42}`.
pub fn sync_input(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<InstallationId, ApiError> {
    crate::input::reject_unknown(map, &["installation_id"])?;
    map.get("installation_id")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| ApiError::Validation("installation_id: must be a positive integer".into()))
        .and_then(|n| InstallationId::from_u64(n).map_err(ApiError::InvalidId))
}

/// `?query=`: a case-insensitive substring of `owner/name`.
pub fn query(param: Option<&str>) -> Result<Option<String>, ApiError> {
    match param.map(str::trim) {
        None | Some("") => Ok(None),
        Some(q) if q.chars().count() <= MAX_QUERY_LEN => Ok(Some(q.to_lowercase())),
        Some(_) => Err(ApiError::Validation(format!(
            "query: at most {MAX_QUERY_LEN} characters"
        ))),
    }
}

fn sort_key(row: &RepoRow) -> (String, u64) {
    (row.full_name.to_lowercase(), row.repo_id)
}

fn encode_cursor(key: &(String, u64)) -> String {
    b64url(format!("v1\n{}\n{}", key.1, key.0).as_bytes())
}

/// `?cursor=`: only what [`page`] handed out.
pub fn cursor(param: Option<&str>) -> Result<Option<(String, u64)>, ApiError> {
    let Some(text) = param.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::Validation("cursor: not a cursor this API handed out".into());
    if text.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let decoded = b64url_decode(text)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let mut parts = decoded.splitn(3, '\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(id), Some(name)) => {
            Ok(Some((name.to_owned(), id.parse().map_err(|_| bad())?)))
        }
        _ => Err(bad()),
    }
}

/// One answer: up to `limit` rows matching `query`, sorted by name, after `after`; and the
/// cursor of the next answer when there is one.
pub fn page<'a>(
    rows: &'a [RepoRow],
    query: Option<&str>,
    after: Option<&(String, u64)>,
    limit: usize,
) -> (Vec<&'a RepoRow>, Option<String>) {
    let mut matching: Vec<&RepoRow> = rows
        .iter()
        .filter(|r| query.is_none_or(|q| r.full_name.to_lowercase().contains(q)))
        .filter(|r| after.is_none_or(|a| sort_key(r) > *a))
        .collect();
    matching.sort_by_key(|r| sort_key(r));
    let more = matching.len() > limit;
    matching.truncate(limit);
    let next = more.then(|| encode_cursor(&sort_key(matching[matching.len() - 1])));
    (matching, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, name: &str) -> RepoRow {
        RepoRow {
            repo_id: id,
            node_id: format!("R_{id}"),
            full_name: name.into(),
            default_branch: Some("main".into()),
            private: false,
            archived: false,
        }
    }

    #[test]
    fn pages_through_with_cursors_and_filters() {
        let rows: Vec<RepoRow> = (0..7)
            .rev()
            .map(|i| row(i, &format!("Org/repo-{i}")))
            .collect();
        let (first, next) = page(&rows, None, None, 3);
        assert_eq!(
            first.iter().map(|r| r.repo_id).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let after = cursor(next.as_deref()).unwrap();
        let (second, next) = page(&rows, None, after.as_ref(), 3);
        assert_eq!(
            second.iter().map(|r| r.repo_id).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        let after = cursor(next.as_deref()).unwrap();
        let (third, next) = page(&rows, None, after.as_ref(), 3);
        assert_eq!((third.len(), next), (1, None));
        let (hits, _) = page(&rows, query(Some(" REPO-3 ")).unwrap().as_deref(), None, 10);
        assert_eq!(hits.len(), 1);
        // A row inserted before the cursor does not shift the next page.
        let mut changed = rows.clone();
        changed.push(row(99, "Org/aaa"));
        let (again, _) = page(&changed, None, after.as_ref(), 3);
        assert_eq!(again.iter().map(|r| r.repo_id).collect::<Vec<_>>(), [6]);
    }

    #[test]
    fn cursor_and_query_validation() {
        assert_eq!(cursor(None).unwrap(), None);
        for bad in ["***", "djE", &b64url(b"v2\n1\nx"), &b64url(b"v1\nx\nname")] {
            assert_eq!(
                cursor(Some(bad)).unwrap_err().code(),
                "validation_failed",
                "{bad}"
            );
        }
        assert!(query(Some(&"x".repeat(101))).is_err());
        assert_eq!(query(Some("")).unwrap(), None);
    }

    #[test]
    fn installation_inputs() {
        assert_eq!(installation_param(Some("42")).unwrap().get(), 42);
        assert_eq!(
            installation_param(None).unwrap_err().code(),
            "validation_failed"
        );
        assert_eq!(
            installation_param(Some("0")).unwrap_err().code(),
            "invalid_id"
        );
        let sync = |v: serde_json::Value| sync_input(v.as_object().unwrap());
        assert_eq!(
            sync(serde_json::json!({"installation_id": 7}))
                .unwrap()
                .get(),
            7
        );
        assert!(sync(serde_json::json!({})).is_err());
        assert!(sync(serde_json::json!({"installation_id": "7"})).is_err());
        assert!(sync(serde_json::json!({"installation_id": 7, "x": 1})).is_err());
    }

    #[test]
    fn cached_pages_know_when_more_follow() {
        let full = CachedPage {
            etag: None,
            total_count: 150,
            rows: (0..100).map(|i| row(i, "o/r")).collect(),
            ..Default::default()
        };
        let last = CachedPage {
            etag: None,
            total_count: 150,
            rows: (0..50).map(|i| row(i, "o/r")).collect(),
            ..Default::default()
        };
        let inst = InstallationId::parse("7").unwrap();
        assert_eq!(
            full.link(inst, 1, "https://api.github.com/"),
            Some(r#"<https://api.github.com/user/installations/7/repositories?per_page=100&page=2>; rel="next""#.into()),
            "a legacy cache follows the page-length rule"
        );
        assert_eq!(last.link(inst, 2, "https://api.github.com"), None);
        let linked = CachedPage {
            link: Some("<x>; rel=\"next\"".into()),
            link_known: true,
            ..last.clone()
        };
        assert_eq!(
            linked.link(inst, 2, "b"),
            linked.link,
            "a kept Link wins, even on a short page"
        );
        let known_last = CachedPage {
            link_known: true,
            ..full.clone()
        };
        assert_eq!(
            known_last.link(inst, 1, "b"),
            None,
            "a full page without Link is the last"
        );
        let (rows, incomplete) = assemble(&[full.clone(), last.clone()]);
        assert!(assemble(&[full]).1, "capped after the first page");
        assert_eq!((rows.len(), incomplete), (150, false));
        assert!(CacheMeta {
            pages: 1,
            synced_at: 0
        }
        .fresh(CACHE_TTL_SECS - 1));
        assert!(!CacheMeta {
            pages: 1,
            synced_at: 0
        }
        .fresh(CACHE_TTL_SECS));
        assert_eq!(
            page_path(InstallationId::parse("7").unwrap(), 2),
            "/user/installations/7/repositories?per_page=100&page=2"
        );
    }
}
