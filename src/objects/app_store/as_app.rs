//! Calls to GitHub as a registered app (an App JWT from its `AppStore`), for the endpoints
//! under `/app/…`: confirming an installation, listing and redelivering the app's webhook
//! deliveries.

use ghplane_core::github::error::GithubError;
use ghplane_core::ids::AppId;
use ghplane_core::ApiError;
use serde_json::Value;
use worker::{Env, Method};

use crate::github::client::{is_jwt_clock_error, GithubClient, GithubResponse, Idempotent};
use crate::objects::app_store::client::AppClient;

/// Sends one request as `app`. The outer error is ghplane's own (no JWT); the inner one is
/// GitHub's answer. A JWT GitHub finds skewed is signed once more with GitHub's clock.
pub async fn send(
    env: &Env,
    github: &GithubClient,
    app: AppId,
    method: Method,
    path: &str,
    body: Option<&Value>,
    idempotent: Idempotent,
) -> Result<Result<GithubResponse, GithubError>, ApiError> {
    let client = AppClient::new(env, app)?;
    let jwt = client.jwt(None).await?;
    match github
        .send(method.clone(), path, &jwt, body, idempotent)
        .await
    {
        Err(e) if is_jwt_clock_error(&e) && github.server_time().is_some() => {
            let jwt = client.jwt(github.server_time()).await?;
            Ok(github.send(method, path, &jwt, body, idempotent).await)
        }
        other => Ok(other),
    }
}

/// Whether GitHub shows installation `id` to `app` (`GET /app/installations/{id}` with the
/// app's JWT): `false` when GitHub answers 404, i.e. the installation is another app's or
/// does not exist. Any other failure is an error, so the delivery can be retried.
pub async fn owns_installation(env: &Env, app: AppId, id: u64) -> Result<bool, ApiError> {
    let github = GithubClient::from_env(env)?;
    let path = format!("/app/installations/{id}");
    match send(env, &github, app, Method::Get, &path, None, Idempotent::Yes).await? {
        Ok(_) => Ok(true),
        Err(GithubError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
