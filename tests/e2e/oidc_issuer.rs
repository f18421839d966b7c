//! A GitHub Actions OIDC issuer served by the fake GitHub as documented extensions
//! (`FakeGithub::extra_route`), for the token mint's tests:
//!
//! - `GET /_oidc/.well-known/openid-configuration`: discovery (`issuer`, `jwks_uri`);
//! - `GET /_oidc/jwks`: the key set, which a test can rotate a key into;
//! - `GET /_actions/idtoken?run=<id>&audience=<aud>`: what a runner's
//!   `ACTIONS_ID_TOKEN_REQUEST_URL` answers (`{"value": <jwt>}`), for the claims a test
//!   registered for that run, checking `Authorization: bearer <request token>`;
//!
//! and a signer: RS256 JWTs signed by `openssl` with the committed test keys
//! (`crates/core/tests/fixtures`), so the test binary needs no RSA crate.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::fake_github::{FakeGithub, Match, RecordedRequest, Reply, Respond, Times};

pub const KID_A: &str = "ghplane-e2e-key-a";
pub const KID_B: &str = "ghplane-e2e-key-b";
pub const KID_SMALL: &str = "ghplane-e2e-key-1024";
/// What the fake runner wants in `Authorization: bearer …` on the ID-token endpoint.
pub const REQUEST_TOKEN: &str = "actions-request-token-e2e";

pub fn key_path(kid: &str) -> PathBuf {
    let file = match kid {
        KID_A => "test-rsa-2048-pkcs1.pem",
        KID_B => "test-rsa-2048-b-pkcs1.pem",
        KID_SMALL => "test-rsa-1024-pkcs1.pem",
        other => panic!("no test key {other}"),
    };
    crate::worker::repo_root()
        .join("crates/core/tests/fixtures")
        .join(file)
}

/// The key set served, and the claims registered per run.
struct Issuer {
    kids: Vec<&'static str>,
    runs: HashMap<String, Value>,
}

static ISSUER: Mutex<Option<Issuer>> = Mutex::new(None);

fn jwk(kid: &str) -> Value {
    let out = Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(key_path(kid))
        .output()
        .expect("run openssl");
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.trim().strip_prefix("Modulus=").expect("modulus");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode([1, 0, 1])})
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// RS256 over `input` with the test key `kid`.
pub fn rs256(kid: &str, input: &str) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key_path(kid))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst failed");
    out.stdout
}

/// A compact JWT with `header` and `claims`, signed by `kid`'s key.
pub fn sign_with(kid: &str, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = rs256(kid, &input);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// An RS256 token as GitHub issues it, signed by `kid`'s key and naming it.
pub fn sign(kid: &str, claims: &Value) -> String {
    sign_with(
        kid,
        &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        claims,
    )
}

pub fn issuer_url(fake: &FakeGithub) -> String {
    format!("{}/_oidc", fake.base_url())
}

/// Registers the issuer's routes on `fake` (once per run; later calls do nothing).
pub fn install(fake: &FakeGithub) {
    {
        let mut issuer = ISSUER.lock().unwrap();
        if issuer.is_some() {
            return;
        }
        *issuer = Some(Issuer {
            kids: vec![KID_A, KID_SMALL],
            runs: HashMap::new(),
        });
    }
    let base = issuer_url(fake);
    let discovery = json!({"issuer": base, "jwks_uri": format!("{base}/jwks"),
        "subject_types_supported": ["public"], "response_types_supported": ["id_token"],
        "id_token_signing_alg_values_supported": ["RS256"]});
    fake.on(
        Match::extra("GET", "/_oidc/.well-known/openid-configuration"),
        Reply::json(200, discovery),
        Times::Always,
    );
    fake.on(
        jwks(),
        Respond::with(|_| {
            let kids = ISSUER.lock().unwrap().as_ref().unwrap().kids.clone();
            Some(Reply::json(
                200,
                json!({"keys": kids.iter().map(|k| jwk(k)).collect::<Vec<_>>()}),
            ))
        }),
        Times::Always,
    );
    fake.on(
        Match::extra("GET", "/_actions/idtoken"),
        Respond::with(|req| Some(id_token(req))),
        Times::Always,
    );
}

/// The Actions ID-token endpoint: the claims registered for `?run=`, signed.
fn id_token(req: &RecordedRequest) -> Reply {
    let expected = format!("bearer {REQUEST_TOKEN}");
    if req
        .header("authorization")
        .is_none_or(|a| !a.eq_ignore_ascii_case(&expected))
    {
        return Reply::json(401, json!({"message": "bad request token"}));
    }
    let run = req.query_param("run").unwrap_or_default();
    let Some(mut claims) = ISSUER
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .runs
        .get(&run)
        .cloned()
    else {
        return Reply::json(404, json!({"message": "no such run"}));
    };
    if let Some(aud) = req.query_param("audience") {
        claims["aud"] = json!(aud);
    }
    Reply::json(200, json!({"value": sign(KID_A, &claims)}))
}

/// The issuer's key set route (tests count its reads with `requests_for(&jwks().label())`).
pub fn jwks() -> Match {
    Match::extra("GET", "/_oidc/jwks")
}

/// Serves `kid` in the key set from now on (a rotation adds the new key first).
pub fn add_key(kid: &'static str) {
    let mut issuer = ISSUER.lock().unwrap();
    let kids = &mut issuer.as_mut().unwrap().kids;
    if !kids.contains(&kid) {
        kids.push(kid);
    }
}

/// What the ID-token endpoint signs for `run` (its `aud` is the audience asked for).
pub fn register_run(run: &str, claims: Value) {
    ISSUER
        .lock()
        .unwrap()
        .as_mut()
        .unwrap()
        .runs
        .insert(run.to_owned(), claims);
}
