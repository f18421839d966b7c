//! `GET /api/installers`: every installer, newest first, a page at a time.
//!
//! Installers' objects cannot be enumerated, so each one publishes a summary row to one
//! index object (`installers-index`, of the `ProjectIndex` class) whenever the row changes:
//! created, its app made, installed, enrolled, uninstalled. A row's key is its creation time
//! then its id, neither of which ever changes, so a row that changes while someone pages
//! through the listing keeps its place. The row holds no secret: no setup nonce, no service
//! key (not even its id), nothing of the app's credentials.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::{AppId, InstallationId, RepoFullName};
use crate::installer::{InstallerId, InstallerRecord, Target};
use crate::lists::parse_page;

/// The index object's name.
pub const INDEX_OBJECT_NAME: &str = "installers-index";
/// Every row's key starts with this.
pub const ROW_PREFIX: &str = "i:";

/// What the listing shows of an installer (the index stores it as is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallerRow {
    pub id: InstallerId,
    pub mode: String,
    pub repository: Option<RepoFullName>,
    pub org: Option<String>,
    /// As `GET /api/installers/{id}` says it: `awaiting_app` … `uninstalled`.
    pub phase: String,
    pub app_id: Option<AppId>,
    pub app_slug: Option<String>,
    pub app_url: Option<String>,
    pub installation_id: Option<InstallationId>,
    pub misconfiguration: Option<String>,
    pub enrolled_count: u64,
    pub created_at: String,
    pub updated_at: String,
    pub uninstalled_at: Option<String>,
}

impl InstallerRow {
    pub fn of(r: &InstallerRecord) -> InstallerRow {
        let (repository, org) = match &r.target {
            Target::Repo { repository, .. } => (Some(repository.clone()), None),
            Target::Org { org, .. } => (None, Some(org.clone())),
        };
        InstallerRow {
            id: r.id.clone(),
            mode: r.target.mode().to_owned(),
            repository,
            org,
            phase: r.phase().as_str().to_owned(),
            app_id: r.app.as_ref().map(|a| a.app_id),
            app_slug: r.app.as_ref().map(|a| a.slug.clone()),
            app_url: r.app.as_ref().map(|a| a.html_url.clone()),
            installation_id: r.installation_id,
            misconfiguration: r.misconfiguration.clone(),
            enrolled_count: r.enrolled.len() as u64,
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            uninstalled_at: r.uninstalled_at.clone(),
        }
    }

    /// The account whose claim object holds the installer's claims and conflicts.
    pub fn owner(&self) -> &str {
        self.repository
            .as_ref()
            .map_or(self.org.as_deref().unwrap_or_default(), |r| r.owner())
    }

    /// The row's storage key: creation time then id, so that key order is age order.
    pub fn key(&self) -> String {
        position_key(&self.created_at, &self.id)
    }

    /// The cursor of the page after this row.
    fn cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.created_at, self.id))
    }
}

fn position_key(created_at: &str, id: &InstallerId) -> String {
    format!("{ROW_PREFIX}{created_at}|{id}")
}

/// `?limit=&cursor=` of the listing.
#[derive(Debug, PartialEq, Eq)]
pub struct InstallersQuery {
    pub limit: usize,
    /// Rows whose key sorts before this one only (older rows).
    pub before: Option<String>,
}

pub fn parse_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<InstallersQuery, ApiError> {
    let (limit, before) = parse_page(pairs, cursor_key)?;
    Ok(InstallersQuery { limit, before })
}

/// The storage key a cursor stands for; `None` unless this listing made it.
fn cursor_key(cursor: &str) -> Option<String> {
    if cursor.len() > 200 {
        return None;
    }
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (at, id) = raw.rsplit_once('|')?;
    crate::time::parse_rfc3339_utc(at)?;
    Some(position_key(at, &InstallerId::parse(id).ok()?))
}

/// One page from the index's answer: at most `limit + 1` rows, newest first.
pub fn page(mut rows: Vec<InstallerRow>, limit: usize) -> (Vec<InstallerRow>, Option<String>) {
    rows.sort_by_key(|r| std::cmp::Reverse(r.key()));
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(InstallerRow::cursor)
    } else {
        None
    };
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::{InstallerApp, ServiceKeyHandoff};
    use crate::sealed::Sealed;

    fn id(n: u8) -> InstallerId {
        InstallerId::from_random(&[0, 0, 0, 0, 0, 0, 0, n])
    }

    fn record(n: u8, at: &str) -> InstallerRecord {
        let target = Target::Repo {
            repository: RepoFullName::parse("octo-org/api").unwrap(),
            account: Default::default(),
        };
        InstallerRecord::new(id(n), target, "https://ghplane.example/", at)
    }

    fn at(second: u8) -> String {
        format!("2026-03-04T05:06:{second:02}.000Z")
    }

    /// What the index answers: rows before `before` (exclusive), newest first, `limit`.
    fn index_page(all: &[InstallerRow], q: &InstallersQuery) -> Vec<InstallerRow> {
        let mut rows: Vec<InstallerRow> = all
            .iter()
            .filter(|r| q.before.as_ref().is_none_or(|b| r.key() < *b))
            .cloned()
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.key()));
        rows.truncate(q.limit + 1);
        rows
    }

    #[test]
    fn pages_newest_first_and_ties_by_id() {
        let all: Vec<InstallerRow> = [(1, 10), (2, 30), (3, 20), (4, 30), (5, 5)]
            .iter()
            .map(|(n, s)| InstallerRow::of(&record(*n, &at(*s))))
            .collect();
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs = vec![("limit", "2")];
            if let Some(c) = &cursor {
                pairs.push(("cursor", c.as_str()));
            }
            let q = parse_query(pairs).unwrap();
            let (rows, next) = page(index_page(&all, &q), q.limit);
            pages.push(rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(
            pages,
            vec![vec![id(4), id(2)], vec![id(3), id(1)], vec![id(5)]]
        );
    }

    #[test]
    fn a_row_shows_the_phase_and_app_but_no_secret() {
        let mut r = record(7, &at(1));
        r.app = Some(InstallerApp {
            app_id: AppId::from_u64(42).unwrap(),
            slug: "ghplane-api".into(),
            html_url: "https://github.com/apps/ghplane-api".into(),
            owner: Some("octo-org".into()),
        });
        r.state = Some(crate::installer::PendingState {
            nonce: "the-nonce".into(),
            expires_at: 1,
        });
        r.service_key = Some(ServiceKeyHandoff {
            id: "key-id".into(),
            sealed: Some(Sealed::new("k".into(), &[0; 12], b"sealed-key")),
        });
        assert_eq!(InstallerRow::of(&r).owner(), "octo-org");
        let view = serde_json::to_value(InstallerRow::of(&r)).unwrap();
        assert_eq!(
            view,
            serde_json::json!({"id": id(7).as_str(), "mode": "repo", "repository": "octo-org/api",
                "org": null, "phase": "awaiting_installation", "appId": 42, "appSlug": "ghplane-api",
                "appUrl": "https://github.com/apps/ghplane-api", "installationId": null,
                "misconfiguration": null, "enrolledCount": 0, "createdAt": at(1),
                "updatedAt": at(1), "uninstalledAt": null})
        );
        let text = view.to_string();
        for secret in ["the-nonce", "key-id", "sealed"] {
            assert!(!text.contains(secret), "{secret}");
        }
        // Stored as is by the index, and read back.
        let back: InstallerRow = serde_json::from_value(view).unwrap();
        assert_eq!(back, InstallerRow::of(&r));
    }

    #[test]
    fn cursors_are_checked() {
        let row = InstallerRow::of(&record(1, &at(1)));
        let q = parse_query([("cursor", row.cursor().as_str())]).unwrap();
        assert_eq!(q.before, Some(row.key()));
        let forged = [
            "abc".to_owned(),
            URL_SAFE_NO_PAD.encode("yesterday|0000000000000001"),
            URL_SAFE_NO_PAD.encode(format!("{}|XYZ", at(1))),
            URL_SAFE_NO_PAD.encode(at(1)),
            "x".repeat(201),
        ];
        for c in forged {
            let e = parse_query([("cursor", c.as_str())]).unwrap_err();
            assert_eq!(e.to_string(), "cursor: not a cursor of this listing");
        }
        assert_eq!(
            parse_query([("limit", "101")]).unwrap_err().to_string(),
            "limit: must be 1 to 100"
        );
        assert_eq!(
            parse_query([("status", "active")]).unwrap_err().to_string(),
            "unknown query parameter status"
        );
    }
}
