//! GitHub's OAuth web endpoints (`GITHUB_WEB_BASE`, github.com) and the grant revocation
//! (`DELETE /applications/{client_id}/grant` on the API, Basic-authenticated as the app).
//! The client secret and the tokens pass through here and are never logged.

use ghplane_core::admin_access::oauth::{basic_auth, exchange_body, parse_exchange, UserTokens};
use ghplane_core::github::error::GithubError;
use ghplane_core::sealed::Secret;
use ghplane_core::ApiError;
use serde_json::json;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

use crate::github::client::{GithubClient, Idempotent};
use crate::settings;

const USER_AGENT: &str = concat!("ghplane/", env!("CARGO_PKG_VERSION"));

/// The app's OAuth credentials, read from the app registry for one request.
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: Secret,
}

pub fn web_base(env: &Env) -> String {
    settings::get(env, settings::GITHUB_WEB_BASE)
        .unwrap_or_else(|| settings::DEFAULT_GITHUB_WEB_BASE.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// Trades the callback's `code` for the user's tokens. Sent once, never retried: a code is
/// single use, so a retry could only fail.
pub async fn exchange_code(
    env: &Env,
    client: &OAuthClient,
    code: &str,
    redirect_uri: &str,
) -> Result<UserTokens, ApiError> {
    let unreachable = |_| ApiError::OAuth {
        code: ghplane_core::error::OAuthCode::ExchangeFailed,
        message: "GitHub could not be reached for the code exchange".into(),
    };
    let headers = Headers::new();
    for (k, v) in [
        ("accept", "application/json"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("user-agent", USER_AGENT),
    ] {
        headers.set(k, v).map_err(|e| fail!(e))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(
            exchange_body(&client.client_id, &client.client_secret, code, redirect_uri).into(),
        ));
    let url = format!("{}/login/oauth/access_token", web_base(env));
    let req = Request::new_with_init(&url, &init).map_err(|e| fail!(e))?;
    let resp = Fetch::Request(req).send().await.map_err(unreachable)?;
    let status = resp.status_code();
    let body = crate::http::body_bytes(resp).await.map_err(unreachable)?;
    parse_exchange(status, &body)
}

/// Revokes the app's grant for this user (every token of it). GitHub's 404 means there is
/// no such grant any more, which is the goal too.
pub async fn revoke_grant(
    env: &Env,
    client: &OAuthClient,
    access_token: &str,
) -> Result<(), GithubError> {
    let github =
        GithubClient::from_env(env).map_err(|_| GithubError::Network("no API base".into()))?;
    let path = format!(
        "/applications/{}/grant",
        ghplane_core::admin_access::oauth::pct_encode(&client.client_id)
    );
    match github
        .send_with(
            Method::Delete,
            &path,
            &basic_auth(&client.client_id, &client.client_secret),
            Some(&json!({"access_token": access_token})),
            None,
            Idempotent::Yes,
        )
        .await
    {
        Ok(_) | Err(GithubError::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}
