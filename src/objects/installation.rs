//! `InstallationStore`: one Durable Object per GitHub App installation, named
//! `install-<installation id>`, holding that tenant's config with its secrets sealed.
//!
//! The object receives already-sealed secrets and hands back only the redacted view: the
//! plaintext never crosses into it and the ciphertext never leaves it.

use ghplane_core::ids::InstallationId;
use ghplane_core::tenancy::config::{InstallationRecord, SealedInput, SealedPatch};
use ghplane_core::time::rfc3339_from_millis;
use ghplane_core::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{durable_object, Date, Env, Method, Request, RequestInit, Response, State};

use crate::http::{error_response, json_response, no_content};
use crate::settings;

const CONFIG_KEY: &str = "config";

#[durable_object]
pub struct InstallationStore {
    state: State,
}

impl worker::DurableObject for InstallationStore {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let id = url
            .query_pairs()
            .find(|(k, _)| k == "id")
            .and_then(|(_, v)| InstallationId::parse(&v).ok());
        let Some(id) = id else {
            return Ok(error_response(&ApiError::Internal));
        };
        let result = match (req.method(), url.path()) {
            (Method::Get, "/config") => self.get(id).await,
            (Method::Put, "/config") => match body(&mut req).await {
                Ok(input) => self.put(id, input).await,
                Err(e) => Err(e),
            },
            (Method::Patch, "/config") => match body(&mut req).await {
                Ok(patch) => self.patch(id, patch).await,
                Err(e) => Err(e),
            },
            (Method::Delete, "/config") => self.delete(id).await,
            _ => Err(ApiError::Internal),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }
}

async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    req.json().await.map_err(|_| ApiError::Internal)
}

fn now() -> String {
    rfc3339_from_millis(Date::now().as_millis() as i64)
}

fn storage_error(_: worker::Error) -> ApiError {
    ApiError::Internal
}

impl InstallationStore {
    async fn load(&self) -> Result<Option<InstallationRecord>, ApiError> {
        self.state
            .storage()
            .get(CONFIG_KEY)
            .await
            .map_err(storage_error)
    }

    async fn get(&self, id: InstallationId) -> Result<Response, ApiError> {
        match self.load().await? {
            Some(rec) => Ok(json_response(200, &rec.view())),
            None => Err(ApiError::InstallationNotFound(id.get())),
        }
    }

    async fn put(&self, id: InstallationId, input: SealedInput) -> Result<Response, ApiError> {
        let previous = self.load().await?;
        let record = InstallationRecord::replace(id, input, previous.as_ref(), &now());
        self.state
            .storage()
            .put(CONFIG_KEY, &record)
            .await
            .map_err(storage_error)?;
        Ok(json_response(
            if previous.is_some() { 200 } else { 201 },
            &record.view(),
        ))
    }

    async fn patch(&self, id: InstallationId, patch: SealedPatch) -> Result<Response, ApiError> {
        let Some(current) = self.load().await? else {
            return Err(ApiError::InstallationNotFound(id.get()));
        };
        let record = current.patched(patch, &now());
        self.state
            .storage()
            .put(CONFIG_KEY, &record)
            .await
            .map_err(storage_error)?;
        Ok(json_response(200, &record.view()))
    }

    /// Deleting a tenant drops everything the object holds, not only the config.
    async fn delete(&self, id: InstallationId) -> Result<Response, ApiError> {
        if self.load().await?.is_none() {
            return Err(ApiError::InstallationNotFound(id.get()));
        }
        self.state
            .storage()
            .delete_all()
            .await
            .map_err(storage_error)?;
        Ok(no_content())
    }
}

/// The route handlers' handle on one installation's object.
pub struct InstallationClient {
    stub: worker::Stub,
    id: InstallationId,
}

impl InstallationClient {
    pub fn new(env: &Env, id: InstallationId) -> Result<Self, ApiError> {
        let stub = env
            .durable_object(settings::INSTALLATIONS)
            .and_then(|ns| {
                ns.id_from_name(&id.object_name())
                    .and_then(|oid| oid.get_stub())
            })
            .map_err(|_| ApiError::Misconfigured(settings::INSTALLATIONS))?;
        Ok(Self { stub, id })
    }

    async fn call(&self, method: Method, body: Option<String>) -> Result<Response, ApiError> {
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(b) = body {
            init.with_body(Some(b.into()));
        }
        let url = format!("https://installation/config?id={}", self.id);
        let req = Request::new_with_init(&url, &init).map_err(|_| ApiError::Internal)?;
        self.stub
            .fetch_with_request(req)
            .await
            .map_err(|_| ApiError::Internal)
    }

    fn encode<T: Serialize>(value: &T) -> Result<Option<String>, ApiError> {
        serde_json::to_string(value)
            .map(Some)
            .map_err(|_| ApiError::Internal)
    }

    pub async fn get(&self) -> Result<Response, ApiError> {
        self.call(Method::Get, None).await
    }

    pub async fn put(&self, input: &SealedInput) -> Result<Response, ApiError> {
        self.call(Method::Put, Self::encode(input)?).await
    }

    pub async fn patch(&self, patch: &SealedPatch) -> Result<Response, ApiError> {
        self.call(Method::Patch, Self::encode(patch)?).await
    }

    pub async fn delete(&self) -> Result<Response, ApiError> {
        self.call(Method::Delete, None).await
    }
}
