//! App identity: the app registry, App JWTs, cached installation tokens, service keys and
//! GitHub API etiquette.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::api::{Api, Resp};
use crate::config::PRIVATE_KEY;
use crate::fake_github::{Match, Reply, Respond, Times};
use crate::github_handlers::{installation_of, now_unix, set_token_lifetime, TOKEN_PREFIX};
use crate::{unique_id, Setup, Shared, TestFn};

pub const SETUP: Setup = Setup {
    never_logged: &[CLIENT_SECRET, APP_WEBHOOK_SECRET, "ghpsk_"],
    never_logged_seen: || SERVICE_KEYS.lock().unwrap().clone(),
    ..Setup::NONE
};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "identity::app_registry_put_get_delete_redacted",
        app_registry_put_get_delete_redacted,
    ),
    (
        "identity::config_of_unknown_app_is_refused",
        config_of_unknown_app_is_refused,
    ),
    (
        "identity::app_jwt_is_rs256_with_github_claims",
        app_jwt_is_rs256_with_github_claims,
    ),
    (
        "identity::concurrent_requests_share_one_mint",
        concurrent_requests_share_one_mint,
    ),
    (
        "identity::cached_token_is_renewed_five_minutes_before_expiry",
        cached_token_is_renewed_five_minutes_before_expiry,
    ),
    (
        "identity::tenants_only_ever_use_their_own_tokens",
        tenants_only_ever_use_their_own_tokens,
    ),
    (
        "identity::service_keys_are_scoped_and_revocable",
        service_keys_are_scoped_and_revocable,
    ),
    (
        "identity::rate_limit_is_waited_out_and_422_is_not_retried",
        rate_limit_is_waited_out_and_422_is_not_retried,
    ),
    (
        "identity::rotation_tells_github_and_keeps_previous_during_grace",
        rotation_tells_github_and_keeps_previous_during_grace,
    ),
];

pub const CLIENT_SECRET: &str = "client-secret-e2e-0b7c1d";
pub const APP_WEBHOOK_SECRET: &str = "app-webhook-secret-e2e-93ab";
/// The fingerprint `openssl rsa -pubout -outform DER | openssl dgst -sha256 -binary | base64`
/// gives for the test key, as GitHub shows it.
const KEY_FINGERPRINT_PREFIX: &str = "SHA256:";

/// Service keys handed out during the run: none may show up in a log line.
pub static SERVICE_KEYS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn register_app(api: &Api, app_id: u64) -> Resp {
    let body = json!({
        "privateKey": PRIVATE_KEY, "clientId": format!("Iv1.e2e{app_id}"), "slug": format!("ghplane-e2e-{app_id}"),
        "owner": "octo-org", "htmlUrl": format!("https://github.com/apps/ghplane-e2e-{app_id}"),
        "webhookSecret": APP_WEBHOOK_SECRET, "clientSecret": CLIENT_SECRET
    });
    let r = api.admin("PUT", &format!("/api/apps/{app_id}"), Some(&body));
    assert!(
        r.status == 201 || r.status == 200,
        "register app: {}",
        r.text()
    );
    r
}

/// A fresh tenant of a fresh app: its installation id and a service key.
pub fn tenant(s: &Shared, permissions: Value) -> (u64, u64, String) {
    let app = unique_id();
    register_app(&s.api, app);
    let id = unique_id();
    let config = json!({"appId": app, "repositories": [format!("tenant-{id}/api"), format!("tenant-{id}/web")],
        "permissions": permissions});
    let r = s.api.admin(
        "PUT",
        &format!("/api/installations/{id}/config"),
        Some(&config),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    (app, id, service_key(&s.api, id))
}

pub fn service_key(api: &Api, id: u64) -> String {
    let r = api.admin(
        "POST",
        &format!("/api/installations/{id}/service-keys"),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_owned();
    SERVICE_KEYS.lock().unwrap().push(key.clone());
    key
}

pub fn token(api: &Api, id: u64, key: &str, body: &Value) -> Resp {
    let auth = format!("Bearer {key}");
    let bytes = serde_json::to_vec(body).unwrap();
    api.send(
        "POST",
        &format!("/api/installations/{id}/token"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(&bytes),
    )
}

fn read_only() -> Value {
    json!({"permissions": {"contents": "read"}})
}

fn mints_for(s: &Shared, id: u64) -> usize {
    let path = format!("/app/installations/{id}/access_tokens");
    s.fake
        .requests_for("apps/create-installation-access-token")
        .iter()
        .filter(|r| r.path == path)
        .count()
}

fn app_registry_put_get_delete_redacted(s: &Shared) {
    let app = unique_id();
    let created = register_app(&s.api, app);
    assert_eq!(created.status, 201);
    for secret in [CLIENT_SECRET, APP_WEBHOOK_SECRET, "PRIVATE KEY"] {
        assert!(!created.text().contains(secret), "secret in response");
    }
    let got = s.api.admin("GET", &format!("/api/apps/{app}"), None);
    assert_eq!(got.status, 200);
    let view = got.json();
    assert_eq!(view["clientId"], format!("Iv1.e2e{app}"));
    assert_eq!(view["mode"], "org");
    assert_eq!(view["clientSecret"], json!({"set": true}));
    assert!(view["privateKey"]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with(KEY_FINGERPRINT_PREFIX));

    let bad = s.api.admin(
        "PUT",
        &format!("/api/apps/{app}"),
        Some(&json!({"privateKey": "-----BEGIN RSA PRIVATE KEY-----\nnot base64!\n-----END RSA PRIVATE KEY-----"})),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.code().starts_with("private_key_"), "{}", bad.code());
    assert_eq!(
        s.api.admin("GET", &format!("/api/apps/{app}"), None).json(),
        view,
        "a refused PUT changes nothing"
    );

    let repo_mode = s.api.admin(
        "PUT",
        &format!("/api/apps/{app}"),
        Some(&json!({"privateKey": PRIVATE_KEY, "mode": "repo", "repository": "octo-org/one"})),
    );
    assert_eq!(repo_mode.status, 200);
    assert_eq!(repo_mode.json()["repository"], "octo-org/one");

    assert_eq!(
        s.api
            .admin("DELETE", &format!("/api/apps/{app}"), None)
            .status,
        204
    );
    let gone = s.api.admin("GET", &format!("/api/apps/{app}"), None);
    assert_eq!((gone.status, gone.code().as_str()), (404, "app_not_found"));
    assert_eq!(s.api.admin("GET", "/api/apps/0", None).code(), "invalid_id");
}

fn config_of_unknown_app_is_refused(s: &Shared) {
    let id = unique_id();
    let r = s.api.admin(
        "PUT",
        &format!("/api/installations/{id}/config"),
        Some(&json!({"appId": unique_id()})),
    );
    assert_eq!((r.status, r.code().as_str()), (422, "app_not_registered"));
    assert_eq!(
        s.api
            .admin("GET", &format!("/api/installations/{id}/config"), None)
            .status,
        404
    );
}

fn b64json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

fn app_jwt_is_rs256_with_github_claims(s: &Shared) {
    let (app, id, key) = tenant(s, json!({}));
    let before = now_unix();
    let r = token(&s.api, id, &key, &read_only());
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = s.fake.requests_for("apps/create-installation-access-token");
    let req = seen
        .iter()
        .find(|r| r.path == format!("/app/installations/{id}/access_tokens"))
        .expect("mint seen");
    let jwt = req
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .expect("Bearer scheme");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(b64json(parts[0]), json!({"alg": "RS256", "typ": "JWT"}));
    let claims = b64json(parts[1]);
    assert_eq!(
        claims["iss"],
        format!("Iv1.e2e{app}"),
        "iss is the client id when known"
    );
    let iat = claims["iat"].as_i64().unwrap();
    assert!(
        (before - 62..=now_unix() - 58).contains(&iat),
        "iat = now − 60 s, got {iat} (now {before})"
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - iat,
        600,
        "exp = now + 9 min"
    );

    let dir = s.run_dir.join(format!("jwt-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("input"), format!("{}.{}", parts[0], parts[1])).unwrap();
    std::fs::write(dir.join("sig"), URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
    let spki = crate::worker::repo_root().join("crates/core/tests/fixtures/test-rsa-2048-spki.der");
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&spki)
        .args(["-keyform", "DER", "-signature"])
        .arg(dir.join("sig"))
        .arg(dir.join("input"))
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "RS256 signature does not verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
}

fn concurrent_requests_share_one_mint(s: &Shared) {
    let (_, id, key) = tenant(s, json!({}));
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                scope.spawn(|| {
                    let r = token(&s.api, id, &key, &read_only());
                    assert_eq!(r.status, 200, "{}", r.text());
                    r.json()["token"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        mints_for(s, id),
        1,
        "ten concurrent requests must cause one access_tokens call"
    );
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "all callers get the one token"
    );
    assert_eq!(installation_of(&tokens[0]), Some(id));
}

fn cached_token_is_renewed_five_minutes_before_expiry(s: &Shared) {
    let (_, id, key) = tenant(s, json!({}));
    // Fresh for 15 s (GitHub says it expires in 5 min + 15 s), so the second call below has
    // 14 s to arrive on a loaded machine (the expiry is rounded down to the second).
    set_token_lifetime(id, 300 + 15);
    let first = token(&s.api, id, &key, &read_only()).json()["token"].clone();
    let second = token(&s.api, id, &key, &read_only()).json()["token"].clone();
    assert_eq!(first, second, "a fresh cached token is reused");
    assert_eq!(mints_for(s, id), 1);
    std::thread::sleep(Duration::from_secs(16));
    let third = token(&s.api, id, &key, &read_only()).json()["token"].clone();
    assert_ne!(third, first, "past expiry − 5 min a new token is minted");
    assert_eq!(mints_for(s, id), 2);
    let other_scope = token(
        &s.api,
        id,
        &key,
        &json!({"repositories": ["api"], "permissions": {"contents": "read"}}),
    );
    assert_eq!(
        other_scope.json()["repositories"],
        json!([format!("tenant-{id}/api")])
    );
    assert_eq!(mints_for(s, id), 3, "a narrower scope is cached separately");
}

fn tenants_only_ever_use_their_own_tokens(s: &Shared) {
    let (_, a, _) = tenant(s, json!({}));
    let (_, b, _) = tenant(s, json!({}));
    std::thread::scope(|scope| {
        for _ in 0..3 {
            for id in [a, b] {
                scope.spawn(move || {
                    let r = s.api.admin(
                        "GET",
                        &format!("/api/installations/{id}/repositories"),
                        None,
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                    let names: Vec<String> = r.json()["repositories"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["fullName"].as_str().unwrap().to_owned())
                        .collect();
                    assert_eq!(
                        names,
                        vec![format!("tenant-{id}/only-repo")],
                        "listing for {id} used another tenant's token"
                    );
                });
            }
        }
    });
    for req in s
        .fake
        .requests_for("apps/list-repos-accessible-to-installation")
    {
        let token = req
            .header("authorization")
            .unwrap()
            .trim_start_matches("Bearer ");
        assert!(
            token.starts_with(TOKEN_PREFIX),
            "an installation token, not a JWT, lists repositories"
        );
    }
}

fn service_keys_are_scoped_and_revocable(s: &Shared) {
    let (_, a, key_a) = tenant(
        s,
        json!({"canProcessIssues": false, "canCreatePullRequests": false}),
    );
    let (_, b, _) = tenant(s, json!({}));
    let mints_b = mints_for(s, b);
    let cross = token(&s.api, b, &key_a, &read_only());
    assert_eq!(
        (cross.status, cross.code().as_str()),
        (403, "forbidden"),
        "A's key on B"
    );
    assert_eq!(
        mints_for(s, b),
        mints_b,
        "B's token was never minted for A's key"
    );

    let cases = [
        (json!({"permissions": {"pull_requests": "write"}}), 403),
        (json!({"permissions": {"issues": "write"}}), 403),
        (
            json!({"repositories": ["not-held"], "permissions": {"contents": "read"}}),
            403,
        ),
        (
            json!({"repositories": [format!("tenant-{b}/api")], "permissions": {"contents": "read"}}),
            403,
        ),
        (json!({}), 400),
        (json!({"permissions": {"contents": "admin"}}), 400),
    ];
    for (body, status) in cases {
        let r = token(&s.api, a, &key_a, &body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
    }
    assert_eq!(mints_for(s, a), 0, "refused requests never reach GitHub");
    let ok = token(
        &s.api,
        a,
        &key_a,
        &json!({"repositories": ["api"], "permissions": {"contents": "read", "pull_requests": "read"}}),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let body = ok.json();
    assert_eq!(body["repositories"], json!([format!("tenant-{a}/api")]));
    assert_eq!(
        body["permissions"],
        json!({"contents": "read", "pull_requests": "read"})
    );

    let bad_key = format!("{}x", &key_a[..key_a.len() - 1]);
    assert_eq!(token(&s.api, a, &bad_key, &read_only()).status, 401);
    assert_eq!(token(&s.api, a, "not-a-key", &read_only()).status, 401);

    let list = s
        .api
        .admin("GET", &format!("/api/installations/{a}/service-keys"), None)
        .json();
    let key_id = list["serviceKeys"][0]["id"].as_str().unwrap().to_owned();
    assert!(
        !list.to_string().contains(&key_a),
        "listing never shows the key"
    );
    assert_eq!(
        s.api
            .admin(
                "DELETE",
                &format!("/api/installations/{a}/service-keys/{key_id}"),
                None
            )
            .status,
        204
    );
    assert_eq!(
        token(&s.api, a, &key_a, &read_only()).status,
        401,
        "a revoked key is refused"
    );
    assert_eq!(
        s.api
            .admin(
                "DELETE",
                &format!("/api/installations/{a}/service-keys/{key_id}"),
                None
            )
            .status,
        404
    );
}

fn rate_limit_is_waited_out_and_422_is_not_retried(s: &Shared) {
    let (_, id, key) = tenant(s, json!({}));
    let path = format!("/app/installations/{id}/access_tokens");
    let op = "apps/create-installation-access-token";
    s.fake.on(
        Match::operation_at(op, &path),
        Reply::json(429, json!({"message": "API rate limit exceeded"})).header("retry-after", "2"),
        Times::Once,
    );
    let started = Instant::now();
    let r = token(&s.api, id, &key, &read_only());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 2 must be waited out"
    );
    assert_eq!(mints_for(s, id), 2);

    let (_, id, key) = tenant(s, json!({}));
    let path = format!("/app/installations/{id}/access_tokens");
    s.fake.on(
        Match::operation_at(op, &path),
        Reply::json(422, json!({"message": "Validation Failed", "errors": []})),
        Times::N(5),
    );
    let r = token(&s.api, id, &key, &read_only());
    assert_eq!((r.status, r.code().as_str()), (502, "github_rejected"));
    assert_eq!(mints_for(s, id), 1, "a 422 is never retried");

    let (_, id, key) = tenant(s, json!({}));
    let path = format!("/app/installations/{id}/access_tokens");
    s.fake.on(
        Match::operation_at(op, &path),
        Reply::json(502, json!({"message": "Server Error"})),
        Times::N(2),
    );
    assert_eq!(
        token(&s.api, id, &key, &read_only()).status,
        200,
        "5xx is retried with backoff"
    );
    assert_eq!(mints_for(s, id), 3);
}

/// The `iss` of the App JWT a GitHub request was sent with.
pub fn app_jwt_issuer(r: &crate::fake_github::RecordedRequest) -> Option<String> {
    let jwt = r.header("authorization")?.strip_prefix("Bearer ")?;
    let claims = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1)?).ok()?;
    let claims: Value = serde_json::from_slice(&claims).ok()?;
    claims["iss"].as_str().map(str::to_owned)
}

fn rotation_tells_github_and_keeps_previous_during_grace(s: &Shared) {
    let app = unique_id();
    register_app(&s.api, app);
    // Every app rotates through the same `PATCH /app/hook/config`: this test's requests are
    // the ones signed as its own app (`register_app` sets the client id).
    let issuer = format!("Iv1.e2e{app}");
    let pushes_of_app = || -> Vec<crate::fake_github::RecordedRequest> {
        s.fake
            .requests_for("apps/update-webhook-config-for-app")
            .into_iter()
            .filter(|r| app_jwt_issuer(r).as_deref() == Some(issuer.as_str()))
            .collect()
    };
    assert!(pushes_of_app().is_empty());
    let r = s
        .api
        .admin("POST", &format!("/api/apps/{app}/webhook-secret"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let view = r.json();
    assert_eq!(view["webhookSecret"]["set"], true);
    assert!(
        view["webhookSecret"]["previousValidUntil"].is_string(),
        "the old secret stays valid for the grace period"
    );
    let pushes = pushes_of_app();
    assert_eq!(pushes.len(), 1);
    let pushed = pushes[0].json();
    let secret = pushed["secret"]
        .as_str()
        .expect("GitHub receives the new secret");
    assert_eq!(secret.len(), 64);
    assert!(
        !r.text().contains(secret),
        "a generated secret is never shown"
    );

    // GitHub refusing the new secret leaves everything as it was. Only this app's requests
    // fail (four: the first try and its three retries); other apps rotate undisturbed.
    let refusals = std::sync::atomic::AtomicUsize::new(4);
    let refused = issuer.clone();
    s.fake.on(
        Match::operation("apps/update-webhook-config-for-app"),
        Respond::with(move |r| {
            (app_jwt_issuer(r).as_deref() == Some(refused.as_str())
                && refusals
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    )
                    .is_ok())
            .then(|| Reply::json(500, json!({"message": "boom"})))
        }),
        Times::Always,
    );
    let failed = s.api.admin(
        "POST",
        &format!("/api/apps/{app}/webhook-secret"),
        Some(&json!({"webhookSecret": "manual-1"})),
    );
    assert_eq!(
        (failed.status, failed.code().as_str()),
        (502, "github_unavailable")
    );
    assert_eq!(
        s.api.admin("GET", &format!("/api/apps/{app}"), None).json()["updatedAt"],
        view["updatedAt"]
    );
    assert_eq!(
        pushes_of_app().len(),
        1 + 4,
        "tried four times, all refused"
    );
}
