//! `GET /api/deliveries`: the deliveries of every tenant, newest first, with filters.
//!
//! Nothing global is written per delivery (the webhook path stays one object per delivery,
//! docs/performance.md): each tenant keeps its own log, and a page is read by fanning out to
//! the tenants' logs and merging their answers. So that a page's cost is bounded, a page
//! reads at most [`MAX_TENANTS_PER_PAGE`] tenants: the tenants, in installation-id order, are
//! taken a *group* at a time; the listing goes through one group's deliveries newest first,
//! then the next group's. The reply says so (`tenantsScanned`, and `truncated: true` when
//! more tenants follow), never silently: with at most that many tenants, the whole listing
//! is one newest-first sequence.
//!
//! The order is (received at, delivery id, installation id), all descending; the cursor
//! holds the group (after which tenant it starts, at which one it ends) and the last
//! position shown, so nothing is listed twice or skipped while deliveries arrive.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ids::{InstallationId, RepoFullName};
use crate::lists::{bad_cursor, parse_limit, unknown_parameter, DEFAULT_LIMIT};

/// The most tenants one page reads.
pub const MAX_TENANTS_PER_PAGE: usize = 20;

/// The outcomes a log row can hold (`processing`: claimed, not finished).
const OUTCOMES: &[&str] = &[
    "accepted",
    "ignored",
    "failed",
    "throttled",
    "duplicate",
    "processing",
];

/// Which deliveries to list; every field that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFilter {
    /// The `X-GitHub-Event` name, exactly.
    pub event: Option<String>,
    pub outcome: Option<String>,
    /// `owner/name`, compared without regard to case.
    pub repository: Option<String>,
    /// Received at or after this time (unix milliseconds).
    pub since_ms: Option<i64>,
}

/// A place in the listing's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub at_ms: i64,
    pub id: String,
    pub installation: InstallationId,
}

/// What one tenant's log is asked: up to `limit` rows matching `filter` that come after
/// the listing's position, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverySearch {
    pub filter: DeliveryFilter,
    /// `(received at, id)`: only rows older than it (or, when `inclusive`, also equal to it).
    pub before: Option<(i64, String)>,
    pub inclusive: bool,
    pub limit: u32,
}

impl DeliverySearch {
    /// The search of `tenant`'s log for a page after `position`. A row at exactly the
    /// position's time and id comes after it only in a tenant with a smaller id.
    pub fn of(
        filter: &DeliveryFilter,
        position: Option<&Position>,
        tenant: InstallationId,
        limit: usize,
    ) -> DeliverySearch {
        DeliverySearch {
            filter: filter.clone(),
            before: position.map(|p| (p.at_ms, p.id.clone())),
            inclusive: position.is_some_and(|p| tenant < p.installation),
            limit: limit as u32,
        }
    }
}

/// One delivery of one tenant's log, as a tenant's object answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub installation: InstallationId,
    pub id: String,
    pub received_at_ms: i64,
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub outcome: String,
    pub status: u16,
    pub error_code: Option<String>,
    pub reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub attempts: u64,
}

impl DeliveryRow {
    fn position(&self) -> Position {
        Position {
            at_ms: self.received_at_ms,
            id: self.id.clone(),
            installation: self.installation,
        }
    }

    /// The listing's item: a tenant's delivery log row, and whose it is.
    pub fn view(&self) -> Value {
        json!({
            "installationId": self.installation, "id": self.id,
            "receivedAt": crate::time::rfc3339_from_millis(self.received_at_ms),
            "event": self.event, "action": self.action, "repository": self.repository,
            "outcome": self.outcome, "status": self.status, "errorCode": self.error_code,
            "reason": self.reason, "durationMs": self.duration_ms, "attempts": self.attempts,
        })
    }
}

/// Where a page starts: the group of tenants (those after `group_after`, up to and with
/// `group_end` once the group's first page fixed it) and the last position shown in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FanCursor {
    pub group_after: Option<InstallationId>,
    pub group_end: Option<InstallationId>,
    pub position: Option<Position>,
}

const CURSOR_VERSION: &str = "d1";

fn opt_id(v: Option<InstallationId>) -> String {
    v.map_or_else(String::new, |i| i.to_string())
}

impl FanCursor {
    pub fn encode(&self) -> String {
        let (at, installation, id) = match &self.position {
            Some(p) => (p.at_ms.to_string(), Some(p.installation), p.id.as_str()),
            None => (String::new(), None, ""),
        };
        URL_SAFE_NO_PAD.encode(format!(
            "{CURSOR_VERSION}|{}|{}|{at}|{}|{id}",
            opt_id(self.group_after),
            opt_id(self.group_end),
            opt_id(installation),
        ))
    }

    pub fn decode(text: &str) -> Option<FanCursor> {
        if text.len() > 600 {
            return None;
        }
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let parts: Vec<&str> = raw.splitn(6, '|').collect();
        let [version, after, end, at, installation, id] = parts[..] else {
            return None;
        };
        let id_of = |s: &str| -> Option<Option<InstallationId>> {
            if s.is_empty() {
                Some(None)
            } else {
                InstallationId::parse(s).ok().map(Some)
            }
        };
        if version != CURSOR_VERSION {
            return None;
        }
        let position = match (at, id_of(installation)?) {
            ("", None) if id.is_empty() => None,
            (at, Some(installation)) if !id.is_empty() => Some(Position {
                at_ms: at.parse().ok()?,
                id: id.to_owned(),
                installation,
            }),
            _ => return None,
        };
        let cursor = FanCursor {
            group_after: id_of(after)?,
            group_end: id_of(end)?,
            position,
        };
        // A position belongs to a fixed group.
        if cursor.position.is_some() && cursor.group_end.is_none() {
            return None;
        }
        Some(cursor)
    }
}

/// The query of `GET /api/deliveries`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DeliveriesQuery {
    pub limit: usize,
    pub filter: DeliveryFilter,
    pub cursor: FanCursor,
}

fn invalid(name: &str, why: &str) -> ApiError {
    ApiError::Validation(format!("{name}: {why}"))
}

/// Parses the query: `limit`, `cursor` and the filters, each checked before any object is
/// asked anything (a bad value is `validation_failed`).
pub fn parse_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<DeliveriesQuery, ApiError> {
    let mut q = DeliveriesQuery {
        limit: DEFAULT_LIMIT,
        ..DeliveriesQuery::default()
    };
    for (k, v) in pairs {
        match k {
            "limit" => q.limit = parse_limit(v)?,
            "cursor" => q.cursor = FanCursor::decode(v).ok_or_else(bad_cursor)?,
            "event" => {
                if v.is_empty()
                    || v.len() > 64
                    || !v.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                {
                    return Err(invalid("event", "must be a GitHub event name (a-z and _)"));
                }
                q.filter.event = Some(v.to_owned());
            }
            "outcome" => {
                if !OUTCOMES.contains(&v) {
                    return Err(invalid(
                        "outcome",
                        &format!("must be one of {}", OUTCOMES.join(", ")),
                    ));
                }
                q.filter.outcome = Some(v.to_owned());
            }
            "repository" => {
                let repo = RepoFullName::parse(v).map_err(|e| invalid("repository", &e))?;
                q.filter.repository = Some(repo.as_str().to_owned());
            }
            "since" => {
                let secs = crate::time::parse_rfc3339_utc(v).ok_or_else(|| {
                    invalid("since", "must be a UTC time like 2026-01-31T12:00:00Z")
                })?;
                q.filter.since_ms = Some(secs.saturating_mul(1000));
            }
            other => return Err(unknown_parameter(other)),
        }
    }
    Ok(q)
}

/// The tenants a page reads, and whether more tenants follow them.
#[derive(Debug, PartialEq, Eq)]
pub struct Group {
    pub tenants: Vec<InstallationId>,
    /// The last tenant of the group (fixed by its first page).
    pub end: Option<InstallationId>,
    pub more_tenants: bool,
}

/// How many tenants (after the cursor's `group_after`, in id order) to list to make the
/// page's group: one more than a group's size, or, once the group is fixed, room for the
/// tenants created inside it since.
pub fn tenants_to_list(cursor: &FanCursor) -> usize {
    match cursor.group_end {
        None => MAX_TENANTS_PER_PAGE + 1,
        Some(_) => 2 * MAX_TENANTS_PER_PAGE + 1,
    }
}

/// The page's group from `listed`: the tenant ids after `group_after`, in id order, at most
/// [`tenants_to_list`] of them.
pub fn group(cursor: &FanCursor, mut listed: Vec<InstallationId>) -> Group {
    let asked = tenants_to_list(cursor);
    match cursor.group_end {
        None => {
            let more_tenants = listed.len() > MAX_TENANTS_PER_PAGE;
            listed.truncate(MAX_TENANTS_PER_PAGE);
            Group {
                end: listed.last().copied(),
                tenants: listed,
                more_tenants,
            }
        }
        Some(end) => {
            // A full answer that never passed the end cannot tell: say more may follow.
            let more_tenants = listed.iter().any(|t| *t > end) || listed.len() >= asked;
            listed.retain(|t| *t <= end);
            Group {
                tenants: listed,
                end: Some(end),
                more_tenants,
            }
        }
    }
}

/// Merges the group's answers (each tenant's at most `limit + 1` rows after the position,
/// newest first): the page's rows, and whether the group holds more after them.
pub fn merge(answers: Vec<Vec<DeliveryRow>>, limit: usize) -> (Vec<DeliveryRow>, bool) {
    let mut rows: Vec<DeliveryRow> = answers.into_iter().flatten().collect();
    rows.sort_by(|a, b| {
        (b.received_at_ms, &b.id, b.installation).cmp(&(a.received_at_ms, &a.id, a.installation))
    });
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}

/// The next page's cursor: further into this group, else the next group, else none.
pub fn next_cursor(
    cursor: &FanCursor,
    group: &Group,
    rows: &[DeliveryRow],
    more_in_group: bool,
) -> Option<String> {
    let next = match (more_in_group, rows.last()) {
        (true, Some(last)) => FanCursor {
            group_after: cursor.group_after,
            group_end: group.end,
            position: Some(last.position()),
        },
        _ if group.more_tenants => FanCursor {
            group_after: group.end,
            group_end: None,
            position: None,
        },
        _ => return None,
    };
    Some(next.encode())
}

/// The reply: the page, the cursor, and how much of the tenants this page read.
pub fn reply(rows: &[DeliveryRow], next: Option<String>, group: &Group) -> Value {
    json!({
        "deliveries": rows.iter().map(DeliveryRow::view).collect::<Vec<_>>(),
        "nextCursor": next,
        "tenantsScanned": group.tenants.len(),
        "truncated": group.more_tenants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::DeliveryOutcome;

    fn tid(n: u64) -> InstallationId {
        InstallationId::from_u64(n).unwrap()
    }

    fn row(tenant: u64, at: i64, id: &str) -> DeliveryRow {
        DeliveryRow {
            installation: tid(tenant),
            id: id.into(),
            received_at_ms: at,
            event: "issues".into(),
            action: Some("opened".into()),
            repository: Some(format!("org/repo{tenant}")),
            outcome: "accepted".into(),
            status: 202,
            error_code: None,
            reason: None,
            duration_ms: Some(3),
            attempts: 1,
        }
    }

    /// What a tenant's log answers for a search, as the SQL does.
    fn answer(log: &[DeliveryRow], s: &DeliverySearch) -> Vec<DeliveryRow> {
        let mut rows: Vec<DeliveryRow> = log
            .iter()
            .filter(|r| {
                let f = &s.filter;
                f.event.as_ref().is_none_or(|e| *e == r.event)
                    && f.outcome.as_ref().is_none_or(|o| *o == r.outcome)
                    && f.repository.as_ref().is_none_or(|p| {
                        r.repository
                            .as_ref()
                            .is_some_and(|q| q.eq_ignore_ascii_case(p))
                    })
                    && f.since_ms.is_none_or(|t| r.received_at_ms >= t)
                    && s.before.as_ref().is_none_or(|(at, id)| {
                        let here = (r.received_at_ms, r.id.as_str());
                        let there = (*at, id.as_str());
                        here < there || (s.inclusive && here == there)
                    })
            })
            .cloned()
            .collect();
        rows.sort_by(|a, b| (b.received_at_ms, &b.id).cmp(&(a.received_at_ms, &a.id)));
        rows.truncate(s.limit as usize);
        rows
    }

    /// Every page of the listing over `logs` (by tenant), as the route reads it.
    fn list_all(logs: &[(u64, Vec<DeliveryRow>)], query: &str) -> Vec<(Vec<DeliveryRow>, Value)> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs: Vec<(&str, &str)> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap())
                .collect();
            if let Some(c) = &cursor {
                pairs.push(("cursor", c));
            }
            let q = parse_query(pairs).unwrap();
            let mut tenants: Vec<InstallationId> = logs
                .iter()
                .map(|(t, _)| tid(*t))
                .filter(|t| q.cursor.group_after.is_none_or(|a| *t > a))
                .collect();
            tenants.sort();
            tenants.truncate(tenants_to_list(&q.cursor));
            let g = group(&q.cursor, tenants);
            let answers = g
                .tenants
                .iter()
                .map(|t| {
                    let log = &logs.iter().find(|(n, _)| tid(*n) == *t).unwrap().1;
                    answer(
                        log,
                        &DeliverySearch::of(&q.filter, q.cursor.position.as_ref(), *t, q.limit + 1),
                    )
                })
                .collect();
            let (rows, more) = merge(answers, q.limit);
            let next = next_cursor(&q.cursor, &g, &rows, more);
            let body = reply(&rows, next.clone(), &g);
            pages.push((rows, body));
            match next {
                Some(n) => cursor = Some(n),
                None => return pages,
            }
        }
    }

    fn ids(pages: &[(Vec<DeliveryRow>, Value)]) -> Vec<Vec<String>> {
        pages
            .iter()
            .map(|(rows, _)| rows.iter().map(|r| r.id.clone()).collect())
            .collect()
    }

    #[test]
    fn one_group_is_one_newest_first_sequence_across_tenants() {
        let logs = vec![
            (1, vec![row(1, 10, "a"), row(1, 40, "d"), row(1, 30, "x")]),
            (2, vec![row(2, 20, "b"), row(2, 30, "x"), row(2, 50, "e")]),
            (3, vec![]),
        ];
        let pages = list_all(&logs, "limit=2");
        // The same time and id in two tenants: the larger tenant first, neither lost.
        assert_eq!(
            ids(&pages),
            vec![vec!["e", "d"], vec!["x", "x"], vec!["b", "a"]]
        );
        assert_eq!(pages[1].0[0].installation, tid(2));
        assert_eq!(pages[1].0[1].installation, tid(1));
        for (_, body) in &pages {
            assert_eq!(body["tenantsScanned"], 3);
            assert_eq!(body["truncated"], false);
        }
        assert_eq!(pages[2].1["nextCursor"], Value::Null);
        assert_eq!(
            ids(&list_all(&logs, "limit=100")),
            vec![vec!["e", "d", "x", "x", "b", "a"]]
        );
    }

    #[test]
    fn more_tenants_than_a_page_reads_go_group_by_group_and_say_so() {
        let n = MAX_TENANTS_PER_PAGE as u64 + 5;
        // Tenant t's one delivery is older the larger t is; the last tenants' are newest.
        let logs: Vec<(u64, Vec<DeliveryRow>)> = (1..=n)
            .map(|t| (t, vec![row(t, 1000 - t as i64, &format!("d{t}"))]))
            .chain([(n + 1, vec![row(n + 1, 5000, "newest")])])
            .collect();
        let pages = list_all(&logs, "limit=15");
        let first_group: Vec<String> = (1..=MAX_TENANTS_PER_PAGE as u64)
            .map(|t| format!("d{t}"))
            .collect();
        assert_eq!(ids(&pages)[0], first_group[..15]);
        assert_eq!(ids(&pages)[1], first_group[15..]);
        assert_eq!(pages[0].1["tenantsScanned"], MAX_TENANTS_PER_PAGE);
        assert_eq!(pages[0].1["truncated"], true);
        let rest: Vec<String> = ["newest".to_owned()]
            .into_iter()
            .chain((MAX_TENANTS_PER_PAGE as u64 + 1..=n).map(|t| format!("d{t}")))
            .collect();
        assert_eq!(ids(&pages)[2], rest);
        assert_eq!(pages[2].1["tenantsScanned"], 6);
        assert_eq!(pages[2].1["truncated"], false);
        assert_eq!(pages.len(), 3);
        // Each delivery once.
        let mut all: Vec<String> = ids(&pages).concat();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n as usize + 1);
    }

    #[test]
    fn filters_narrow_every_tenants_answer() {
        let mut failed = row(2, 30, "f");
        failed.outcome = "failed".into();
        let mut push = row(1, 25, "p");
        push.event = "push".into();
        let logs = vec![
            (1, vec![row(1, 10, "a"), push]),
            (2, vec![row(2, 20, "b"), failed]),
        ];
        assert_eq!(ids(&list_all(&logs, "event=push")), vec![vec!["p"]]);
        assert_eq!(ids(&list_all(&logs, "outcome=failed")), vec![vec!["f"]]);
        assert_eq!(
            ids(&list_all(&logs, "repository=ORG/Repo2&limit=1")),
            vec![vec!["f"], vec!["b"]]
        );
        let since = "since=1970-01-01T00:00:00Z";
        assert_eq!(ids(&list_all(&logs, since)), vec![vec!["f", "p", "b", "a"]]);
        assert_eq!(
            ids(&list_all(&logs, "since=2026-01-01T00:00:00Z")),
            vec![Vec::<String>::new()]
        );
    }

    #[test]
    fn a_tenant_created_inside_a_fixed_group_is_read_with_it() {
        let cursor = FanCursor {
            group_after: Some(tid(10)),
            group_end: Some(tid(40)),
            position: Some(Position {
                at_ms: 5,
                id: "x".into(),
                installation: tid(20),
            }),
        };
        let g = group(&cursor, vec![tid(20), tid(25), tid(40), tid(41)]);
        assert_eq!(
            g,
            Group {
                tenants: vec![tid(20), tid(25), tid(40)],
                end: Some(tid(40)),
                more_tenants: true
            }
        );
        let g = group(&cursor, vec![tid(20)]);
        assert_eq!(
            g,
            Group {
                tenants: vec![tid(20)],
                end: Some(tid(40)),
                more_tenants: false
            }
        );
    }

    #[test]
    fn cursors_round_trip_and_forged_ones_are_refused() {
        let c = FanCursor {
            group_after: Some(tid(3)),
            group_end: Some(tid(9)),
            position: Some(Position {
                at_ms: 1_700_000_000_000,
                id: "id|with|bars".into(),
                installation: tid(4),
            }),
        };
        assert_eq!(FanCursor::decode(&c.encode()), Some(c));
        let next_group = FanCursor {
            group_after: Some(tid(9)),
            group_end: None,
            position: None,
        };
        assert_eq!(FanCursor::decode(&next_group.encode()), Some(next_group));
        for forged in [
            "abc".to_owned(),
            URL_SAFE_NO_PAD.encode("d2|||||"),
            URL_SAFE_NO_PAD.encode("d1|0|||||"),
            URL_SAFE_NO_PAD.encode("d1|||5|4|x"),
            URL_SAFE_NO_PAD.encode("d1||9|x|4|x"),
            URL_SAFE_NO_PAD.encode("d1||9|5||x"),
            URL_SAFE_NO_PAD.encode("d1||9|5|4"),
            "A".repeat(601),
        ] {
            let e = parse_query([("cursor", forged.as_str())]).unwrap_err();
            assert_eq!(
                e.to_string(),
                "cursor: not a cursor of this listing",
                "{forged}"
            );
        }
    }

    #[test]
    fn filters_are_checked() {
        let q = parse_query([
            ("event", "pull_request"),
            ("outcome", "failed"),
            ("repository", "Octo-Org/API"),
            ("since", "2026-01-31T12:00:00Z"),
            ("limit", "7"),
        ])
        .unwrap();
        assert_eq!(q.limit, 7);
        assert_eq!(
            q.filter,
            DeliveryFilter {
                event: Some("pull_request".into()),
                outcome: Some("failed".into()),
                repository: Some("Octo-Org/API".into()),
                since_ms: Some(1_769_860_800_000),
            }
        );
        for (k, v, message) in [
            ("event", "", "event: must be a GitHub event name (a-z and _)"),
            ("event", "Issues", "event: must be a GitHub event name (a-z and _)"),
            ("event", "a;drop", "event: must be a GitHub event name (a-z and _)"),
            ("outcome", "ok", "outcome: must be one of accepted, ignored, failed, throttled, duplicate, processing"),
            ("since", "yesterday", "since: must be a UTC time like 2026-01-31T12:00:00Z"),
            ("limit", "0", "limit: must be 1 to 100"),
            ("page", "2", "unknown query parameter page"),
        ] {
            let e = parse_query([(k, v)]).unwrap_err();
            assert_eq!((e.code(), e.to_string()), ("validation_failed", message.to_owned()), "{k}={v}");
        }
        let e = parse_query([("repository", "no-slash")]).unwrap_err();
        assert_eq!(e.code(), "validation_failed");
        assert!(e.to_string().starts_with("repository: "), "{e}");
        for o in DeliveryOutcome::ALL {
            assert!(OUTCOMES.contains(&o.as_str()), "{o:?}");
        }
    }
}
