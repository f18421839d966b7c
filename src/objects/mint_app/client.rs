//! The handle on one App's `MintApp` object: its commands, their replies, and the
//! isolate's copy of the installation ids the object answered.
//!
//! Each isolate keeps the ids it was told for [`ISOLATE_INSTALLATION_SECS`]: a Durable
//! Object round trip is most of a warm mint's CPU. A webhook's drop reaches the isolate it
//! runs in at once and every other isolate within that time; a stale id can never widen a
//! token (GitHub grants only repositories of the installation asked) and GitHub's refusal
//! drops it everywhere the mint runs.

use std::cell::RefCell;
use std::collections::HashMap;

use ghplane_core::ids::{AppId, InstallationId};
use ghplane_core::mint::wire::InstallationAnswer;
use ghplane_core::rpc::Command;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::Env;

use crate::clock::now_ms;
use crate::objects::rpc::Object;
use crate::settings;

/// How long an isolate trusts an installation id the object told it.
const ISOLATE_INSTALLATION_SECS: i64 = 60;

/// (app, org, lookup path).
type SeenKey = (u64, String, String);

thread_local! {
    /// → (installation id, when the object answered, ms).
    static SEEN: RefCell<HashMap<SeenKey, (u64, i64)>> = RefCell::new(HashMap::new());
}

pub fn object_name(app: AppId) -> String {
    format!("mint-app-{app}")
}

/// What the object is asked (every command was a POST: none is sent twice).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MintAppCommand {
    /// → [`InstallationsAnswer`].
    Installations(InstallationsRequest),
    /// → [`ForeignAnswer`].
    Foreign(ForeignRequest),
    /// Drops every cached lookup that named the installation. → `()`.
    Forget { installation_id: InstallationId },
}

impl Command for MintAppCommand {
    fn idempotent(&self) -> bool {
        false
    }
}

/// One installation lookup's answer, as it crosses from the object to the handler.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Found { id: u64, cached: bool },
    NotFound,
    Failed(String),
}

impl Answer {
    pub fn to_core(&self) -> InstallationAnswer {
        match self {
            Answer::Found { id, .. } => match InstallationId::from_u64(*id) {
                Ok(id) => InstallationAnswer::Found(id),
                Err(e) => InstallationAnswer::Failed(e),
            },
            Answer::NotFound => InstallationAnswer::NotFound,
            Answer::Failed(why) => InstallationAnswer::Failed(why.clone()),
        }
    }

    pub fn cached(&self) -> bool {
        matches!(self, Answer::Found { cached: true, .. })
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct InstallationsRequest {
    pub jwt: String,
    pub org: String,
    /// `GET` paths, in order; the object stops at the first that is not found or whose
    /// installation differs from the first.
    pub paths: Vec<String>,
    /// Ignore the cache (after GitHub refused a token on a cached installation).
    pub fresh: bool,
}

#[derive(Serialize, Deserialize)]
pub struct InstallationsAnswer {
    pub answers: Vec<Answer>,
}

/// One FOREIGN variable to read (see `ghplane_core::mint::policy::ForeignLookup`).
#[derive(Clone, Serialize, Deserialize)]
pub struct ForeignRead {
    pub cache_key: String,
    pub org: String,
    pub installation_path: String,
    pub token_body: String,
    pub variable_path: String,
}

#[derive(Serialize, Deserialize)]
pub struct ForeignRequest {
    pub jwt: String,
    pub reads: Vec<ForeignRead>,
}

/// One FOREIGN variable as read: its value (`None`: unset), or a read that failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariableRead {
    Value(Option<String>),
    Failed,
}

/// Per read, in order, up to the first that failed.
#[derive(Serialize, Deserialize)]
pub struct ForeignAnswer {
    pub reads: Vec<VariableRead>,
}

/// The handlers' handle on one App's mint object.
pub struct MintAppClient {
    object: Object,
    app: AppId,
}

impl MintAppClient {
    pub fn new(env: &Env, app: AppId) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::MINT_APPS, &object_name(app))?;
        Ok(Self { object, app })
    }

    fn seen_key(&self, org: &str, path: &str) -> SeenKey {
        (self.app.get(), org.to_owned(), path.to_owned())
    }

    /// Every path's installation from this isolate's copy, when all are there, fresh and
    /// the same installation (anything else is the object's to answer).
    fn seen(&self, r: &InstallationsRequest) -> Option<InstallationsAnswer> {
        if r.fresh || r.paths.is_empty() {
            return None;
        }
        let now = now_ms();
        let ids: Vec<u64> = SEEN.with(|s| {
            let s = s.borrow();
            r.paths
                .iter()
                .map(|p| {
                    s.get(&self.seen_key(&r.org, p))
                        .filter(|(_, at)| now - at < ISOLATE_INSTALLATION_SECS * 1000)
                        .map(|(id, _)| *id)
                })
                .collect::<Option<Vec<u64>>>()
        })?;
        if ids.iter().any(|id| *id != ids[0]) {
            return None;
        }
        Some(InstallationsAnswer {
            answers: ids
                .into_iter()
                .map(|id| Answer::Found { id, cached: true })
                .collect(),
        })
    }

    pub async fn installations(
        &self,
        r: &InstallationsRequest,
    ) -> Result<InstallationsAnswer, ApiError> {
        if let Some(answer) = self.seen(r) {
            return Ok(answer);
        }
        let answer: InstallationsAnswer = self
            .object
            .call(&MintAppCommand::Installations(r.clone()))
            .await?;
        let now = now_ms();
        SEEN.with(|s| {
            let mut s = s.borrow_mut();
            for (path, a) in r.paths.iter().zip(&answer.answers) {
                let key = self.seen_key(&r.org, path);
                match a {
                    Answer::Found { id, .. } => {
                        s.insert(key, (*id, now));
                    }
                    _ => {
                        s.remove(&key);
                    }
                }
            }
        });
        Ok(answer)
    }

    pub async fn foreign(&self, r: ForeignRequest) -> Result<ForeignAnswer, ApiError> {
        self.object.call(&MintAppCommand::Foreign(r)).await
    }

    /// Drops every cached lookup that named `installation`.
    pub async fn forget(&self, installation: InstallationId) -> Result<(), ApiError> {
        let app = self.app.get();
        SEEN.with(|s| {
            s.borrow_mut()
                .retain(|(a, _, _), (id, _)| *a != app || *id != installation.get())
        });
        self.object
            .call(&MintAppCommand::Forget {
                installation_id: installation,
            })
            .await
    }
}
