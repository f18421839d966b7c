//! `InstallerStore`: one Durable Object per installer, named `installer-<id>`: its target,
//! the outstanding setup state, the app created for it, its installation, and the service
//! key made at enrollment (sealed, until the status shows it once).

use ghplane_core::ids::InstallationId;
use ghplane_core::ids::RepoFullName;
use ghplane_core::installer::state::STATE_TTL_SECS;
use ghplane_core::installer::{
    InstallerApp, InstallerError, InstallerId, InstallerRecord, PendingState, ServiceKeyHandoff,
};
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde::{Deserialize, Serialize};
use worker::{durable_object, Env, Method, Request, Response, State};

use crate::github::client::now_unix;
use crate::http::{error_response, json_response};
use crate::objects::internal::{self, now_text};
use crate::secrets::Keyring;
use crate::settings;

const RECORD_KEY: &str = "installer";
const SERVICE_KEY_SLOT: &str = "serviceKey";
/// A setup link is reused while it has at least this long left.
const STATE_REUSE_MIN_SECS: i64 = 10 * 60;

#[derive(Serialize, Deserialize)]
pub struct Installed {
    pub installation_id: InstallationId,
    pub misconfiguration: Option<String>,
    /// `(key id, key)`, made by the installation's object for this tenant alone.
    pub service_key: Option<(String, String)>,
}

#[derive(Serialize, Deserialize)]
pub struct Viewed {
    pub record: InstallerRecord,
    pub service_key: Option<String>,
}

#[durable_object]
pub struct InstallerStore {
    state: State,
    env: Env,
}

impl worker::DurableObject for InstallerStore {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let id = url
            .query_pairs()
            .find(|(k, _)| k == "id")
            .and_then(|(_, v)| InstallerId::parse(&v).ok());
        let Some(id) = id else {
            return Ok(error_response(&fail!()));
        };
        let result = match (req.method(), url.path()) {
            (Method::Put, "/record") => match internal::body::<InstallerRecord>(&mut req).await {
                Ok(r) => self.save(&r).await.map(|_| json_response(201, &r)),
                Err(e) => Err(e),
            },
            (Method::Get, "/record") => self.existing(&id).await.map(|r| json_response(200, &r)),
            (Method::Post, "/state") => self.issue_state(&id).await,
            (Method::Post, "/consume") => match internal::body::<String>(&mut req).await {
                Ok(nonce) => self.consume(&id, &nonce).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/app") => match internal::body::<InstallerApp>(&mut req).await {
                Ok(app) => {
                    self.update(&id, |r| {
                        r.app = Some(app);
                        Ok(())
                    })
                    .await
                }
                Err(e) => Err(e),
            },
            (Method::Post, "/installed") => match internal::body::<Installed>(&mut req).await {
                Ok(i) => self.installed(&id, i).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/enrolled") => {
                match internal::body::<Vec<RepoFullName>>(&mut req).await {
                    Ok(repos) => {
                        self.update(&id, |r| {
                            for repo in repos {
                                if !r
                                    .enrolled
                                    .iter()
                                    .any(|e| ghplane_core::installer::same_name(e, &repo))
                                {
                                    r.enrolled.push(repo);
                                }
                            }
                            Ok(())
                        })
                        .await
                    }
                    Err(e) => Err(e),
                }
            }
            (Method::Post, "/uninstalled") => {
                let now = now_text();
                self.update(&id, |r| {
                    if r.uninstalled_at.is_none() {
                        r.uninstalled_at = Some(now);
                    }
                    r.state = None;
                    if let Some(k) = r.service_key.as_mut() {
                        k.sealed = None;
                    }
                    Ok(())
                })
                .await
            }
            (Method::Post, "/view") => self.view(&id).await,
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }
}

impl InstallerStore {
    async fn load(&self) -> Result<Option<InstallerRecord>, ApiError> {
        self.state
            .storage()
            .get(RECORD_KEY)
            .await
            .map_err(|e| fail!(e))
    }

    async fn existing(&self, id: &InstallerId) -> Result<InstallerRecord, ApiError> {
        self.load()
            .await?
            .ok_or_else(|| InstallerError::NotFound(id.to_string()).into())
    }

    async fn save(&self, r: &InstallerRecord) -> Result<(), ApiError> {
        self.state
            .storage()
            .put(RECORD_KEY, r)
            .await
            .map_err(|e| fail!(e))
    }

    async fn update(
        &self,
        id: &InstallerId,
        change: impl FnOnce(&mut InstallerRecord) -> Result<(), ApiError>,
    ) -> Result<Response, ApiError> {
        let mut r = self.existing(id).await?;
        change(&mut r)?;
        r.updated_at = now_text();
        self.save(&r).await?;
        Ok(json_response(200, &r))
    }

    /// The outstanding setup state, or a fresh one when there is none or it is about to
    /// expire. Only an installer still waiting for its app has one.
    async fn issue_state(&self, id: &InstallerId) -> Result<Response, ApiError> {
        let mut r = self.existing(id).await?;
        let now = now_unix();
        if let Some(s) = r
            .state
            .as_ref()
            .filter(|s| s.expires_at - now >= STATE_REUSE_MIN_SECS)
        {
            return Ok(json_response(200, s));
        }
        let nonce: String = random_bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let state = PendingState {
            nonce,
            expires_at: now + STATE_TTL_SECS,
        };
        r.state = Some(state.clone());
        self.save(&r).await?;
        Ok(json_response(200, &state))
    }

    /// Single use: the nonce must be the outstanding one; it is forgotten before anything
    /// else happens, so a replayed callback finds nothing to consume.
    async fn consume(&self, id: &InstallerId, nonce: &str) -> Result<Response, ApiError> {
        let mut r = self.existing(id).await?;
        if r.uninstalled_at.is_some() {
            return Err(InstallerError::Uninstalled(id.to_string()).into());
        }
        let outstanding = r.state.as_ref().is_some_and(|s| {
            ghplane_core::auth::constant_time_eq(s.nonce.as_bytes(), nonce.as_bytes())
                && now_unix() < s.expires_at
        });
        if !outstanding {
            return Err(InstallerError::InvalidState(
                "it was already used; open the setup page again".into(),
            )
            .into());
        }
        r.state = None;
        r.updated_at = now_text();
        self.save(&r).await?;
        Ok(json_response(200, &r))
    }

    async fn installed(&self, id: &InstallerId, i: Installed) -> Result<Response, ApiError> {
        let mut r = self.existing(id).await?;
        r.installation_id = Some(i.installation_id);
        r.misconfiguration = i.misconfiguration;
        if let (None, Some((key_id, key))) = (&r.service_key, i.service_key) {
            let ring = Keyring::from_env(&self.env).await?;
            let sealed = ring.seal(&id.object_name(), SERVICE_KEY_SLOT, &key).await?;
            r.service_key = Some(ServiceKeyHandoff {
                id: key_id,
                sealed: Some(sealed),
            });
        }
        r.updated_at = now_text();
        self.save(&r).await?;
        Ok(json_response(200, &r))
    }

    /// The record, and the enrollment's service key the first time only.
    async fn view(&self, id: &InstallerId) -> Result<Response, ApiError> {
        let mut r = self.existing(id).await?;
        let mut shown = None;
        if let Some(sealed) = r.service_key.as_ref().and_then(|k| k.sealed.clone()) {
            let ring = Keyring::from_env(&self.env).await?;
            let key = ring
                .open(&id.object_name(), SERVICE_KEY_SLOT, &sealed)
                .await?;
            shown = Some(key.expose().to_owned());
            if let Some(k) = r.service_key.as_mut() {
                k.sealed = None;
            }
            self.save(&r).await?;
        }
        Ok(json_response(
            200,
            &Viewed {
                record: r,
                service_key: shown,
            },
        ))
    }
}

/// The route handlers' handle on one installer's object.
pub struct InstallerClient {
    stub: crate::objects::internal::ObjectStub,
    id: InstallerId,
}

impl InstallerClient {
    pub fn new(env: &Env, id: &InstallerId) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, settings::INSTALLERS, &id.object_name())?;
        Ok(Self {
            stub,
            id: id.clone(),
        })
    }

    fn url(&self, op: &str) -> String {
        format!("https://installer/{op}?id={}", self.id)
    }

    async fn send<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        op: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let resp = internal::call(&self.stub, method, &self.url(op), body, &[]).await?;
        internal::json(resp).await
    }

    pub async fn create(&self, r: &InstallerRecord) -> Result<InstallerRecord, ApiError> {
        self.send(Method::Put, "record", Some(r)).await
    }

    pub async fn get(&self) -> Result<InstallerRecord, ApiError> {
        self.send::<(), _>(Method::Get, "record", None).await
    }

    pub async fn state(&self) -> Result<PendingState, ApiError> {
        self.send::<(), _>(Method::Post, "state", None).await
    }

    pub async fn consume(&self, nonce: &str) -> Result<InstallerRecord, ApiError> {
        self.send(Method::Post, "consume", Some(&nonce)).await
    }

    pub async fn set_app(&self, app: &InstallerApp) -> Result<InstallerRecord, ApiError> {
        self.send(Method::Post, "app", Some(app)).await
    }

    pub async fn installed(&self, i: &Installed) -> Result<InstallerRecord, ApiError> {
        self.send(Method::Post, "installed", Some(i)).await
    }

    pub async fn enrolled(&self, repos: &[RepoFullName]) -> Result<InstallerRecord, ApiError> {
        self.send(Method::Post, "enrolled", Some(&repos)).await
    }

    pub async fn uninstalled(&self) -> Result<InstallerRecord, ApiError> {
        self.send::<(), _>(Method::Post, "uninstalled", None).await
    }

    pub async fn view(&self) -> Result<Viewed, ApiError> {
        self.send::<(), _>(Method::Post, "view", None).await
    }
}

/// Deletes an uninstalled installer's app from the registry: its credentials go, and its
/// deliveries are refused from now on (the owner deletes the app itself on GitHub).
pub async fn forget_app(env: &Env, app: ghplane_core::ids::AppId) -> Result<(), ApiError> {
    let resp = crate::objects::app::AppClient::new(env, app)?
        .delete()
        .await?;
    match resp.status_code() {
        200..=299 | 404 => Ok(()),
        _ => Err(internal::relayed(resp).await),
    }
}
