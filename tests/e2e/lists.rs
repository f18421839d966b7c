//! The console's lists: `GET /api/apps`, `GET /api/installers` and `GET /api/deliveries`
//! (every tenant's). Each pages over more than one page, filters, is open to a viewer's
//! session, and never shows a secret. Other tests share the worker, so each test looks only
//! at what it made (unique ids, owners and repositories) while paging through everything.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::admin_access::{sign_in_as, SignedIn};
use crate::api::{Api, Resp};
use crate::config::PRIVATE_KEY;
use crate::identity::{register_app, APP_WEBHOOK_SECRET, CLIENT_SECRET};
use crate::webhooks::{delivery_id, fixture, post};
use crate::{unique_id, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "lists::apps_page_in_id_order_redacted",
        apps_page_in_id_order_redacted,
    ),
    (
        "lists::installers_page_newest_first_and_follow_changes",
        installers_page_newest_first_and_follow_changes,
    ),
    (
        "lists::deliveries_of_every_tenant_page_filter_and_report_the_scan",
        deliveries_of_every_tenant_page_filter_and_report_the_scan,
    ),
];

/// The shared worker's viewer login (`people::worker_vars`).
const VIEWER: &str = crate::people::VIEWER;
/// Tenants per page of `GET /api/deliveries` (`lists::deliveries::MAX_TENANTS_PER_PAGE`).
const SCAN: u64 = 20;

/// Every secret the tests hand the worker that a list could leak.
fn secrets() -> Vec<String> {
    let key_body: String = PRIVATE_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    vec![
        "-----BEGIN".to_owned(),
        key_body[..48].to_owned(),
        key_body[200..248].to_owned(),
        APP_WEBHOOK_SECRET.to_owned(),
        CLIENT_SECRET.to_owned(),
        "ghpsk_".to_owned(),
    ]
}

fn assert_no_secret(path: &str, r: &Resp) {
    let text = r.text();
    for s in secrets() {
        assert!(!text.contains(&s), "{path} shows a secret ({}…)", &s[..8]);
    }
}

fn as_viewer(api: &Api, viewer: &SignedIn, path: &str) -> Resp {
    let auth = format!("Bearer {}", viewer.token);
    api.send("GET", path, &[("authorization", auth.as_str())], None)
}

/// Every page of `path` (a query without `cursor`), read with the admin token, or as the
/// viewer when given; each page is checked for secrets. The pages' bodies.
fn pages(api: &Api, viewer: Option<&SignedIn>, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_owned(),
        };
        let r = match viewer {
            Some(v) => as_viewer(api, v, &url),
            None => api.admin("GET", &url, None),
        };
        assert_eq!(r.status, 200, "GET {url}: {}", r.text());
        assert_no_secret(&url, &r);
        let body = r.json();
        cursor = body["nextCursor"].as_str().map(str::to_owned);
        out.push(body);
        if cursor.is_none() {
            return out;
        }
        assert!(out.len() < 2000, "{path}: the cursor never ends");
    }
}

/// The items of `pages` under `key`, page by page.
fn items<'a>(pages: &'a [Value], key: &str) -> Vec<&'a Vec<Value>> {
    pages.iter().map(|p| p[key].as_array().unwrap()).collect()
}

fn refused(api: &Api, path: &str) {
    let r = api.admin("GET", path, None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "validation_failed"),
        "{path}: {}",
        r.text()
    );
}

fn apps_page_in_id_order_redacted(s: &Shared) {
    let mine: Vec<u64> = (0..3).map(|_| unique_id()).collect();
    for app in &mine {
        register_app(&s.api, *app);
    }
    let viewer = sign_in_as(s, VIEWER);
    let all = pages(&s.api, Some(&viewer), "/api/apps?limit=2");
    assert!(all.len() > 1, "three apps at two a page");
    let listed: Vec<&Value> = items(&all, "apps").into_iter().flatten().collect();
    assert!(items(&all, "apps").iter().all(|p| p.len() <= 2));
    let ids: Vec<u64> = listed
        .iter()
        .map(|a| a["appId"].as_u64().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "app-id order, each app once");
    for app in &mine {
        let row = listed
            .iter()
            .find(|a| a["appId"] == *app)
            .unwrap_or_else(|| panic!("app {app} not listed"));
        // As `GET /api/apps/{app_id}` shows it.
        let one = s.api.admin("GET", &format!("/api/apps/{app}"), None).json();
        assert_eq!(**row, one);
        assert_eq!(row["slug"], format!("ghplane-e2e-{app}"));
        assert_eq!(row["webhookSecret"]["set"], true);
        assert_eq!(row["clientSecret"], json!({"set": true}));
        assert_eq!(row["privateKey"]["set"], true);
    }
    // A deleted app leaves the list.
    assert_eq!(
        s.api
            .admin("DELETE", &format!("/api/apps/{}", mine[1]), None)
            .status,
        204
    );
    let after = pages(&s.api, None, "/api/apps?limit=100");
    let ids: BTreeSet<u64> = items(&after, "apps")
        .into_iter()
        .flatten()
        .map(|a| a["appId"].as_u64().unwrap())
        .collect();
    assert!(ids.contains(&mine[0]) && ids.contains(&mine[2]) && !ids.contains(&mine[1]));
    for q in ["limit=0", "limit=101", "cursor=x", "cursor=0", "page=2"] {
        refused(&s.api, &format!("/api/apps?{q}"));
    }
    let r = s.api.send("GET", "/api/apps", &[], None);
    assert_eq!(r.status, 401);
}

fn installers_page_newest_first_and_follow_changes(s: &Shared) {
    let owner = format!("lists-{}", unique_id());
    let mut made = Vec::new();
    for n in 0..3 {
        let body = json!({"mode": "repo", "repository": format!("{owner}/repo-{n}")});
        let r = s.api.admin("POST", "/api/installers", Some(&body));
        assert_eq!(r.status, 201, "{}", r.text());
        made.push(r.json()["id"].as_str().unwrap().to_owned());
        // Distinct creation times (milliseconds), so newest first is this order reversed.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let org = format!("lists-org-{}", unique_id());
    let r = s.api.admin(
        "POST",
        "/api/installers",
        Some(&json!({"mode": "org", "org": org})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    made.push(r.json()["id"].as_str().unwrap().to_owned());
    // One uninstalled: its row follows.
    let r = s
        .api
        .admin("DELETE", &format!("/api/installers/{}", made[0]), None);
    assert_eq!(r.status, 200, "{}", r.text());

    let viewer = sign_in_as(s, VIEWER);
    let all = pages(&s.api, Some(&viewer), "/api/installers?limit=2");
    assert!(all.len() > 1, "four installers at two a page");
    let listed: Vec<&Value> = items(&all, "installers").into_iter().flatten().collect();
    let keys: Vec<(String, String)> = listed
        .iter()
        .map(|r| {
            (
                r["createdAt"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(keys, sorted, "newest first, each installer once");
    let mine: Vec<&Value> = made
        .iter()
        .rev()
        .map(|id| {
            *listed
                .iter()
                .find(|r| r["id"] == *id.as_str())
                .unwrap_or_else(|| panic!("installer {id} not listed"))
        })
        .collect();
    let order: Vec<usize> = mine
        .iter()
        .map(|m| listed.iter().position(|r| r["id"] == m["id"]).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "newest first: {order:?}"
    );
    assert_eq!(mine[0]["mode"], "org");
    assert_eq!(mine[0]["org"], org.as_str());
    assert_eq!(mine[1]["repository"], format!("{owner}/repo-2"));
    assert_eq!(mine[1]["phase"], "awaiting_app");
    assert_eq!(mine[1]["appId"], Value::Null);
    assert_eq!(mine[1]["conflicts"], json!([]));
    assert_eq!(mine[3]["phase"], "uninstalled");
    assert!(mine[3]["uninstalledAt"].is_string());
    for m in &mine {
        let text = m.to_string();
        assert!(
            !text.contains("serviceKey") && !text.contains("nonce") && !text.contains("setupUrl")
        );
    }
    for q in ["limit=0", "cursor=abc", "cursor=0", "status=active"] {
        refused(&s.api, &format!("/api/installers?{q}"));
    }
}

/// An `issues` delivery about `repo` to installation `id` of `app`; its delivery id.
fn issue_delivery(api: &Api, app: u64, id: u64, repo: &str) -> String {
    let mut body = fixture("issues", "opened.payload.json");
    body["installation"] = json!({"id": id, "node_id": "x"});
    body["repository"]["full_name"] = json!(repo);
    body["repository"]["name"] = json!(repo.split('/').nth(1).unwrap());
    body["repository"]["owner"]["login"] = json!(repo.split('/').next().unwrap());
    let delivery = delivery_id();
    let r = post(
        api,
        app,
        APP_WEBHOOK_SECRET,
        "issues",
        &delivery,
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    delivery
}

/// Every delivery `query` lists (across all pages), and each page's body.
fn deliveries(api: &Api, viewer: Option<&SignedIn>, query: &str) -> (Vec<Value>, Vec<Value>) {
    let all = pages(api, viewer, &format!("/api/deliveries?{query}"));
    for page in &all {
        let scanned = page["tenantsScanned"].as_u64().unwrap();
        assert!(scanned <= 2 * SCAN + 1, "{page}");
        if page["truncated"] == true {
            assert!(
                page["nextCursor"].is_string(),
                "more tenants follow: {page}"
            );
        }
        // Newest first within a page.
        let at: Vec<&str> = page["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["receivedAt"].as_str().unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] >= w[1]), "{at:?}");
    }
    let rows = items(&all, "deliveries")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    (rows, all)
}

fn ids_of(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn deliveries_of_every_tenant_page_filter_and_report_the_scan(s: &Shared) {
    let app = unique_id();
    register_app(&s.api, app);
    let owner = format!("lists-{}", unique_id());
    let (one, two) = (format!("{owner}/one"), format!("{owner}/two"));
    // More tenants than a page reads, so the scan is reported as truncated.
    let tenants: Vec<u64> = (0..=SCAN).map(|_| unique_id()).collect();
    for id in &tenants {
        let config = json!({"appId": app, "repositories": [one, two]});
        let r = s.api.admin(
            "PUT",
            &format!("/api/installations/{id}/config"),
            Some(&config),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let (a, b, c) = (tenants[0], tenants[1], tenants[SCAN as usize]);
    // Oldest first; the listing shows them newest first.
    let sent = [
        issue_delivery(&s.api, app, a, &one),
        issue_delivery(&s.api, app, b, &one),
        issue_delivery(&s.api, app, a, &two),
        issue_delivery(&s.api, app, c, &one),
        issue_delivery(&s.api, app, b, &one),
    ];

    let viewer = sign_in_as(s, VIEWER);
    let (rows, all) = deliveries(&s.api, Some(&viewer), &format!("repository={one}&limit=2"));
    let expected_one = [&sent[4], &sent[3], &sent[1], &sent[0]];
    let mut got = ids_of(&rows);
    let mut want: Vec<String> = expected_one.iter().map(|d| d.to_string()).collect();
    assert_eq!(got.len(), 4, "each once: {got:?}");
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(all.len() > 1);
    assert!(rows.iter().all(|r| r["repository"] == one.as_str()));
    // Each delivery says whose it is.
    let row = rows.iter().find(|r| r["id"] == sent[3].as_str()).unwrap();
    assert_eq!(row["installationId"], c);
    assert_eq!(row["event"], "issues");
    // Newest first (within a page, checked by `deliveries`; and within each tenant).
    let listed = ids_of(&rows);
    let at = |d: &String| listed.iter().position(|id| id == d).unwrap();
    assert!(at(&sent[4]) < at(&sent[1]), "{listed:?}");
    // The scan is reported: some page read a full group and said more tenants follow.
    assert!(
        all.iter()
            .any(|p| p["truncated"] == true && p["tenantsScanned"] == SCAN),
        "no page reported a truncated scan: {all:?}"
    );
    assert_eq!(all.last().unwrap()["truncated"], false);

    // Any case of the repository; and the other filters.
    let (rows, _) = deliveries(&s.api, None, &format!("repository={}", two.to_uppercase()));
    assert_eq!(ids_of(&rows), vec![sent[2].clone()]);
    let outcome = rows[0]["outcome"].as_str().unwrap().to_owned();
    let (rows, _) = deliveries(
        &s.api,
        None,
        &format!("repository={one}&event=issues&outcome={outcome}&limit=100"),
    );
    assert_eq!(ids_of(&rows).len(), 4);
    let (rows, _) = deliveries(&s.api, None, &format!("repository={one}&event=push"));
    assert!(rows.is_empty());
    let other = if outcome == "failed" {
        "accepted"
    } else {
        "failed"
    };
    let (rows, _) = deliveries(&s.api, None, &format!("repository={one}&outcome={other}"));
    assert!(rows.is_empty());
    // `since`, at the newest delivery's second: nothing older than that second.
    let (rows, _) = deliveries(&s.api, None, &format!("repository={one}&limit=100"));
    let newest = rows.iter().find(|r| r["id"] == sent[4].as_str()).unwrap();
    let second = format!("{}Z", &newest["receivedAt"].as_str().unwrap()[..19]);
    let (rows, _) = deliveries(&s.api, None, &format!("repository={one}&since={second}"));
    assert!(ids_of(&rows).contains(&sent[4]));
    // (Compared to the second: `.123Z` sorts before `Z` as text.)
    assert!(rows
        .iter()
        .all(|r| r["receivedAt"].as_str().unwrap()[..19] >= second[..19]));
    let (rows, _) = deliveries(&s.api, None, "since=2999-01-01T00:00:00Z&limit=100");
    assert!(rows.is_empty());

    // Bad filters are refused, and nothing else is read or changed.
    for q in [
        "event=Issues",
        "event=",
        "outcome=nope",
        "repository=no-slash",
        "since=yesterday",
        "limit=0",
        "limit=101",
        "cursor=zzz",
        "cursor=0",
        "tenant=1",
    ] {
        refused(&s.api, &format!("/api/deliveries?{q}"));
    }
    let r = s.api.send("GET", "/api/deliveries", &[], None);
    assert_eq!(r.status, 401);
}
