//! The token mint: fullsend's `/v1/token` (and `/`), `/health` and `/v1/status`, and
//! ghplane's audit of it ([`audit`]). Every decision is `ghplane_core::mint`'s; this file only
//! carries bytes between the client, Web Crypto, the Durable Objects and GitHub, in the
//! order `ghplane_core::mint` documents.
//!
//! Isolate caches (all safe to lose): the checked policy (vars do not change within an
//! isolate), imported OIDC verifying keys (as long as their key set is fresh), App JWTs
//! signed with a `<ROLE>_APP_PEM` secret (until a minute before they expire) and App JWTs
//! from the app registry (for [`REGISTRY_JWT_ISOLATE_SECS`], so a key replaced through the
//! admin API reaches every isolate within a minute). Each saves a Durable Object round trip,
//! the largest CPU cost of a warm mint.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ghplane_core::github::error::GithubError;
use ghplane_core::ids::AppId;
use ghplane_core::mint::audit::MintAuditRecord;
use ghplane_core::mint::oidc::{check_claims, decode_jwt, ActionsClaims, AuthError, JWKS_TTL_SECS};
use ghplane_core::mint::policy::{Decision, ForeignGrants, ForeignLookup, Policy};
use ghplane_core::mint::request::{
    bearer_token, parse_token_request, TokenRequest, MAX_BODY_BYTES,
};
use ghplane_core::mint::roles::pem_secret_name;
use ghplane_core::mint::wire::{
    access_tokens_path, health_response, parse_token_response, rate_limit_key, status_body,
    GrantedToken, CACHE_CONTROL,
};
use ghplane_core::mint::Denial;
use ghplane_core::routes::Matched;
use ghplane_core::sealed::Secret;
use ghplane_core::ApiError;
use ghplane_webcrypto::RsaVerifyingKey;
use serde_json::{json, Value};
use worker::{Env, Headers, Method, Request, Response};

use crate::clock::now_ms;
use crate::github::app_jwt;
use crate::github::client::{now_unix, GithubClient, Idempotent};
use crate::http::{read_capped, BodyError};
use crate::objects::app_store::client::AppClient;
use crate::objects::mint_app::{
    ForeignRead, ForeignRequest, InstallationsRequest, MintAppClient, VariableRead,
};
use crate::objects::mint_keys::MintKeysClient;
use crate::routes::meta::VERSION;
use crate::settings;

mod audit;

pub use audit::{audit_stats, list_audit};

/// A cached App JWT is replaced when less than this is left of it.
const JWT_MIN_REMAINING_SECS: i64 = 60;
/// How long an isolate reuses an App JWT the app registry signed.
const REGISTRY_JWT_ISOLATE_SECS: i64 = 60;

type PolicyResult = Rc<Result<Policy, String>>;
/// (issuer, kid) → (when its key set was fetched, the imported key).
type VerifyingKeys = HashMap<(String, String), (i64, Rc<RsaVerifyingKey>)>;

thread_local! {
    static POLICY: RefCell<Option<PolicyResult>> = const { RefCell::new(None) };
    static VERIFYING_KEYS: RefCell<VerifyingKeys> = RefCell::new(HashMap::new());
    /// "<secret>/<app id>" or "registry/<app id>" → (JWT, reused until, unix seconds).
    static APP_JWTS: RefCell<HashMap<String, (String, i64)>> = RefCell::new(HashMap::new());
}

/// The policy, checked once per isolate: every configuration problem is found here, when
/// the worker starts serving, never halfway through a mint.
fn policy(env: &Env) -> PolicyResult {
    if let Some(p) = POLICY.with(|p| p.borrow().clone()) {
        return p;
    }
    let checked = Policy::from_vars(|name| settings::get(env, name)).map_err(|problems| {
        problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    });
    if let Ok(p) = &checked {
        for w in p.warnings() {
            crate::log::event("warn", "mint configuration", json!({"warning": w.message}));
        }
    }
    let checked = Rc::new(checked);
    POLICY.with(|p| p.replace(Some(checked.clone())));
    checked
}

fn ready_policy(env: &Env) -> Result<PolicyResult, Denial> {
    let p = policy(env);
    match p.as_ref() {
        Ok(_) => Ok(p),
        Err(why) => Err(Denial::init_failed(why.clone())),
    }
}

/// A JSON answer whose body is already serialized (fullsend's field order and escaping).
fn raw_json(status: u16, body: String) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json; charset=utf-8");
    let _ = headers.set("cache-control", CACHE_CONTROL);
    let _ = headers.set("x-content-type-options", "nosniff");
    Response::from_bytes(body.into_bytes())
        .map(|r| r.with_status(status).with_headers(headers))
        .unwrap_or_else(|_| Response::builder().with_status(500).empty())
}

/// A failure of ghplane's own parts during a mint: "internal error" for the client; the code
/// and, for an internal error, its cause for the log and the audit.
fn internal(e: ApiError) -> Denial {
    crate::log::cause(&e);
    match e.cause() {
        Some(cause) if cause.detail.is_empty() => {
            Denial::internal_error(format!("{} at {}", e.code(), cause.at))
        }
        Some(cause) => {
            Denial::internal_error(format!("{} at {}: {}", e.code(), cause.at, cause.detail))
        }
        None => Denial::internal_error(e.code().to_owned()),
    }
}

/// The Workers rate limit binding, keyed like fullsend's (`<host>:/v1/token:<client IP>`).
/// Without the binding the mint is not limited (and says so in the log).
async fn rate_limited(req: &Request, env: &Env) -> bool {
    let Ok(limiter) = env.rate_limiter(settings::MINT_RATE_LIMITER) else {
        crate::log::event(
            "warn",
            "mint rate limiter binding missing; not limiting",
            json!({"binding": settings::MINT_RATE_LIMITER}),
        );
        return false;
    };
    let host = host_of(&req.inner().url()).to_owned();
    let ip = req.headers().get("cf-connecting-ip").ok().flatten();
    match limiter.limit(rate_limit_key(&host, ip.as_deref())).await {
        Ok(outcome) => !outcome.success,
        // A limiter that fails must not take the mint down with it.
        Err(_) => false,
    }
}

/// The host of a request URL as the runtime serialized it (scheme, lowercase host, optional
/// port), as `Url::host_str` would give it: without parsing the whole URL, which was a
/// thirtieth of a warm mint's CPU.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match authority.find(']') {
        Some(end) if authority.starts_with('[') => &authority[..=end],
        _ => authority.split(':').next().unwrap_or(""),
    }
}

/// At most [`MAX_BODY_BYTES`], through the worker's one capped reader.
async fn read_body(req: &mut Request) -> Result<Vec<u8>, Denial> {
    read_capped(req, MAX_BODY_BYTES).await.map_err(|e| match e {
        BodyError::TooLarge => Denial::payload_too_large(),
        BodyError::Unreadable => Denial::body_unreadable(),
    })
}

/// An imported key for `kid`: from this isolate while its set is fresh, else from the
/// issuer's `MintKeys` object (which refreshes, throttles and single-flights).
async fn verifying_key(
    env: &Env,
    issuer: &str,
    kid: &str,
    now: i64,
) -> Result<Rc<RsaVerifyingKey>, AuthError> {
    let id = (issuer.to_owned(), kid.to_owned());
    let cached = VERIFYING_KEYS.with(|k| {
        k.borrow()
            .get(&id)
            .filter(|(at, _)| now - at <= JWKS_TTL_SECS)
            .map(|(_, key)| key.clone())
    });
    if let Some(key) = cached {
        return Ok(key);
    }
    let unavailable = |e: ApiError| {
        crate::log::cause(&e);
        AuthError::KeysUnavailable(e.code().to_owned())
    };
    let answer = MintKeysClient::new(env, issuer)
        .map_err(unavailable)?
        .key(kid)
        .await
        .map_err(unavailable)?;
    let Some(jwk) = answer.jwk else {
        return Err(if answer.unknown_kid {
            AuthError::UnknownKid(ghplane_core::ids::truncate(kid, 80))
        } else {
            AuthError::KeysUnavailable(answer.reason.unwrap_or_default())
        });
    };
    let key = Rc::new(
        RsaVerifyingKey::import_jwk(&jwk.to_string())
            .await
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?,
    );
    let fetched_at = answer.fetched_at.unwrap_or(now);
    VERIFYING_KEYS.with(|k| k.borrow_mut().insert(id, (fetched_at, key.clone())));
    Ok(key)
}

/// fullsend's OIDC verification: header, claims, then the key and the signature.
async fn verify(env: &Env, policy: &Policy, token: &str) -> Result<ActionsClaims, AuthError> {
    let now = now_unix();
    let jwt = decode_jwt(token)?;
    let claims = check_claims(&jwt.claims_json, policy.issuer(), policy.audience(), now)?;
    let key = verifying_key(env, policy.issuer(), &jwt.kid, now).await?;
    match key
        .verify(&jwt.signature, jwt.signing_input.as_bytes())
        .await
    {
        Ok(true) => Ok(claims),
        _ => Err(AuthError::BadSignature),
    }
}

/// An App JWT for the App signing for `role`: its `<ROLE>_APP_PEM` secret when set (how
/// fullsend deployments hold keys), else ghplane's app registry.
async fn app_jwt_for(env: &Env, role: &str, app_id: &str) -> Result<String, Denial> {
    let secret = pem_secret_name(role);
    let now = now_unix();
    let pem = settings::get(env, &secret);
    let cache_key = match pem {
        Some(_) => format!("{secret}/{app_id}"),
        None => format!("registry/{app_id}"),
    };
    let cached = APP_JWTS.with(|c| {
        c.borrow()
            .get(&cache_key)
            .filter(|(_, until)| now < *until)
            .map(|(jwt, _)| jwt.clone())
    });
    if let Some(jwt) = cached {
        return Ok(jwt);
    }
    let remember = |jwt: &str, until: i64| {
        APP_JWTS.with(|c| {
            c.borrow_mut()
                .insert(cache_key.clone(), (jwt.to_owned(), until))
        })
    };
    if let Some(pem) = pem {
        let failed = |_| Denial::app_jwt_failed(format!("signing with {secret}"));
        let key = app_jwt::signing_key(&format!("pem:{cache_key}"), &Secret::new(pem))
            .await
            .map_err(failed)?;
        let (jwt, exp) = app_jwt::sign(&key, app_id, now).await.map_err(failed)?;
        remember(&jwt, exp - JWT_MIN_REMAINING_SECS);
        return Ok(jwt);
    }
    let app = AppId::parse(app_id).map_err(|_| {
        Denial::pem_unavailable(format!("no {secret} and app id {app_id:?} is not a number"))
    })?;
    let signed = AppClient::new(env, app)
        .map_err(internal)?
        .jwt_with_expiry()
        .await
        .map_err(|e| match e {
            ApiError::AppNotFound(_) => {
                Denial::pem_unavailable(format!("no {secret} and app {app} is not registered"))
            }
            e => {
                crate::log::cause(&e);
                Denial::app_jwt_failed(format!("app {app}: {}", e.code()))
            }
        })?;
    remember(
        &signed.jwt,
        (signed.exp - JWT_MIN_REMAINING_SECS).min(now + REGISTRY_JWT_ISOLATE_SECS),
    );
    Ok(signed.jwt)
}

fn app_of(app_id: &str) -> Result<AppId, Denial> {
    AppId::parse(app_id).map_err(|_| {
        Denial::mint_failed(
            403,
            "app_not_configured",
            format!("app id {app_id:?} is not a number"),
        )
    })
}

/// FOREIGN allow-lists for `lookups`, read by the role's App; an App without a key makes
/// every read a failure, as in fullsend.
async fn foreign_grants(env: &Env, role: &str, lookups: &[ForeignLookup]) -> ForeignGrants {
    let mut grants = ForeignGrants::new();
    let Some(first) = lookups.first() else {
        return grants;
    };
    let reads: Vec<ForeignRead> = lookups
        .iter()
        .map(|l| ForeignRead {
            cache_key: l.cache_key(),
            org: l.org().to_owned(),
            installation_path: l.installation_path(),
            token_body: l.token_request_body(),
            variable_path: l.variable_path(),
        })
        .collect();
    let answer = match (
        app_jwt_for(env, role, &first.app_id).await,
        app_of(&first.app_id),
    ) {
        (Ok(jwt), Ok(app)) => {
            let read = match MintAppClient::new(env, app) {
                Ok(c) => c.foreign(ForeignRequest { jwt, reads }).await,
                Err(e) => Err(e),
            };
            // A failed call is a failed read of every variable.
            read.inspect_err(crate::log::cause).ok()
        }
        _ => None,
    };
    let read = answer.map(|a| a.reads).unwrap_or_default();
    for (i, l) in lookups.iter().enumerate() {
        match read.get(i) {
            Some(VariableRead::Value(value)) => grants.record_value(l, value.as_deref()),
            Some(VariableRead::Failed) | None => grants.record_failure(l),
        }
    }
    grants
}

/// Finds the installation (cached, or from GitHub) and asks GitHub for the token; a
/// refusal on a cached installation drops it and tries once more from GitHub's answers.
async fn mint_on_github(
    env: &Env,
    decision: &Decision,
) -> Result<(ghplane_core::ids::InstallationId, GrantedToken), Denial> {
    let jwt = app_jwt_for(env, &decision.role, &decision.app_id).await?;
    let app = app_of(&decision.app_id)?;
    let cache = MintAppClient::new(env, app).map_err(internal)?;
    let github = GithubClient::from_env(env).map_err(internal)?;
    let body: Value =
        serde_json::from_str(&decision.token_request_body()).map_err(|e| internal(fail!(e)))?;
    let mut fresh = false;
    loop {
        let answers = cache
            .installations(&InstallationsRequest {
                jwt: jwt.clone(),
                org: decision.target_org.clone(),
                paths: decision.installation_paths(),
                fresh,
            })
            .await
            .map_err(internal)?
            .answers;
        let core: Vec<_> = answers.iter().map(|a| a.to_core()).collect();
        let id = decision.resolve_installation(&core)?;
        let path = access_tokens_path(id);
        match github
            .send(Method::Post, &path, &jwt, Some(&body), Idempotent::Yes)
            .await
        {
            Ok(r) => return parse_token_response(r.status, &r.body).map(|t| (id, t)),
            Err(e @ (GithubError::NotFound | GithubError::Unprocessable { .. })) => {
                cache.forget(id).await.map_err(internal)?;
                if fresh || !answers.iter().any(|a| a.cached()) {
                    return Err(Denial::github_failure(format!(
                        "creating installation token: {e}"
                    )));
                }
                fresh = true;
            }
            Err(e) => {
                return Err(Denial::github_failure(format!(
                    "creating installation token: {e}"
                )))
            }
        }
    }
}

/// What is known about a mint request so far, for its audit record.
#[derive(Default)]
struct Seen {
    /// Set once the OIDC token verified: only then is the request audited as a row.
    claims: Option<ActionsClaims>,
    request: Option<TokenRequest>,
    /// Why the token did not verify (a stable code), for the denial counters.
    auth_failure: Option<&'static str>,
}

async fn mint(
    req: &mut Request,
    env: &Env,
    seen: &mut Seen,
) -> Result<(MintAuditRecord, GrantedToken), Denial> {
    let policy = ready_policy(env)?;
    let policy = policy.as_ref().as_ref().expect("ready_policy checked it");
    let header = req.headers().get("authorization").ok().flatten();
    let token = bearer_token(header.as_deref())
        .ok_or_else(Denial::missing_bearer)?
        .to_owned();
    let body = read_body(req).await?;
    let request = parse_token_request(&body, |r| policy.allows_role(r))?;
    seen.request = Some(request.clone());
    let claims = verify(env, policy, &token).await.map_err(|e| {
        seen.auth_failure = Some(e.code());
        Denial::auth(&e)
    })?;
    seen.claims = Some(claims.clone());
    let lookups = policy.foreign_lookups(&claims, &request);
    let grants = foreign_grants(env, &request.role, &lookups).await;
    let decision = policy.check(&claims, &request, &grants)?;
    let (installation, granted) = mint_on_github(env, &decision).await?;
    let record = MintAuditRecord::granted(
        now_ms(),
        &claims,
        &request,
        &decision,
        installation,
        &granted,
    );
    Ok((record, granted))
}

/// `POST /v1/token` and `POST /`.
pub async fn token(mut req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    // Refused before anything else costs: a flood must not reach storage or GitHub.
    if rate_limited(&req, env).await {
        return Err(Denial::rate_limited().into());
    }
    let mut seen = Seen::default();
    match mint(&mut req, env, &mut seen).await {
        // No log line per mint: the audit record is the trail (and Workers observability
        // records every invocation); a console line costs more CPU than the rest of a
        // warm mint's own work.
        Ok((record, granted)) => {
            audit::record(env, &record).await;
            Ok(raw_json(200, granted.response_body()))
        }
        // A caller whose token verified is audited with what it asked; anyone else (no
        // bearer, a body refused before verification, a token that fails) is only counted
        // by reason and minute: a stranger never writes a row, let alone its body.
        Err(denial) => {
            match &seen.claims {
                Some(claims) => {
                    let record = MintAuditRecord::denied(
                        now_ms(),
                        Some(claims),
                        seen.request.as_ref(),
                        &denial,
                    );
                    audit::record(env, &record).await;
                }
                None => audit::count_denial(env, seen.auth_failure.unwrap_or(denial.code)).await,
            }
            Err(denial.into())
        }
    }
}

/// `GET /v1/status`: the configuration as a verified, enrolled caller sees it.
pub async fn status(req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let policy = ready_policy(env)?;
    let policy = policy.as_ref().as_ref().expect("ready_policy checked it");
    let header = req.headers().get("authorization").ok().flatten();
    let token = bearer_token(header.as_deref())
        .ok_or_else(|| Denial::authentication_failed("missing bearer"))?;
    let claims = verify(env, policy, token)
        .await
        .map_err(|e| Denial::auth(&e))?;
    policy.authorize(&claims).map_err(|e| Denial::auth(&e))?;
    Ok(raw_json(200, status_body(policy, &claims, VERSION, "")))
}

/// `GET /health`: 503 with the reason when the configuration failed its check or a role's
/// App has no key the worker can sign with.
pub async fn health(env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let p = policy(env);
    let problem = match p.as_ref() {
        Err(why) => Some(why.clone()),
        Ok(policy) => match policy.health_problem() {
            Some(reason) => Some(reason.to_owned()),
            None => missing_keys(env, policy).await,
        },
    };
    let (status, body) = health_response(problem.as_deref(), VERSION, "");
    Ok(raw_json(status, body))
}

/// Roles whose App has neither a `<ROLE>_APP_PEM` secret nor a registered key.
async fn missing_keys(env: &Env, policy: &Policy) -> Option<String> {
    let mut missing = Vec::new();
    for role in policy.allowed_roles() {
        let Some(app_id) = policy.app_id_for(role) else {
            continue;
        };
        let secret = pem_secret_name(role);
        if settings::get(env, &secret).is_some() {
            continue;
        }
        let registered = match AppId::parse(app_id) {
            Ok(app) => match AppClient::new(env, app) {
                Ok(c) => c.exists().await.unwrap_or(false),
                Err(_) => false,
            },
            Err(_) => false,
        };
        if !registered {
            missing.push(format!(
                "role {role:?}: app {app_id} is not registered and {secret} is not set"
            ));
        }
    }
    (!missing.is_empty()).then(|| missing.join("; "))
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_is_read_as_url_would() {
        for url in [
            "https://mint.example.com/v1/token",
            "http://127.0.0.1:8787/v1/token?x=1",
            "https://[::1]:8443/",
            "https://user@mint.example.com:443#f",
            "https://mint.example.com",
        ] {
            let parsed = worker::Url::parse(url).unwrap();
            assert_eq!(host_of(url), parsed.host_str().unwrap(), "{url}");
        }
    }
}
