//! People, not a shared token: GitHub sign-in gives staff roles by login or team, every staff
//! write is audited (`GET /api/audit`), and a cookie-authenticated write must come from an
//! allowed origin with a JSON body.
//!
//! The shared worker names the logins below and the team `e2e-org/e2e-admins`
//! (`worker_vars`); the fake GitHub answers the team membership check from [`TEAM`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use crate::admin_access::SignedIn;
use crate::api::{Api, Resp};
use crate::fake_github::{FakeGithub, Match, Reply, Respond, Times};
use crate::identity::register_app;
use crate::projects::{ORG, ORG_INSTALLATION_ID};
use crate::worker::{Worker, WorkerOptions};
use crate::{unique_id, Setup, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "people::an_admin_login_approves_without_the_token",
        an_admin_login_approves_without_the_token,
    ),
    (
        "people::a_viewer_reads_but_never_writes_or_sees_a_secret",
        a_viewer_reads_but_never_writes_or_sees_a_secret,
    ),
    (
        "people::strangers_are_403_and_no_session_is_401",
        strangers_are_403_and_no_session_is_401,
    ),
    (
        "people::team_membership_is_checked_cached_and_never_guessed",
        team_membership_is_checked_cached_and_never_guessed,
    ),
    (
        "people::every_write_is_audited_once_with_its_actor",
        every_write_is_audited_once_with_its_actor,
    ),
    (
        "people::cookie_writes_need_an_allowed_origin_and_json",
        cookie_writes_need_an_allowed_origin_and_json,
    ),
    (
        "people::the_audit_survives_a_restart",
        the_audit_survives_a_restart,
    ),
];

const ADMIN: &str = "e2e-people-admin";
/// An admin used only by the audit test, so its entries are its own.
const AUDITOR: &str = "e2e-people-auditor";
pub const VIEWER: &str = "e2e-people-viewer";
const TEAM_SLUG: &str = "e2e-admins";
/// Seconds a team answer is trusted in the shared worker.
const TEAM_CACHE_SECONDS: u64 = 2;

pub fn worker_vars() -> Vec<(String, String)> {
    [
        (
            "ADMIN_GITHUB_LOGINS",
            format!("{ADMIN},{AUDITOR},{}", crate::console::ADMIN),
        ),
        (
            "VIEWER_GITHUB_LOGINS",
            format!("{VIEWER},{}", crate::console_admin::VIEWER),
        ),
        ("ADMIN_GITHUB_TEAM", format!("{ORG}/{TEAM_SLUG}")),
        ("ADMIN_TEAM_CACHE_SECONDS", TEAM_CACHE_SECONDS.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// What the fake answers for a login's membership of the team: 200 (active), 404, or a 5xx.
/// Logins not listed are not members.
static TEAM: Mutex<Option<HashMap<String, u16>>> = Mutex::new(None);

fn set_team(login: &str, status: u16) {
    TEAM.lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(login.to_owned(), status);
}

/// The shared worker's people config, and the fake's team answers from the start.
pub const SETUP: Setup = Setup {
    vars: |_| worker_vars(),
    install,
    ..Setup::NONE
};

fn install(fake: &FakeGithub) {
    let answer = Respond::with(|req| {
        let parts: Vec<&str> = req.path.split('?').next()?.split('/').collect();
        // /orgs/{org}/teams/{team_slug}/memberships/{username}
        if parts.get(2) != Some(&ORG) || parts.get(4) != Some(&TEAM_SLUG) {
            return Some(Reply::json(404, json!({"message": "Not Found"})));
        }
        let login = parts.get(6)?.to_string();
        let status = TEAM
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|t| t.get(&login).copied())
            .unwrap_or(404);
        Some(match status {
            200 => Reply::json(
                200,
                json!({"url": format!("https://api.github.com/teams/1/memberships/{login}"),
                    "role": "member", "state": "active"}),
            ),
            404 => Reply::json(404, json!({"message": "Not Found"})),
            s => Reply::json(s, json!({"message": "Service Unavailable"})),
        })
    });
    fake.on(
        Match::operation("teams/get-membership-for-user-in-org"),
        answer,
        Times::Always,
    );
}

/// Signs `login` in (the fake's team answers are in place from the start: [`SETUP`]).
fn sign_in_as(s: &Shared, login: &str) -> SignedIn {
    crate::admin_access::sign_in_as(s, login)
}

fn bearer(who: &SignedIn) -> String {
    format!("Bearer {}", who.token)
}

/// A request with a person's bearer session and, when given, a JSON body.
fn as_person(api: &Api, who: &SignedIn, method: &str, path: &str, body: Option<&Value>) -> Resp {
    let auth = bearer(who);
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    let mut headers = vec![("authorization", auth.as_str())];
    if bytes.is_some() || method != "GET" {
        headers.push(("content-type", "application/json"));
    }
    api.send(method, path, &headers, bytes.as_deref())
}

/// A draft project moved to `interviewing` by `who`; its slug.
fn project_by(api: &Api, who: Option<&SignedIn>) -> String {
    let name = format!("People {} Ltd.", unique_id());
    let body = json!({"name": name, "description": "People-run"});
    let r = match who {
        Some(w) => as_person(api, w, "POST", "/projects", Some(&body)),
        None => api.admin("POST", "/projects", Some(&body)),
    };
    assert_eq!(r.status, 201, "{}", r.text());
    let slug = r.json()["slug"].as_str().unwrap().to_owned();
    let patch = json!({"status": "interviewing"});
    let path = format!("/projects/{slug}");
    let r = match who {
        Some(w) => as_person(api, w, "PATCH", &path, Some(&patch)),
        None => api.admin("PATCH", &path, Some(&patch)),
    };
    assert_eq!(r.status, 200, "{}", r.text());
    slug
}

fn status_of(api: &Api, slug: &str) -> Value {
    api.admin("GET", &format!("/projects/{slug}"), None).json()["status"].clone()
}

fn an_admin_login_approves_without_the_token(s: &Shared) {
    let admin = sign_in_as(s, ADMIN);
    let slug = project_by(&s.api, Some(&admin));
    let r = as_person(
        &s.api,
        &admin,
        "POST",
        &format!("/projects/{slug}/approve"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_of(&s.api, &slug), "review");
    // Admin reads too, and the login's case does not matter.
    let r = as_person(&s.api, &admin, "GET", "/projects", None);
    assert_eq!(r.status, 200, "{}", r.text());
}

fn a_viewer_reads_but_never_writes_or_sees_a_secret(s: &Shared) {
    let viewer = sign_in_as(s, VIEWER);
    for path in [
        "/projects".to_owned(),
        format!("/api/installations/{ORG_INSTALLATION_ID}/deliveries"),
        format!("/api/installations/{ORG_INSTALLATION_ID}/config"),
        format!("/api/installations/{ORG_INSTALLATION_ID}/service-keys"),
        "/api/installations".to_owned(),
        "/api/audit".to_owned(),
    ] {
        let r = as_person(&s.api, &viewer, "GET", &path, None);
        assert_eq!(r.status, 200, "viewer GET {path}: {}", r.text());
        assert!(!r.text().contains("ghpsk_"), "{path} shows a service key");
    }
    let slug = project_by(&s.api, None);
    let keys = format!("/api/installations/{ORG_INSTALLATION_ID}/service-keys");
    let keys_before = s.api.admin("GET", &keys, None).json();
    let approve = format!("/projects/{slug}/approve");
    let source = format!("/projects/{slug}/source");
    let source_body =
        json!({"installationId": ORG_INSTALLATION_ID, "repositoryId": 1, "branch": "main"});
    for (method, path, body) in [
        ("POST", approve.as_str(), None),
        ("POST", keys.as_str(), None),
        ("PUT", source.as_str(), Some(&source_body)),
        ("POST", "/projects", Some(&json!({"name": "Viewer's own"}))),
    ] {
        let r = as_person(&s.api, &viewer, method, path, body);
        assert_eq!(r.status, 403, "viewer {method} {path}: {}", r.text());
        assert_eq!(r.code(), "forbidden");
    }
    assert_eq!(status_of(&s.api, &slug), "interviewing", "nothing changed");
    assert_eq!(
        s.api.admin("GET", &keys, None).json(),
        keys_before,
        "no key was made"
    );
}

fn strangers_are_403_and_no_session_is_401(s: &Shared) {
    let stranger = sign_in_as(s, &format!("e2e-people-stranger-{}", unique_id()));
    let slug = project_by(&s.api, None);
    for (method, path) in [
        ("GET", "/projects".to_owned()),
        ("POST", format!("/projects/{slug}/approve")),
        ("GET", "/api/audit".to_owned()),
    ] {
        let r = as_person(&s.api, &stranger, method, &path, None);
        assert_eq!(r.status, 403, "stranger {method} {path}: {}", r.text());
        assert_eq!(r.code(), "forbidden");
    }
    for headers in [
        vec![],
        vec![("authorization", "Bearer not-a-token")],
        vec![("cookie", "other=1")],
    ] {
        let r = s.api.send("GET", "/projects", &headers, None);
        assert_eq!(r.status, 401, "{headers:?}");
        assert_eq!(r.code(), "unauthorized");
    }
    assert_eq!(status_of(&s.api, &slug), "interviewing");
}

fn team_membership_is_checked_cached_and_never_guessed(s: &Shared) {
    let member = format!("e2e-people-team-{}", unique_id());
    set_team(&member, 200);
    let who = sign_in_as(s, &member);
    let r = as_person(&s.api, &who, "GET", "/projects", None);
    assert_eq!(r.status, 200, "an active member: {}", r.text());
    let slug = project_by(&s.api, Some(&who));
    assert_eq!(status_of(&s.api, &slug), "interviewing", "a member writes");
    let asked = |login: &str| {
        s.fake
            .requests_for("teams/get-membership-for-user-in-org")
            .iter()
            .filter(|r| r.path.ends_with(&format!("/memberships/{login}")))
            .count()
    };
    assert!(asked(&member) >= 1);
    let token = s.fake.requests_for("teams/get-membership-for-user-in-org")[0]
        .header("authorization")
        .unwrap_or("")
        .to_owned();
    assert!(
        token.starts_with("Bearer ") && !token.contains("ghu_"),
        "the org's installation token asks, never the user's: {token}"
    );

    // Removed from the team: denied once the cached answer expires.
    set_team(&member, 404);
    std::thread::sleep(Duration::from_secs(TEAM_CACHE_SECONDS + 1));
    let r = as_person(&s.api, &who, "GET", "/projects", None);
    assert_eq!(r.status, 403, "a removed member: {}", r.text());
    assert_eq!(r.code(), "forbidden");

    // GitHub failing during the check: 503 transient, never a grant.
    let outage = format!("e2e-people-team-{}", unique_id());
    set_team(&outage, 503);
    let who = sign_in_as(s, &outage);
    let r = as_person(&s.api, &who, "GET", "/projects", None);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.code(), "transient");
    let r = as_person(
        &s.api,
        &who,
        "POST",
        "/projects",
        Some(&json!({"name": "Outage"})),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    // Back: allowed again (a failure is not cached).
    set_team(&outage, 200);
    let r = as_person(&s.api, &who, "GET", "/projects", None);
    assert_eq!(r.status, 200, "{}", r.text());
}

fn audit(api: &Api, query: &str) -> Value {
    let r = api.admin("GET", &format!("/api/audit?{query}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn every_write_is_audited_once_with_its_actor(s: &Shared) {
    let auditor = sign_in_as(s, AUDITOR);
    let before = audit(&s.api, &format!("actor={AUDITOR}&limit=100"))["entries"]
        .as_array()
        .unwrap()
        .len();
    let slug = project_by(&s.api, Some(&auditor));
    let r = as_person(&s.api, &auditor, "GET", &format!("/projects/{slug}"), None);
    assert_eq!(r.status, 200);
    let r = as_person(
        &s.api,
        &auditor,
        "POST",
        &format!("/projects/{slug}/approve"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A refused write by the token is recorded too, with its status.
    let r = s.api.admin(
        "PATCH",
        &format!("/projects/{slug}"),
        Some(&json!({"status": "nope"})),
    );
    assert_eq!(r.status, 400, "{}", r.text());

    let mine = audit(&s.api, &format!("actor={AUDITOR}&limit=100"))["entries"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(mine.len() - before, 3, "create, patch, approve: {mine:?}");
    let routes: Vec<(&str, &str)> = mine[..3]
        .iter()
        .map(|e| (e["method"].as_str().unwrap(), e["route"].as_str().unwrap()))
        .collect();
    assert_eq!(
        routes,
        [
            ("POST", "/projects/{slug}/approve"),
            ("PATCH", "/projects/{slug}"),
            ("POST", "/projects"),
        ],
        "newest first, templates not paths"
    );
    for e in &mine[..3] {
        assert_eq!(e["actor"]["kind"], "person");
        assert_eq!(e["actor"]["login"], AUDITOR);
        assert!(e["actor"]["id"].as_u64().is_some());
        assert!(e["request_id"].is_string());
        assert!(e["at"].is_string());
    }
    assert_eq!(mine[0]["status"], 200);
    assert_eq!(mine[2]["status"], 201);

    // By target: the three writes on the slug (the create has no id in its path).
    let on_slug = audit(&s.api, &format!("target={slug}"))["entries"]
        .as_array()
        .unwrap()
        .clone();
    let seen: Vec<(&str, &str, u64)> = on_slug
        .iter()
        .map(|e| {
            (
                e["actor"]["kind"].as_str().unwrap(),
                e["method"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("token", "PATCH", 400),
            ("person", "POST", 200),
            ("person", "PATCH", 200)
        ]
    );
    assert_eq!(on_slug[0]["targets"], json!({"slug": slug}));
    assert!(
        on_slug.iter().all(|e| e["method"] != "GET"),
        "reads are not audited"
    );

    // Paged newest first by cursor, one entry a page.
    let mut cursor = String::new();
    let mut paged = Vec::new();
    for _ in 0..5 {
        let page = audit(&s.api, &format!("target={slug}&limit=1{cursor}"));
        paged.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let ids: Vec<Value> = on_slug.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(paged, ids);
    // Since the future: nothing.
    let later = audit(&s.api, &format!("target={slug}&since=2999-01-01T00:00:00Z"));
    assert_eq!(later["entries"], json!([]));
    let r = s.api.admin("GET", "/api/audit?since=yesterday", None);
    assert_eq!(r.status, 400);
}

fn cookie_writes_need_an_allowed_origin_and_json(s: &Shared) {
    let admin = sign_in_as(s, ADMIN);
    let own = s.api.base.clone();
    let name = format!("Cookie {} Ltd.", unique_id());
    let body = json!({"name": name}).to_string();
    let post = |origin: Option<&str>, content_type: &str| {
        let mut headers = vec![
            ("cookie", admin.cookie.as_str()),
            ("content-type", content_type),
        ];
        if let Some(o) = origin {
            headers.push(("origin", o));
        }
        s.api
            .send("POST", "/projects", &headers, Some(body.as_bytes()))
    };
    let listed = || {
        s.api.admin("GET", "/projects", None).json()["projects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == json!(name))
    };
    let r = post(Some(&own), "text/plain");
    assert_eq!(r.status, 415, "{}", r.text());
    let r = post(Some("https://evil.example"), "application/json");
    assert_eq!((r.status, r.code()), (403, "forbidden".to_owned()));
    let r = post(None, "application/json");
    assert_eq!(r.status, 403, "no Origin: {}", r.text());
    assert!(!listed(), "nothing was created");

    // The same write from the worker's own origin, and from an allowed admin origin.
    let r = post(Some(&own), "application/json");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(listed());
    let slug = project_by(&s.api, None);
    let approve = format!("/projects/{slug}/approve");
    let r = s.api.send(
        "POST",
        &approve,
        &[
            ("cookie", admin.cookie.as_str()),
            ("origin", "https://evil.example"),
            ("content-type", "application/json"),
        ],
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(status_of(&s.api, &slug), "interviewing", "nothing changed");
    let r = s.api.send(
        "POST",
        &approve,
        &[
            ("cookie", admin.cookie.as_str()),
            ("origin", "https://admin.example.com"),
            ("content-type", "application/json"),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A cookie read needs neither.
    let r = s.api.send(
        "GET",
        "/projects",
        &[("cookie", admin.cookie.as_str())],
        None,
    );
    assert_eq!(r.status, 200);
}

/// A worker of its own: the audit is stored before the answer, so a restart loses nothing.
fn the_audit_survives_a_restart(s: &Shared) {
    let mut worker = Worker::start(
        &s.run_dir.join("people-restart"),
        WorkerOptions::new(&s.fake.base_url()),
    );
    let api = Api::new(&worker.base_url());
    let apps: Vec<u64> = (0..3).map(|_| 9_300_000 + unique_id()).collect();
    for app in &apps {
        let r = register_app(&api, *app);
        assert!(r.status == 200 || r.status == 201, "{}", r.text());
    }
    worker.restart();
    let api = Api::new(&worker.base_url());
    for app in &apps {
        let entries = audit(&api, &format!("target={app}"))["entries"].clone();
        assert_eq!(entries.as_array().unwrap().len(), 1, "{app}: {entries}");
        assert_eq!(
            entries[0]["actor"],
            json!({"kind": "token", "login": null, "id": null})
        );
        assert_eq!(entries[0]["route"], "/api/apps/{app_id}");
        assert!(entries[0]["status"] == 200 || entries[0]["status"] == 201);
    }
    worker.stop();
}
