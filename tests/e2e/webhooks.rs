//! Webhook ingest: verification, dedupe, audit, tenant lifecycle and work dispatch.

use std::path::PathBuf;

use ghplane_core::webhook::sign;
use serde_json::{json, Value};

use crate::api::{Api, Resp};
use crate::identity::{register_app, service_key, token, APP_WEBHOOK_SECRET};
use crate::{unique_id, Setup, Shared, TestFn};

pub const SETUP: Setup = Setup {
    vars: |_| {
        vec![(
            "WEBHOOK_SECRET_GRACE_SECONDS".into(),
            GRACE_SECONDS.to_string(),
        )]
    },
    ..Setup::NONE
};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "webhooks::every_real_payload_is_accepted_and_classified",
        every_real_payload_is_accepted_and_classified,
    ),
    (
        "webhooks::signature_failures_are_401_without_a_panic",
        signature_failures_are_401_without_a_panic,
    ),
    (
        "webhooks::headers_size_and_json_are_checked",
        headers_size_and_json_are_checked,
    ),
    (
        "webhooks::a_delivery_has_one_effect",
        a_delivery_has_one_effect,
    ),
    (
        "webhooks::a_failed_delivery_is_processed_once_on_redelivery",
        a_failed_delivery_is_processed_once_on_redelivery,
    ),
    (
        "webhooks::installation_events_drive_the_tenant",
        installation_events_drive_the_tenant,
    ),
    (
        "webhooks::another_apps_installation_is_403_and_unwritten",
        another_apps_installation_is_403_and_unwritten,
    ),
    (
        "webhooks::issues_become_work_within_the_hourly_quota",
        issues_become_work_within_the_hourly_quota,
    ),
    (
        "webhooks::rotated_secrets_verify_during_grace_only",
        rotated_secrets_verify_during_grace_only,
    ),
    (
        "webhooks::a_25_mb_push_is_accepted",
        a_25_mb_push_is_accepted,
    ),
    (
        "webhooks::deliveries_without_an_installation_are_deduplicated_and_listed_by_the_app",
        deliveries_without_an_installation_are_deduplicated_and_listed_by_the_app,
    ),
];

/// Grace for the previous webhook secret on the shared worker (seconds): long enough that the
/// two posts after a rotation land inside it on a loaded 2-core machine.
pub const GRACE_SECONDS: u64 = 15;
/// Delivery ids starting with this fail on their first attempt (a test seam compiled only
/// into the end-to-end build: cargo feature `e2e-seams`, see `make build-e2e`).
pub const FAIL_FIRST: &str = "fail-first-";

/// octokit/webhooks' payload examples, vendored (see `tests/fixtures/README.md`).
fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github-webhooks"
    ))
}

pub fn fixture(event: &str, file: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(event).join(file)).unwrap()).unwrap()
}

pub fn delivery_id() -> String {
    format!("e2e-{}-{}", unique_id(), std::process::id())
}

/// Posts `body` as GitHub would: signed with `secret`, for `app`.
pub fn post(api: &Api, app: u64, secret: &str, event: &str, delivery: &str, body: &[u8]) -> Resp {
    let signature = sign(secret.as_bytes(), body);
    let app = app.to_string();
    api.send(
        "POST",
        "/webhooks/github",
        &[
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", delivery),
            ("x-github-hook-installation-target-type", "integration"),
            ("x-github-hook-installation-target-id", &app),
            ("x-hub-signature-256", &signature),
        ],
        Some(body),
    )
}

pub fn post_json(api: &Api, app: u64, event: &str, body: &Value) -> Resp {
    post(
        api,
        app,
        APP_WEBHOOK_SECRET,
        event,
        &delivery_id(),
        &serde_json::to_vec(body).unwrap(),
    )
}

/// An `installation.created` for `id` of `app`, listing `repos`.
pub fn installation_created(app: u64, id: u64, repos: &[(u64, &str)]) -> Value {
    let mut body = fixture("installation", "created.payload.json");
    body["installation"]["id"] = json!(id);
    body["installation"]["app_id"] = json!(app);
    body["installation"]["repository_selection"] = json!("selected");
    body["repositories"] =
        json!(repos.iter().map(|(rid, name)| json!({"id": rid, "full_name": name, "name": name.split('/').nth(1), "private": true, "node_id": "R_x"})).collect::<Vec<_>>());
    body
}

fn handled(event: &str, action: Option<&str>) -> bool {
    matches!(
        (event, action),
        (
            "installation",
            Some("created" | "deleted" | "suspend" | "unsuspend" | "new_permissions_accepted")
        ) | ("installation_repositories", Some("added" | "removed"))
            | ("issues", Some("opened" | "labeled"))
            | ("repository", Some("renamed"))
            | ("push" | "ping", _)
    )
}

fn every_real_payload_is_accepted_and_classified(s: &Shared) {
    // The apps the payloads name (installation.app_id); payloads without one go to the first.
    for app in [29310, 5725] {
        register_app(&s.api, app);
    }
    let mut files: Vec<(String, String)> = Vec::new();
    for dir in std::fs::read_dir(fixtures())
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
    {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            files.push((
                dir.file_name().into_string().unwrap(),
                f.file_name().into_string().unwrap(),
            ));
        }
    }
    files.sort();
    let (mut accepted, mut ignored) = (0, 0);
    // Installations this loop created (`installation.created` comes first in sorted order):
    // a handled payload is accepted exactly when it names one of them, or is a ping.
    let mut known = std::collections::HashSet::new();
    for (event, file) in &files {
        let raw = std::fs::read(fixtures().join(event).join(file)).unwrap();
        let value: Value = serde_json::from_slice(&raw).unwrap();
        let app = value["installation"]["app_id"].as_u64().unwrap_or(29310);
        let action = value["action"].as_str();
        // The exact bytes of the file, not a re-serialization, are signed and sent.
        let r = post(&s.api, app, APP_WEBHOOK_SECRET, event, &delivery_id(), &raw);
        assert!(r.status == 202, "{event}/{file}: {} {}", r.status, r.text());
        let body = r.json();
        let outcome = (body["status"].as_str(), body["reason"].as_str());
        let installation = value["installation"]["id"].as_u64();
        let expected = if !handled(event, action) {
            let some_action_handled = matches!(
                event.as_str(),
                "installation" | "installation_repositories" | "issues" | "repository"
            );
            let reason = if some_action_handled {
                "action_not_handled"
            } else {
                "event_not_handled"
            };
            (Some("ignored"), Some(reason))
        } else if event == "ping" {
            (Some("accepted"), None)
        } else if let Some(id) = installation {
            if (event.as_str(), action) == ("installation", Some("created")) {
                known.insert(id);
            }
            if known.contains(&id) {
                (Some("accepted"), None)
            } else {
                (Some("ignored"), Some("unknown_installation"))
            }
        } else {
            (Some("ignored"), Some("missing_installation"))
        };
        assert_eq!(outcome, expected, "{event}/{file}: {body}");
        if body["status"] == "accepted" {
            accepted += 1
        } else {
            ignored += 1
        }
    }
    println!(
        "webhooks: {} real payloads posted: {accepted} accepted, {ignored} ignored",
        files.len()
    );
    assert!(
        files.len() >= 273,
        "expected the 273 fixtures, found {}",
        files.len()
    );
    assert!(accepted >= 7, "{accepted} accepted");
}

fn signature_failures_are_401_without_a_panic(s: &Shared) {
    let app = unique_id();
    register_app(&s.api, app);
    let body = br#"{"zen":"Design for failure.","hook_id":1}"#;
    let good = sign(APP_WEBHOOK_SECRET.as_bytes(), body);
    let hex = good.trim_start_matches("sha256=");
    let huge = format!("sha256={}", "a".repeat(64 * 1024));
    let cases: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("sha1=".into()),
        Some(hex.to_owned()),
        Some(format!("SHA256={hex}")),
        Some(format!("sha256={}", &hex[..63])),
        Some(format!("sha256={hex}a")),
        Some(format!("sha256={}", "z".repeat(64))),
        Some(huge),
        Some(sign(b"wrong secret", body)),
    ];
    let app_s = app.to_string();
    for sig in &cases {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-github-event", "ping"),
            ("x-github-delivery", "d-1"),
            ("x-github-hook-installation-target-id", app_s.as_str()),
        ];
        if let Some(sig) = sig {
            headers.push(("x-hub-signature-256", sig.as_str()));
        }
        let r = s.api.send("POST", "/webhooks/github", &headers, Some(body));
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "invalid_signature"),
            "{:?}",
            sig.as_ref().map(|s| &s[..s.len().min(20)])
        );
    }
    // A 1 MB header never reaches the worker: the runtime refuses it first (431); the
    // worker's own parser refuses such a header cheaply too (unit-tested in the core).
    let mega = format!("sha256={}", "a".repeat(1024 * 1024));
    let headers = [
        ("content-type", "application/json"),
        ("x-github-event", "ping"),
        ("x-github-delivery", "d-1m"),
        ("x-github-hook-installation-target-id", app_s.as_str()),
        ("x-hub-signature-256", mega.as_str()),
    ];
    // Two outcomes, both the runtime's: depending on when workerd reads the oversized head,
    // it answers 431 or closes the connection. The worker itself never sees the request, so
    // its own 401 is not accepted here.
    match s
        .api
        .try_send("POST", "/webhooks/github", &headers, Some(body))
    {
        Err(closed) => println!("webhooks: a 1 MB signature header: connection closed ({closed})"),
        Ok(r) => assert_eq!(
            r.status,
            431,
            "a 1 MB signature header reached the worker: {}",
            r.text()
        ),
    }
    let unknown = post(&s.api, unique_id(), APP_WEBHOOK_SECRET, "ping", "d-2", body);
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (401, "unknown_app")
    );
    assert_eq!(
        post(
            &s.api,
            app,
            APP_WEBHOOK_SECRET,
            "ping",
            &delivery_id(),
            body
        )
        .status,
        202,
        "the worker is still fine"
    );
}

fn headers_size_and_json_are_checked(s: &Shared) {
    let app = unique_id();
    register_app(&s.api, app);
    let app_s = app.to_string();
    let body = br#"{"zen":"x"}"#;
    let sig = sign(APP_WEBHOOK_SECRET.as_bytes(), body);
    let base = |skip: &str| {
        let mut h = vec![
            ("content-type", "application/json"),
            ("x-github-event", "ping"),
            ("x-github-delivery", "d-3"),
            ("x-github-hook-installation-target-id", app_s.as_str()),
            ("x-hub-signature-256", sig.as_str()),
        ];
        h.retain(|(k, _)| *k != skip);
        h
    };
    let r = s.api.send(
        "POST",
        "/webhooks/github",
        &base("x-github-event"),
        Some(body),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "missing_event_header"));
    let r = s.api.send(
        "POST",
        "/webhooks/github",
        &base("x-github-delivery"),
        Some(body),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "missing_delivery_header")
    );
    let mut form = base("content-type");
    form.push(("content-type", "application/x-www-form-urlencoded"));
    assert_eq!(
        s.api
            .send("POST", "/webhooks/github", &form, Some(body))
            .status,
        415
    );
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let r = post(
        &s.api,
        app,
        APP_WEBHOOK_SECRET,
        "ping",
        &delivery_id(),
        deep.as_bytes(),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "malformed_payload"));
    let r = post(
        &s.api,
        app,
        APP_WEBHOOK_SECRET,
        "ping",
        &delivery_id(),
        b"{not json",
    );
    assert_eq!((r.status, r.code().as_str()), (400, "malformed_payload"));
    let too_big = vec![b' '; 25 * 1024 * 1024 + 1];
    // Straight to workerd: the 413 comes before the body is read, and wrangler's dev proxy
    // then answers its next request with a 503 (see `Worker::runtime_url`), which would hit
    // whichever test runs next on the shared worker.
    let r = post(
        &Api::new(&s.worker.runtime_url()),
        app,
        APP_WEBHOOK_SECRET,
        "push",
        &delivery_id(),
        &too_big,
    );
    assert_eq!((r.status, r.code().as_str()), (413, "payload_too_large"));
}

/// A tenant created through its own `installation.created`, with issue processing on.
pub fn webhook_tenant(s: &Shared, max_per_hour: u32) -> (u64, u64) {
    let app = unique_id();
    register_app(&s.api, app);
    let id = unique_id();
    let r = post_json(
        &s.api,
        app,
        "installation",
        &installation_created(app, id, &[(id * 10, "octo-org/api")]),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let patch =
        json!({"permissions": {"canProcessIssues": true, "maxContainersPerHour": max_per_hour}});
    assert_eq!(
        s.api
            .admin(
                "PATCH",
                &format!("/api/installations/{id}/config"),
                Some(&patch)
            )
            .status,
        200
    );
    (app, id)
}

pub fn issue_opened(id: u64, issue_id: u64) -> Value {
    let mut body = fixture("issues", "opened.payload.json");
    body["installation"] = json!({"id": id, "node_id": "x"});
    body["issue"]["id"] = json!(issue_id);
    body
}

fn work(s: &Shared, id: u64) -> Vec<Value> {
    s.api
        .admin("GET", &format!("/api/installations/{id}/work"), None)
        .json()["workItems"]
        .as_array()
        .unwrap()
        .clone()
}

fn a_delivery_has_one_effect(s: &Shared) {
    let (app, id) = webhook_tenant(s, 100);
    let body = serde_json::to_vec(&issue_opened(id, 1)).unwrap();
    let delivery = delivery_id();
    let first = post(&s.api, app, APP_WEBHOOK_SECRET, "issues", &delivery, &body);
    assert_eq!(
        (first.status, first.json()["status"].as_str()),
        (202, Some("accepted"))
    );
    let again = post(&s.api, app, APP_WEBHOOK_SECRET, "issues", &delivery, &body);
    assert_eq!(
        (again.status, again.json()["status"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(work(s, id).len(), 1);

    let body = serde_json::to_vec(&issue_opened(id, 2)).unwrap();
    let delivery = delivery_id();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                scope.spawn(|| {
                    post(&s.api, app, APP_WEBHOOK_SECRET, "issues", &delivery, &body).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(
        work(s, id).len(),
        2,
        "twenty concurrent copies made one work item"
    );
    let log = s
        .api
        .admin("GET", &format!("/api/installations/{id}/deliveries"), None)
        .json();
    let copies: Vec<&Value> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"] == delivery.as_str())
        .collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0]["outcome"], "accepted");
}

fn a_failed_delivery_is_processed_once_on_redelivery(s: &Shared) {
    let (app, id) = webhook_tenant(s, 100);
    let body = serde_json::to_vec(&issue_opened(id, 7)).unwrap();
    let delivery = format!("{FAIL_FIRST}{}", unique_id());
    let failed = post(&s.api, app, APP_WEBHOOK_SECRET, "issues", &delivery, &body);
    assert_eq!(
        (failed.status, failed.code().as_str()),
        (500, "internal_error")
    );
    assert!(work(s, id).is_empty(), "the failed attempt did nothing");
    let log = s
        .api
        .admin(
            "GET",
            &format!("/api/installations/{id}/deliveries?limit=1"),
            None,
        )
        .json();
    assert_eq!(log["deliveries"][0]["outcome"], "failed");
    let redelivered = post(&s.api, app, APP_WEBHOOK_SECRET, "issues", &delivery, &body);
    assert_eq!(
        (redelivered.status, redelivered.json()["status"].as_str()),
        (202, Some("accepted"))
    );
    let third = post(&s.api, app, APP_WEBHOOK_SECRET, "issues", &delivery, &body);
    assert_eq!(
        third.status, 200,
        "once processed, a redelivery is a duplicate"
    );
    assert_eq!(work(s, id).len(), 1);
    let log = s
        .api
        .admin(
            "GET",
            &format!("/api/installations/{id}/deliveries?limit=1"),
            None,
        )
        .json();
    assert_eq!(log["deliveries"][0]["attempts"], 2);
}

fn config(s: &Shared, id: u64) -> Resp {
    s.api
        .admin("GET", &format!("/api/installations/{id}/config"), None)
}

fn repo_names(v: &Value) -> Vec<String> {
    v["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fullName"].as_str().unwrap().to_owned())
        .collect()
}

fn installation_events_drive_the_tenant(s: &Shared) {
    let app = unique_id();
    register_app(&s.api, app);
    let id = unique_id();
    let created = installation_created(app, id, &[(1, "octo-org/a"), (2, "octo-org/b")]);
    assert_eq!(post_json(&s.api, app, "installation", &created).status, 202);
    let c = config(s, id);
    assert_eq!(c.status, 200, "installation.created makes the tenant");
    let c = c.json();
    assert_eq!(repo_names(&c), ["octo-org/a", "octo-org/b"]);
    assert_eq!(c["appId"], app);
    assert_eq!(
        c["account"]["login"],
        created["installation"]["account"]["login"]
    );
    assert_eq!(c["repositorySelection"], "selected");

    let mut added = fixture("installation_repositories", "added.payload.json");
    added["installation"] = json!({"id": id, "app_id": app});
    added["repositories_added"] = json!([{"id": 3, "full_name": "octo-org/c", "name": "c", "private": false, "node_id": "x"}]);
    added["repositories_removed"] = json!([]);
    assert_eq!(
        post_json(&s.api, app, "installation_repositories", &added).status,
        202
    );
    let mut removed = fixture("installation_repositories", "removed.payload.json");
    removed["installation"] = json!({"id": id, "app_id": app});
    removed["repositories_added"] = json!([]);
    removed["repositories_removed"] =
        json!([{"id": 1, "full_name": "octo-org/a", "name": "a", "private": true, "node_id": "x"}]);
    assert_eq!(
        post_json(&s.api, app, "installation_repositories", &removed).status,
        202
    );
    assert_eq!(
        repo_names(&config(s, id).json()),
        ["octo-org/b", "octo-org/c"],
        "the list is exact"
    );

    let key = service_key(&s.api, id);
    let read = json!({"permissions": {"contents": "read"}});
    assert_eq!(token(&s.api, id, &key, &read).status, 200);
    let mut suspend = fixture("installation", "suspend.payload.json");
    suspend["installation"]["id"] = json!(id);
    suspend["installation"]["app_id"] = json!(app);
    assert_eq!(post_json(&s.api, app, "installation", &suspend).status, 202);
    let refused = token(&s.api, id, &key, &read);
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (403, "installation_suspended")
    );
    let mut unsuspend = fixture("installation", "unsuspend.payload.json");
    unsuspend["installation"]["id"] = json!(id);
    unsuspend["installation"]["app_id"] = json!(app);
    assert_eq!(
        post_json(&s.api, app, "installation", &unsuspend).status,
        202
    );
    assert_eq!(token(&s.api, id, &key, &read).status, 200);

    let mut deleted = fixture("installation", "deleted.payload.json");
    deleted["installation"]["id"] = json!(id);
    deleted["installation"]["app_id"] = json!(app);
    assert_eq!(post_json(&s.api, app, "installation", &deleted).status, 202);
    assert_eq!(
        config(s, id).status,
        404,
        "installation.deleted purges the config"
    );
    assert_eq!(
        token(&s.api, id, &key, &read).status,
        401,
        "its service keys are gone"
    );
    let later = post_json(&s.api, app, "issues", &issue_opened(id, 9));
    assert_eq!(
        later.json()["reason"],
        "unknown_installation",
        "later deliveries get nothing"
    );
    assert_eq!(config(s, id).status, 404);
}

fn another_apps_installation_is_403_and_unwritten(s: &Shared) {
    let (app, id) = webhook_tenant(s, 1);
    let other = unique_id();
    register_app(&s.api, other);
    let before = config(s, id).json();
    // A payload claiming the installation for the other app…
    let r = post_json(
        &s.api,
        other,
        "installation",
        &installation_created(other, id, &[(5, "evil/x")]),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "installation_app_mismatch")
    );
    // …and one signed by the other app with no app in the payload.
    let r = post_json(&s.api, other, "issues", &issue_opened(id, 5));
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "installation_app_mismatch")
    );
    assert_eq!(config(s, id).json(), before, "nothing written");
    assert!(work(s, id).is_empty());
    // The installation's own app still gets through: the refusals above were about the app.
    let r = post_json(&s.api, app, "issues", &issue_opened(id, 5));
    assert_eq!(r.status, 202, "{}", r.text());
}

fn issues_become_work_within_the_hourly_quota(s: &Shared) {
    let (app, id) = webhook_tenant(s, 2);
    let statuses: Vec<String> = (1..=3)
        .map(|n| {
            post_json(&s.api, app, "issues", &issue_opened(id, 100 + n)).json()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["accepted", "accepted", "throttled"]);
    let items = work(s, id);
    assert_eq!(items.len(), 3);
    let key = format!("install-{id}-issue-101");
    assert!(
        items
            .iter()
            .any(|i| i["key"] == key.as_str() && i["state"] == "queued"),
        "{items:?}"
    );
    assert!(items.iter().any(|i| i["state"] == "throttled"));
    let mut labeled = fixture("issues", "labeled.payload.json");
    labeled["installation"] = json!({"id": id});
    labeled["issue"]["id"] = json!(101);
    let again = post_json(&s.api, app, "issues", &labeled).json();
    assert_eq!(
        again["reason"], "work_item_exists",
        "one work item per issue"
    );
    assert_eq!(work(s, id).len(), 3);
    // Paging the delivery log: newest first, two at a time.
    let page = s
        .api
        .admin(
            "GET",
            &format!("/api/installations/{id}/deliveries?limit=2"),
            None,
        )
        .json();
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(page["deliveries"][0]["event"], "issues");
    let cursor = page["nextCursor"].as_str().expect("more pages");
    let next = s
        .api
        .admin(
            "GET",
            &format!("/api/installations/{id}/deliveries?limit=2&cursor={cursor}"),
            None,
        )
        .json();
    assert!(!next["deliveries"].as_array().unwrap().is_empty());
    assert_ne!(next["deliveries"][0]["id"], page["deliveries"][0]["id"]);
    assert_eq!(
        s.api
            .admin(
                "GET",
                &format!("/api/installations/{id}/deliveries?limit=0"),
                None
            )
            .status,
        400
    );
}

fn rotated_secrets_verify_during_grace_only(s: &Shared) {
    let app = unique_id();
    register_app(&s.api, app);
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    assert_eq!(
        post(
            &s.api,
            app,
            APP_WEBHOOK_SECRET,
            "ping",
            &delivery_id(),
            ping
        )
        .status,
        202
    );
    let r = s.api.admin(
        "POST",
        &format!("/api/apps/{app}/webhook-secret"),
        Some(&json!({"webhookSecret": "rotated-secret-e2e"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated = std::time::Instant::now();
    let grace = std::time::Duration::from_secs(GRACE_SECONDS);
    assert_eq!(
        post(
            &s.api,
            app,
            "rotated-secret-e2e",
            "ping",
            &delivery_id(),
            ping
        )
        .status,
        202,
        "new secret"
    );
    assert_eq!(
        post(
            &s.api,
            app,
            APP_WEBHOOK_SECRET,
            "ping",
            &delivery_id(),
            ping
        )
        .status,
        202,
        "old secret during grace"
    );
    // The grace ends at most GRACE_SECONDS after the rotation was answered.
    let after_grace = rotated + grace + std::time::Duration::from_secs(1);
    std::thread::sleep(after_grace.saturating_duration_since(std::time::Instant::now()));
    let old = post(
        &s.api,
        app,
        APP_WEBHOOK_SECRET,
        "ping",
        &delivery_id(),
        ping,
    );
    assert_eq!(
        (old.status, old.code().as_str()),
        (401, "invalid_signature"),
        "old secret after grace"
    );
    assert_eq!(
        post(
            &s.api,
            app,
            "rotated-secret-e2e",
            "ping",
            &delivery_id(),
            ping
        )
        .status,
        202
    );
}

fn a_25_mb_push_is_accepted(s: &Shared) {
    let (app, id) = webhook_tenant(s, 1);
    let mut push = fixture("push", "with-new-branch.payload.json");
    push["installation"] = json!({"id": id});
    let mut body = serde_json::to_vec(&push).unwrap();
    // Pad inside a JSON string field to exactly 25 MB.
    let pad = 25 * 1024 * 1024 - body.len() - r#","padding":"""#.len();
    body.truncate(body.len() - 1);
    body.extend_from_slice(br#","padding":""#);
    body.extend(std::iter::repeat_n(b'x', pad));
    body.extend_from_slice(b"\"}");
    assert_eq!(body.len(), 25 * 1024 * 1024);
    let r = post(
        &s.api,
        app,
        APP_WEBHOOK_SECRET,
        "push",
        &delivery_id(),
        &body,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    // workerd prints a memory overrun asynchronously: wait until the delivery's own answer is
    // in the delivery log (written after the body was dropped), then give the output a moment
    // the answer itself did not need, and read it.
    let log = s
        .api
        .admin("GET", &format!("/api/installations/{id}/deliveries"), None)
        .json();
    assert_eq!(log["deliveries"][0]["event"], "push", "{log}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        assert!(
            !s.worker.output().contains("Exceeded Memory Limit"),
            "the isolate stayed within its memory"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A `ping` names no installation: the app's own object dedupes it and keeps it in the
/// app's delivery log (`GET /api/apps/{app_id}/deliveries`).
fn deliveries_without_an_installation_are_deduplicated_and_listed_by_the_app(s: &Shared) {
    let app = unique_id();
    register_app(&s.api, app);
    let ping = br#"{"zen":"Avoid administrative distraction.","hook_id":7}"#;
    let delivery = delivery_id();
    let first = post(&s.api, app, APP_WEBHOOK_SECRET, "ping", &delivery, ping);
    assert_eq!(
        (first.status, first.json()["status"].as_str()),
        (202, Some("accepted")),
        "{}",
        first.text()
    );
    let again = post(&s.api, app, APP_WEBHOOK_SECRET, "ping", &delivery, ping);
    assert_eq!(
        (again.status, again.json()["status"].as_str()),
        (200, Some("duplicate")),
        "{}",
        again.text()
    );
    let other = delivery_id();
    let r = post(&s.api, app, APP_WEBHOOK_SECRET, "ping", &other, ping);
    assert_eq!(r.status, 202, "{}", r.text());

    let log = s
        .api
        .admin("GET", &format!("/api/apps/{app}/deliveries"), None);
    assert_eq!(log.status, 200, "{}", log.text());
    let rows = log.json()["deliveries"].as_array().unwrap().clone();
    let ids: Vec<&str> = rows.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [other.as_str(), delivery.as_str()],
        "newest first, once each"
    );
    assert_eq!(rows[1]["event"], "ping");
    assert_eq!(rows[1]["outcome"], "accepted");
    assert_eq!(rows[1]["attempts"], 1);
    let page = s
        .api
        .admin("GET", &format!("/api/apps/{app}/deliveries?limit=1"), None)
        .json();
    assert_eq!(page["deliveries"][0]["id"], other.as_str());
    assert!(page["nextCursor"].is_string(), "{page}");
}
