//! The console's listings that have no object of their own to ask: the registered apps
//! (`GET /api/apps`), the installers (`GET /api/installers`) and the deliveries of every
//! tenant (`GET /api/deliveries`). Each is paged with an opaque cursor, like the tenant
//! listing (`tenancy::listing`), and answers `{<items>: [...], "nextCursor": string|null}`;
//! none ever shows a secret.
//!
//! This file holds what the three share: the query's `limit` and its refusals, in the tenant
//! listing's words.

pub mod apps;
pub mod deliveries;
pub mod installers;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

/// `limit`: 1 to [`MAX_LIMIT`].
pub fn parse_limit(v: &str) -> Result<usize, ApiError> {
    v.parse()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| ApiError::Validation("limit: must be 1 to 100".into()))
}

/// `?limit=&cursor=` and nothing else: the limit ([`DEFAULT_LIMIT`] when absent) and the
/// cursor `cursor` reads (`None` refuses it as not this listing's).
pub fn parse_page<'a, C>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    cursor: impl Fn(&str) -> Option<C>,
) -> Result<(usize, Option<C>), ApiError> {
    let (mut limit, mut after) = (DEFAULT_LIMIT, None);
    for (k, v) in pairs {
        match k {
            "limit" => limit = parse_limit(v)?,
            "cursor" => after = Some(cursor(v).ok_or_else(bad_cursor)?),
            other => return Err(unknown_parameter(other)),
        }
    }
    Ok((limit, after))
}

/// A `cursor` this listing did not hand out.
pub fn bad_cursor() -> ApiError {
    ApiError::Validation("cursor: not a cursor of this listing".into())
}

pub fn unknown_parameter(name: &str) -> ApiError {
    ApiError::Validation(format!(
        "unknown query parameter {}",
        crate::ids::truncate(name, 40)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_refusals_read_like_the_tenant_listing() {
        assert_eq!(parse_limit("1"), Ok(1));
        assert_eq!(parse_limit("100"), Ok(100));
        for bad in ["0", "101", "x", "", "-1"] {
            let e = parse_limit(bad).unwrap_err();
            assert_eq!(
                (e.code(), e.to_string()),
                ("validation_failed", "limit: must be 1 to 100".into())
            );
        }
        assert_eq!(
            bad_cursor().to_string(),
            "cursor: not a cursor of this listing"
        );
        assert_eq!(
            unknown_parameter("page").to_string(),
            "unknown query parameter page"
        );
    }
}
