//! `GET /`: the admin console's page (console/, built by `make console` into Workers static
//! assets). The worker serves the page itself (`run_worker_first: ["/"]` in wrangler.jsonc)
//! because `POST /` is the token mint's fullsend path, which the assets would answer 405; the
//! scripts and styles under `/assets/` are served by the runtime without the worker.
//!
//! The page gets a strict Content-Security-Policy: only its own scripts and styles (Vite emits
//! no inline ones), API calls to its own origin, avatars from GitHub, never framed.

use ghplane_core::ApiError;
use worker::{Env, Request, Response};

use crate::settings;

/// Avatars come from GitHub's avatar host (and `data:` for none); everything else is
/// same-origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' https://avatars.githubusercontent.com data:; \
connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

pub async fn page(req: Request, env: &Env) -> Result<Response, ApiError> {
    let assets = env
        .assets(settings::ASSETS)
        .map_err(|_| ApiError::Misconfigured(settings::ASSETS.into()))?;
    let url = req.url().map_err(|e| fail!(e))?;
    // `/`, not `/index.html`: the assets redirect the latter to the former (html_handling).
    let index = format!("{}://{}/", url.scheme(), url.authority());
    let resp = assets.fetch(index, None).await.map_err(|e| fail!(e))?;
    if resp.status_code() != 200 {
        // The assets were not built (`make console`): say so instead of a blank page.
        return Err(ApiError::Misconfigured(
            "console assets (run make console)".into(),
        ));
    }
    let headers = resp.headers().clone();
    for (k, v) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-cache"),
    ] {
        headers.set(k, v).map_err(|e| fail!(e))?;
    }
    Ok(resp.with_headers(headers))
}
