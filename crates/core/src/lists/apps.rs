//! `GET /api/apps`: every registered GitHub App, in app-id order, a page at a time. The app
//! directory (`tenancy::directory`, the `apps` object) knows which apps exist; each page's
//! apps are then read from their own objects, whose view shows no secret (only whether each
//! is set, and the private key's fingerprint).

use crate::error::ApiError;
use crate::ids::AppId;
use crate::lists::parse_page;

/// `?limit=&cursor=` of the listing.
#[derive(Debug, PartialEq, Eq)]
pub struct AppsQuery {
    pub limit: usize,
    /// Apps with a greater id only.
    pub after: Option<AppId>,
}

pub fn parse_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<AppsQuery, ApiError> {
    let (limit, after) = parse_page(pairs, |v| AppId::parse(v).ok())?;
    Ok(AppsQuery { limit, after })
}

/// The apps of the page `query` asks for, out of every registered app (in any order), and
/// the next page's cursor (`None` on the last page).
pub fn page(mut apps: Vec<AppId>, query: &AppsQuery) -> (Vec<AppId>, Option<String>) {
    apps.sort();
    apps.dedup();
    apps.retain(|a| query.after.is_none_or(|after| *a > after));
    let more = apps.len() > query.limit;
    apps.truncate(query.limit);
    let next = if more {
        apps.last().map(ToString::to_string)
    } else {
        None
    };
    (apps, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ns: &[u64]) -> Vec<AppId> {
        ns.iter().map(|n| AppId::from_u64(*n).unwrap()).collect()
    }

    fn list_all(all: &[u64], limit: usize) -> Vec<Vec<u64>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let limit = limit.to_string();
            let mut pairs = vec![("limit", limit.as_str())];
            if let Some(c) = &cursor {
                pairs.push(("cursor", c.as_str()));
            }
            let q = parse_query(pairs).unwrap();
            let (apps, next) = page(ids(all), &q);
            pages.push(apps.iter().map(|a| a.get()).collect());
            match next {
                Some(n) => cursor = Some(n),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_in_id_order_not_key_order() {
        // The directory lists `app:10` before `app:9`: ids are compared as numbers.
        let all = [10, 9, 100, 2, 11];
        assert_eq!(list_all(&all, 2), vec![vec![2, 9], vec![10, 11], vec![100]]);
        assert_eq!(list_all(&all, 5), vec![vec![2, 9, 10, 11, 100]]);
        assert_eq!(list_all(&[], 5), vec![Vec::<u64>::new()]);
    }

    #[test]
    fn an_app_deleted_between_pages_moves_nothing() {
        let q = parse_query([("limit", "2"), ("cursor", "9")]).unwrap();
        // 9 (the cursor) is gone now: the page still starts after it.
        let (apps, next) = page(ids(&[2, 10, 11, 12]), &q);
        assert_eq!(apps, ids(&[10, 11]));
        assert_eq!(next.as_deref(), Some("11"));
    }

    #[test]
    fn query_is_checked() {
        assert_eq!(
            parse_query([]).unwrap(),
            AppsQuery {
                limit: 50,
                after: None
            }
        );
        for (pairs, message) in [
            (vec![("limit", "0")], "limit: must be 1 to 100"),
            (
                vec![("cursor", "0")],
                "cursor: not a cursor of this listing",
            ),
            (
                vec![("cursor", "app:1")],
                "cursor: not a cursor of this listing",
            ),
            (vec![("page", "2")], "unknown query parameter page"),
        ] {
            let e = parse_query(pairs).unwrap_err();
            assert_eq!(e.code(), "validation_failed");
            assert_eq!(e.to_string(), message);
        }
    }
}
