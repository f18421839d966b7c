//! The tenant listing (`GET /api/installations`): one summary row per tenant, never a secret.
//!
//! Durable Objects cannot be enumerated, so each tenant's object publishes its row to an index
//! when the row changes (config written or deleted, an installation lifecycle webhook). The
//! index is split into [`SHARDS`] objects by installation id, and a page is the merge of the
//! shards' pages. Rows are listed in installation-id order: an id never changes, so a row
//! updated while someone pages through the listing never moves to another page.
//!
//! **Invariant:** [`SHARDS`] never changes. Rows are found by `id % SHARDS`; another number
//! would hide every row already written.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::{AppId, InstallationId};
use crate::tenancy::config::{Account, InstallationRecord};

/// How many index objects hold the rows.
pub const SHARDS: u64 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
}

/// What the listing shows of a tenant: no secret, no config flag, only who and how it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRow {
    pub id: InstallationId,
    pub app_id: AppId,
    pub account: Option<Account>,
    pub status: TenantStatus,
    pub repository_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl TenantRow {
    pub fn of(record: &InstallationRecord) -> TenantRow {
        TenantRow {
            id: record.installation_id,
            app_id: record.app_id,
            account: record.account.clone(),
            status: if record.suspended {
                TenantStatus::Suspended
            } else {
                TenantStatus::Active
            },
            repository_count: record.repositories.len() as u64,
            created_at: record.created_at.clone(),
            updated_at: record.updated_at.clone(),
        }
    }
}

/// What a tenant's object does about its listing row, given the row its config makes now and
/// the row it last published.
#[derive(Debug, PartialEq, Eq)]
pub enum ListingChange {
    /// The index already shows this: no call to it (the common case of a delivery).
    Nothing,
    Publish(TenantRow),
    Withdraw,
}

pub fn listing_change(current: Option<TenantRow>, published: Option<&TenantRow>) -> ListingChange {
    match (current, published) {
        (Some(row), Some(old)) if row == *old => ListingChange::Nothing,
        (Some(row), _) => ListingChange::Publish(row),
        (None, Some(_)) => ListingChange::Withdraw,
        (None, None) => ListingChange::Nothing,
    }
}

/// The index shard that holds `id`'s row.
pub fn shard_of(id: InstallationId) -> u64 {
    id.get() % SHARDS
}

/// The name of shard `shard`'s object.
pub fn shard_object_name(shard: u64) -> String {
    format!("tenants-index-{shard}")
}

/// A row's storage key in its shard: zero-padded, so key order is id order.
pub fn row_key(id: InstallationId) -> String {
    format!("t:{:020}", id.get())
}

pub const ROW_PREFIX: &str = "t:";

/// `?limit=&cursor=` of the listing.
#[derive(Debug, PartialEq, Eq)]
pub struct PageQuery {
    pub limit: usize,
    /// Rows with a greater id only.
    pub after: Option<InstallationId>,
}

/// Parses the query pairs; anything else than `limit` (1 to 100) and a `cursor` this listing
/// handed out is refused.
pub fn parse_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<PageQuery, ApiError> {
    let (limit, after) = crate::lists::parse_page(pairs, |v| InstallationId::parse(v).ok())?;
    Ok(PageQuery { limit, after })
}

/// One page from the shards' answers. Each shard answered at most `limit + 1` rows after the
/// cursor, in id order: if the shards together hold more than `limit` rows after it, at least
/// `limit + 1` are among the answers, so "more" is known without another round.
pub fn merge(shards: Vec<Vec<TenantRow>>, limit: usize) -> (Vec<TenantRow>, Option<String>) {
    let mut rows: Vec<TenantRow> = shards.into_iter().flatten().collect();
    rows.sort_by_key(|r| r.id);
    rows.dedup_by_key(|r| r.id);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::Sealed;
    use crate::tenancy::config::{PlainInput, SealedSecret};

    fn id(n: u64) -> InstallationId {
        InstallationId::from_u64(n).unwrap()
    }

    fn row(n: u64) -> TenantRow {
        TenantRow {
            id: id(n),
            app_id: AppId::from_u64(7).unwrap(),
            account: None,
            status: TenantStatus::Active,
            repository_count: 0,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    /// What a shard answers: its rows after `after`, in id order, at most `limit + 1`.
    fn shard_page(all: &[u64], shard: u64, q: &PageQuery) -> Vec<TenantRow> {
        let mut ids: Vec<u64> = all
            .iter()
            .copied()
            .filter(|n| shard_of(id(*n)) == shard && q.after.is_none_or(|a| *n > a.get()))
            .collect();
        ids.sort();
        ids.into_iter().take(q.limit + 1).map(row).collect()
    }

    fn list_all(all: &[u64], limit: usize) -> Vec<Vec<u64>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs = vec![("limit", limit.to_string())];
            if let Some(c) = &cursor {
                pairs.push(("cursor", c.clone()));
            }
            let q = parse_query(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
            let answers = (0..SHARDS).map(|s| shard_page(all, s, &q)).collect();
            let (rows, next) = merge(answers, q.limit);
            pages.push(rows.iter().map(|r| r.id.get()).collect());
            match next {
                Some(n) => cursor = Some(n),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_through_every_shard_in_id_order() {
        let all = [17, 3, 4, 8, 12, 5, 100, 9, 1];
        assert_eq!(
            list_all(&all, 2),
            vec![vec![1, 3], vec![4, 5], vec![8, 9], vec![12, 17], vec![100]]
        );
        assert_eq!(
            list_all(&all, 100),
            vec![vec![1, 3, 4, 5, 8, 9, 12, 17, 100]]
        );
        // Exactly a page's worth: no cursor to an empty page.
        assert_eq!(list_all(&[4, 8], 2), vec![vec![4, 8]]);
        assert_eq!(list_all(&[], 2), vec![Vec::<u64>::new()]);
    }

    #[test]
    fn one_shard_holding_everything_still_says_more() {
        // All in shard 0: the other shards answer nothing.
        let all = [4, 8, 12, 16, 20];
        assert_eq!(list_all(&all, 2), vec![vec![4, 8], vec![12, 16], vec![20]]);
    }

    #[test]
    fn the_index_is_called_only_when_the_row_changed() {
        let mut suspended = row(9);
        suspended.status = TenantStatus::Suspended;
        assert_eq!(
            listing_change(Some(row(9)), Some(&row(9))),
            ListingChange::Nothing
        );
        assert_eq!(listing_change(None, None), ListingChange::Nothing);
        assert_eq!(
            listing_change(Some(row(9)), None),
            ListingChange::Publish(row(9))
        );
        assert_eq!(
            listing_change(Some(suspended.clone()), Some(&row(9))),
            ListingChange::Publish(suspended)
        );
        assert_eq!(listing_change(None, Some(&row(9))), ListingChange::Withdraw);
    }

    #[test]
    fn merge_drops_a_row_answered_twice() {
        let (rows, next) = merge(vec![vec![row(2), row(5)], vec![row(2)]], 10);
        assert_eq!(rows, vec![row(2), row(5)]);
        assert_eq!(next, None);
    }

    #[test]
    fn query_is_checked() {
        let q = |pairs: &[(&'static str, &'static str)]| parse_query(pairs.iter().copied());
        assert_eq!(
            q(&[]).unwrap(),
            PageQuery {
                limit: 50,
                after: None
            }
        );
        assert_eq!(
            q(&[("limit", "100"), ("cursor", "42")]).unwrap(),
            PageQuery {
                limit: 100,
                after: Some(id(42))
            }
        );
        for (pairs, message) in [
            (vec![("limit", "0")], "limit: must be 1 to 100"),
            (vec![("limit", "101")], "limit: must be 1 to 100"),
            (vec![("limit", "x")], "limit: must be 1 to 100"),
            (
                vec![("cursor", "0")],
                "cursor: not a cursor of this listing",
            ),
            (
                vec![("cursor", "t:1")],
                "cursor: not a cursor of this listing",
            ),
            (vec![("page", "2")], "unknown query parameter page"),
        ] {
            let e = q(&pairs).unwrap_err();
            assert_eq!(e.code(), "validation_failed");
            assert_eq!(e.to_string(), message);
        }
    }

    #[test]
    fn keys_sort_like_ids_and_shards_are_fixed() {
        assert_eq!(row_key(id(42)), "t:00000000000000000042");
        assert!(row_key(id(9)) < row_key(id(10)));
        assert!(row_key(id(99_999_999)) < row_key(id(100_000_000)));
        assert_eq!(shard_of(id(9)), 1);
        assert_eq!(shard_object_name(3), "tenants-index-3");
    }

    #[test]
    fn a_row_shows_status_and_counts_but_no_secret() {
        let input = PlainInput::parse(
            br#"{"appId":7,"account":{"login":"octo-org","id":77,"type":"Organization"},
                "repositories":["octo-org/a","octo-org/b"]}"#,
        )
        .unwrap()
        .with_secrets(None, None);
        let mut record = InstallationRecord::replace(id(9), input, None, "2026-02-03T04:05:06Z");
        record.private_key = Some(SealedSecret {
            sealed: Sealed::new("k1".into(), &[0; 12], b"sealed-key"),
            fingerprint: Some("SHA256:abc".into()),
        });
        record.suspended = true;
        let view = serde_json::to_value(TenantRow::of(&record)).unwrap();
        assert_eq!(
            view,
            serde_json::json!({"id": 9, "appId": 7,
                "account": {"login": "octo-org", "id": 77, "type": "Organization"},
                "status": "suspended", "repositoryCount": 2,
                "createdAt": "2026-02-03T04:05:06Z", "updatedAt": "2026-02-03T04:05:06Z"})
        );
    }
}
