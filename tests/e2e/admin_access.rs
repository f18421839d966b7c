//! Admin access: the GitHub sign-in of the admin SPA (start → GitHub's authorize page →
//! callback → session → disconnect), the installations and repositories the signed-in user
//! can act on, and CORS for the SPA.
//!
//! The fake GitHub plays github.com too (its web routes); `GITHUB_WEB_BASE` points at it.
//! Listing scenarios are chosen by the user token the test passes through:
//! `ghu_e2e_<scenario>_<unique>`.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ghplane_core::admin_access::state::{state_key, OAuthState};
use ghplane_core::sealed::parse_key;
use serde_json::{json, Value};

use crate::api::{Api, Resp};
use crate::fake_github::{
    example, next_page, FakeGithub, Match, RecordedRequest, Reply, Respond, Times, WEB_ACCESS_TOKEN,
};
use crate::github_handlers::now_unix;
use crate::identity::{register_app, CLIENT_SECRET};
use crate::worker::ENCRYPTION_KEY;
use crate::{unique_id, Setup, Shared, TestFn};

pub const SETUP: Setup = Setup {
    vars: worker_vars,
    ready: |s| install(&s.fake, &s.worker.base_url(), &s.api),
    never_logged: NEVER_LOGGED,
    ..Setup::NONE
};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "admin_access::connect_flow_status_and_disconnect",
        connect_flow_status_and_disconnect,
    ),
    (
        "admin_access::cross_site_spa_gets_a_bearer_session",
        cross_site_spa_gets_a_bearer_session,
    ),
    (
        "admin_access::bad_states_are_refused_without_a_code_exchange",
        bad_states_are_refused_without_a_code_exchange,
    ),
    (
        "admin_access::installations_are_capped_filtered_and_linked",
        installations_are_capped_filtered_and_linked,
    ),
    (
        "admin_access::listing_failures_are_classified_without_fallback",
        listing_failures_are_classified_without_fallback,
    ),
    (
        "admin_access::repos_are_cached_with_etags_and_paged_by_cursor",
        repos_are_cached_with_etags_and_paged_by_cursor,
    ),
    (
        "admin_access::cors_answers_only_listed_origins",
        cors_answers_only_listed_origins,
    ),
];

/// The registered app whose OAuth client signs admins in (`GITHUB_APP_ID`).
const OAUTH_APP_ID: u64 = 777_001;
pub(crate) const APP_SLUG: &str = "ghplane-admin-e2e";
/// The slug GitHub's own answers carry in the listing scenarios.
const RESPONSE_SLUG: &str = "ghplane-from-github";
const ADMIN_ORIGIN: &str = "https://admin.example.com";
const CALLBACK_PATH: &str = "/api/integrations/github/callback";
const TURNSTILE_SITE_KEY: &str = "1x00000000000000000000AA";

/// Prefixes of tokens and sessions that must never show up in the worker's output.
pub const NEVER_LOGGED: &[&str] = &["ghu_fake_", "ghr_fake_", "ghpas_", "ghu_e2e_"];

fn client_id() -> String {
    format!("Iv1.e2e{OAUTH_APP_ID}")
}

/// Vars of the shared worker for this area. The page cap is 2 so three pages of
/// installations show the cut.
pub fn worker_vars(fake_base: &str) -> Vec<(String, String)> {
    [
        ("GITHUB_WEB_BASE", fake_base),
        ("GITHUB_APP_ID", &OAUTH_APP_ID.to_string()),
        ("GITHUB_APP_SLUG", APP_SLUG),
        ("TURNSTILE_SITE_KEY", TURNSTILE_SITE_KEY),
        ("INSTALLATIONS_PAGE_CAP", "2"),
        (
            "ADMIN_ORIGINS",
            &format!("{ADMIN_ORIGIN},http://localhost:5173"),
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Registers the OAuth app with the worker and github.com, and the fake's answers for the
/// user endpoints.
pub fn install(fake: &FakeGithub, worker_base: &str, api: &Api) {
    register_app(api, OAUTH_APP_ID);
    fake.register_oauth_app(
        &client_id(),
        CLIENT_SECRET,
        &[&format!("{worker_base}{CALLBACK_PATH}")],
    );
    fake.on(
        Match::operation("apps/list-installations-for-authenticated-user"),
        Respond::with(installations_handler),
        Times::Always,
    );
    fake.on(
        Match::operation("apps/list-installation-repos-for-authenticated-user"),
        Respond::with(repos_handler),
        Times::Always,
    );
}

pub(crate) fn bearer(req: &RecordedRequest) -> Option<String> {
    req.header("authorization")?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

pub(crate) fn installation(id: u64, login: &str, kind: &str, slug: &str) -> Value {
    let mut i =
        example("apps/list-installations-for-authenticated-user")["installations"][0].clone();
    i["id"] = json!(id);
    i["account"]["login"] = json!(login);
    i["account"]["id"] = json!(id + 1_000_000);
    i["account"]["type"] = json!(kind);
    i["target_type"] = json!(kind);
    i["app_slug"] = json!(slug);
    i
}

fn github_error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}),
    )
}

/// `GET /user/installations`, shaped by the token: users signed in through the web routes
/// have two organisations and their own account; `ghu_e2e_<scenario>_…` tokens pick a
/// scenario.
fn installations_handler(req: &RecordedRequest) -> Option<Reply> {
    let token = bearer(req)?;
    let all: Vec<Value> = if let Some(n) = token.strip_prefix("ghu_fake_") {
        vec![
            installation(1, &format!("org-a-{n}"), "Organization", APP_SLUG),
            installation(2, &format!("user-{n}"), "User", APP_SLUG),
            installation(3, &format!("org-b-{n}"), "Organization", APP_SLUG),
        ]
    } else {
        let scenario = token.strip_prefix("ghu_e2e_")?.split('_').next()?;
        match scenario {
            "empty" => vec![],
            "pages3" => (1..=250)
                .map(|i| installation(i, &format!("org-{i}"), "Organization", RESPONSE_SLUG))
                .collect(),
            "mixed" => vec![
                installation(11, "org-one", "Organization", RESPONSE_SLUG),
                installation(12, "octo-user", "User", RESPONSE_SLUG),
                installation(13, "org-two", "Organization", RESPONSE_SLUG),
            ],
            "e401" => return Some(github_error(401, "Bad credentials")),
            "e403" => return Some(github_error(403, "Resource not accessible by integration")),
            "e503" => return Some(github_error(503, "Service Unavailable")),
            "e429" => {
                return Some(
                    github_error(429, "API rate limit exceeded for user")
                        .header("retry-after", "60"),
                )
            }
            _ => return None,
        }
    };
    let total = all.len();
    let (range, next) = next_page(req, total, 30);
    let items = &all[range];
    Some(Reply::json(200, json!({"total_count": total, "installations": items})).link_next(next))
}

/// Repositories per installation, changeable by tests; installations in `HIDDEN` are not
/// visible to the user (GitHub's 404).
static REPOS: Mutex<Option<HashMap<u64, Vec<Value>>>> = Mutex::new(None);
static HIDDEN: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn repo(installation: u64, i: usize) -> Value {
    let mut r =
        example("apps/list-installation-repos-for-authenticated-user")["repositories"][0].clone();
    let name = format!("repo-{i:03}");
    r["id"] = json!(installation * 10_000 + i as u64);
    r["node_id"] = json!(format!("R_{installation}_{i}"));
    r["name"] = json!(name);
    r["full_name"] = json!(format!("org-{installation}/{name}"));
    r["default_branch"] = json!(if i % 2 == 0 { "main" } else { "trunk" });
    r["private"] = json!(i % 3 == 0);
    r["archived"] = json!(i == 7);
    r
}

fn set_repos(installation: u64, count: usize) {
    let rows = (0..count).map(|i| repo(installation, i)).collect();
    REPOS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(installation, rows);
}

fn repos_handler(req: &RecordedRequest) -> Option<Reply> {
    let token = bearer(req)?;
    if !token.starts_with("ghu_fake_") {
        return Some(github_error(401, "Bad credentials"));
    }
    let installation: u64 = req.path.split('/').nth(3)?.parse().ok()?;
    if HIDDEN.lock().unwrap().contains(&installation) {
        return Some(github_error(404, "Not Found"));
    }
    let all = REPOS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&installation).cloned())?;
    let (range, next) = next_page(req, all.len(), 30);
    let items = &all[range];
    Some(
        Reply::json(
            200,
            json!({"total_count": all.len(), "repositories": items}),
        )
        .link_next(next),
    )
}

/// A browser: GETs a URL without following redirects; status and `Location`.
fn browse(url: &str) -> (u16, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    match agent.get(url).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            (r.status(), r.header("location").unwrap_or("").to_owned())
        }
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn json_post(api: &Api, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    api.send("POST", path, &all, Some(body.to_string().as_bytes()))
}

/// Starts a sign-in; the answer, plus the browser binding cookie it set (`cookie`, as a
/// `Cookie` header value).
fn start(s: &Shared, return_to: &str) -> Value {
    let r = json_post(
        &s.api,
        "/api/integrations/github/start",
        &[],
        &json!({"return_to": return_to}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let set_cookie = r.header("set-cookie").expect("a binding cookie").to_owned();
    for attr in [
        "__Host-ghplane_oauth=",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let mut v = r.json();
    v["cookie"] = json!(set_cookie.split(';').next().unwrap());
    v
}

fn cookie_of(started: &Value) -> String {
    started["cookie"].as_str().unwrap().to_owned()
}

/// Plays the user approving on GitHub: the callback path (with `code` and `state`) that
/// GitHub redirects the browser to.
fn approve(s: &Shared, authorize_url: &str, login: &str) -> String {
    let (status, location) = browse(&format!("{authorize_url}&login={login}"));
    assert_eq!(status, 302, "GitHub's authorize page redirects back");
    location
        .strip_prefix(&s.api.base)
        .unwrap_or_else(|| panic!("redirected to {location}, not the worker's callback"))
        .to_owned()
}

fn code_of(callback: &str) -> String {
    callback
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .expect("a code")
        .to_owned()
}

fn exchanges_of(s: &Shared, code: &str) -> Vec<RecordedRequest> {
    s.fake
        .requests_for(WEB_ACCESS_TOKEN)
        .into_iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(&format!("code={code}&")))
        .collect()
}

pub(crate) struct SignedIn {
    /// `Cookie` header value.
    pub(crate) cookie: String,
    /// The session as a bearer token.
    pub(crate) token: String,
    login: String,
}

pub(crate) fn sign_in(s: &Shared) -> SignedIn {
    sign_in_as(s, &format!("e2e-admin-{}", unique_id()))
}

/// Signs `login` in through GitHub's web flow (same-site: the session arrives as a cookie).
pub(crate) fn sign_in_as(s: &Shared, login: &str) -> SignedIn {
    let login = login.to_owned();
    let started = start(s, "/settings/github");
    let callback = approve(s, started["authorize_url"].as_str().unwrap(), &login);
    let r = s
        .api
        .send("GET", &callback, &[("cookie", &cookie_of(&started))], None);
    assert_eq!(r.status, 302, "{}", r.text());
    let set_cookie = r.header("set-cookie").expect("a session cookie").to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let token = cookie.split_once('=').unwrap().1.to_owned();
    SignedIn {
        cookie,
        token,
        login,
    }
}

fn payload(state: &str) -> Value {
    let (payload, _) = state.split_once('.').expect("payload.signature");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

fn connect_flow_status_and_disconnect(s: &Shared) {
    let login = format!("e2e-admin-{}", unique_id());
    let before = now_unix();
    let started = start(s, "/settings/github");
    let authorize_url = started["authorize_url"].as_str().unwrap();
    let redirect_uri = format!("{}{CALLBACK_PATH}", s.api.base);
    assert!(
        authorize_url.starts_with(&format!(
            "{}/login/oauth/authorize?client_id={}&redirect_uri=",
            s.fake.base_url(),
            client_id()
        )),
        "{authorize_url}"
    );
    let state = started["state"].as_str().unwrap();
    let claims = payload(state);
    assert_eq!(claims["r"], "/settings/github");
    assert_eq!(claims["g"], APP_SLUG);
    assert_eq!(claims["t"], TURNSTILE_SITE_KEY);
    assert!(
        claims.get("o").is_none(),
        "no cross-site origin started this one"
    );
    assert_eq!(claims["n"].as_str().unwrap().len(), 22);
    let exp = claims["exp"].as_i64().unwrap();
    assert!(
        (before + 600..=now_unix() + 600).contains(&exp),
        "10 minutes"
    );

    let callback = approve(s, authorize_url, &login);
    let code = code_of(&callback);
    let r = s
        .api
        .send("GET", &callback, &[("cookie", &cookie_of(&started))], None);
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(r.header("location"), Some("/settings/github"));
    let set_cookie = r.header("set-cookie").unwrap().to_owned();
    for attr in [
        "__Host-ghplane_session=ghpas_",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let session = cookie.split_once('=').unwrap().1.to_owned();

    let exchanges = exchanges_of(s, &code);
    assert_eq!(exchanges.len(), 1, "one code exchange");
    let form = String::from_utf8_lossy(&exchanges[0].body).into_owned();
    assert!(
        form.contains(&format!("client_id={}", client_id())),
        "{form}"
    );
    assert!(
        form.contains(&format!(
            "redirect_uri={}",
            ghplane_core::admin_access::oauth::pct_encode(&redirect_uri)
        )),
        "the callback URL, exactly as sent to the authorize page: {form}"
    );
    assert_eq!(exchanges[0].header("accept"), Some("application/json"));

    let status = s.api.send(
        "GET",
        "/api/integrations/github/status",
        &[("cookie", &cookie)],
        None,
    );
    assert_eq!(status.status, 200);
    let body = status.json();
    assert_eq!(body["connected"], true);
    assert_eq!(body["login"], login.as_str());
    assert_eq!(
        body["installations"]["count"], 2,
        "organisations only: {body}"
    );
    assert_eq!(body["installations"]["incomplete"], false);
    let bearer = format!("Bearer {session}");
    let by_bearer = s.api.send(
        "GET",
        "/api/integrations/github/status",
        &[("authorization", &bearer)],
        None,
    );
    assert_eq!(
        by_bearer.json()["login"],
        login.as_str(),
        "the same session as a bearer token"
    );
    let listed = s.api.send(
        "GET",
        "/api/integrations/github/installations",
        &[("cookie", &cookie)],
        None,
    );
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["installations"].as_array().unwrap().len(), 2);
    for r in [&status, &by_bearer, &listed] {
        assert!(
            !r.text().contains("ghu_") && !r.text().contains("ghr_"),
            "a token leaked: {}",
            r.text()
        );
    }

    // At rest the tokens are sealed: no storage file of the worker holds them in clear.
    let issued = s.fake.oauth_tokens_of(&login);
    assert_eq!(issued.len(), 1);
    let refresh = issued[0].replace("ghu_", "ghr_");
    let files = files_under(&s.worker.dir.join("state"));
    let holds = |file: &std::path::PathBuf, needle: &[u8]| {
        std::fs::read(file)
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle)
    };
    assert!(
        files.iter().any(|f| holds(f, login.as_bytes())),
        "the scan reads the user's object (its login is stored in clear)"
    );
    for file in &files {
        for secret in [&issued[0], &refresh, &session] {
            assert!(
                !holds(file, secret.as_bytes()),
                "{} holds a token or session in clear",
                file.display()
            );
        }
    }

    let grants_before = s.fake.requests_for("apps/delete-authorization").len();
    let out = json_post(
        &s.api,
        "/api/integrations/github/disconnect",
        &[("cookie", &cookie)],
        &json!({}),
    );
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json(), json!({"connected": false, "revoked": true}));
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let grants = s.fake.requests_for("apps/delete-authorization");
    let grant = grants[grants_before..]
        .iter()
        .find(|g| {
            g.json()["access_token"]
                .as_str()
                .and_then(|t| s.fake.oauth_user(t))
                .is_some_and(|u| u.login == login)
        })
        .expect("GitHub saw DELETE /applications/{client_id}/grant for this user's token");
    assert_eq!(grant.path, format!("/applications/{}/grant", client_id()));
    assert!(s
        .fake
        .oauth_revoked(grant.json()["access_token"].as_str().unwrap()));

    let after = s.api.send(
        "GET",
        "/api/integrations/github/status",
        &[("cookie", &cookie)],
        None,
    );
    assert_eq!(after.json(), json!({"connected": false}));
    let listed = s.api.send(
        "GET",
        "/api/integrations/github/installations",
        &[("cookie", &cookie)],
        None,
    );
    assert_eq!(
        (listed.status, listed.code().as_str()),
        (401, "session_invalid")
    );
    let again = json_post(
        &s.api,
        "/api/integrations/github/disconnect",
        &[("cookie", &cookie)],
        &json!({}),
    );
    assert_eq!(again.status, 401);
    let nobody = s
        .api
        .send("GET", "/api/integrations/github/status", &[], None);
    assert_eq!(nobody.json(), json!({"connected": false}));
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// An SPA on another site starts the sign-in with `fetch` (its `Origin` is allowed), so
/// the callback sends the browser back to that origin with the session as a bearer token in
/// the fragment (never sent to a server); the SPA then calls with `Authorization: Bearer`.
fn cross_site_spa_gets_a_bearer_session(s: &Shared) {
    let login = format!("e2e-admin-{}", unique_id());
    // The SPA keeps a verifier and sends its S256 challenge (PKCE).
    let verifier = URL_SAFE_NO_PAD.encode(unique_id().to_be_bytes().repeat(4));
    let challenge = ghplane_core::admin_access::state::binding_hash(&verifier);
    let without = json_post(
        &s.api,
        "/api/integrations/github/start",
        &[("origin", ADMIN_ORIGIN)],
        &json!({"return_to": "/orgs#top"}),
    );
    assert_eq!(
        (without.status, without.code().as_str()),
        (400, "validation_failed"),
        "a cross-site start needs a code_challenge"
    );
    let r = json_post(
        &s.api,
        "/api/integrations/github/start",
        &[("origin", ADMIN_ORIGIN)],
        &json!({"return_to": "/orgs#top", "code_challenge": challenge}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("set-cookie").is_none(), "no cookie across sites");
    assert_eq!(r.header("access-control-allow-origin"), Some(ADMIN_ORIGIN));
    let started = r.json();
    assert_eq!(
        payload(started["state"].as_str().unwrap())["o"],
        ADMIN_ORIGIN
    );
    let callback = approve(s, started["authorize_url"].as_str().unwrap(), &login);
    let back = s.api.send("GET", &callback, &[], None);
    assert_eq!(back.status, 302, "{}", back.text());
    let location = back.header("location").unwrap();
    assert!(
        back.header("set-cookie").is_none(),
        "no session cookie on the worker's site"
    );
    let code = location
        .strip_prefix(&format!("{ADMIN_ORIGIN}/orgs#ghplane_code="))
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned();
    let redeem = |code: &str, verifier: &str| {
        json_post(
            &s.api,
            "/api/integrations/github/session",
            &[("origin", ADMIN_ORIGIN)],
            &json!({"code": code, "code_verifier": verifier}),
        )
    };
    // Another SPA (or a victim handed the link) has another verifier: refused, and the
    // code is spent.
    let other = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let stolen = redeem(&code, &other);
    assert_eq!(
        (stolen.status, stolen.code().as_str()),
        (400, "oauth_code_invalid"),
        "{}",
        stolen.text()
    );
    let spent = redeem(&code, &verifier);
    assert_eq!(spent.code(), "oauth_code_invalid");
    // The same flow again, redeemed by the SPA that started it.
    let r = json_post(
        &s.api,
        "/api/integrations/github/start",
        &[("origin", ADMIN_ORIGIN)],
        &json!({"return_to": "/orgs#top", "code_challenge": challenge}),
    );
    let callback = approve(s, r.json()["authorize_url"].as_str().unwrap(), &login);
    let back = s.api.send("GET", &callback, &[], None);
    assert_eq!(back.status, 302, "{}", back.text());
    let location = back.header("location").unwrap();
    let code = location
        .strip_prefix(&format!("{ADMIN_ORIGIN}/orgs#ghplane_code="))
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned();
    let got = redeem(&code, &verifier);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(
        got.header("access-control-allow-origin"),
        Some(ADMIN_ORIGIN)
    );
    let token = got.json()["session"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ghpas_"), "{token}");
    assert_eq!(
        redeem(&code, &verifier).code(),
        "oauth_code_invalid",
        "once"
    );
    let auth = format!("Bearer {token}");
    let status = s.api.send(
        "GET",
        "/api/integrations/github/status",
        &[("authorization", &auth), ("origin", ADMIN_ORIGIN)],
        None,
    );
    assert_eq!(status.json()["login"], login.as_str());
    assert_eq!(
        status.header("access-control-allow-origin"),
        Some(ADMIN_ORIGIN)
    );
    // A foreign origin is never recorded: its flow returns to a path on the worker.
    let foreign = json_post(
        &s.api,
        "/api/integrations/github/start",
        &[("origin", "https://evil.example")],
        &json!({}),
    );
    assert!(
        foreign.header("set-cookie").is_some(),
        "a same-site flow, bound by cookie"
    );
    assert!(payload(foreign.json()["state"].as_str().unwrap())
        .get("o")
        .is_none());
}

/// A state signed with the worker's key (derived from the test `ENCRYPTION_KEY`), for the
/// cases a real `start` never produces.
fn forge(mutate: impl FnOnce(&mut OAuthState)) -> String {
    let key = state_key(&parse_key(ENCRYPTION_KEY).unwrap());
    let mut st = OAuthState::new(&[42; 16], now_unix(), "/".into());
    st.n = URL_SAFE_NO_PAD.encode(crate::unique_id().to_be_bytes().repeat(2));
    st.b = Some(ghplane_core::admin_access::state::binding_hash(
        FORGED_BINDING,
    ));
    mutate(&mut st);
    st.encode(&key)
}

/// The binding secret of [`forge`]d states.
const FORGED_BINDING: &str = "forged-binding-secret-for-the-e2e-tests-000";

fn callback_with(s: &Shared, code: &str, state: Option<&str>, cookie: &str) -> Resp {
    let mut path = format!("{CALLBACK_PATH}?code={code}");
    if let Some(st) = state {
        path.push_str(&format!("&state={st}"));
    }
    s.api.send("GET", &path, &[("cookie", cookie)], None)
}

fn bad_states_are_refused_without_a_code_exchange(s: &Shared) {
    let login = format!("e2e-admin-{}", unique_id());
    let started = start(s, "/back");
    let cookie = cookie_of(&started);
    let state = started["state"].as_str().unwrap().to_owned();
    let callback = approve(s, started["authorize_url"].as_str().unwrap(), &login);
    let code = code_of(&callback);

    let (payload_part, sig) = state.split_once('.').unwrap();
    let mut tampered_claims = payload(&state);
    tampered_claims["r"] = json!("/elsewhere");
    let tampered = format!(
        "{}.{sig}",
        URL_SAFE_NO_PAD.encode(tampered_claims.to_string())
    );
    let flipped_sig = format!("{payload_part}.{}", sig.chars().rev().collect::<String>());
    let cases = [
        ("missing", None, "oauth_state_invalid"),
        ("tampered payload", Some(tampered), "oauth_state_invalid"),
        (
            "tampered signature",
            Some(flipped_sig),
            "oauth_state_invalid",
        ),
        (
            "garbage",
            Some("not-a-state".to_owned()),
            "oauth_state_invalid",
        ),
        (
            "expired",
            Some(forge(|st| st.exp = now_unix() - 1)),
            "oauth_state_expired",
        ),
        (
            "non-relative return path",
            Some(forge(|st| st.r = "https://evil.test/".into())),
            "oauth_state_invalid",
        ),
        (
            "protocol-relative return path",
            Some(forge(|st| st.r = "//evil.test/".into())),
            "oauth_state_invalid",
        ),
    ];
    for (what, st, expected) in cases {
        let r = callback_with(s, &code, st.as_deref(), &cookie);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, expected),
            "{what}: {}",
            r.text()
        );
    }
    assert!(
        exchanges_of(s, &code).is_empty(),
        "a bad state never costs a code exchange"
    );

    // Another browser (no binding cookie, or another sign-in's) is refused before any
    // exchange, and does not use the state up.
    let other_browser = start(s, "/elsewhere");
    for (what, c) in [
        ("no cookie", String::new()),
        ("another browser's cookie", cookie_of(&other_browser)),
        (
            "a made-up cookie",
            "__Host-ghplane_oauth=bm90LW15LWNvb2tpZQ".to_owned(),
        ),
    ] {
        let r = s.api.send("GET", &callback, &[("cookie", &c)], None);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "oauth_state_invalid"),
            "{what}: {}",
            r.text()
        );
    }
    assert!(
        exchanges_of(s, &code).is_empty(),
        "another browser never costs a code exchange"
    );
    // The real state works once; a second callback with it is refused before any exchange.
    let ok = s.api.send("GET", &callback, &[("cookie", &cookie)], None);
    assert_eq!(ok.status, 302, "{}", ok.text());
    assert_eq!(ok.header("location"), Some("/back"));
    assert_eq!(exchanges_of(s, &code).len(), 1);
    let second = start(s, "/x");
    let other_code = code_of(&approve(
        s,
        second["authorize_url"].as_str().unwrap(),
        &login,
    ));
    let reused = callback_with(s, &other_code, Some(&state), &cookie);
    assert_eq!(
        (reused.status, reused.code().as_str()),
        (400, "oauth_state_reused")
    );
    assert!(
        exchanges_of(s, &other_code).is_empty(),
        "a reused state never costs an exchange"
    );
    // Two callbacks racing with one fresh state: exactly one gets through.
    let third = start(s, "/race");
    let third_cookie = cookie_of(&third);
    let third_state = third["state"].as_str().unwrap().to_owned();
    let codes: Vec<String> = (0..2)
        .map(|_| {
            code_of(&approve(
                s,
                third["authorize_url"].as_str().unwrap(),
                &login,
            ))
        })
        .collect();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = codes
            .iter()
            .map(|c| {
                let (st, ck) = (third_state.clone(), third_cookie.clone());
                scope.spawn(move || callback_with(s, c, Some(&st), &ck).status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [302, 400], "{statuses:?}");

    // Return paths are checked when the sign-in starts, too.
    for bad in [
        "https://evil.test/",
        "//evil.test",
        "relative",
        "/\\evil.test",
    ] {
        let r = json_post(
            &s.api,
            "/api/integrations/github/start",
            &[],
            &json!({"return_to": bad}),
        );
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "validation_failed"),
            "{bad}"
        );
        let r = s.api.send(
            "GET",
            &format!(
                "/oauth/authorize?return_to={}",
                ghplane_core::admin_access::oauth::pct_encode(bad)
            ),
            &[],
            None,
        );
        assert_eq!(r.status, 400, "{bad}");
    }
    let redirect = s
        .api
        .send("GET", "/oauth/authorize?return_to=%2Fhome", &[], None);
    assert_eq!(redirect.status, 302);
    let location = redirect.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{}/login/oauth/authorize?", s.fake.base_url())),
        "{location}"
    );
    let st = location.split("state=").nth(1).unwrap();
    assert_eq!(payload(st)["r"], "/home");

    // Declined on GitHub: refused, state consumed, nothing exchanged.
    let declined = start(s, "/");
    let declined_state = declined["state"].as_str().unwrap();
    let r = s.api.send(
        "GET",
        &format!("{CALLBACK_PATH}?error=access_denied&state={declined_state}"),
        &[("cookie", &cookie_of(&declined))],
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "oauth_denied"));
    // The declined state is spent: a real code with it is refused before any exchange.
    let fresh = start(s, "/");
    let real = code_of(&approve(
        s,
        fresh["authorize_url"].as_str().unwrap(),
        &login,
    ));
    let r = callback_with(s, &real, Some(declined_state), &cookie_of(&declined));
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "oauth_state_reused"),
        "{}",
        r.text()
    );
    assert!(exchanges_of(s, &real).is_empty());
    // A code GitHub never issued: GitHub's 200 carrying `error` is a failure.
    let unknown = start(s, "/");
    let r = callback_with(
        s,
        "neverissued1",
        unknown["state"].as_str(),
        &cookie_of(&unknown),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "oauth_code_invalid"));
    assert_eq!(exchanges_of(s, "neverissued1").len(), 1);
}

fn list(s: &Shared, token: &str, query: &str) -> Resp {
    let auth = format!("Bearer {token}");
    s.api.send(
        "GET",
        &format!("/api/integrations/github/installations{query}"),
        &[("authorization", &auth)],
        None,
    )
}

fn requests_with(s: &Shared, token: &str) -> Vec<RecordedRequest> {
    let auth = format!("Bearer {token}");
    s.fake
        .requests()
        .into_iter()
        .filter(|r| r.header("authorization") == Some(auth.as_str()))
        .collect()
}

fn installations_are_capped_filtered_and_linked(s: &Shared) {
    let id = unique_id();
    let empty = list(s, &format!("ghu_e2e_empty_{id}"), "");
    assert_eq!(empty.status, 200, "{}", empty.text());
    assert_eq!(
        empty.json(),
        json!({"installations": [], "incomplete": false,
            "install_url": format!("{}/apps/{APP_SLUG}/installations/new", s.fake.base_url())})
    );

    let token = format!("ghu_e2e_pages3_{id}");
    let capped = list(s, &token, "");
    assert_eq!(capped.status, 200);
    let body = capped.json();
    assert_eq!(
        body["incomplete"], true,
        "250 installations, 2 pages of 100 read"
    );
    assert_eq!(body["installations"].as_array().unwrap().len(), 200);
    let pages: Vec<(Option<String>, Option<String>)> = requests_with(s, &token)
        .iter()
        .map(|r| (r.query_param("per_page"), r.query_param("page")))
        .collect();
    assert_eq!(
        pages,
        [
            (Some("100".into()), Some("1".into())),
            (Some("100".into()), Some("2".into()))
        ],
        "the cap stops after two pages"
    );

    let token = format!("ghu_e2e_mixed_{id}");
    let orgs = list(s, &token, "").json();
    let logins = |v: &Value| -> Vec<String> {
        v["installations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["account"]["login"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        logins(&orgs),
        ["org-one", "org-two"],
        "user accounts filtered"
    );
    assert_eq!(
        orgs["install_url"],
        format!(
            "{}/apps/{RESPONSE_SLUG}/installations/new",
            s.fake.base_url()
        ),
        "the slug GitHub answered wins"
    );
    assert_eq!(
        orgs["installations"][0],
        json!({"id": 11, "account": {"login": "org-one", "type": "Organization", "id": 1_000_011,
            "avatar_url": "https://github.com/images/error/octocat_happy.gif"},
            "repository_selection": "all", "app_slug": RESPONSE_SLUG})
    );
    let with_users = list(s, &token, "?include=users").json();
    assert_eq!(logins(&with_users), ["org-one", "octo-user", "org-two"]);
    let bad = list(s, &token, "?include=orgs");
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (400, "validation_failed")
    );
    let nobody = s
        .api
        .send("GET", "/api/integrations/github/installations", &[], None);
    assert_eq!(
        (nobody.status, nobody.code().as_str()),
        (401, "unauthorized")
    );
}

fn listing_failures_are_classified_without_fallback(s: &Shared) {
    let id = unique_id();
    let cases = [
        ("e401", 401, "session_invalid", None),
        ("e403", 403, "missing_permissions", None),
        ("e503", 503, "transient", None),
        ("e429", 503, "transient", Some(60)),
    ];
    for (scenario, status, code, retry_after) in cases {
        let token = format!("ghu_e2e_{scenario}_{id}");
        let r = list(s, &token, "");
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{scenario}: {}",
            r.text()
        );
        let body = r.json();
        assert_eq!(
            body["error"]["retry_after"].as_u64(),
            retry_after,
            "{scenario}"
        );
        assert_eq!(
            r.header("retry-after").map(str::to_owned),
            retry_after.map(|s| s.to_string()),
            "{scenario}"
        );
        let seen = requests_with(s, &token);
        assert!(!seen.is_empty());
        for req in &seen {
            assert_eq!(
                req.operation.as_deref(),
                Some("apps/list-installations-for-authenticated-user"),
                "{scenario}: no other listing is asked for: {} {}",
                req.method,
                req.path
            );
        }
    }
    for other in [
        "apps/list-installations",
        "apps/list-repos-accessible-to-installation",
        "apps/get-org-installation",
        "orgs/get",
    ] {
        assert!(
            s.fake
                .requests_for(other)
                .iter()
                .all(|r| !r.header("authorization").unwrap_or("").contains("ghu_")),
            "a user token was used for {other}"
        );
    }
    // Only this area's app (signed as its client id) counts: other tests may list theirs.
    assert!(
        s.fake
            .requests_for("apps/list-installations")
            .iter()
            .all(|r| crate::identity::app_jwt_issuer(r) != Some(client_id())),
        "never the app-wide listing"
    );
}

pub(crate) fn repos(s: &Shared, who: &SignedIn, query: &str) -> Resp {
    s.api.send(
        "GET",
        &format!("/api/integrations/github/repos?{query}"),
        &[("cookie", &who.cookie)],
        None,
    )
}

fn repo_requests(s: &Shared, installation: u64) -> Vec<RecordedRequest> {
    let path = format!("/user/installations/{installation}/repositories");
    s.fake
        .requests_for("apps/list-installation-repos-for-authenticated-user")
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

fn sync(s: &Shared, who: &SignedIn, installation: u64) -> Resp {
    json_post(
        &s.api,
        "/api/integrations/github/repos/sync",
        &[("cookie", &who.cookie)],
        &json!({"installation_id": installation}),
    )
}

fn repos_are_cached_with_etags_and_paged_by_cursor(s: &Shared) {
    let who = sign_in(s);
    assert!(who.token.starts_with("ghpas_") && !who.login.is_empty());
    let inst = unique_id();
    set_repos(inst, 130);

    let first = repos(s, &who, &format!("installation_id={inst}"));
    assert_eq!(first.status, 200, "{}", first.text());
    let mut names = Vec::new();
    let mut page = first.json();
    assert_eq!(page["installation_id"], inst);
    assert_eq!(
        page["repositories"][0],
        json!({"repo_id": inst * 10_000, "node_id": format!("R_{inst}_0"),
            "full_name": format!("org-{inst}/repo-000"), "default_branch": "main", "private": true, "archived": false})
    );
    loop {
        let rows = page["repositories"].as_array().unwrap();
        assert!(rows.len() <= 50);
        names.extend(
            rows.iter()
                .map(|r| r["full_name"].as_str().unwrap().to_owned()),
        );
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        let next = repos(s, &who, &format!("installation_id={inst}&cursor={cursor}"));
        assert_eq!(next.status, 200, "{}", next.text());
        page = next.json();
    }
    assert_eq!(names.len(), 130);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names, "sorted by name, no row twice");
    assert_eq!(
        repo_requests(s, inst).len(),
        2,
        "two GitHub pages, fetched once, then cached"
    );

    let hits = repos(s, &who, &format!("installation_id={inst}&query=REPO-00")).json();
    assert_eq!(hits["repositories"].as_array().unwrap().len(), 10);
    assert_eq!(hits["next_cursor"], Value::Null);
    let archived = repos(s, &who, &format!("installation_id={inst}&query=repo-007")).json();
    assert_eq!(archived["repositories"][0]["archived"], true);

    let unchanged = sync(s, &who, inst);
    assert_eq!(unchanged.status, 200, "{}", unchanged.text());
    assert_eq!(
        unchanged.json()["changed"],
        false,
        "GitHub answered 304 for both pages"
    );
    assert_eq!(unchanged.json()["repositories"], 130);
    let seen = repo_requests(s, inst);
    assert_eq!(seen.len(), 4);
    assert!(
        seen[2..].iter().all(|r| r
            .header("if-none-match")
            .is_some_and(|e| e.starts_with("W/\""))),
        "revalidation sends the ETags"
    );

    set_repos(inst, 131);
    let changed = sync(s, &who, inst);
    assert_eq!(
        (
            changed.json()["changed"].clone(),
            changed.json()["repositories"].clone()
        ),
        (json!(true), json!(131))
    );
    let cached = repos(s, &who, &format!("installation_id={inst}&query=repo-130")).json();
    assert_eq!(
        cached["repositories"].as_array().unwrap().len(),
        1,
        "the sync refreshed the cache"
    );
    assert_eq!(
        repo_requests(s, inst).len(),
        6,
        "a fresh cache is read without GitHub"
    );

    let hidden = unique_id();
    HIDDEN.lock().unwrap().push(hidden);
    let r = repos(s, &who, &format!("installation_id={hidden}"));
    assert_eq!((r.status, r.code().as_str()), (403, "missing_permissions"));

    for (query, code) in [
        ("", "validation_failed"),
        ("installation_id=0", "invalid_id"),
        (
            &format!("installation_id={inst}&cursor=%2A%2A%2A") as &str,
            "validation_failed",
        ),
    ] {
        let r = repos(s, &who, query);
        assert_eq!((r.status, r.code().as_str()), (400, code), "{query}");
    }
    let nobody = s.api.send(
        "GET",
        &format!("/api/integrations/github/repos?installation_id={inst}"),
        &[],
        None,
    );
    assert_eq!(
        (nobody.status, nobody.code().as_str()),
        (401, "unauthorized")
    );
    let pass_through = s.api.send(
        "GET",
        &format!("/api/integrations/github/repos?installation_id={inst}"),
        &[("authorization", "Bearer ghu_e2e_mixed_1")],
        None,
    );
    assert_eq!(
        pass_through.status, 401,
        "repositories need a session (the cache is per user)"
    );
}

const FOREIGN_ORIGINS: &[&str] = &[
    "https://evil.example",
    "null",
    "https://admin.example.com.evil.test",
    "https://evil-admin.example.com",
    "http://admin.example.com",
    "https://admin.example.com:8443",
];

fn preflight(s: &Shared, path: &str, origin: &str, method: &str) -> Resp {
    s.api.send(
        "OPTIONS",
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", method),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
        None,
    )
}

fn assert_no_cors(r: &Resp, what: &str) {
    for h in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
    ] {
        assert!(r.header(h).is_none(), "{what}: {h} = {:?}", r.header(h));
    }
    assert!(
        r.header("vary").is_some_and(|v| v.contains("Origin")),
        "{what}: Vary: Origin"
    );
}

fn cors_answers_only_listed_origins(s: &Shared) {
    let p = preflight(
        s,
        "/api/integrations/github/installations",
        ADMIN_ORIGIN,
        "GET",
    );
    assert_eq!(p.status, 204);
    assert_eq!(p.header("access-control-allow-origin"), Some(ADMIN_ORIGIN));
    assert_eq!(p.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(p.header("access-control-allow-methods"), Some("GET"));
    assert!(p
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    assert!(p.header("vary").unwrap().contains("Origin"));
    let p = preflight(
        s,
        "/api/integrations/github/start",
        "http://localhost:5173",
        "POST",
    );
    assert_eq!(
        p.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );

    let get = s.api.send(
        "GET",
        "/api/integrations/github/status",
        &[("origin", ADMIN_ORIGIN)],
        None,
    );
    assert_eq!(
        get.header("access-control-allow-origin"),
        Some(ADMIN_ORIGIN)
    );
    assert_eq!(get.header("access-control-allow-credentials"), Some("true"));
    assert!(get.header("vary").unwrap().contains("Origin"));
    // An answer relayed from a Durable Object gets them too.
    let relayed = s.api.send(
        "GET",
        &format!("/api/installations/{}/config", unique_id()),
        &[
            ("origin", ADMIN_ORIGIN),
            (
                "authorization",
                &format!("Bearer {}", crate::worker::ADMIN_TOKEN),
            ),
        ],
        None,
    );
    assert_eq!(relayed.status, 404);
    assert_eq!(
        relayed.header("access-control-allow-origin"),
        Some(ADMIN_ORIGIN)
    );

    for origin in FOREIGN_ORIGINS {
        let p = preflight(s, "/api/integrations/github/installations", origin, "GET");
        assert_eq!(p.status, 204);
        assert_no_cors(&p, &format!("preflight from {origin}"));
        let get = s.api.send(
            "GET",
            "/api/integrations/github/status",
            &[("origin", origin)],
            None,
        );
        assert_no_cors(&get, &format!("GET from {origin}"));
    }
    let plain = s
        .api
        .send("GET", "/api/integrations/github/status", &[], None);
    assert_no_cors(&plain, "no Origin");
    for r in [&plain, &get, &relayed] {
        assert!(r.headers.iter().all(|(_, v)| v != "*"), "never a wildcard");
    }

    // A cross-site write with a simple content type never reaches a handler: 415 on the
    // public route; the session routes check their credential before the body is read, so
    // without a session they refuse it with 401 first.
    for (path, expected) in [
        (
            "/api/integrations/github/start",
            (415, "unsupported_media_type"),
        ),
        ("/api/integrations/github/disconnect", (401, "unauthorized")),
        ("/api/integrations/github/repos/sync", (401, "unauthorized")),
    ] {
        let r = s.api.send(
            "POST",
            path,
            &[
                ("origin", "https://evil.example"),
                ("content-type", "text/plain"),
            ],
            Some(b"{}"),
        );
        assert_eq!((r.status, r.code().as_str()), expected, "{path}");
        assert_no_cors(&r, path);
        let form = s.api.send(
            "POST",
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"a=b"),
        );
        assert_eq!(form.status, expected.0, "{path}");
    }
    let unknown = preflight(s, "/api/nope", ADMIN_ORIGIN, "GET");
    assert_eq!(unknown.status, 404);
}
