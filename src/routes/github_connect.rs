//! `/api/integrations/github/*` and `/oauth/authorize`: the admin SPA's GitHub sign-in, the
//! installations and repositories the signed-in user can act on. Decisions are in
//! `ghplane_core::admin_access`; this file only moves data between HTTP, GitHub and the
//! user's Durable Object.

use ghplane_core::admin_access::installations::{self, classify, include_users, Listing};
use ghplane_core::admin_access::oauth::{authorize_url, callback_url, code_ok, install_url};
use ghplane_core::admin_access::repos::{self, cursor, installation_param, query, sync_input};
use ghplane_core::admin_access::session::{
    self, clear_cookie, credential, hash_secret, set_cookie, Credential, SessionToken,
    StoredSession,
};
use ghplane_core::admin_access::state::{
    self, binding_cookie, binding_from_cookies, binding_hash, clear_binding_cookie, code_challenge,
    return_path_param, start_input, state_key, OAuthState,
};
use ghplane_core::github::pages::Pager;
use ghplane_core::ids::{AppId, GithubUserId};
use ghplane_core::routes::Matched;
use ghplane_core::sealed::{parse_key, Secret};
use ghplane_core::time::rfc3339_from_millis;
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response, Url};

use crate::clock::now_text;
use crate::github::client::{now_unix, GithubClient, Idempotent};
use crate::github::oauth::{exchange_code, revoke_grant, web_base, OAuthClient};
use crate::http::{json_response, read_json_object, redirect};
use crate::objects::app_store::client::AppClient;
use crate::objects::github_user_store::client::{
    GithubUserClient, UserLink, REFRESH_TOKEN_SLOT, USER_TOKEN_SLOT,
};
use crate::objects::oauth_state_store::client::{self as oauth_state, Handoff, OAuthStateClient};
use crate::secrets::Keyring;
use crate::settings;

/// Fragment that hands a cross-site SPA the one-time code it trades for its session.
const SESSION_CODE_FRAGMENT: &str = "ghplane_code";

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn key(env: &Env) -> Result<[u8; 32], ApiError> {
    let raw = parse_key(&settings::require(env, settings::ENCRYPTION_KEY)?)
        .map_err(|_| ApiError::Misconfigured(settings::ENCRYPTION_KEY.into()))?;
    Ok(state_key(&raw))
}

fn app(env: &Env) -> Result<AppClient, ApiError> {
    let id = AppId::parse(&settings::require(env, settings::GITHUB_APP_ID)?)
        .map_err(|_| ApiError::Misconfigured(settings::GITHUB_APP_ID.into()))?;
    AppClient::new(env, id)
}

async fn oauth_client(env: &Env) -> Result<OAuthClient, ApiError> {
    let c = app(env)?.oauth_client(true).await?;
    Ok(OAuthClient {
        client_id: c.client_id,
        client_secret: Secret::new(c.client_secret.ok_or_else(|| fail!())?),
    })
}

fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A signed state bound to the browser, GitHub's authorize URL, and the binding cookie to
/// set (same-site sign-ins; a cross-site SPA binds with its `code_challenge` instead, and
/// must send one).
async fn begin(
    env: &Env,
    url: &Url,
    return_to: String,
    origin: Option<String>,
    challenge: Option<String>,
) -> Result<(String, OAuthState, String, Option<String>), ApiError> {
    let client = app(env)?.oauth_client(false).await?;
    let mut st = OAuthState::new(&random_bytes::<16>(), now_unix(), return_to);
    st.t = settings::get(env, settings::TURNSTILE_SITE_KEY);
    st.g = settings::get(env, settings::GITHUB_APP_SLUG).or(client.slug);
    let own = origin_of(url);
    let origins = settings::admin_origins(env)?;
    st.o = origin.filter(|o| *o != own && origins.allows(o));
    let cookie = match (&st.o, challenge) {
        (Some(_), Some(challenge)) => {
            st.b = Some(challenge);
            None
        }
        (Some(o), None) => {
            return Err(ApiError::Validation(format!(
                "code_challenge: required when the sign-in starts from {o} (PKCE: base64url \
                 SHA-256 of a verifier the SPA keeps and sends to /api/integrations/github/session)"
            )))
        }
        (None, _) => {
            let secret = b64url(&random_bytes::<32>());
            st.b = Some(binding_hash(&secret));
            Some(binding_cookie(&secret))
        }
    };
    let text = st.encode(&key(env)?);
    let target = authorize_url(
        &web_base(env),
        &client.client_id,
        &callback_url(&own),
        &text,
    );
    Ok((target, st, text, cookie))
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub async fn authorize(req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let return_to = return_path_param(query_param(&url, "return_to").as_deref())?;
    let mut challenge = serde_json::Map::new();
    if let Some(c) = query_param(&url, "code_challenge") {
        challenge.insert("code_challenge".into(), Value::String(c));
    }
    let challenge = code_challenge(&challenge)?;
    let (target, _, _, cookie) =
        begin(env, &url, return_to, header(&req, "origin"), challenge).await?;
    let mut resp = redirect(&target);
    if let Some(c) = cookie {
        let _ = resp.headers_mut().append("set-cookie", &c);
    }
    Ok(resp)
}

pub async fn start(mut req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let input = read_json_object(&mut req).await?;
    let return_to = start_input(&input)?;
    let challenge = code_challenge(&input)?;
    let url = req.url().map_err(|e| fail!(e))?;
    let (target, st, text, cookie) =
        begin(env, &url, return_to, header(&req, "origin"), challenge).await?;
    let mut resp = json_response(
        200,
        &json!({"authorize_url": target, "state": text,
            "expires_at": rfc3339_from_millis(st.exp.saturating_mul(1000))}),
    );
    if let Some(c) = cookie {
        let _ = resp.headers_mut().append("set-cookie", &c);
    }
    Ok(resp)
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    #[serde(default)]
    avatar_url: Option<String>,
}

/// GitHub's redirect back. Everything that can be refused without GitHub is checked, and the
/// nonce consumed, before the code is exchanged: a bad state never costs an exchange.
pub async fn callback(req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let now = now_unix();
    let st = OAuthState::verify(&key(env)?, query_param(&url, "state").as_deref(), now)?;
    let back_to = match &st.o {
        Some(o) if settings::admin_origins(env)?.allows(o) => Some(o.clone()),
        Some(_) => return Err(state::invalid("its admin origin is no longer allowed")),
        None => None,
    };
    // Bound to the browser that started it: a same-site sign-in needs its binding cookie
    // here; a cross-site SPA's verifier is checked when it redeems the session. Either way
    // before the nonce is consumed or the code exchanged.
    match &back_to {
        None => st.check_binding(binding_from_cookies(header(&req, "cookie").as_deref()))?,
        Some(_) if st.b.is_none() => return Err(state::invalid("it is not bound to a browser")),
        Some(_) => {}
    }
    let denied = query_param(&url, "error");
    let code = query_param(&url, "code");
    if denied.is_none() && !code.as_deref().is_some_and(code_ok) {
        return Err(ApiError::OAuth {
            code: ghplane_core::error::OAuthCode::CodeInvalid,
            message: "the code parameter is missing or malformed".into(),
        });
    }
    OAuthStateClient::new(env, &st.n)?.consume(st.exp).await?;
    if denied.is_some() {
        return Err(ApiError::OAuth {
            code: ghplane_core::error::OAuthCode::Denied,
            message: "the sign-in was declined on GitHub".into(),
        });
    }
    let client = oauth_client(env).await?;
    let redirect_uri = callback_url(&origin_of(&url));
    let tokens = exchange_code(env, &client, code.as_deref().unwrap_or(""), &redirect_uri).await?;
    let me: GithubUser = GithubClient::from_env(env)?
        .send(
            Method::Get,
            "/user",
            tokens.access_token.expose(),
            None,
            Idempotent::Yes,
        )
        .await?
        .json()?;
    let user = GithubUserId::from_u64(me.id).map_err(|e| fail!(e))?;

    let ring = Keyring::from_env(env).await?;
    let object = user.object_name();
    let sealed_token = ring
        .seal(&object, USER_TOKEN_SLOT, tokens.access_token.expose())
        .await?;
    let sealed_refresh = match &tokens.refresh_token {
        Some(t) => Some(ring.seal(&object, REFRESH_TOKEN_SLOT, t.expose()).await?),
        None => None,
    };
    let (token_text, token) = SessionToken::generate(user, &random_bytes::<32>());
    let expires_at = session::expires_at(now, tokens.expires_in);
    let stamp = now_text();
    crate::objects::sealed_registry::enroll(env, "user", &user.to_string()).await?;
    let link = UserLink {
        user_id: user,
        login: me.login,
        avatar_url: me.avatar_url,
        token: sealed_token,
        token_expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
        refresh_token: sealed_refresh,
        refresh_token_expires_at: tokens
            .refresh_token_expires_in
            .map(|s| now.saturating_add(s)),
        connected_at: stamp.clone(),
        updated_at: stamp,
    };
    let session = StoredSession {
        hash: hash_secret(&token.secret),
        expires_at,
    };
    GithubUserClient::new(env, user)?
        .link(link, session)
        .await?;
    match back_to {
        // The SPA gets a one-time code in the fragment (never sent to a server), and trades
        // it with its PKCE verifier for the session: a link to this callback signs in only
        // the SPA that started the sign-in.
        Some(origin) => {
            let handoff_secret = b64url(&random_bytes::<32>());
            let sealed = ring
                .seal(
                    &oauth_state::object_name(&st.n),
                    oauth_state::HANDOFF_SLOT,
                    &token_text,
                )
                .await?;
            OAuthStateClient::new(env, &st.n)?
                .keep_handoff(Handoff {
                    code_hash: binding_hash(&handoff_secret),
                    challenge: st.b.clone().unwrap_or_default(),
                    session: sealed,
                    session_expires_at: expires_at,
                    expires_at_ms: now.saturating_mul(1000) + oauth_state::HANDOFF_TTL_MS,
                })
                .await?;
            let path = st.r.split('#').next().unwrap_or("/");
            Ok(redirect(&format!(
                "{origin}{path}#{SESSION_CODE_FRAGMENT}={}.{handoff_secret}",
                st.n
            )))
        }
        None => {
            let mut resp = redirect(&st.r);
            let _ = resp
                .headers_mut()
                .append("set-cookie", &set_cookie(&token_text, expires_at - now));
            let _ = resp
                .headers_mut()
                .append("set-cookie", &clear_binding_cookie());
            Ok(resp)
        }
    }
}

/// `POST /api/integrations/github/session`: a cross-site SPA trades the callback's one-time
/// code (`#ghplane_code=` in its URL) and its PKCE verifier for its session, once, within
/// two minutes of the callback.
pub async fn session(mut req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let input = read_json_object(&mut req).await?;
    if let Some(k) = input
        .keys()
        .find(|k| !matches!(k.as_str(), "code" | "code_verifier"))
    {
        return Err(ApiError::Validation(format!(
            "unknown field {}",
            ghplane_core::ids::truncate(k, 40)
        )));
    }
    let text = |k: &str| input.get(k).and_then(Value::as_str).unwrap_or_default();
    let (nonce, secret) = text("code").split_once('.').unwrap_or_default();
    let b64 = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !b64(nonce, state::NONCE_LEN) || !b64(secret, state::BINDING_LEN) {
        return Err(ApiError::Validation(
            "code: the ghplane_code the callback put in the URL".into(),
        ));
    }
    let verifier = text("code_verifier");
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !verifier_ok {
        return Err(ApiError::Validation(
            "code_verifier: 43 to 128 characters of A-Z a-z 0-9 - . _ ~".into(),
        ));
    }
    let redeemed = OAuthStateClient::new(env, nonce)?
        .redeem(binding_hash(secret), binding_hash(verifier))
        .await?;
    let token = Keyring::from_env(env)
        .await?
        .open(
            &oauth_state::object_name(nonce),
            oauth_state::HANDOFF_SLOT,
            &redeemed.session,
        )
        .await?;
    Ok(json_response(
        200,
        &json!({"session": token.expose(),
            "session_expires_at": rfc3339_from_millis(redeemed.session_expires_at.saturating_mul(1000))}),
    ))
}

/// The session a request carries, or why not.
fn session_of(req: &Request) -> Result<SessionToken, ApiError> {
    match credential(
        header(req, "authorization").as_deref(),
        header(req, "cookie").as_deref(),
    ) {
        Some(Credential::Session(s)) => Ok(s),
        Some(Credential::MalformedSession) => Err(ApiError::UserAccess {
            kind: ghplane_core::error::UserAccessKind::SessionInvalid,
            message: "the session token is malformed; sign in again".into(),
            retry_after_secs: None,
        }),
        Some(Credential::UserToken(_)) | None => Err(ApiError::Unauthorized),
    }
}

/// `GET /user/installations`, page by page up to `INSTALLATIONS_PAGE_CAP`. Nothing else is
/// ever asked: a failure is an error, not a reason to list from another source.
async fn list_installations(env: &Env, token: &str) -> Result<Listing, ApiError> {
    let cap =
        installations::page_cap(settings::get(env, settings::INSTALLATIONS_PAGE_CAP).as_deref())
            .ok_or(ApiError::Misconfigured(
                settings::INSTALLATIONS_PAGE_CAP.into(),
            ))?;
    let github = GithubClient::from_env(env)?;
    let mut listing = Listing::default();
    let mut pager = Pager::new(installations::page_path(1), cap);
    while let Some(path) = pager.next_path().map(str::to_owned) {
        let resp = github
            .send(Method::Get, &path, token, None, Idempotent::Yes)
            .await
            .map_err(|e| classify(&e))?;
        listing.add(resp.json().map_err(|e| classify(&e))?);
        pager.advance(resp.link.as_deref(), github.api_base());
    }
    Ok(listing)
}

pub async fn status(req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let Ok(s) = session_of(&req) else {
        return Ok(json_response(200, &json!({"connected": false})));
    };
    let who = match GithubUserClient::new(env, s.user)?
        .authenticate(&s.secret)
        .await
    {
        Ok(a) => a,
        Err(e) if e.status() == 401 => return Ok(json_response(200, &json!({"connected": false}))),
        Err(e) => return Err(e),
    };
    let mut body = json!({
        "connected": true, "login": who.login, "user_id": who.user_id, "avatar_url": who.avatar_url,
        "session_expires_at": rfc3339_from_millis(who.session_expires_at.saturating_mul(1000)),
    });
    // What the console may draw: a viewer sees no write controls (the routes refuse them
    // anyway). Null when the configuration gives this person no role; when it could not be
    // decided (a team check failed), `role_error` says why and the console draws no writes.
    match crate::routes::people::role_of(env, who.user_id.get(), &who.login).await {
        Ok(role) => body["role"] = json!(role.map(|r| r.as_str())),
        Err(e) => body["role_error"] = json!(e.code()),
    }
    match list_installations(env, &who.token).await {
        Ok(listing) => body["installations"] = listing.summary(),
        Err(e) => {
            body["installations"] = Value::Null;
            body["installations_error"] = json!(e.code());
        }
    }
    Ok(json_response(200, &body))
}

pub async fn disconnect(mut req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    // The session is checked before the body is read.
    let s = session_of(&req)?;
    let body = read_json_object(&mut req).await?;
    if !body.is_empty() {
        return Err(ApiError::Validation("the body must be empty or {}".into()));
    }
    let token = GithubUserClient::new(env, s.user)?
        .disconnect(&s.secret)
        .await?;
    // The tokens are already forgotten; the grant is revoked as well when GitHub agrees.
    let revoked = match oauth_client(env).await {
        Ok(client) => revoke_grant(env, &client, &token).await.is_ok(),
        Err(_) => false,
    };
    crate::log::event(
        if revoked { "info" } else { "warn" },
        "github disconnect",
        json!({"user": s.user, "revoked": revoked}),
    );
    let mut resp = json_response(200, &json!({"connected": false, "revoked": revoked}));
    let _ = resp.headers_mut().append("set-cookie", &clear_cookie());
    Ok(resp)
}

pub async fn installations(req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let include = include_users(query_param(&url, "include").as_deref())?;
    let token = match credential(
        header(&req, "authorization").as_deref(),
        header(&req, "cookie").as_deref(),
    ) {
        Some(Credential::UserToken(t)) => t,
        _ => {
            let s = session_of(&req)?;
            let who = GithubUserClient::new(env, s.user)?
                .authenticate(&s.secret)
                .await?;
            Secret::new(who.token)
        }
    };
    let listing = list_installations(env, token.expose()).await?;
    let slug = listing
        .slug
        .clone()
        .or_else(|| settings::get(env, settings::GITHUB_APP_SLUG));
    let install = slug.map(|s| install_url(&web_base(env), &s));
    Ok(json_response(200, &listing.view(include, install)))
}

pub async fn repos(req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let installation = installation_param(query_param(&url, "installation_id").as_deref())?;
    let after = cursor(query_param(&url, "cursor").as_deref())?;
    let q = query(query_param(&url, "query").as_deref())?;
    let s = session_of(&req)?;
    let answer = GithubUserClient::new(env, s.user)?
        .repos(&s.secret, installation, false)
        .await?;
    let (rows, next) = repos::page(
        &answer.rows,
        q.as_deref(),
        after.as_ref(),
        repos::RESPONSE_LIMIT,
    );
    Ok(json_response(
        200,
        &json!({"installation_id": installation, "repositories": rows, "next_cursor": next,
            "incomplete": answer.incomplete, "synced_at": rfc3339_from_millis(answer.synced_at)}),
    ))
}

pub async fn repos_sync(mut req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let s = session_of(&req)?;
    let installation = sync_input(&read_json_object(&mut req).await?)?;
    let answer = GithubUserClient::new(env, s.user)?
        .repos(&s.secret, installation, true)
        .await?;
    Ok(json_response(
        200,
        &json!({"installation_id": installation, "repositories": answer.rows.len(),
            "changed": answer.changed, "incomplete": answer.incomplete,
            "synced_at": rfc3339_from_millis(answer.synced_at)}),
    ))
}
