//! `POST /webhooks/github`: the one public endpoint GitHub posts to.
//!
//! Order matters and is fixed: headers (413 before the body is read, 415, 400), the app named
//! by `X-GitHub-Hook-Installation-Target-ID` (401 when unknown, without creating any object),
//! the signature over the exact bytes received (401), only then the JSON (400), the
//! installation's app (403), and the hand-off to the object that owns the delivery, which
//! dedupes it before any side effect.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ghplane_core::ids::{AppId, InstallationId};
use ghplane_core::routes::Matched;
use ghplane_core::tenancy::app::verifies_at;
use ghplane_core::tenancy::directory::{DirectoryEntry, DirectorySecret};
use ghplane_core::webhook::delivery::{DeliveryPage, DeliveryRequest, Received};
use ghplane_core::webhook::headers::MAX_PAYLOAD_BYTES;
use ghplane_core::webhook::{
    check_headers, check_installation_app, classify, parse_event, Claim, SignatureError,
    WebhookError,
};
use ghplane_core::ApiError;
use ghplane_webcrypto::HmacSha256Key;
use worker::{Env, Request, Response};

use crate::clock::now_ms;
use crate::http::{json_response, query, read_capped, BodyError};
use crate::objects::app_directory::client::DirectoryClient;
use crate::objects::app_store::client::{object_name, AppClient, WEBHOOK_SECRET_SLOT};
use crate::objects::installation::InstallationClient;
use crate::objects::tenant_index;
use crate::secrets::Keyring;

/// Opened webhook secrets, per isolate. The directory is read through its isolate cache
/// (`DirectoryClient::cached`: at most 30 s stale, a signature that fails reads it again), so
/// deleting an app takes effect in every isolate within 30 s and a rotated secret at once: an
/// entry is reused only while the directory still holds exactly the sealed values it was
/// opened from. This cache saves the key imports and the decryptions.
struct OpenedSecret {
    secret: Vec<u8>,
    /// The secret imported as a Web Crypto HMAC key (`None` for an empty secret, which
    /// never verifies).
    key: Option<HmacSha256Key>,
    valid_until_ms: Option<i64>,
}

/// Per app: the directory's sealed secrets, and what they open to.
type SecretCache = HashMap<AppId, (Vec<DirectorySecret>, Rc<Vec<OpenedSecret>>)>;

thread_local! {
    static SECRETS: RefCell<SecretCache> = RefCell::new(HashMap::new());
}

/// The app's webhook secrets; `None` for an app that is not registered.
async fn secrets(
    env: &Env,
    app: AppId,
    now: i64,
) -> Result<Option<Rc<Vec<OpenedSecret>>>, ApiError> {
    let entry = DirectoryClient::new(env)?.cached(app, now).await?;
    opened(env, app, entry).await
}

/// What `entry` (the directory's answer for `app`) opens to.
async fn opened(
    env: &Env,
    app: AppId,
    entry: Option<DirectoryEntry>,
) -> Result<Option<Rc<Vec<OpenedSecret>>>, ApiError> {
    let Some(entry) = entry else {
        SECRETS.with(|c| c.borrow_mut().remove(&app));
        return Ok(None);
    };
    let cached = SECRETS.with(|c| {
        c.borrow()
            .get(&app)
            .filter(|(sealed, _)| *sealed == entry.secrets)
            .map(|(_, opened)| opened.clone())
    });
    if cached.is_some() {
        return Ok(cached);
    }
    let ring = Keyring::from_env(env).await?;
    let mut opened = Vec::with_capacity(entry.secrets.len());
    for s in &entry.secrets {
        let secret = ring
            .open(&object_name(app), WEBHOOK_SECRET_SLOT, &s.sealed)
            .await?;
        let secret = secret.expose().as_bytes().to_vec();
        let key = match secret.is_empty() {
            true => None,
            false => Some(HmacSha256Key::import(&secret).await.map_err(|e| fail!(e))?),
        };
        opened.push(OpenedSecret {
            secret,
            key,
            valid_until_ms: s.valid_until_ms,
        });
    }
    let opened = Rc::new(opened);
    SECRETS.with(|c| c.borrow_mut().insert(app, (entry.secrets, opened.clone())));
    Ok(Some(opened))
}

/// The core's verdict on the signature, with the MACs computed by the runtime's native
/// HMAC under the cached keys: over a large push the wasm `sha2` crate would cost tens of
/// milliseconds of CPU.
async fn verifies(
    secrets: &[OpenedSecret],
    body: &[u8],
    signature: Option<&str>,
    now: i64,
) -> Result<Result<(), SignatureError>, ApiError> {
    let usable: Vec<&[u8]> = secrets
        .iter()
        .filter(|s| verifies_at(s.valid_until_ms, now))
        .map(|s| s.secret.as_slice())
        .collect();
    let claim = match Claim::check(&usable, signature) {
        Ok(claim) => claim,
        Err(e) => return Ok(Err(e)),
    };
    let mut macs = Vec::with_capacity(claim.secrets().len());
    for secret in claim.secrets() {
        // The claim keeps the secrets it was given (the non-empty ones): find each one's key.
        let key = secrets
            .iter()
            .find(|s| std::ptr::eq(s.secret.as_slice(), *secret))
            .and_then(|s| s.key.as_ref())
            .ok_or_else(|| fail!())?;
        macs.push(key.sign(body).await.map_err(|e| fail!(e))?);
    }
    Ok(claim.judge(&macs))
}

pub async fn receive(mut req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let received_at = now_ms();
    let headers = check_headers(|name| req.headers().get(name).ok().flatten())?;
    let app = headers.target_app.ok_or(WebhookError::UnknownApp)?;
    let Some(mut known) = secrets(env, app, received_at).await? else {
        return Err(WebhookError::UnknownApp.into());
    };
    // Capped while streaming: a chunked body over GitHub's 25 MB is refused at the cap,
    // never buffered whole.
    let body = read_capped(&mut req, MAX_PAYLOAD_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => WebhookError::PayloadTooLarge {
                limit: MAX_PAYLOAD_BYTES,
            },
            BodyError::Unreadable => {
                WebhookError::MalformedPayload("the body could not be read".into())
            }
        })?;
    let signature = headers.signature.as_deref();
    let mut verdict = verifies(&known, &body, signature, received_at).await?;
    if verdict.is_err() {
        // The cached entry may predate a secret rotated in another isolate: read it again.
        if let Some(entry) = DirectoryClient::new(env)?
            .refreshed(app, received_at)
            .await?
        {
            known = opened(env, app, entry)
                .await?
                .ok_or(WebhookError::UnknownApp)?;
            verdict = verifies(&known, &body, signature, received_at).await?;
        }
    }
    verdict.map_err(WebhookError::InvalidSignature)?;
    let event = parse_event(&headers.event, &body)?;
    // The body is no longer needed: drop it before the hand-off (a push may be 25 MB).
    drop(body);
    check_installation_app(&event, app, None)?;
    let action = classify(&event);
    let delivery = DeliveryRequest {
        received: Received {
            id: headers.delivery.as_str().to_owned(),
            event: headers.event.clone(),
            action: event.action.clone(),
            repository: event.repository.as_ref().map(|r| r.full_name.to_string()),
            received_at_ms: received_at,
        },
        app_id: app,
        action,
    };
    match event.installation_id() {
        Some(id) => {
            let answer = InstallationClient::new(env, id)?.deliver(delivery).await?;
            Ok(json_response(answer.status(), &answer))
        }
        None => {
            let answer = AppClient::new(env, app)?.deliver(delivery).await?;
            Ok(json_response(answer.status, &answer.body))
        }
    }
}

fn installation_id(m: &Matched) -> Result<InstallationId, ApiError> {
    InstallationId::parse(m.param("installation_id")).map_err(ApiError::InvalidId)
}

/// `limit` and `cursor` of a listing (the first of each), checked before any object is
/// touched.
fn page_query(req: &Request) -> Result<DeliveryPage, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let mut out = DeliveryPage::default();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "limit" => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| ApiError::Validation("limit: must be 1 to 100".into()))?;
                if !(1..=100).contains(&n) {
                    return Err(ApiError::Validation("limit: must be 1 to 100".into()));
                }
                out.limit.get_or_insert(n);
            }
            "cursor" => {
                if v.len() > 200
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(ApiError::Validation(
                        "cursor: not a cursor of this listing".into(),
                    ));
                }
                out.cursor.get_or_insert_with(|| v.into_owned());
            }
            other => {
                return Err(ApiError::Validation(format!(
                    "unknown query parameter {}",
                    ghplane_core::ids::truncate(other, 40)
                )))
            }
        }
    }
    Ok(out)
}

pub async fn list_deliveries(req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let id = installation_id(m)?;
    let page = page_query(&req)?;
    let listing = InstallationClient::new(env, id)?.deliveries(&page).await?;
    Ok(json_response(200, &listing))
}

/// `GET /api/deliveries`: every tenant's deliveries, newest first, filtered. Read by fanning
/// out to a bounded group of tenants' logs per page (`ghplane_core::lists::deliveries`);
/// the webhook path writes nothing for it.
pub async fn list_all_deliveries(req: Request, env: &Env) -> Result<Response, ApiError> {
    use ghplane_core::lists::deliveries as list;
    let pairs = query(&req)?;
    let q = list::parse_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let listed =
        tenant_index::ids_after(env, q.cursor.group_after, list::tenants_to_list(&q.cursor))
            .await?;
    let group = list::group(&q.cursor, listed);
    let calls = group.tenants.iter().map(|tenant| {
        let search =
            list::DeliverySearch::of(&q.filter, q.cursor.position.as_ref(), *tenant, q.limit + 1);
        async move {
            InstallationClient::new(env, *tenant)?
                .search_deliveries(&search)
                .await
        }
    });
    let answers = futures_util::future::try_join_all(calls).await?;
    let (rows, more) = list::merge(answers, q.limit);
    let next = list::next_cursor(&q.cursor, &group, &rows, more);
    Ok(json_response(200, &list::reply(&rows, next, &group)))
}

pub async fn list_app_deliveries(
    req: Request,
    env: &Env,
    m: &Matched,
) -> Result<Response, ApiError> {
    let app = AppId::parse(m.param("app_id")).map_err(ApiError::InvalidId)?;
    let page = page_query(&req)?;
    let listing = AppClient::new(env, app)?
        .deliveries(page.limit, page.cursor)
        .await?;
    Ok(json_response(200, &listing))
}

pub async fn list_work(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let work = InstallationClient::new(env, installation_id(m)?)?
        .work()
        .await?;
    Ok(json_response(200, &work))
}
