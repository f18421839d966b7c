//! The installation config store (`install-<id>`) through its admin routes.

use serde_json::{json, Value};

use crate::identity::register_app;
use crate::worker::{Worker, WorkerOptions, ADMIN_TOKEN};
use crate::{unique_id, Setup, Shared, TestFn};

pub const SETUP: Setup = Setup {
    never_logged: SECRETS_USED,
    ..Setup::NONE
};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "config::lifecycle_put_get_patch_delete",
        lifecycle_put_get_patch_delete,
    ),
    (
        "config::unauthenticated_is_401_and_changes_nothing",
        unauthenticated_is_401_and_changes_nothing,
    ),
    ("config::malformed_id_is_400", malformed_id_is_400),
    (
        "config::bad_bodies_are_refused_without_state_change",
        bad_bodies_are_refused_without_state_change,
    ),
    (
        "config::survives_restart_and_secrets_are_not_in_storage",
        survives_restart_and_secrets_are_not_in_storage,
    ),
    (
        "config::tenant_listing_pages_exact_rows_without_secrets",
        tenant_listing_pages_exact_rows_without_secrets,
    ),
];

pub const PRIVATE_KEY: &str =
    include_str!("../../crates/core/tests/fixtures/test-rsa-2048-pkcs1.pem");
pub const WEBHOOK_SECRET: &str = "whsec-e2e-5d1b0c7e2a9f4b33";

/// Strings that must never appear in a response or a log line.
pub const SECRETS_USED: &[&str] = &[
    WEBHOOK_SECRET,
    ADMIN_TOKEN,
    "MIIEowIBAAKCAQEA",
    "BEGIN RSA PRIVATE KEY",
];

fn path(id: u64) -> String {
    format!("/api/installations/{id}/config")
}

pub fn full_config() -> Value {
    json!({
        "appId": 4242,
        "privateKey": PRIVATE_KEY,
        "webhookSecret": WEBHOOK_SECRET,
        "account": {"login": "octo-org", "id": 77, "type": "Organization"},
        "tenantId": "tenant-a",
        "repositories": ["octo-org/api", {"fullName": "octo-org/web", "id": 1296269}],
        "permissions": {"canProcessIssues": true, "canCreatePullRequests": false, "maxContainersPerHour": 5}
    })
}

fn assert_no_secret(body: &str) {
    for s in SECRETS_USED {
        assert!(!body.contains(s), "a secret leaked into a response: {body}");
    }
}

fn lifecycle_put_get_patch_delete(s: &Shared) {
    register_app(&s.api, 4242);
    register_app(&s.api, 4243);
    let id = unique_id();
    let r = s.api.admin("PUT", &path(id), Some(&full_config()));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_no_secret(&r.text());
    let created = r.json();
    assert_eq!(created["installationId"], id);
    assert_eq!(created["privateKey"]["set"], true);
    assert!(created["privateKey"]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("SHA256:"));
    assert_eq!(created["webhookSecret"], json!({"set": true}));

    let got = s.api.admin("GET", &path(id), None);
    assert_eq!(got.status, 200);
    assert_no_secret(&got.text());
    let got = got.json();
    assert_eq!(
        got["repositories"],
        json!([{"fullName": "octo-org/api"}, {"fullName": "octo-org/web", "id": 1296269}])
    );
    assert_eq!(got["permissions"]["maxContainersPerHour"], 5);
    assert_eq!(got["tenantId"], "tenant-a");
    assert_eq!(got["userId"], Value::Null);

    let patched = s.api.admin(
        "PATCH",
        &path(id),
        Some(
            &json!({"userId": "user-9", "tenantId": null, "webhookSecret": null,
            "permissions": {"canCreatePullRequests": true}}),
        ),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let after = s.api.admin("GET", &path(id), None).json();
    assert_eq!(after["userId"], "user-9");
    assert_eq!(after["tenantId"], Value::Null);
    assert_eq!(after["webhookSecret"], json!({"set": false}));
    assert_eq!(
        after["privateKey"]["set"], true,
        "a PATCH that does not name the key keeps it"
    );
    assert_eq!(
        after["permissions"],
        json!({"canProcessIssues": true, "canCreatePullRequests": true, "maxContainersPerHour": 5})
    );
    assert_eq!(after["createdAt"], created["createdAt"]);

    let replaced = s.api.admin("PUT", &path(id), Some(&json!({"appId": 4243})));
    assert_eq!(
        replaced.status,
        200,
        "a second PUT replaces: {}",
        replaced.text()
    );
    assert_eq!(replaced.json()["privateKey"], json!({"set": false}));
    assert_eq!(replaced.json()["createdAt"], created["createdAt"]);

    assert_eq!(s.api.admin("DELETE", &path(id), None).status, 204);
    let gone = s.api.admin("GET", &path(id), None);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.code(), "installation_not_found");
    assert_eq!(s.api.admin("DELETE", &path(id), None).status, 404);
    assert_eq!(
        s.api
            .admin("PATCH", &path(id), Some(&json!({"userId": "x"})))
            .status,
        404
    );
}

fn unauthenticated_is_401_and_changes_nothing(s: &Shared) {
    let id = unique_id();
    let body = serde_json::to_vec(&full_config()).unwrap();
    let wrong = format!("Bearer {ADMIN_TOKEN}x");
    let lower = format!("bearer {ADMIN_TOKEN}");
    for auth in [
        None,
        Some(""),
        Some(wrong.as_str()),
        Some(lower.as_str()),
        Some(ADMIN_TOKEN),
    ] {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        for (method, b) in [
            ("PUT", Some(&body[..])),
            ("GET", None),
            ("PATCH", Some(&body[..])),
            ("DELETE", None),
        ] {
            let r = s.api.send(method, &path(id), &headers, b);
            assert_eq!(r.status, 401, "{method} with {auth:?}");
            assert_eq!(r.code(), "unauthorized");
        }
    }
    assert_eq!(
        s.api.admin("GET", &path(id), None).status,
        404,
        "nothing was written"
    );
}

fn malformed_id_is_400(s: &Shared) {
    for bad in ["abc", "0", "-1", "01", "1.5", "9007199254740992", "%31"] {
        let r = s
            .api
            .admin("GET", &format!("/api/installations/{bad}/config"), None);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.code(), "invalid_id");
        let r = s.api.admin(
            "PUT",
            &format!("/api/installations/{bad}/config"),
            Some(&full_config()),
        );
        assert_eq!(r.status, 400, "{bad}");
    }
}

fn bad_bodies_are_refused_without_state_change(s: &Shared) {
    register_app(&s.api, 4242);
    let id = unique_id();
    assert_eq!(
        s.api.admin("PUT", &path(id), Some(&full_config())).status,
        201
    );
    let before = s.api.admin("GET", &path(id), None).json();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let send = |method: &str, content_type: &str, body: &[u8]| {
        s.api.send(
            method,
            &path(id),
            &[("authorization", &auth), ("content-type", content_type)],
            Some(body),
        )
    };
    let oversize = format!(r#"{{"appId": 1, "tenantId": "{}"}}"#, "x".repeat(70 * 1024));
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("PUT", "application/json", b"{\"appId\": ".to_vec(), 400, "malformed_json"),
        ("PATCH", "application/json", b"not json".to_vec(), 400, "malformed_json"),
        ("PUT", "application/json", deep.into_bytes(), 400, "malformed_json"),
        ("PUT", "application/json", br#"{"appId": 0}"#.to_vec(), 400, "validation_failed"),
        ("PUT", "application/json", br#"{"appId": 1, "extra": true}"#.to_vec(), 400, "validation_failed"),
        ("PATCH", "application/json", br#"{"repositories": ["nope"]}"#.to_vec(), 400, "validation_failed"),
        ("PUT", "application/json", br#"{"appId": 1, "privateKey": "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"}"#.to_vec(), 400, "private_key_unsupported"),
        ("PUT", "application/json", oversize.clone().into_bytes(), 413, "payload_too_large"),
        ("PATCH", "application/json", oversize.into_bytes(), 413, "payload_too_large"),
        ("PUT", "text/plain", br#"{"appId": 1}"#.to_vec(), 415, "unsupported_media_type"),
        ("PATCH", "application/x-www-form-urlencoded", b"appId=1".to_vec(), 415, "unsupported_media_type"),
    ];
    for (method, ct, body, status, code) in cases {
        let r = send(method, ct, &body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{method} {ct}: {}",
            r.text()
        );
    }
    let after = s.api.admin("GET", &path(id), None).json();
    assert_eq!(
        before, after,
        "a refused request must not change the stored config"
    );
}

/// A config outlives workerd, and what is on disk does not contain the secrets.
fn survives_restart_and_secrets_are_not_in_storage(s: &Shared) {
    let mut worker = Worker::start(
        &s.run_dir.join("restart"),
        WorkerOptions::new(&s.fake.base_url()),
    );
    let api = crate::api::Api::new(&worker.base_url());
    register_app(&api, 4242);
    let id = unique_id();
    assert_eq!(
        api.admin("PUT", &path(id), Some(&full_config())).status,
        201
    );
    let before = api.admin("GET", &path(id), None).json();

    worker.restart();
    let api = crate::api::Api::new(&worker.base_url());
    let after = api.admin("GET", &path(id), None);
    assert_eq!(
        after.status,
        200,
        "config lost across a restart: {}",
        after.text()
    );
    assert_eq!(after.json(), before);
    worker.stop();

    let key_body: String = PRIVATE_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let needles: Vec<&[u8]> = vec![
        WEBHOOK_SECRET.as_bytes(),
        &key_body.as_bytes()[..48],
        &key_body.as_bytes()[200..248],
    ];
    let mut files = 0;
    for file in walk(&worker.dir.join("state")) {
        let bytes = std::fs::read(&file).unwrap();
        files += 1;
        for n in &needles {
            assert!(
                !contains(&bytes, n),
                "{} holds a secret in plain text",
                file.display()
            );
        }
    }
    assert!(files > 0, "no storage files found to inspect");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every page of `GET /api/installations?limit=…`: each page's rows, checked to hold at most
/// `limit` rows in strictly increasing id order across pages.
fn list_tenants(s: &Shared, limit: usize) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    let mut last_id = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit={limit}&cursor={c}"),
            None => format!("?limit={limit}"),
        };
        let r = s
            .api
            .admin("GET", &format!("/api/installations{query}"), None);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_no_secret(&r.text());
        for field in ["privateKey", "webhookSecret", "sealed", "serviceKeys"] {
            assert!(!r.text().contains(field), "{field} in {}", r.text());
        }
        let page = r.json();
        let rows = page["installations"].as_array().unwrap().clone();
        assert!(rows.len() <= limit, "{}", r.text());
        for row in &rows {
            let id = row["id"].as_u64().unwrap();
            assert!(
                id > last_id,
                "ids in order across pages: {id} after {last_id}"
            );
            last_id = id;
        }
        pages.push(rows);
        match page["nextCursor"].as_str() {
            Some(c) => {
                assert_eq!(
                    pages.last().unwrap().len(),
                    limit,
                    "a page with more is full"
                );
                cursor = Some(c.to_owned());
            }
            None => return pages,
        }
    }
}

/// The listing row a tenant's config should show as.
fn expected_row(s: &Shared, id: u64) -> Value {
    let c = s.api.admin("GET", &path(id), None);
    assert_eq!(c.status, 200, "{}", c.text());
    let c = c.json();
    json!({"id": id, "appId": c["appId"], "account": c["account"],
        "status": if c["suspended"] == true { "suspended" } else { "active" },
        "repositoryCount": c["repositories"].as_array().unwrap().len(),
        "createdAt": c["createdAt"], "updatedAt": c["updatedAt"]})
}

/// The rows of `ids` in the listing (each at most once), by id.
fn listed(pages: &[Vec<Value>], ids: &[u64]) -> Vec<Value> {
    pages
        .iter()
        .flatten()
        .filter(|r| ids.contains(&r["id"].as_u64().unwrap()))
        .cloned()
        .collect()
}

fn tenant_listing_pages_exact_rows_without_secrets(s: &Shared) {
    use crate::webhooks::{fixture, installation_created, post_json};
    let app = unique_id();
    register_app(&s.api, app);
    // By the admin routes: with secrets, account and repositories; and a bare one.
    let full = unique_id();
    let mut body = full_config();
    body["appId"] = json!(app);
    assert_eq!(s.api.admin("PUT", &path(full), Some(&body)).status, 201);
    let bare = unique_id();
    let r = s
        .api
        .admin("PUT", &path(bare), Some(&json!({"appId": app})));
    assert_eq!(r.status, 201, "{}", r.text());
    // By GitHub's installation.created, then suspended.
    let hooked = unique_id();
    let created = installation_created(app, hooked, &[(unique_id(), "Codertocat/hello")]);
    assert_eq!(post_json(&s.api, app, "installation", &created).status, 202);
    let mut suspend = fixture("installation", "suspend.payload.json");
    suspend["installation"]["id"] = json!(hooked);
    suspend["installation"]["app_id"] = json!(app);
    assert_eq!(post_json(&s.api, app, "installation", &suspend).status, 202);
    // Created, then its account changed by a PATCH.
    let patched = unique_id();
    assert_eq!(
        s.api
            .admin("PUT", &path(patched), Some(&json!({"appId": app})))
            .status,
        201
    );
    let account = json!({"login": "renamed-org", "id": 78, "type": "Organization"});
    let r = s
        .api
        .admin("PATCH", &path(patched), Some(&json!({"account": account})));
    assert_eq!(r.status, 200, "{}", r.text());

    let mine = [full, bare, hooked, patched];
    let pages = list_tenants(s, 2);
    assert!(pages.len() >= 2, "more than one page: {pages:?}");
    let expected: Vec<Value> = mine.iter().map(|id| expected_row(s, *id)).collect();
    assert_eq!(listed(&pages, &mine), expected);
    // What the rows say, spelled out (not only "as the config says").
    assert_eq!(expected[0]["account"]["login"], "octo-org");
    assert_eq!(expected[0]["repositoryCount"], 2);
    assert_eq!(expected[1]["account"], Value::Null);
    assert_eq!(expected[1]["repositoryCount"], 0);
    assert_eq!(
        (
            expected[2]["status"].as_str(),
            expected[2]["account"]["login"].as_str()
        ),
        (Some("suspended"), Some("Codertocat"))
    );
    assert_eq!(expected[2]["repositoryCount"], 1);
    assert_eq!(expected[3]["account"], account);
    assert!(expected.iter().all(|r| r["appId"] == app));

    // Unsuspended by GitHub, deleted by the admin and by GitHub: the listing follows.
    let mut unsuspend = fixture("installation", "unsuspend.payload.json");
    unsuspend["installation"]["id"] = json!(hooked);
    unsuspend["installation"]["app_id"] = json!(app);
    assert_eq!(
        post_json(&s.api, app, "installation", &unsuspend).status,
        202
    );
    let after_unsuspend = listed(&list_tenants(s, 2), &[hooked]);
    assert_eq!(after_unsuspend, vec![expected_row(s, hooked)]);
    assert_eq!(after_unsuspend[0]["status"], "active");
    assert_eq!(s.api.admin("DELETE", &path(full), None).status, 204);
    let mut deleted = fixture("installation", "deleted.payload.json");
    deleted["installation"]["id"] = json!(patched);
    deleted["installation"]["app_id"] = json!(app);
    // `patched` was made by the admin: the uninstall still drops it.
    assert_eq!(post_json(&s.api, app, "installation", &deleted).status, 202);
    assert_eq!(s.api.admin("GET", &path(patched), None).status, 404);
    let pages = list_tenants(s, 2);
    assert_eq!(
        listed(&pages, &mine),
        vec![expected_row(s, bare), expected_row(s, hooked)]
    );

    // Bad queries are refused; no token, no listing.
    for query in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=abc",
        "cursor=0",
        "page=2",
    ] {
        let r = s
            .api
            .admin("GET", &format!("/api/installations?{query}"), None);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "validation_failed"),
            "{query}"
        );
    }
    let r = s.api.send("GET", "/api/installations", &[], None);
    assert_eq!((r.status, r.code().as_str()), (401, "unauthorized"));
}
