//! Deliveries under real-world timing: a handler killed mid-delivery, GitHub's rate limits,
//! forged installations, short pages, dedupe past the log's cap, and the redelivery sweep.
//! Tests that need special settings or a restart run a worker of their own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ghplane_core::webhook::sign;
use serde_json::{json, Value};

use crate::api::Api;
use crate::fake_github::{Match, RecordedRequest, Reply, Respond, Times};
use crate::identity::{register_app, APP_WEBHOOK_SECRET};
use crate::webhooks::{delivery_id, fixture, installation_created, post};
use crate::worker::{Worker, WorkerOptions};
use crate::{unique_id, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "deliveries::a_delivery_killed_mid_handling_is_processed_once_on_redelivery",
        a_delivery_killed_mid_handling_is_processed_once_on_redelivery,
    ),
    (
        "deliveries::a_rate_limit_without_retry_after_is_not_retried_within_a_minute",
        a_rate_limit_without_retry_after_is_not_retried_within_a_minute,
    ),
    (
        "deliveries::a_forged_installation_of_another_app_creates_nothing",
        a_forged_installation_of_another_app_creates_nothing,
    ),
    (
        "deliveries::short_pages_are_followed_by_link",
        short_pages_are_followed_by_link,
    ),
    (
        "deliveries::dedupe_outlives_the_capped_log",
        dedupe_outlives_the_capped_log,
    ),
    (
        "deliveries::the_sweep_redelivers_each_lost_delivery_once",
        the_sweep_redelivers_each_lost_delivery_once,
    ),
];

const DEADLINE: Duration = Duration::from_secs(60);

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(200));
    }
}

fn github_error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
    )
}

/// The `iss` of the App JWT a request carried.
fn jwt_issuer(req: &RecordedRequest) -> Option<String> {
    let jwt = req.header("authorization")?.strip_prefix("Bearer ")?;
    let payload = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1)?).ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    claims["iss"].as_str().map(str::to_owned)
}

fn client_id(app: u64) -> String {
    format!("Iv1.e2e{app}")
}

fn requests_to(s: &Shared, path: &str) -> Vec<RecordedRequest> {
    s.fake
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

/// The delivery log row of `delivery` in installation `id`'s log (every page read).
fn log_row(api: &Api, id: u64, delivery: &str) -> Option<Value> {
    log_rows(api, id).into_iter().find(|r| r["id"] == delivery)
}

fn log_rows(api: &Api, id: u64) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.map_or(String::new(), |c| format!("&cursor={c}"));
        let r = api.admin(
            "GET",
            &format!("/api/installations/{id}/deliveries?limit=100{q}"),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        rows.extend(body["deliveries"].as_array().unwrap().iter().cloned());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return rows,
        }
    }
}

fn config_status(api: &Api, id: u64) -> u16 {
    api.admin("GET", &format!("/api/installations/{id}/config"), None)
        .status
}

fn issue_opened(id: u64, issue_id: u64) -> Vec<u8> {
    let mut body = fixture("issues", "opened.payload.json");
    body["installation"] = json!({"id": id, "node_id": "x"});
    body["issue"]["id"] = json!(issue_id);
    serde_json::to_vec(&body).unwrap()
}

fn work_issue_ids(api: &Api, id: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = api
        .admin("GET", &format!("/api/installations/{id}/work"), None)
        .json()["workItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["issueId"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

/// A registered app and a tenant of it created by its `installation.created`, with issues
/// enabled (up to `per_hour` work items an hour).
fn issue_tenant(api: &Api, per_hour: u32) -> (u64, u64) {
    let app = unique_id();
    register_app(api, app);
    let id = unique_id();
    let body =
        serde_json::to_vec(&installation_created(app, id, &[(id * 10, "octo-org/api")])).unwrap();
    let r = post(
        api,
        app,
        APP_WEBHOOK_SECRET,
        "installation",
        &delivery_id(),
        &body,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let patch =
        json!({"permissions": {"canProcessIssues": true, "maxContainersPerHour": per_hour}});
    let r = api.admin(
        "PATCH",
        &format!("/api/installations/{id}/config"),
        Some(&patch),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    (app, id)
}

fn own_worker(s: &Shared, name: &str, vars: &[(&str, &str)]) -> Worker {
    let mut options = WorkerOptions::new(&s.fake.base_url());
    options
        .vars
        .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Worker::start(&s.run_dir.join(format!("{name}-{}", unique_id())), options)
}

fn a_delivery_killed_mid_handling_is_processed_once_on_redelivery(s: &Shared) {
    let mut worker = own_worker(s, "lease", &[("DELIVERY_LEASE_SECONDS", "5")]);
    let api = Api::new(&worker.base_url());
    let app = unique_id();
    register_app(&api, app);
    let id = unique_id();
    let confirm = format!("/app/installations/{id}");
    let hold = {
        let confirm = confirm.clone();
        s.fake.hold(move |r| r.path == confirm)
    };
    let delivery = delivery_id();
    let body =
        serde_json::to_vec(&installation_created(app, id, &[(id * 10, "octo-org/api")])).unwrap();
    // The delivery's handling makes one GitHub call (the installation's confirmation); the
    // fake holds it while workerd is killed.
    let in_flight = {
        let (url, body, delivery) = (
            format!("{}/webhooks/github", worker.base_url()),
            body.clone(),
            delivery.clone(),
        );
        thread::spawn(move || {
            let _ = ureq::post(&url)
                .set("content-type", "application/json")
                .set("x-github-event", "installation")
                .set("x-github-delivery", &delivery)
                .set("x-github-hook-installation-target-type", "integration")
                .set("x-github-hook-installation-target-id", &app.to_string())
                .set(
                    "x-hub-signature-256",
                    &sign(APP_WEBHOOK_SECRET.as_bytes(), &body),
                )
                .send_bytes(&body);
        })
    };
    assert!(
        hold.wait_arrived(DEADLINE),
        "the delivery never reached its GitHub call"
    );
    worker.stop();
    hold.release();
    let _ = in_flight.join();
    assert_eq!(
        requests_to(s, &confirm).len(),
        1,
        "one call before the kill"
    );

    worker.restart();
    let api = Api::new(&worker.base_url());
    // GitHub's redelivery: a duplicate while the dead handler's lease runs, then processed.
    let answer = poll("the redelivery to be processed", || {
        let r = post(
            &api,
            app,
            APP_WEBHOOK_SECRET,
            "installation",
            &delivery,
            &body,
        );
        match r.status {
            200 => {
                assert_eq!(r.json()["status"], "duplicate", "{}", r.text());
                None
            }
            _ => Some(r),
        }
    });
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(answer.json()["status"], "accepted");
    assert_eq!(config_status(&api, id), 200, "the tenant exists");
    let row = log_row(&api, id, &delivery).expect("the delivery is in the log");
    assert_eq!(
        (row["outcome"].as_str(), row["attempts"].as_u64()),
        (Some("accepted"), Some(2)),
        "both attempts: {row}"
    );
    let again = post(
        &api,
        app,
        APP_WEBHOOK_SECRET,
        "installation",
        &delivery,
        &body,
    );
    assert_eq!(
        (again.status, again.json()["status"].as_str()),
        (200, Some("duplicate")),
        "a finished delivery stays a duplicate"
    );
    assert_eq!(
        requests_to(s, &confirm).len(),
        2,
        "one confirmation per handling: the killed one and the redelivered one"
    );
}

fn a_rate_limit_without_retry_after_is_not_retried_within_a_minute(s: &Shared) {
    let app = unique_id();
    register_app(&s.api, app);
    let id = unique_id();
    let confirm = format!("/app/installations/{id}");
    s.fake.on(
        Match::operation_at("apps/get-installation", &confirm),
        github_error(429, "API rate limit exceeded"),
        Times::Once,
    );
    let delivery = delivery_id();
    let body =
        serde_json::to_vec(&installation_created(app, id, &[(id * 10, "octo-org/api")])).unwrap();
    let r = post(
        &s.api,
        app,
        APP_WEBHOOK_SECRET,
        "installation",
        &delivery,
        &body,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "github_rate_limited"),
        "{}",
        r.text()
    );
    assert_eq!(r.json()["error"]["retry_after"], 60, "GitHub's minute");
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(
        requests_to(s, &confirm).len(),
        1,
        "no second call: the minute is the caller's to wait"
    );
    assert_eq!(config_status(&s.api, id), 404);

    let r = post(
        &s.api,
        app,
        APP_WEBHOOK_SECRET,
        "installation",
        &delivery,
        &body,
    );
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (202, Some("accepted")),
        "the redelivery is processed"
    );
    assert_eq!(config_status(&s.api, id), 200);
    assert_eq!(
        log_row(&s.api, id, &delivery).unwrap()["attempts"],
        2,
        "the failed attempt and the redelivery"
    );
}

fn a_forged_installation_of_another_app_creates_nothing(s: &Shared) {
    let owner = unique_id();
    register_app(&s.api, owner);
    let other = unique_id();
    register_app(&s.api, other);
    let id = unique_id();
    let confirm = format!("/app/installations/{id}");
    // GitHub shows an installation only to its own app.
    s.fake.on(
        Match::operation_at("apps/get-installation", &confirm),
        github_error(404, "Not Found"),
        Times::Once,
    );
    let forged = delivery_id();
    let mut body = installation_created(other, id, &[(id * 10, "victim-org/api")]);
    body["installation"]["account"]["login"] = json!(format!("victim-org-{id}"));
    let r = post(
        &s.api,
        other,
        APP_WEBHOOK_SECRET,
        "installation",
        &forged,
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        (r.json()["status"].as_str(), r.json()["reason"].as_str()),
        (Some("ignored"), Some("installation_not_confirmed"))
    );
    assert_eq!(config_status(&s.api, id), 404, "no tenant");
    let asked = requests_to(s, &confirm);
    assert_eq!(asked.len(), 1);
    assert_eq!(
        jwt_issuer(&asked[0]),
        Some(client_id(other)),
        "asked as the app that signed"
    );
    let row = log_row(&s.api, id, &forged).expect("the forged delivery is logged");
    assert_eq!(
        (row["outcome"].as_str(), row["reason"].as_str()),
        (Some("ignored"), Some("installation_not_confirmed"))
    );

    // The genuine delivery of the owner still creates the tenant.
    let genuine = installation_created(owner, id, &[(id * 10, "victim-org/api")]);
    let r = post(
        &s.api,
        owner,
        APP_WEBHOOK_SECRET,
        "installation",
        &delivery_id(),
        &serde_json::to_vec(&genuine).unwrap(),
    );
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (202, Some("accepted"))
    );
    let config = s
        .api
        .admin("GET", &format!("/api/installations/{id}/config"), None);
    assert_eq!(config.json()["appId"], owner);
}

fn short_pages_are_followed_by_link(s: &Shared) {
    let who = crate::admin_access::sign_in(s);
    let inst = unique_id();
    let path = format!("/user/installations/{inst}/repositories");
    // Three pages of two (100 were asked for), chained by `Link`, answered in order.
    let pages = (1..=3u64).map(|page| {
        let repos: Vec<Value> = (0..2)
            .map(|i| {
                let name = format!("short-{page}-{i}");
                json!({"id": inst * 100 + page * 10 + i, "node_id": format!("R_{name}"), "name": name,
                    "full_name": format!("org-{inst}/{name}"), "default_branch": "main",
                    "private": false, "archived": false})
            })
            .collect();
        let next = (page < 3)
            .then(|| format!("{}{path}?per_page=100&page={}", s.fake.base_url(), page + 1));
        Reply::json(200, json!({"total_count": 6, "repositories": repos})).link_next(next)
    });
    s.fake.on(
        Match::operation_at("apps/list-installation-repos-for-authenticated-user", &path),
        Respond::in_turn(pages),
        Times::N(3),
    );
    let r = crate::admin_access::repos(s, &who, &format!("installation_id={inst}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let names: Vec<&str> = body["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "short-1-0",
            "short-1-1",
            "short-2-0",
            "short-2-1",
            "short-3-0",
            "short-3-1"
        ],
        "every short page read: {body}"
    );
    assert_eq!(body["incomplete"], false);
    let pages: Vec<Option<String>> = requests_to(s, &path)
        .iter()
        .map(|r| r.query_param("page"))
        .collect();
    assert_eq!(
        pages,
        [Some("1".into()), Some("2".into()), Some("3".into())]
    );
}

fn dedupe_outlives_the_capped_log(s: &Shared) {
    let worker = own_worker(s, "logcap", &[("DELIVERY_LOG_MAX_ROWS", "100")]);
    let api = Api::new(&worker.base_url());
    let (app, id) = issue_tenant(&api, 100);
    let first = delivery_id();
    let r = post(
        &api,
        app,
        APP_WEBHOOK_SECRET,
        "issues",
        &first,
        &issue_opened(id, 1),
    );
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (202, Some("accepted"))
    );
    for n in 2..=300u64 {
        let r = post(
            &api,
            app,
            APP_WEBHOOK_SECRET,
            "issues",
            &delivery_id(),
            &issue_opened(id, n),
        );
        assert_eq!(r.status, 202, "delivery {n}: {}", r.text());
    }
    let rows = log_rows(&api, id);
    assert_eq!(rows.len(), 100, "the log keeps its cap");
    assert!(
        rows.iter().all(|r| r["id"] != first.as_str()),
        "the first delivery left the log"
    );
    let r = post(
        &api,
        app,
        APP_WEBHOOK_SECRET,
        "issues",
        &first,
        &issue_opened(id, 1),
    );
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("duplicate")),
        "{}",
        r.text()
    );
    let work = api
        .admin("GET", &format!("/api/installations/{id}/work"), None)
        .json();
    let of_first: Vec<&Value> = work["workItems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["issueId"] == 1)
        .collect();
    assert_eq!(of_first.len(), 1, "one work item for the first issue");
    assert_eq!(of_first[0]["delivery"], first.as_str());
}

/// What the fake GitHub lists per app (by the JWT's issuer), and what a redelivery request
/// of a numeric delivery id posts to which worker.
static LISTED: Mutex<Option<HashMap<String, Vec<Value>>>> = Mutex::new(None);
static REDELIVERABLE: Mutex<Option<HashMap<u64, Redelivery>>> = Mutex::new(None);

#[derive(Clone)]
struct Redelivery {
    worker: String,
    app: u64,
    guid: String,
    body: Vec<u8>,
}

fn install_delivery_handlers(s: &Shared) {
    s.fake.on(
        Match::operation("apps/list-webhook-deliveries"),
        Respond::with(|req| {
            let iss = jwt_issuer(req)?;
            let listed = LISTED
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|m| m.get(&iss).cloned())
                .unwrap_or_default();
            Some(Reply::json(200, Value::Array(listed)))
        }),
        Times::Always,
    );
    s.fake.on(
        Match::operation("apps/redeliver-webhook-delivery"),
        Respond::with(|req| {
            let id: u64 = req.path.split('/').nth(4)?.parse().ok()?;
            let r = REDELIVERABLE
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|m| m.get(&id).cloned())?;
            // GitHub redelivers after it answered.
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                let _ = ureq::post(&format!("{}/webhooks/github", r.worker))
                    .set("content-type", "application/json")
                    .set("x-github-event", "issues")
                    .set("x-github-delivery", &r.guid)
                    .set("x-github-hook-installation-target-type", "integration")
                    .set("x-github-hook-installation-target-id", &r.app.to_string())
                    .set(
                        "x-hub-signature-256",
                        &sign(APP_WEBHOOK_SECRET.as_bytes(), &r.body),
                    )
                    .send_bytes(&r.body);
            });
            Some(Reply::empty(202))
        }),
        Times::Always,
    );
}

/// Lists `failed` deliveries of `app` on the fake (each a failed `issues.opened` of
/// installation `id`, issue = index + `first_issue`), redeliverable to `worker`; returns
/// their (numeric id, guid).
fn list_failed(
    worker: &str,
    app: u64,
    id: u64,
    guids: &[&str],
    first_issue: u64,
) -> Vec<(u64, String)> {
    let at = ghplane_core::time::rfc3339_from_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 3_600_000,
    );
    let mut out = Vec::new();
    let mut listed = Vec::new();
    for (i, guid) in guids.iter().enumerate() {
        let gh_id = unique_id();
        out.push((gh_id, guid.to_string()));
        listed.push(json!({"id": gh_id, "guid": guid, "delivered_at": at, "redelivery": false, "duration": 10.0,
            "status": "Invalid HTTP Response: 502", "status_code": 502, "event": "issues", "action": "opened",
            "installation_id": id, "repository_id": 1, "throttled_at": null}));
        REDELIVERABLE
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(
                gh_id,
                Redelivery {
                    worker: worker.to_owned(),
                    app,
                    guid: guid.to_string(),
                    body: issue_opened(id, first_issue + i as u64),
                },
            );
    }
    listed.reverse(); // newest first, as GitHub lists
    LISTED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(client_id(app), listed);
    out
}

fn attempts_of(s: &Shared, gh_id: u64) -> usize {
    requests_to(s, &format!("/app/hook/deliveries/{gh_id}/attempts")).len()
}

fn sweep(api: &Api, app: u64) -> Value {
    let r = api.admin("POST", &format!("/api/apps/{app}/redeliveries"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn the_sweep_redelivers_each_lost_delivery_once(s: &Shared) {
    // Its own worker: the cron path sweeps every app it knows.
    let mut options = WorkerOptions::new(&s.fake.base_url());
    options.test_scheduled = true;
    let worker = Worker::start(&s.run_dir.join(format!("sweep-{}", unique_id())), options);
    let api = Api::new(&worker.base_url());
    install_delivery_handlers(s);

    let (app, id) = issue_tenant(&api, 100);
    let (g1, g2, g3) = (delivery_id(), delivery_id(), delivery_id());
    // g1 reached ghplane (GitHub still marks it failed: its answer was lost); g2 and g3 never did.
    let r = post(
        &api,
        app,
        APP_WEBHOOK_SECRET,
        "issues",
        &g1,
        &issue_opened(id, 1),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let listed = list_failed(&worker.base_url(), app, id, &[&g1, &g2, &g3], 1);

    let first = sweep(&api, app);
    assert_eq!(
        (
            &first["failed"],
            &first["processed"],
            &first["requested"],
            &first["alreadyRequested"]
        ),
        (&json!(3), &json!(1), &json!(2), &json!(0)),
        "{first}"
    );
    let second = sweep(&api, app);
    assert_eq!(second["requested"], 0, "{second}");
    assert_eq!(
        attempts_of(s, listed[0].0),
        0,
        "the processed one is not asked for"
    );
    assert_eq!(attempts_of(s, listed[1].0), 1);
    assert_eq!(attempts_of(s, listed[2].0), 1);
    poll("the redelivered issues to become work", || {
        (work_issue_ids(&api, id) == [1, 2, 3]).then_some(())
    });
    for guid in [&g2, &g3] {
        let row = log_row(&api, id, guid).expect("redelivered delivery in the log");
        assert_eq!(
            (row["outcome"].as_str(), row["attempts"].as_u64()),
            (Some("accepted"), Some(1)),
            "{row}"
        );
    }
    let third = sweep(&api, app);
    assert_eq!(
        (&third["requested"], &third["processed"]),
        (&json!(0), &json!(3)),
        "{third}"
    );

    // The cron trigger runs the same sweep for every registered app.
    let (app2, id2) = issue_tenant(&api, 100);
    let g4 = delivery_id();
    let lost = list_failed(&worker.base_url(), app2, id2, &[&g4], 7);
    let r = ureq::get(&format!(
        "{}/__scheduled?cron=*/15+*+*+*+*",
        worker.base_url()
    ))
    .call();
    assert!(r.is_ok(), "GET /__scheduled: {r:?}");
    poll("the cron sweep's redelivery to be processed", || {
        (work_issue_ids(&api, id2) == [7]).then_some(())
    });
    assert_eq!(attempts_of(s, lost[0].0), 1);
    assert_eq!(
        attempts_of(s, listed[1].0) + attempts_of(s, listed[2].0),
        2,
        "the cron sweep asked nothing again"
    );
}
