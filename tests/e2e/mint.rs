//! The token mint, end to end: a worker of its own (started on first use, with the mint's
//! vars) in front of the shared fake GitHub, which also plays the GitHub Actions OIDC issuer
//! (`oidc_issuer.rs`). Every test uses its own repositories, installation ids and client IP
//! (the rate limit is keyed by it), so they run in parallel.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::api::{Api, Resp};
use crate::config::PRIVATE_KEY;
use crate::fake_github::{example, Match, Reply, Times};
use crate::github_handlers::{now_unix, TOKEN_PREFIX};
use crate::oidc_issuer::{self, KID_A, KID_B, KID_SMALL, REQUEST_TOKEN};
use crate::worker::{Worker, WorkerOptions};
use crate::{unique_id, Setup, Shared, TestFn};

pub const SETUP: Setup = Setup {
    never_logged: &[REQUEST_TOKEN],
    // The mint's callers' OIDC tokens are bearer credentials too.
    never_logged_seen: || {
        vec![oidc_issuer::b64(
            &json!({"alg": "RS256", "typ": "JWT", "kid": KID_A}),
        )]
    },
    finish,
    ..Setup::NONE
};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "mint::happy_path_with_granted_fields",
        happy_path_with_granted_fields,
    ),
    (
        "mint::pem_secret_role_and_fix_signs_with_coder",
        pem_secret_role_and_fix_signs_with_coder,
    ),
    (
        "mint::alias_and_double_slash_and_405",
        alias_and_double_slash_and_405,
    ),
    (
        "mint::second_mint_makes_one_github_call",
        second_mint_makes_one_github_call,
    ),
    (
        "mint::installation_webhook_drops_the_cached_installation",
        installation_webhook_drops_the_cached_installation,
    ),
    (
        "mint::stale_cached_installation_is_dropped_on_422",
        stale_cached_installation_is_dropped_on_422,
    ),
    (
        "mint::repo_outside_installation_is_422",
        repo_outside_installation_is_422,
    ),
    (
        "mint::repos_on_different_installations_are_422",
        repos_on_different_installations_are_422,
    ),
    (
        "mint::github_5xx_is_502_and_leaks_nothing",
        github_5xx_is_502_and_leaks_nothing,
    ),
    (
        "mint::github_429_is_502_and_leaks_nothing",
        github_429_is_502_and_leaks_nothing,
    ),
    ("mint::body_over_64_kib_is_413", body_over_64_kib_is_413),
    (
        "mint::body_checks_in_fullsends_order",
        body_checks_in_fullsends_order,
    ),
    (
        "mint::missing_or_lowercase_bearer_is_401",
        missing_or_lowercase_bearer_is_401,
    ),
    ("mint::expired_token_is_401", expired_token_is_401),
    ("mint::future_token_is_401", future_token_is_401),
    ("mint::wrong_audience_is_401", wrong_audience_is_401),
    ("mint::wrong_issuer_is_401", wrong_issuer_is_401),
    ("mint::hs256_token_is_401", hs256_token_is_401),
    ("mint::bad_signature_is_401", bad_signature_is_401),
    (
        "mint::key_rotation_then_small_and_unknown_kids",
        key_rotation_then_small_and_unknown_kids,
    ),
    ("mint::policy_role_not_allowed", policy_role_not_allowed),
    ("mint::policy_org_not_allowed", policy_org_not_allowed),
    (
        "mint::policy_workflow_file_not_allowed",
        policy_workflow_file_not_allowed,
    ),
    (
        "mint::policy_workflow_from_another_org",
        policy_workflow_from_another_org,
    ),
    ("mint::policy_per_org_scope", policy_per_org_scope),
    (
        "mint::policy_same_org_installation_wide_denied",
        policy_same_org_installation_wide_denied,
    ),
    (
        "mint::policy_fullsend_repo_may_name_any_repo",
        policy_fullsend_repo_may_name_any_repo,
    ),
    (
        "mint::policy_enrolled_pair_shape",
        policy_enrolled_pair_shape,
    ),
    ("mint::policy_per_repo_scope", policy_per_repo_scope),
    (
        "mint::policy_per_repo_intra_org_foreign_grant",
        policy_per_repo_intra_org_foreign_grant,
    ),
    ("mint::policy_dual_enrollment", policy_dual_enrollment),
    (
        "mint::policy_cross_org_repos_need_a_grant",
        policy_cross_org_repos_need_a_grant,
    ),
    (
        "mint::policy_cross_org_installation_wide_grant",
        policy_cross_org_installation_wide_grant,
    ),
    (
        "mint::health_status_and_unconfigured_health",
        health_status_and_unconfigured_health,
    ),
    (
        "mint::rate_limit_is_429_and_health_is_never_limited",
        rate_limit_is_429_and_health_is_never_limited,
    ),
    ("mint::audit_filters_and_pages", audit_filters_and_pages),
    (
        "mint::audit_shards_of_two_orgs_merge_newest_first",
        audit_shards_of_two_orgs_merge_newest_first,
    ),
    (
        "mint::fullsend_client_gets_a_token",
        fullsend_client_gets_a_token,
    ),
    (
        "mint::fullsend_client_fails_cleanly_on_denied_role",
        fullsend_client_fails_cleanly_on_denied_role,
    ),
    (
        "mint::a_role_without_a_key_is_unhealthy_and_refused",
        a_role_without_a_key_is_unhealthy_and_refused,
    ),
];

const ORG: &str = "mint-org";
const DUAL: &str = "dual-org/dual-app";
const HOST_WORKFLOW: &str = "host-org/workflows/.github/workflows/code.yml@refs/heads/main";

pub struct MintEnv {
    worker: Mutex<Option<Worker>>,
    pub api: Api,
    pub base: String,
    pub issuer: String,
    pub coder_app: u64,
    pub triage_app: u64,
}

static MINT: OnceLock<MintEnv> = OnceLock::new();

pub fn env(s: &Shared) -> &'static MintEnv {
    MINT.get_or_init(|| start(s))
}

/// Per-repo callers (PER_REPO_WIF_REPOS), one per test that needs one.
fn solo(n: u32) -> String {
    format!("solo-org/solo-{n}")
}

fn start(s: &Shared) -> MintEnv {
    oidc_issuer::install(&s.fake);
    let (coder, triage) = (unique_id(), unique_id());
    let issuer = oidc_issuer::issuer_url(&s.fake);
    let mut o = WorkerOptions::new(&s.fake.base_url());
    let ids = json!({"coder": coder.to_string(), "fix": coder.to_string(),
        "review": coder.to_string(), "triage": triage.to_string()});
    let per_repo: Vec<String> = (1..=4).map(solo).chain([DUAL.to_owned()]).collect();
    for (k, v) in [
        ("ROLE_APP_IDS", ids.to_string()),
        ("ALLOWED_ROLES", "coder,fix,review,triage".into()),
        ("ALLOWED_ORGS", format!("{ORG},dual-org")),
        ("PER_REPO_WIF_REPOS", per_repo.join(",")),
        ("WORKFLOW_HOST_REPOS", "host-org/workflows".into()),
        ("ALLOWED_WORKFLOW_FILES", "code.yml,triage.yml".into()),
        ("OIDC_ISSUER", issuer.clone()),
    ] {
        o.vars.push((k.into(), v));
    }
    // A fullsend-style key: the `<ROLE>_APP_PEM` secret, as a dotenv multi-line value.
    o.secrets.push((
        "TRIAGE_APP_PEM".into(),
        format!("\"{}\"", PRIVATE_KEY.trim_end().replace('\n', "\\n")),
    ));
    let worker = Worker::start(&s.run_dir.join("mint"), o);
    let base = worker.base_url();
    let api = Api::new(&base);
    // The coder App's key comes from ghplane's app registry.
    crate::identity::register_app(&api, coder);
    MintEnv {
        worker: Mutex::new(Some(worker)),
        api,
        base,
        issuer,
        coder_app: coder,
        triage_app: triage,
    }
}

/// Stops the mint worker if a test started it; its output, for the run-wide secret scan.
pub fn finish() -> String {
    let skipped = SKIPPED.load(std::sync::atomic::Ordering::Relaxed);
    if skipped > 0 {
        println!(
            "SKIPPED: {skipped} test(s) of fullsend's mint client (../shared/peers/fullsend-mint-client is absent)"
        );
    }
    let Some(m) = MINT.get() else {
        return String::new();
    };
    let Some(worker) = m.worker.lock().unwrap().take() else {
        return String::new();
    };
    worker.output()
}

/// A client IP of the test's own: the rate limit is per host and IP.
fn ip() -> String {
    let n = unique_id();
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

fn name(prefix: &str) -> String {
    format!("{prefix}-{}", unique_id())
}

/// Claims as GitHub Actions issues them for a job of `repo` running `job_workflow_ref`.
fn claims(m: &MintEnv, repo: &str, job_workflow_ref: &str) -> Value {
    let now = now_unix();
    let owner = repo.split('/').next().unwrap();
    json!({
        "jti": name("jti"), "sub": format!("repo:{repo}:ref:refs/heads/main"),
        "aud": "fullsend-mint", "ref": "refs/heads/main", "sha": "0123456789abcdef",
        "repository": repo, "repository_owner": owner, "repository_id": "42", "repository_owner_id": "7",
        "run_id": unique_id().to_string(), "run_number": "3", "run_attempt": "2", "actor": "octocat",
        "workflow_ref": format!("{repo}/.github/workflows/agent.yml@refs/heads/main"),
        "job_workflow_ref": job_workflow_ref, "event_name": "issues",
        "iss": m.issuer, "nbf": now - 5, "iat": now - 5, "exp": now + 300
    })
}

/// A per-org caller: a repository of ORG running its `.fullsend` workflow.
fn org_claims(m: &MintEnv, repo: &str) -> Value {
    claims(
        m,
        &format!("{ORG}/{repo}"),
        &format!("{ORG}/.fullsend/.github/workflows/code.yml@refs/heads/main"),
    )
}

fn post(m: &MintEnv, ip: &str, auth: Option<&str>, body: &[u8]) -> Resp {
    post_to(m, "/v1/token", ip, auth, body)
}

fn post_to(m: &MintEnv, path: &str, ip: &str, auth: Option<&str>, body: &[u8]) -> Resp {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("cf-connecting-ip", ip),
    ];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    let resp = m.api.send("POST", path, &headers, Some(body));
    assert_eq!(
        resp.header("cache-control"),
        Some("no-store"),
        "every mint answer is no-store: {}",
        resp.text()
    );
    resp
}

/// Mints with `claims` signed by key A.
fn mint_as(m: &MintEnv, ip: &str, claims: &Value, body: &Value) -> Resp {
    let jwt = oidc_issuer::sign(KID_A, claims);
    post(
        m,
        ip,
        Some(&format!("Bearer {jwt}")),
        body.to_string().as_bytes(),
    )
}

#[track_caller]
fn denied(r: &Resp, status: u16, code: &str, message: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], code, "{}", r.text());
    assert_eq!(r.json()["error"]["message"], message, "{}", r.text());
}

fn installation(id: u64, org: &str) -> Value {
    let mut body = example("apps/get-repo-installation");
    body["id"] = json!(id);
    body["account"]["login"] = json!(org);
    body
}

/// GitHub says `org/repo` is on installation `id`.
fn installed(s: &Shared, org: &str, repo: &str, id: u64) {
    s.fake.on(
        Match::operation_at(
            "apps/get-repo-installation",
            &format!("/repos/{org}/{repo}/installation"),
        ),
        Reply::json(200, installation(id, org)),
        Times::Always,
    );
}

/// GitHub says `org/repo` is on installation `id`, once.
fn installed_once(s: &Shared, org: &str, repo: &str, id: u64) {
    s.fake.on(
        Match::operation_at(
            "apps/get-repo-installation",
            &format!("/repos/{org}/{repo}/installation"),
        ),
        Reply::json(200, installation(id, org)),
        Times::Once,
    );
}

fn not_installed(s: &Shared, org: &str, repo: &str) {
    s.fake.on(Match::operation_at("apps/get-repo-installation", &format!("/repos/{org}/{repo}/installation")), Reply::json(404, json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"})), Times::Always);
}

fn variable(s: &Shared, op: &str, path: String, value: &str) {
    let mut body = example(op);
    body["name"] = json!(path.rsplit('/').next().unwrap());
    body["value"] = json!(value);
    s.fake.on(
        Match::operation_at(op, &path),
        Reply::json(200, body),
        Times::Always,
    );
}

fn calls_for(s: &Shared, needle: &str) -> Vec<String> {
    s.fake
        .requests()
        .iter()
        .filter(|r| r.path.contains(needle))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn token_requests(s: &Shared, installation: u64) -> Vec<Value> {
    let path = format!("/app/installations/{installation}/access_tokens");
    s.fake
        .requests_for("apps/create-installation-access-token")
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.json())
        .collect()
}

/// The App JWT's `iss` on GitHub's last token request for `installation`.
fn jwt_issuer(s: &Shared, installation: u64) -> String {
    let path = format!("/app/installations/{installation}/access_tokens");
    let req = s
        .fake
        .requests_for("apps/create-installation-access-token")
        .into_iter()
        .rev()
        .find(|r| r.path == path)
        .expect("a token request");
    let jwt = req
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    match &claims["iss"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn audit(m: &MintEnv, query: &str) -> Vec<Value> {
    let r = m
        .api
        .admin("GET", &format!("/api/mint/audit?{query}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["records"].as_array().unwrap().clone()
}

/// The newest audit record of a calling repository.
#[track_caller]
fn last_audit(m: &MintEnv, repository: &str) -> Value {
    audit(m, &format!("repository={repository}&limit=1"))
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no audit record for {repository}"))
}

#[track_caller]
fn audited_denial(m: &MintEnv, repository: &str, status: u16, code: &str) -> Value {
    let rec = last_audit(m, repository);
    assert_eq!(rec["outcome"], "denied", "{rec}");
    assert_eq!(rec["status"], status, "{rec}");
    assert_eq!(rec["reason_code"], code, "{rec}");
    rec
}

/// The registry signs with the App's client id (`identity::register_app` sets one).
fn coder_issuer(m: &MintEnv) -> String {
    format!("Iv1.e2e{}", m.coder_app)
}

/// The newest denied record that asked for exactly `repos`, paging back as far as needed
/// (parallel tests write records too).
fn denied_record(m: &MintEnv, repos: &Value) -> Option<Value> {
    find_denied(m, |r| &r["repos_requested"] == repos)
}

fn find_denied(m: &MintEnv, wanted: impl Fn(&Value) -> bool) -> Option<Value> {
    let mut cursor = String::new();
    for _ in 0..50 {
        let r = m.api.admin(
            "GET",
            &format!("/api/mint/audit?outcome=denied&limit=100{cursor}"),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json();
        if let Some(rec) = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| wanted(r))
        {
            return Some(rec.clone());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return None,
        }
    }
    None
}

/// Denials decided before the body parses or the token verifies (`invalid_json`,
/// `role_not_allowed`, `missing_bearer`, …) are only counted, by reason, so a test cannot
/// tell its own count from another test's. The tests that cause such denials hold this lock
/// while they send and count, so every change of a count meanwhile is theirs.
static ANONYMOUS_DENIALS: Mutex<()> = Mutex::new(());

fn anonymous_denials() -> std::sync::MutexGuard<'static, ()> {
    ANONYMOUS_DENIALS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn coder_permissions() -> Value {
    json!({"checks": "read", "contents": "write", "issues": "write", "metadata": "read", "pull_requests": "write"})
}

fn happy_path_with_granted_fields(s: &Shared) {
    let m = env(s);
    let (repo, id) = (name("api"), unique_id());
    installed(s, ORG, &repo, id);
    let c = org_claims(m, &repo);
    let r = mint_as(
        m,
        &ip(),
        &c,
        &json!({"role": "coder", "repos": [repo], "ignored": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let token = body["token"].as_str().unwrap();
    assert!(
        token.starts_with(&format!("{TOKEN_PREFIX}{id}_")),
        "{token}"
    );
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        body["granted_repos"],
        json!([format!("tenant-{id}/{repo}")])
    );
    assert_eq!(body["granted_permissions"], coder_permissions());
    assert_eq!(body["repository_selection"], "selected");
    // GitHub was asked for exactly the role's permissions on exactly that repository,
    // by the coder App (from the app registry).
    assert_eq!(
        token_requests(s, id),
        vec![json!({"permissions": coder_permissions(), "repositories": [repo]})]
    );
    assert_eq!(jwt_issuer(s, id), coder_issuer(m));
    let rec = last_audit(m, &format!("{ORG}/{repo}"));
    assert_eq!(rec["outcome"], "granted");
    assert_eq!(rec["status"], 200);
    assert_eq!(rec["role"], "coder");
    assert_eq!(rec["repository_owner"], ORG);
    assert_eq!(rec["jti"], c["jti"]);
    assert_eq!(rec["run_id"], c["run_id"]);
    assert_eq!(rec["run_attempt"], "2");
    assert_eq!(rec["actor"], "octocat");
    assert_eq!(rec["job_workflow_ref"], c["job_workflow_ref"]);
    assert_eq!(rec["repos_requested"], json!([repo]));
    assert_eq!(rec["repos_granted"], body["granted_repos"]);
    assert_eq!(rec["permissions_granted"], coder_permissions());
    assert_eq!(rec["installation_id"], id);
    assert_eq!(rec["expires_at"], body["expires_at"]);
    assert!(
        !rec.to_string().contains(token),
        "the audit never holds the token"
    );
}

fn pem_secret_role_and_fix_signs_with_coder(s: &Shared) {
    let m = env(s);
    let (repo, id) = (name("docs"), unique_id());
    installed(s, ORG, &repo, id);
    let c = org_claims(m, &repo);
    let r = mint_as(m, &ip(), &c, &json!({"role": "triage", "repos": [repo]}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["granted_permissions"],
        json!({"contents": "read", "issues": "write", "metadata": "read"})
    );
    assert_eq!(
        jwt_issuer(s, id),
        m.triage_app.to_string(),
        "TRIAGE_APP_PEM signs"
    );
    let r = mint_as(m, &ip(), &c, &json!({"role": "fix", "repos": [repo]}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["granted_permissions"].get("checks").is_none());
    assert_eq!(
        jwt_issuer(s, id),
        coder_issuer(m),
        "fix borrows the coder App"
    );
}

fn alias_and_double_slash_and_405(s: &Shared) {
    let m = env(s);
    let (repo, id) = (name("alias"), unique_id());
    installed(s, ORG, &repo, id);
    let jwt = oidc_issuer::sign(KID_A, &org_claims(m, &repo));
    let auth = format!("Bearer {jwt}");
    let body = json!({"role": "coder", "repos": [repo]}).to_string();
    let ip = ip();
    for path in ["/", "//v1/token"] {
        let r = post_to(m, path, &ip, Some(&auth), body.as_bytes());
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let r = m.api.send("GET", "/v1/token", &[], None);
    denied(&r, 405, "method_not_allowed", "method not allowed");
    // `GET /` is the admin console's page; another method on `/` is still a 405.
    let r = m.api.send("PUT", "/", &[], None);
    assert_eq!(
        (r.status, r.code()),
        (405, "method_not_allowed".into()),
        "{}",
        r.text()
    );
}

fn second_mint_makes_one_github_call(s: &Shared) {
    let m = env(s);
    let (repo, id) = (name("warm"), unique_id());
    installed(s, ORG, &repo, id);
    let c = org_claims(m, &repo);
    let body = json!({"role": "coder", "repos": [repo]});
    let ip = ip();
    assert_eq!(mint_as(m, &ip, &c, &body).status, 200);
    let before = s.fake.requests().len();
    let lookups = calls_for(s, &format!("/repos/{ORG}/{repo}/installation")).len();
    let r = mint_as(m, &ip, &c, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let after: Vec<String> = s.fake.requests()[before..]
        .iter()
        .filter(|r| r.path.contains(&repo) || r.path.contains(&format!("/installations/{id}/")))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        after,
        vec![format!("POST /app/installations/{id}/access_tokens")],
        "a warm mint makes exactly one GitHub call"
    );
    assert_eq!(
        calls_for(s, &format!("/repos/{ORG}/{repo}/installation")).len(),
        lookups
    );
}

fn installation_webhook_drops_the_cached_installation(s: &Shared) {
    let m = env(s);
    let (repo, id) = (name("hooked"), unique_id());
    installed(s, ORG, &repo, id);
    let c = org_claims(m, &repo);
    let body = json!({"role": "coder", "repos": [repo]});
    let ip = ip();
    let lookup = format!("/repos/{ORG}/{repo}/installation");
    assert_eq!(mint_as(m, &ip, &c, &body).status, 200);
    assert_eq!(mint_as(m, &ip, &c, &body).status, 200);
    assert_eq!(
        calls_for(s, &lookup).len(),
        1,
        "cached after the first mint"
    );
    let mut hook = crate::webhooks::fixture("installation_repositories", "added.payload.json");
    hook["installation"]["id"] = json!(id);
    hook["installation"]["app_id"] = json!(m.coder_app);
    let r = crate::webhooks::post_json(&m.api, m.coder_app, "installation_repositories", &hook);
    assert_eq!(r.status, 202, "a fresh delivery: {}", r.text());
    assert_eq!(mint_as(m, &ip, &c, &body).status, 200);
    assert_eq!(
        calls_for(s, &lookup).len(),
        2,
        "looked up again after the webhook"
    );
}

fn stale_cached_installation_is_dropped_on_422(s: &Shared) {
    let m = env(s);
    let (repo, old, new) = (name("moved"), unique_id(), unique_id());
    // The newest script answers first: the old installation once, then the new one.
    installed(s, ORG, &repo, new);
    installed_once(s, ORG, &repo, old);
    let c = org_claims(m, &repo);
    let body = json!({"role": "coder", "repos": [repo]});
    let ip = ip();
    assert_eq!(mint_as(m, &ip, &c, &body).status, 200);
    // The repository moved to another installation and no webhook told us.
    s.fake.on(Match::operation_at("apps/create-installation-access-token", &format!("/app/installations/{old}/access_tokens")), Reply::json(422, json!({"message": "There is at least one repository that does not exist or is not accessible to the parent installation."})), Times::Once);
    let r = mint_as(m, &ip, &c, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_owned();
    assert!(
        token.starts_with(&format!("{TOKEN_PREFIX}{new}_")),
        "{token}"
    );
    let lookups = calls_for(s, &format!("/repos/{ORG}/{repo}/installation"));
    assert_eq!(
        lookups.len(),
        2,
        "looked up again after GitHub's 422: {lookups:?}"
    );
    // And the new installation is what is cached now.
    assert_eq!(mint_as(m, &ip, &c, &body).status, 200);
    assert_eq!(
        calls_for(s, &format!("/repos/{ORG}/{repo}/installation")).len(),
        2
    );
}

fn repo_outside_installation_is_422(s: &Shared) {
    let m = env(s);
    let (inside, outside, id) = (name("in"), name("out"), unique_id());
    installed(s, ORG, &inside, id);
    not_installed(s, ORG, &outside);
    // The caller's own repository is the one not covered.
    let r = mint_as(
        m,
        &ip(),
        &org_claims(m, &outside),
        &json!({"role": "coder", "repos": [outside]}),
    );
    let message =
        format!("repository {ORG}/{outside} is not covered by the GitHub App installation");
    denied(&r, 422, "repo_not_covered", &message);
    audited_denial(m, &format!("{ORG}/{outside}"), 422, "repo_not_covered");
    assert!(token_requests(s, id).is_empty());
}

fn repos_on_different_installations_are_422(s: &Shared) {
    let m = env(s);
    let (fs, a, b) = (".fullsend", name("a"), name("b"));
    let (ia, ib) = (unique_id(), unique_id());
    installed(s, ORG, &a, ia);
    installed(s, ORG, &b, ib);
    // `{org}/.fullsend` may ask for any repositories of its org.
    let c = claims(
        m,
        &format!("{ORG}/{fs}"),
        &format!("{ORG}/.fullsend/.github/workflows/code.yml@main"),
    );
    let r = mint_as(m, &ip(), &c, &json!({"role": "coder", "repos": [a, b]}));
    let message = format!("repository {ORG}/{b} uses a different GitHub App installation than {a}");
    denied(&r, 422, "installation_mismatch", &message);
    assert!(token_requests(s, ia).is_empty() && token_requests(s, ib).is_empty());
    let rec = denied_record(m, &json!([a, b])).expect("audited");
    assert_eq!(rec["status"], 422);
    assert_eq!(rec["reason_code"], "installation_mismatch");
    assert_eq!(rec["repository"], format!("{ORG}/.fullsend"));
}

fn github_failure_is_502(s: &Shared, reply: Reply, times: usize) {
    let m = env(s);
    let (repo, id) = (name("flaky"), unique_id());
    installed(s, ORG, &repo, id);
    s.fake.on(
        Match::operation_at(
            "apps/create-installation-access-token",
            &format!("/app/installations/{id}/access_tokens"),
        ),
        reply,
        Times::N(times),
    );
    let r = mint_as(
        m,
        &ip(),
        &org_claims(m, &repo),
        &json!({"role": "coder", "repos": [repo]}),
    );
    denied(&r, 502, "github_failure", "mint failed");
    for leak in [
        "secret-detail",
        "documentation_url",
        "installation",
        TOKEN_PREFIX,
    ] {
        assert!(!r.text().contains(leak), "leaked {leak}: {}", r.text());
    }
    let rec = audited_denial(m, &format!("{ORG}/{repo}"), 502, "github_failure");
    assert!(rec["reason_detail"]
        .as_str()
        .unwrap()
        .contains("creating installation token"));
}

fn github_5xx_is_502_and_leaks_nothing(s: &Shared) {
    let reply = Reply::json(503, json!({"message": "secret-detail of GitHub's outage"}));
    // One answer per attempt: the client retries a 5xx three times.
    github_failure_is_502(s, reply, 4);
}

fn github_429_is_502_and_leaks_nothing(s: &Shared) {
    let reply = Reply::json(
        429,
        json!({"message": "secret-detail: API rate limit exceeded"}),
    )
    .header("retry-after", "3600")
    .header("x-ratelimit-remaining", "0");
    github_failure_is_502(s, reply, 1);
}

/// Requests refused before their token verified, counted for `reason` in the last hour.
pub fn denials(m: &MintEnv, reason: &str) -> i64 {
    let r = m.api.admin("GET", "/api/mint/audit/stats", None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["unauthenticated"]["byReason"][reason]
        .as_i64()
        .unwrap_or(0)
}

fn body_over_64_kib_is_413(s: &Shared) {
    let m = env(s);
    let before = denials(m, "payload_too_large");
    let pad = "x".repeat(65 * 1024);
    let body = json!({"role": "coder", "repos": ["a"], "pad": pad}).to_string();
    let r = post(m, &ip(), Some("Bearer x.y.z"), body.as_bytes());
    denied(
        &r,
        413,
        "payload_too_large",
        "request body too large (max 65536 bytes)",
    );
    // No token verified: counted, never stored.
    assert!(denials(m, "payload_too_large") > before);
    assert!(denied_record(m, &json!(["a"])).is_none_or(|r| r["reason_code"] != "payload_too_large"));
}

fn body_checks_in_fullsends_order(s: &Shared) {
    let m = env(s);
    let ip = ip();
    let many: Vec<String> = (0..501).map(|i| format!("r{i}")).collect();
    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("not json".into(), 400, "invalid_json", "invalid JSON body"),
        (
            r#"{"repos":["a"]}"#.into(),
            400,
            "role_required",
            "role is required",
        ),
        (
            r#"{"role":"Coder","repos":["a"]}"#.into(),
            400,
            "invalid_role",
            "invalid role format",
        ),
        (
            r#"{"role":"scribe"}"#.into(),
            403,
            "role_not_allowed",
            "role not allowed",
        ),
        (
            r#"{"role":"coder","repos":[]}"#.into(),
            400,
            "repos_required",
            "repos is required",
        ),
        (
            json!({"role": "coder", "repos": many}).to_string(),
            400,
            "too_many_repos",
            "too many repos (max 500)",
        ),
        (
            r#"{"role":"coder","repos":["../etc"]}"#.into(),
            400,
            "invalid_repo_name",
            "invalid repo name",
        ),
        (
            r#"{"role":"coder","repos":["a"],"target_org":"bad--org"}"#.into(),
            400,
            "invalid_target_org",
            "invalid target_org",
        ),
    ];
    // The token is junk: every body check comes before authentication, and such a
    // request is only counted, by reason. Holding the lock, every count is this test's.
    let _alone = anonymous_denials();
    for (body, status, code, message) in cases {
        let before = denials(m, code);
        let r = post(m, &ip, Some("Bearer not-a-jwt"), body.as_bytes());
        denied(&r, status, code, message);
        assert_eq!(denials(m, code), before + 1, "{code} counted once");
    }
}

fn missing_or_lowercase_bearer_is_401(s: &Shared) {
    let m = env(s);
    let ip = ip();
    let body = br#"{"role":"coder","repos":["a"]}"#;
    let jwt = oidc_issuer::sign(KID_A, &org_claims(m, "x"));
    let _alone = anonymous_denials();
    let before = denials(m, "missing_bearer");
    for auth in [
        None,
        Some(format!("bearer {jwt}")),
        Some(format!("Token {jwt}")),
    ] {
        let r = post(m, &ip, auth.as_deref(), body);
        denied(
            &r,
            401,
            "missing_bearer",
            "missing or invalid Authorization header",
        );
    }
    assert_eq!(
        denials(m, "missing_bearer"),
        before + 3,
        "each refusal counted"
    );
}

/// A token that fails verification: 401 "authentication failed"; the cause is counted (the
/// request is never stored: an unverified caller writes no audit row).
fn bad_token(s: &Shared, token: impl FnOnce(&MintEnv, Value) -> String, cause: &str) {
    let m = env(s);
    let before = denials(m, cause);
    let repo = name("bad");
    let c = org_claims(m, &repo);
    let jwt = token(m, c);
    let r = post(
        m,
        &ip(),
        Some(&format!("Bearer {jwt}")),
        json!({"role": "coder", "repos": [repo]})
            .to_string()
            .as_bytes(),
    );
    denied(&r, 401, "authentication_failed", "authentication failed");
    assert!(
        denied_record(m, &json!([repo])).is_none(),
        "an unverified request is not stored"
    );
    assert!(denials(m, cause) > before, "{cause} counted");
}

fn expired_token_is_401(s: &Shared) {
    bad_token(
        s,
        |_, mut c| {
            c["iat"] = json!(now_unix() - 900);
            c["exp"] = json!(now_unix() - 60);
            oidc_issuer::sign(KID_A, &c)
        },
        "token_expired",
    );
}

fn future_token_is_401(s: &Shared) {
    bad_token(
        s,
        |_, mut c| {
            c["iat"] = json!(now_unix() + 120);
            c["exp"] = json!(now_unix() + 600);
            oidc_issuer::sign(KID_A, &c)
        },
        "issued_in_future",
    );
}

fn wrong_audience_is_401(s: &Shared) {
    bad_token(
        s,
        |_, mut c| {
            c["aud"] = json!(["sigstore", "someone-else"]);
            oidc_issuer::sign(KID_A, &c)
        },
        "audience_mismatch",
    );
}

fn wrong_issuer_is_401(s: &Shared) {
    bad_token(
        s,
        |_, mut c| {
            c["iss"] = json!("https://token.actions.githubusercontent.com");
            oidc_issuer::sign(KID_A, &c)
        },
        "unexpected_issuer",
    );
}

fn hs256_token_is_401(s: &Shared) {
    bad_token(
        s,
        |_, c| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": KID_A});
            format!(
                "{}.{}.{}",
                oidc_issuer::b64(&header),
                oidc_issuer::b64(&c),
                URL_SAFE_NO_PAD.encode([7u8; 32])
            )
        },
        "unsupported_algorithm",
    );
}

fn bad_signature_is_401(s: &Shared) {
    bad_token(
        s,
        |_, c| {
            // Signed by another key under key A's kid.
            oidc_issuer::sign_with(
                KID_B,
                &json!({"alg": "RS256", "typ": "JWT", "kid": KID_A}),
                &c,
            )
        },
        "bad_signature",
    );
}

/// In one test because the unknown-`kid` throttle is per issuer: rotation must come first.
fn key_rotation_then_small_and_unknown_kids(s: &Shared) {
    let m = env(s);
    let (repo, id) = (name("rotated"), unique_id());
    installed(s, ORG, &repo, id);
    let ip = ip();
    let send_for = |repo: &str, kid: &str, signer: &str| {
        let body = json!({"role": "coder", "repos": [repo]}).to_string();
        let c = org_claims(m, repo);
        let jwt = oidc_issuer::sign_with(
            signer,
            &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            &c,
        );
        post(m, &ip, Some(&format!("Bearer {jwt}")), body.as_bytes())
    };
    let send = |kid: &str, signer: &str| send_for(&repo, kid, signer);
    // Make sure key A's set is cached, then rotate key B in.
    assert_eq!(send(KID_A, KID_A).status, 200);
    oidc_issuer::add_key(KID_B);
    let r = send(KID_B, KID_B);
    assert_eq!(r.status, 200, "the new key is picked up: {}", r.text());
    // A 1024-bit key in the set is ignored: its kid is unknown after the refresh.
    let jwks = || {
        s.fake
            .requests_for(&crate::oidc_issuer::jwks().label())
            .len()
    };
    let fetches = jwks();
    let unknown = denials(m, "unknown_kid");
    let r = send(KID_SMALL, KID_SMALL);
    denied(&r, 401, "authentication_failed", "authentication failed");
    assert_eq!(jwks(), fetches + 1, "an unknown kid refreshes the key set");
    assert!(denials(m, "unknown_kid") > unknown, "counted, not stored");
    // Another unknown kid within 30 s is refused without asking the issuer again.
    let r = send("never-published", KID_A);
    denied(&r, 401, "authentication_failed", "authentication failed");
    assert_eq!(
        jwks(),
        fetches + 1,
        "unknown kids refresh at most every 30 s"
    );
    assert!(denials(m, "unknown_kid") > unknown + 1);
}

fn last_audit_detail(m: &MintEnv, repo: &str) -> String {
    denied_record(m, &json!([repo]))
        .map(|r| r["reason_detail"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn policy_role_not_allowed(s: &Shared) {
    let m = env(s);
    let repo = name("roles");
    // Decided before the token is read: counted, never stored. Holding the lock, the count
    // is this test's.
    let _alone = anonymous_denials();
    let before = denials(m, "role_not_allowed");
    let r = mint_as(
        m,
        &ip(),
        &org_claims(m, &repo),
        &json!({"role": "scribe", "repos": [repo]}),
    );
    denied(&r, 403, "role_not_allowed", "role not allowed");
    assert_eq!(denials(m, "role_not_allowed"), before + 1);
    assert!(denied_record(m, &json!([repo])).is_none(), "not stored");
}

fn policy_org_not_allowed(s: &Shared) {
    let m = env(s);
    let repo = format!("stranger-org/{}", name("x"));
    let c = claims(
        m,
        &repo,
        "stranger-org/.fullsend/.github/workflows/code.yml@main",
    );
    let r = mint_as(
        m,
        &ip(),
        &c,
        &json!({"role": "coder", "repos": [repo.split('/').nth(1).unwrap()]}),
    );
    denied(&r, 401, "authentication_failed", "authentication failed");
    let rec = denied_record(m, &json!([repo.split('/').nth(1).unwrap()])).expect("audited");
    let detail = rec["reason_detail"].as_str().unwrap();
    assert!(detail.starts_with("caller_not_enrolled"), "{rec}");
    // The token verified, so the audit names who tried.
    assert_eq!(rec["repository"], repo.as_str(), "{rec}");
}

fn policy_workflow_file_not_allowed(s: &Shared) {
    let m = env(s);
    let repo = name("wf");
    let c = claims(
        m,
        &format!("{ORG}/{repo}"),
        &format!("{ORG}/.fullsend/.github/workflows/evil.yml@main"),
    );
    let r = mint_as(m, &ip(), &c, &json!({"role": "coder", "repos": [repo]}));
    denied(&r, 401, "authentication_failed", "authentication failed");
    assert!(last_audit_detail(m, &repo).starts_with("workflow_not_allowed"));
}

fn policy_workflow_from_another_org(s: &Shared) {
    let m = env(s);
    let repo = name("wf-host");
    let c = claims(
        m,
        &format!("{ORG}/{repo}"),
        "other-org/.fullsend/.github/workflows/code.yml@main",
    );
    let r = mint_as(m, &ip(), &c, &json!({"role": "coder", "repos": [repo]}));
    denied(&r, 401, "authentication_failed", "authentication failed");
    assert!(last_audit_detail(m, &repo).starts_with("workflow_not_allowed"));
}

fn policy_per_org_scope(s: &Shared) {
    let m = env(s);
    let repo = name("own");
    let r = mint_as(
        m,
        &ip(),
        &org_claims(m, &repo),
        &json!({"role": "coder", "repos": ["someone-else"]}),
    );
    denied(
        &r,
        403,
        "per_org_scope",
        "repos scope not allowed for per-org caller",
    );
    audited_denial(m, &format!("{ORG}/{repo}"), 403, "per_org_scope");
}

fn policy_same_org_installation_wide_denied(s: &Shared) {
    let m = env(s);
    let repo = name("star");
    let r = mint_as(
        m,
        &ip(),
        &org_claims(m, &repo),
        &json!({"role": "coder", "repos": ["*"]}),
    );
    denied(
        &r,
        403,
        "same_org_requires_repos",
        "same-org mint requires non-empty repos",
    );
    audited_denial(m, &format!("{ORG}/{repo}"), 403, "same_org_requires_repos");
}

fn policy_fullsend_repo_may_name_any_repo(s: &Shared) {
    let m = env(s);
    let (a, b, id) = (name("any-a"), name("any-b"), unique_id());
    installed(s, ORG, &a, id);
    installed(s, ORG, &b, id);
    let c = claims(
        m,
        &format!("{ORG}/.fullsend"),
        &format!("{ORG}/.fullsend/.github/workflows/code.yml@main"),
    );
    let r = mint_as(m, &ip(), &c, &json!({"role": "review", "repos": [a, b]}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["granted_repos"].as_array().unwrap().len(), 2);
}

fn policy_enrolled_pair_shape(s: &Shared) {
    let m = env(s);
    let (repo, id) = (name("pair"), unique_id());
    installed(s, ORG, &repo, id);
    installed(s, ORG, ".fullsend", id);
    let r = mint_as(
        m,
        &ip(),
        &org_claims(m, &repo),
        &json!({"role": "coder", "repos": [".fullsend", repo]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn policy_per_repo_scope(s: &Shared) {
    let m = env(s);
    let caller = solo(1);
    s.fake.on(
        Match::operation_at(
            "actions/get-repo-variable",
            "/repos/solo-org/elsewhere-1/actions/variables/FULLSEND_FOREIGN_CODER_REPOS",
        ),
        Reply::json(404, json!({"message": "Not Found"})),
        Times::Always,
    );
    installed(s, "solo-org", "elsewhere-1", unique_id());
    let c = claims(m, &caller, HOST_WORKFLOW);
    let r = mint_as(
        m,
        &ip(),
        &c,
        &json!({"role": "coder", "repos": ["elsewhere-1"]}),
    );
    denied(
        &r,
        403,
        "per_repo_scope",
        "per-repo mint requires repos to be exactly the requesting repository",
    );
    audited_denial(m, &caller, 403, "per_repo_scope");
    // Its own repository is fine.
    let id = unique_id();
    installed(s, "solo-org", "solo-1", id);
    let r = mint_as(m, &ip(), &c, &json!({"role": "coder", "repos": ["solo-1"]}));
    assert_eq!(r.status, 200, "{}", r.text());
}

fn policy_per_repo_intra_org_foreign_grant(s: &Shared) {
    let m = env(s);
    let caller = solo(2);
    let (target, id) = ("shared-2", unique_id());
    installed(s, "solo-org", target, id);
    variable(
        s,
        "actions/get-repo-variable",
        format!("/repos/solo-org/{target}/actions/variables/FULLSEND_FOREIGN_CODER_REPOS"),
        &format!("someone/else, {caller}"),
    );
    let c = claims(m, &caller, HOST_WORKFLOW);
    let r = mint_as(m, &ip(), &c, &json!({"role": "coder", "repos": [target]}));
    assert_eq!(r.status, 200, "{}", r.text());
    // The variable was read with a token limited to reading variables of that repository.
    let reads = token_requests(s, id);
    assert!(
        reads.contains(
            &json!({"permissions": {"actions_variables": "read"}, "repositories": [target]})
        ),
        "{reads:?}"
    );
}

fn policy_dual_enrollment(s: &Shared) {
    let m = env(s);
    let id = unique_id();
    installed(s, "dual-org", ".fullsend", id);
    // A per-repo host workflow, with per-org repos scope.
    let c = claims(m, DUAL, HOST_WORKFLOW);
    let r = mint_as(
        m,
        &ip(),
        &c,
        &json!({"role": "coder", "repos": [".fullsend"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(last_audit(m, DUAL)["caller_mode"], "dual_enrolled");
}

fn policy_cross_org_repos_need_a_grant(s: &Shared) {
    let m = env(s);
    let pool = name("pool");
    let (repo, granted, id) = (name("caller"), "target", unique_id());
    installed(s, &pool, granted, id);
    installed(s, &pool, "closed", id);
    variable(
        s,
        "actions/get-repo-variable",
        format!("/repos/{pool}/{granted}/actions/variables/FULLSEND_FOREIGN_CODER_REPOS"),
        &format!("{ORG}/{repo}"),
    );
    variable(
        s,
        "actions/get-repo-variable",
        format!("/repos/{pool}/closed/actions/variables/FULLSEND_FOREIGN_CODER_REPOS"),
        "someone-else",
    );
    let c = org_claims(m, &repo);
    let r = mint_as(
        m,
        &ip(),
        &c,
        &json!({"role": "coder", "repos": ["closed"], "target_org": pool}),
    );
    denied(&r, 403, "foreign_repos_not_authorized", "mint failed");
    audited_denial(
        m,
        &format!("{ORG}/{repo}"),
        403,
        "foreign_repos_not_authorized",
    );
    let r = mint_as(
        m,
        &ip(),
        &c,
        &json!({"role": "coder", "repos": [granted], "target_org": pool}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        last_audit(m, &format!("{ORG}/{repo}"))["target_org"],
        pool.as_str()
    );
}

fn policy_cross_org_installation_wide_grant(s: &Shared) {
    let m = env(s);
    let (pool, closed) = (name("wide"), name("closed"));
    let (id, repo) = (unique_id(), name("caller"));
    for (org, allow) in [
        (&pool, format!("{ORG}/{repo}")),
        (&closed, "nobody".to_owned()),
    ] {
        s.fake.on(
            Match::operation_at(
                "apps/get-org-installation",
                &format!("/orgs/{org}/installation"),
            ),
            Reply::json(200, installation(id, org)),
            Times::Always,
        );
        variable(
            s,
            "actions/get-org-variable",
            format!("/orgs/{org}/actions/variables/FULLSEND_FOREIGN_CODER_REPOS"),
            &allow,
        );
    }
    let c = org_claims(m, &repo);
    let r = mint_as(
        m,
        &ip(),
        &c,
        &json!({"role": "coder", "repos": ["*"], "target_org": closed}),
    );
    denied(&r, 403, "foreign_org_not_authorized", "mint failed");
    audited_denial(
        m,
        &format!("{ORG}/{repo}"),
        403,
        "foreign_org_not_authorized",
    );
    let r = mint_as(
        m,
        &ip(),
        &c,
        &json!({"role": "coder", "repos": ["*"], "target_org": pool}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["repository_selection"], "all");
    assert!(body.get("granted_repos").is_none(), "{body}");
    assert_eq!(
        token_requests(s, id).last().unwrap(),
        &json!({"permissions": coder_permissions()})
    );
}

fn health_status_and_unconfigured_health(s: &Shared) {
    let m = env(s);
    let r = m.api.send("GET", "/health", &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "ok");
    assert!(r.json()["version"].is_string());
    // The shared worker has no mint configuration: its /health says so.
    let r = s.api.send("GET", "/health", &[], None);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["status"], "unhealthy");
    assert!(r.json()["reason"]
        .as_str()
        .unwrap()
        .contains("ROLE_APP_IDS"));
    // …and its mint refuses to work rather than half-work.
    let r = s.api.send(
        "POST",
        "/v1/token",
        &[
            ("authorization", "Bearer x.y.z"),
            ("cf-connecting-ip", &ip()),
        ],
        Some(br#"{"role":"coder","repos":["a"]}"#),
    );
    denied(&r, 500, "init_failed", "mint initialization failed");
    // /v1/status for a verified caller, 401 otherwise.
    let jwt = oidc_issuer::sign(KID_A, &org_claims(m, &name("st")));
    let r = m.api.send(
        "GET",
        "/v1/status",
        &[("authorization", &format!("Bearer {jwt}"))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"org": ORG, "roles": ["coder", "fix", "review", "triage"],
            "workflow_host_repos": ["host-org/workflows"], "version": r.json()["version"]})
    );
    let r = m.api.send("GET", "/v1/status", &[], None);
    denied(&r, 401, "authentication_failed", "authentication failed");
}

fn rate_limit_is_429_and_health_is_never_limited(s: &Shared) {
    let m = env(s);
    let ip = ip();
    // Its refusals are counted without a caller; see ANONYMOUS_DENIALS.
    let _alone = anonymous_denials();
    let missing_before = denials(m, "missing_bearer");
    let limited_before = denials(m, "rate_limited");
    // Local workerd counts in fixed 60 s windows: start well inside one.
    let into_window = now_unix() % 60;
    if into_window > 40 {
        std::thread::sleep(std::time::Duration::from_secs((61 - into_window) as u64));
    }
    let started = Instant::now();
    // Send until the first 429, whichever window it falls in: 60 requests a window pass.
    let mut statuses = Vec::new();
    let r = loop {
        let r = post(m, &ip, None, b"{}");
        if r.status != 401 || statuses.len() > 200 {
            break r;
        }
        statuses.push(r.status);
    };
    denied(&r, 429, "rate_limited", "rate_limited");
    if started.elapsed().as_secs() < 19 {
        // All in one window (it started at most 40 s in): the 61st request was the first
        // refused.
        assert_eq!(statuses.len(), 60);
    } else {
        // A machine this slow crossed a window boundary: the counter started again there,
        // so at least 60 passed, and at most two windows' worth.
        assert!((60..=120).contains(&statuses.len()), "{}", statuses.len());
    }
    // Each 401 is counted once; rate-limited requests are counted by the limiter alone.
    assert_eq!(
        denials(m, "missing_bearer"),
        missing_before + statuses.len() as i64,
        "each 401 counted once"
    );
    assert_eq!(
        denials(m, "rate_limited"),
        limited_before,
        "a 429 leaves nothing in the mint's own counts"
    );
    for _ in 0..5 {
        let r = m
            .api
            .send("GET", "/health", &[("cf-connecting-ip", &ip)], None);
        assert_eq!(r.status, 200);
    }
    // Another client is not affected.
    assert_eq!(post(m, &self::ip(), None, b"{}").status, 401);
}

fn audit_filters_and_pages(s: &Shared) {
    let m = env(s);
    let (repo, id) = (name("audited"), unique_id());
    installed(s, ORG, &repo, id);
    let c = org_claims(m, &repo);
    let ip = ip();
    for role in ["coder", "coder", "triage"] {
        assert_eq!(
            mint_as(m, &ip, &c, &json!({"role": role, "repos": [repo]})).status,
            200
        );
    }
    assert_eq!(
        mint_as(m, &ip, &c, &json!({"role": "coder", "repos": ["nope"]})).status,
        403
    );
    let full = format!("{ORG}/{repo}");
    let all = audit(m, &format!("repository={full}"));
    assert_eq!(all.len(), 4);
    assert_eq!(all[0]["outcome"], "denied", "newest first");
    assert_eq!(
        audit(m, &format!("repository={full}&outcome=granted")).len(),
        3
    );
    let page = m.api.admin(
        "GET",
        &format!("/api/mint/audit?repository={full}&limit=3"),
        None,
    );
    let cursor = page.json()["nextCursor"].as_str().unwrap().to_owned();
    let rest = audit(m, &format!("repository={full}&limit=3&cursor={cursor}"));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["id"], all[3]["id"]);
    let future = crate::github_handlers::rfc3339(now_unix() + 3600);
    assert!(audit(m, &format!("repository={full}&since={future}")).is_empty());
    for bad in [
        "outcome=maybe",
        "since=yesterday",
        "limit=0",
        "cursor=x",
        "colour=blue",
    ] {
        let r = m.api.admin("GET", &format!("/api/mint/audit?{bad}"), None);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = m.api.send("GET", "/api/mint/audit", &[], None);
    assert_eq!(r.status, 401);
}

/// Mints of two organisations land in two audit shards (one per organisation's slot); the
/// listing merges them newest first and its cursor pages from one shard to the other.
fn audit_shards_of_two_orgs_merge_newest_first(s: &Shared) {
    use ghplane_core::mint::audit_shard::slot_of_org;
    let m = env(s);
    let since = crate::github_handlers::rfc3339(now_unix() - 1);
    let (repo, id) = (name("sharded"), unique_id());
    installed(s, ORG, &repo, id);
    let other = (0..)
        .map(|k| format!("shard-org-{k}"))
        .find(|o| slot_of_org(o) != slot_of_org(ORG))
        .unwrap();
    let stranger = format!("{other}/{}", name("x"));
    let ours = format!("{ORG}/{repo}");
    let c_ours = org_claims(m, &repo);
    let c_other = claims(
        m,
        &stranger,
        &format!("{other}/.fullsend/.github/workflows/code.yml@main"),
    );
    let ip = ip();
    let mut written = Vec::new();
    for _ in 0..2 {
        let r = mint_as(m, &ip, &c_ours, &json!({"role": "coder", "repos": [repo]}));
        assert_eq!(r.status, 200, "{}", r.text());
        written.push(ours.clone());
        std::thread::sleep(std::time::Duration::from_millis(20));
        // A verified caller of an organisation that is not allowed: refused, and audited.
        let r = mint_as(m, &ip, &c_other, &json!({"role": "coder", "repos": ["x"]}));
        assert_eq!(r.status, 401, "{}", r.text());
        written.push(stranger.clone());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Pages of two (parallel tests write records too): ours, in the order the merge gives.
    let mut seen: Vec<Value> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let mut cursor = String::new();
    for _ in 0..500 {
        let r = m.api.admin(
            "GET",
            &format!("/api/mint/audit?since={since}&limit=2{cursor}"),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json();
        for rec in page["records"].as_array().unwrap() {
            assert!(ids.insert(rec["id"].to_string()), "a record twice: {rec}");
            if rec["repository"] == ours.as_str() || rec["repository"] == stranger.as_str() {
                seen.push(rec.clone());
            }
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let order: Vec<&str> = seen
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    written.reverse();
    assert_eq!(order, written, "newest first, across the two shards");
    let shard = |r: &Value| {
        r["id"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    for rec in &seen {
        let org = rec["repository"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let prefix = format!("mint-audit-{}-", slot_of_org(org));
        assert!(shard(rec).starts_with(&prefix), "{org}: {}", rec["id"]);
    }
    assert_ne!(shard(&seen[0]), shard(&seen[1]), "two shards");
    // A repository's listing reads its organisation's shard and still pages.
    let page = m.api.admin(
        "GET",
        &format!("/api/mint/audit?repository={stranger}&limit=1"),
        None,
    );
    let next = page.json()["nextCursor"].as_str().unwrap().to_owned();
    let rest = audit(m, &format!("repository={stranger}&limit=1&cursor={next}"));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["id"], seen[2]["id"]);
    assert_eq!(page.json()["records"][0]["id"], seen[0]["id"]);
}

/// fullsend's composite mint-token action, run as a script. It is a third-party client that
/// is not vendored: it lives beside the checkout (`../shared/peers/fullsend-mint-client`, or
/// `$GHPLANE_SHARED_DIR/peers/…`). CI always has it; a bare clone does not, and then the tests
/// that drive it say so and pass (see docs/testing.md).
fn fullsend_client(test: &str) -> Option<std::path::PathBuf> {
    let shared = std::env::var_os("GHPLANE_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::worker::repo_root().join("../shared"));
    let script = shared.join("peers/fullsend-mint-client/run-action");
    if script.is_file() {
        return Some(script);
    }
    println!(
        "SKIPPED: {test}: fullsend's mint client not found at {} (outside the repository; CI has it)",
        script.display()
    );
    SKIPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    None
}

/// Tests that found no fullsend client; reported once more at the end of the run.
static SKIPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn run_action(
    script: &std::path::Path,
    m: &MintEnv,
    s: &Shared,
    role: &str,
    repos: &str,
    run: &str,
) -> (i32, String) {
    let out = std::process::Command::new(script)
        .args(["--mint-url", &m.base, "--role", role, "--repos", repos])
        .args([
            "--id-token-url",
            &format!("{}/_actions/idtoken?run={run}", s.fake.base_url()),
        ])
        .args(["--id-token-request-token", REQUEST_TOKEN])
        .output()
        .expect("run fullsend's mint-token action");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn fullsend_client_gets_a_token(s: &Shared) {
    let Some(script) = fullsend_client("mint::fullsend_client_gets_a_token") else {
        return;
    };
    let m = env(s);
    let (repo, id) = (name("client"), unique_id());
    installed(s, ORG, &repo, id);
    let run = name("run");
    let mut c = org_claims(m, &repo);
    c.as_object_mut().unwrap().remove("aud");
    oidc_issuer::register_run(&run, c);
    let (code, out) = run_action(&script, m, s, "coder", &repo, &run);
    assert_eq!(code, 0, "{out}");
    let token = out
        .lines()
        .last()
        .unwrap()
        .strip_prefix("token=")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(token.starts_with(&format!("{TOKEN_PREFIX}{id}_")), "{out}");
    assert!(
        out.contains(&format!("Granted scope: repos=tenant-{id}/{repo}")),
        "{out}"
    );
    assert!(out.contains("repo_selection=selected"), "{out}");
    assert_eq!(
        last_audit(m, &format!("{ORG}/{repo}"))["outcome"],
        "granted"
    );
}

fn fullsend_client_fails_cleanly_on_denied_role(s: &Shared) {
    let Some(script) = fullsend_client("mint::fullsend_client_fails_cleanly_on_denied_role") else {
        return;
    };
    let m = env(s);
    let repo = name("client-denied");
    let run = name("run");
    oidc_issuer::register_run(&run, org_claims(m, &repo));
    // Its refusal is counted without a caller; see ANONYMOUS_DENIALS.
    let _alone = anonymous_denials();
    let (code, out) = run_action(&script, m, s, "scribe", &repo, &run);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("403"), "{out}");
    assert!(!out.contains("token="), "{out}");
    assert!(!out.contains(TOKEN_PREFIX), "{out}");
}

/// A mint whose `coder` App is neither registered nor given `CODER_APP_PEM` (on a worker of
/// its own: the shared mint must stay healthy): `/health` names that role only, a coder mint
/// is refused with `pem_unavailable`, and registering the App heals both.
fn a_role_without_a_key_is_unhealthy_and_refused(s: &Shared) {
    let m = env(s);
    let (coder, triage) = (unique_id(), unique_id());
    let mut o = WorkerOptions::new(&s.fake.base_url());
    for (k, v) in [
        (
            "ROLE_APP_IDS",
            json!({"coder": coder.to_string(), "triage": triage.to_string()}).to_string(),
        ),
        ("ALLOWED_ROLES", "coder,triage".into()),
        ("ALLOWED_ORGS", ORG.into()),
        ("ALLOWED_WORKFLOW_FILES", "code.yml,triage.yml".into()),
        ("OIDC_ISSUER", m.issuer.clone()),
    ] {
        o.vars.push((k.into(), v));
    }
    o.secrets.push((
        "TRIAGE_APP_PEM".into(),
        format!("\"{}\"", PRIVATE_KEY.trim_end().replace('\n', "\\n")),
    ));
    let worker = Worker::start(&s.run_dir.join("mint-no-key"), o);
    let api = Api::new(&worker.base_url());

    let r = api.send("GET", "/health", &[], None);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"status": "unhealthy", "reason": format!(
            "role \"coder\": app {coder} is not registered and CODER_APP_PEM is not set")}),
    );

    let (repo, id) = (name("no-key"), unique_id());
    installed(s, ORG, &repo, id);
    let mint = |expected: u16| {
        let jwt = oidc_issuer::sign(KID_A, &org_claims(m, &repo));
        let body = json!({"role": "coder", "repos": [repo]}).to_string();
        let r = api.send(
            "POST",
            "/v1/token",
            &[
                ("content-type", "application/json"),
                ("cf-connecting-ip", &ip()),
                ("authorization", &format!("Bearer {jwt}")),
            ],
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, expected, "{}", r.text());
        r
    };
    let r = mint(403);
    denied(&r, 403, "pem_unavailable", "mint failed");
    let rec = api
        .admin("GET", "/api/mint/audit?outcome=denied&limit=1", None)
        .json()["records"][0]
        .clone();
    assert_eq!(rec["reason_code"], "pem_unavailable", "{rec}");
    assert_eq!(
        rec["reason_detail"],
        format!("no CODER_APP_PEM and app {coder} is not registered")
    );
    assert!(
        token_requests(s, id).is_empty(),
        "nothing was asked of GitHub for the installation"
    );

    crate::identity::register_app(&api, coder);
    let r = api.send("GET", "/health", &[], None);
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("ok")),
        "{}",
        r.text()
    );
    let r = mint(200);
    assert!(r.json()["token"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{TOKEN_PREFIX}{id}_")));
}
