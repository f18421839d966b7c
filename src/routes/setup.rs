//! The browser side of the GitHub App Manifest flow: `GET /setup/{id}` posts the manifest to
//! GitHub, `GET /setup/callback` turns GitHub's code into a registered app. Both answer HTML;
//! every failure is a page that says what happened, and nothing is stored on one.

use ghplane_core::github::error::GithubError;
use ghplane_core::installer::claims::ClaimRequest;
use ghplane_core::installer::manifest::{form_action, manifest, Conversion};
use ghplane_core::installer::state::{derive_key, sign, verify};
use ghplane_core::installer::{pages, InstallerApp, InstallerError, InstallerId, Phase};
use ghplane_core::routes::Matched;
use ghplane_core::sealed::parse_key;
use ghplane_core::tenancy::config::SealedSecret;
use ghplane_core::ApiError;
use worker::{Env, Headers, Method, Request, Response};

use crate::github::client::{now_unix, GithubClient, Idempotent};
use crate::objects::app_store::client::{
    object_name, AppClient, CLIENT_SECRET_SLOT, PRIVATE_KEY_SLOT, WEBHOOK_SECRET_SLOT,
};
use crate::objects::claims::ClaimsClient;
use crate::objects::installer::InstallerClient;
use crate::secrets::Keyring;
use crate::settings;

fn html(status: u16, body: String) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "text/html; charset=utf-8");
    let _ = headers.set("cache-control", "no-store");
    let _ = headers.set("x-content-type-options", "nosniff");
    let _ = headers.set("referrer-policy", "no-referrer");
    match Response::from_bytes(body.into_bytes()) {
        Ok(r) => r.with_status(status).with_headers(headers),
        Err(_) => Response::builder().with_status(500).empty(),
    }
}

fn error_page(e: &ApiError) -> Response {
    let title = match e.status() {
        404 => "Installer not found",
        400 => "This setup link cannot be used",
        409 => "Nothing to do",
        _ => "Setup failed",
    };
    html(e.status(), pages::error(title, &e.public_message()))
}

fn state_key(env: &Env) -> Result<[u8; 32], ApiError> {
    let raw = settings::require(env, settings::ENCRYPTION_KEY)?;
    let key =
        parse_key(&raw).map_err(|_| ApiError::Misconfigured(settings::ENCRYPTION_KEY.into()))?;
    Ok(derive_key(&key))
}

pub async fn page(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    Ok(render(env, m).await.unwrap_or_else(|e| error_page(&e)))
}

async fn render(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let id = InstallerId::parse(m.param("installer_id")).map_err(|_| {
        InstallerError::NotFound(ghplane_core::ids::truncate(m.param("installer_id"), 40))
    })?;
    let installer = InstallerClient::new(env, &id)?;
    let record = installer.get().await?;
    let web = settings::github_web_base(env);
    if record.phase() != Phase::AwaitingApp {
        return Ok(html(200, pages::progress(&record, &web, None)));
    }
    let pending = installer.state().await?;
    let state = sign(&state_key(env)?, &id, &pending.nonce, pending.expires_at);
    let action = form_action(&web, &record, &state);
    Ok(html(
        200,
        pages::setup(&record, &manifest(&record), &action),
    ))
}

pub async fn callback(req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    Ok(convert(req, env).await.unwrap_or_else(|e| error_page(&e)))
}

async fn convert(req: Request, env: &Env) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let q = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    let (Some(code), Some(state)) = (q("code"), q("state")) else {
        return Err(
            InstallerError::InvalidState("GitHub's code or the state is missing".into()).into(),
        );
    };
    if code.is_empty()
        || code.len() > 100
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(InstallerError::CodeRejected.into());
    }
    // The MAC first: a forged state touches no object.
    let verified = verify(&state_key(env)?, &state, now_unix())?;
    let installer = InstallerClient::new(env, &verified.installer)?;
    let record = installer.consume(&verified.nonce).await?;
    if record.app.is_some() {
        return Err(
            InstallerError::InvalidState("this installer already has its app".into()).into(),
        );
    }
    let github = GithubClient::from_env(env)?;
    let path = format!("/app-manifests/{code}/conversions");
    // The code in the path is the credential: GitHub takes this call without a token.
    let converted = match github
        .send(Method::Post, &path, "", None, Idempotent::No)
        .await
    {
        Ok(r) => r.json::<Conversion>().map_err(ApiError::from)?,
        Err(GithubError::NotFound | GithubError::Unprocessable { .. }) => {
            return Err(InstallerError::CodeRejected.into())
        }
        Err(e) => return Err(e.into()),
    };
    let app_id = ghplane_core::ids::AppId::from_u64(converted.id).map_err(|e| fail!(e))?;
    let input = converted.app_input(&record.target)?;
    let ring = Keyring::from_env(env).await?;
    let object = object_name(app_id);
    let seal = |slot: &'static str, text: String| {
        let ring = ring.clone();
        let object = object.clone();
        async move {
            Ok::<_, ApiError>(SealedSecret {
                sealed: ring.seal(&object, slot, &text).await?,
                fingerprint: None,
            })
        }
    };
    let mut key = seal(PRIVATE_KEY_SLOT, input.private_key.pem.expose().to_owned()).await?;
    key.fingerprint = Some(input.private_key.fingerprint.clone());
    let webhook = match &input.webhook_secret {
        Some(s) => Some(seal(WEBHOOK_SECRET_SLOT, s.expose().to_owned()).await?),
        None => None,
    };
    let client = match &input.client_secret {
        Some(s) => Some(seal(CLIENT_SECRET_SLOT, s.expose().to_owned()).await?),
        None => None,
    };
    let sealed = input.with_secrets(key, webhook, client);
    crate::objects::sealed_registry::enroll(env, "app", &app_id.to_string()).await?;
    AppClient::new(env, app_id)?.put(sealed).await?;
    let app = InstallerApp {
        app_id,
        slug: converted.slug().to_owned(),
        html_url: converted.html_url().to_owned(),
        owner: converted.owner().map(str::to_owned),
    };
    let record = installer.set_app(&app).await?;
    ClaimsClient::new(env, record.target.owner())?
        .apply(&ClaimRequest::SetApp {
            installer: record.id.clone(),
            app_id,
        })
        .await?;
    crate::log::event(
        "info",
        "installer app created",
        serde_json::json!({"installer": record.id.as_str(), "app": app_id.get(), "mode": record.target.mode()}),
    );
    let web = settings::github_web_base(env);
    Ok(html(
        200,
        pages::progress(
            &record,
            &web,
            Some(&format!(
                "App created: {} (id {app_id}) is registered with ghplane.",
                app.slug
            )),
        ),
    ))
}
