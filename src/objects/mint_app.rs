//! `MintApp`: one Durable Object per GitHub App the mint signs for, named `mint-app-<app id>`:
//! where that App is installed (org and repositories → installation id) and the FOREIGN
//! allow-lists read with it.
//!
//! **Invariant:** an installation id is cached only from GitHub's own answer (a 200 whose
//! account is the org asked about) and is dropped on any `installation` or
//! `installation_repositories` delivery for it and whenever GitHub refuses a token on it
//! (404/422), so a warm mint costs GitHub exactly one call and a stale id costs one retry.
//! FOREIGN allow-lists are kept 60 s (successful reads only) and read one at a time per
//! variable (single flight), as fullsend does.
//!
//! In front of the object, each isolate keeps the ids it was told for
//! [`ISOLATE_INSTALLATION_SECS`]: a Durable Object round trip is most of a warm mint's CPU.
//! A webhook's drop reaches the isolate it runs in at once and every other isolate within
//! that time; a stale id can never widen a token (GitHub grants only repositories of the
//! installation asked) and GitHub's refusal drops it everywhere the mint runs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures_util::lock::Mutex;
use ghplane_core::github::error::GithubError;
use ghplane_core::ids::{AppId, InstallationId};
use ghplane_core::mint::policy::{variable_value, FOREIGN_CACHE_TTL_SECS};
use ghplane_core::mint::wire::{
    access_tokens_path, installation_answer, parse_token_response, InstallationAnswer,
};
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{durable_object, Env, Method, Request, Response, SqlStorageValue, State};

use crate::github::client::{now_unix, GithubClient, Idempotent};
use crate::http::{error_response, json_response, no_content};
use crate::objects::internal::{self, now_ms};

/// A cached installation id is looked up again after this long even without a webhook
/// (the App's deliveries may not reach ghplane).
const INSTALLATION_MAX_AGE_MS: i64 = 24 * 60 * 60 * 1000;
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

#[derive(Serialize, Deserialize)]
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

/// Per read, in order: the allow-list, or `None` when the read failed.
#[derive(Serialize, Deserialize)]
pub struct ForeignAnswer {
    pub allowlists: Vec<Option<Vec<String>>>,
}

#[derive(Serialize, Deserialize)]
pub struct ForgetRequest {
    pub installation_id: u64,
}

#[durable_object]
pub struct MintApp {
    state: State,
    env: Env,
    /// cache key → (read at, unix seconds; allow-list).
    foreign: RefCell<HashMap<String, (i64, Vec<String>)>>,
    /// One lock per FOREIGN variable: the single flight.
    foreign_locks: RefCell<HashMap<String, Rc<Mutex<()>>>>,
    table_ready: std::cell::Cell<bool>,
}

impl worker::DurableObject for MintApp {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            foreign: RefCell::new(HashMap::new()),
            foreign_locks: RefCell::new(HashMap::new()),
            table_ready: std::cell::Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match (req.method(), req.path().as_str()) {
            (Method::Post, "/installations") => match internal::body(&mut req).await {
                Ok(r) => self.installations(r).await.map(|a| json_response(200, &a)),
                Err(e) => Err(e),
            },
            (Method::Post, "/foreign") => match internal::body(&mut req).await {
                Ok(r) => self.foreign(r).await.map(|a| json_response(200, &a)),
                Err(e) => Err(e),
            },
            (Method::Post, "/forget") => match internal::body::<ForgetRequest>(&mut req).await {
                Ok(r) => self.forget(r.installation_id).map(|_| no_content()),
                Err(e) => Err(e),
            },
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }
}

impl MintApp {
    fn table(&self) -> Result<worker::SqlStorage, ApiError> {
        let sql = self.state.storage().sql();
        if !self.table_ready.get() {
            sql.exec(
                "CREATE TABLE IF NOT EXISTS installations (
                    path TEXT PRIMARY KEY, installation_id INTEGER NOT NULL, cached_at INTEGER NOT NULL)",
                None,
            )
            .map_err(|e| fail!(e))?;
            self.table_ready.set(true);
        }
        Ok(sql)
    }

    fn cached(&self, path: &str) -> Result<Option<u64>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            installation_id: f64,
            cached_at: f64,
        }
        let rows: Vec<Row> = self
            .table()?
            .exec(
                "SELECT installation_id, cached_at FROM installations WHERE path = ?",
                vec![path.to_ascii_lowercase().into()],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        Ok(rows
            .first()
            .filter(|r| now_ms() - (r.cached_at as i64) < INSTALLATION_MAX_AGE_MS)
            .map(|r| r.installation_id as u64))
    }

    fn remember(&self, path: &str, id: u64) -> Result<(), ApiError> {
        self.table()?
            .exec(
                "INSERT INTO installations (path, installation_id, cached_at) VALUES (?, ?, ?)
                 ON CONFLICT (path) DO UPDATE SET installation_id = excluded.installation_id, cached_at = excluded.cached_at",
                vec![
                    path.to_ascii_lowercase().into(),
                    (id as i64).into(),
                    now_ms().into(),
                ],
            )
            .map(|_| ())
            .map_err(|e| fail!(e))
    }

    fn forget(&self, installation: u64) -> Result<(), ApiError> {
        self.table()?
            .exec(
                "DELETE FROM installations WHERE installation_id = ?",
                vec![SqlStorageValue::from(installation as i64)],
            )
            .map(|_| ())
            .map_err(|e| fail!(e))
    }

    async fn lookup(
        &self,
        github: &GithubClient,
        jwt: &str,
        org: &str,
        path: &str,
        fresh: bool,
    ) -> Result<Answer, ApiError> {
        if !fresh {
            if let Some(id) = self.cached(path)? {
                return Ok(Answer::Found { id, cached: true });
            }
        }
        let (status, body) = match github
            .send(Method::Get, path, jwt, None, Idempotent::Yes)
            .await
        {
            Ok(r) => (r.status, r.body),
            Err(GithubError::NotFound) => (404, Vec::new()),
            Err(e) => return Ok(Answer::Failed(format!("GET {path}: {e}"))),
        };
        Ok(match installation_answer(status, &body, org) {
            InstallationAnswer::Found(id) => {
                self.remember(path, id.get())?;
                Answer::Found {
                    id: id.get(),
                    cached: false,
                }
            }
            InstallationAnswer::NotFound => Answer::NotFound,
            InstallationAnswer::Failed(why) => Answer::Failed(why),
        })
    }

    async fn installations(
        &self,
        r: InstallationsRequest,
    ) -> Result<InstallationsAnswer, ApiError> {
        let github = GithubClient::from_env(&self.env)?;
        let mut answers = Vec::with_capacity(r.paths.len());
        let mut first = None;
        for path in &r.paths {
            let a = self.lookup(&github, &r.jwt, &r.org, path, r.fresh).await?;
            let stop = match &a {
                Answer::Found { id, .. } => *first.get_or_insert(*id) != *id,
                _ => true,
            };
            answers.push(a);
            if stop {
                break;
            }
        }
        Ok(InstallationsAnswer { answers })
    }

    async fn foreign(&self, r: ForeignRequest) -> Result<ForeignAnswer, ApiError> {
        let github = GithubClient::from_env(&self.env)?;
        let mut allowlists = Vec::with_capacity(r.reads.len());
        for read in &r.reads {
            let list = self.foreign_one(&github, &r.jwt, read).await?;
            let allows_nothing = list.is_none();
            allowlists.push(list);
            if allows_nothing {
                break;
            }
        }
        Ok(ForeignAnswer { allowlists })
    }

    fn fresh_foreign(&self, key: &str) -> Option<Vec<String>> {
        self.foreign
            .borrow()
            .get(key)
            .filter(|(at, _)| now_unix() - at < FOREIGN_CACHE_TTL_SECS)
            .map(|(_, l)| l.clone())
    }

    async fn foreign_one(
        &self,
        github: &GithubClient,
        jwt: &str,
        read: &ForeignRead,
    ) -> Result<Option<Vec<String>>, ApiError> {
        if let Some(l) = self.fresh_foreign(&read.cache_key) {
            return Ok(Some(l));
        }
        let lock = self
            .foreign_locks
            .borrow_mut()
            .entry(read.cache_key.clone())
            .or_insert_with(|| Rc::new(Mutex::new(())))
            .clone();
        let _single_flight = lock.lock().await;
        if let Some(l) = self.fresh_foreign(&read.cache_key) {
            return Ok(Some(l));
        }
        let value = match self.read_variable(github, jwt, read).await? {
            Ok(v) => v,
            Err(why) => {
                crate::log::event(
                    "warn",
                    "foreign allow-list read failed",
                    serde_json::json!({"variable": read.variable_path, "reason": ghplane_core::ids::truncate(&why, 200)}),
                );
                return Ok(None);
            }
        };
        let list = value
            .as_deref()
            .map(ghplane_core::mint::policy::parse_foreign_allowlist)
            .unwrap_or_default();
        self.foreign
            .borrow_mut()
            .insert(read.cache_key.clone(), (now_unix(), list.clone()));
        Ok(Some(list))
    }

    /// The variable's value (`None`: unset), or why it could not be read.
    async fn read_variable(
        &self,
        github: &GithubClient,
        jwt: &str,
        read: &ForeignRead,
    ) -> Result<Result<Option<String>, String>, ApiError> {
        let id = match self
            .lookup(github, jwt, &read.org, &read.installation_path, false)
            .await?
            .to_core()
        {
            InstallationAnswer::Found(id) => id,
            InstallationAnswer::NotFound => {
                return Ok(Err(format!("{}: not installed", read.installation_path)))
            }
            InstallationAnswer::Failed(why) => return Ok(Err(why)),
        };
        let body: Value = serde_json::from_str(&read.token_body).map_err(|e| fail!(e))?;
        let token = match github
            .send(
                Method::Post,
                &access_tokens_path(id),
                jwt,
                Some(&body),
                Idempotent::Yes,
            )
            .await
        {
            Ok(r) => match parse_token_response(r.status, &r.body) {
                Ok(t) => t.token,
                Err(d) => return Ok(Err(d.detail.unwrap_or_default())),
            },
            Err(e) => {
                if matches!(e, GithubError::NotFound | GithubError::Unprocessable { .. }) {
                    self.forget(id.get())?;
                }
                return Ok(Err(format!("variable-read token: {e}")));
            }
        };
        Ok(
            match github
                .send(
                    Method::Get,
                    &read.variable_path,
                    &token,
                    None,
                    Idempotent::Yes,
                )
                .await
            {
                Ok(r) => variable_value(&r.body)
                    .map(Some)
                    .ok_or_else(|| "decoding variable".to_owned()),
                Err(GithubError::NotFound) => Ok(None),
                Err(e) => Err(format!("GET {}: {e}", read.variable_path)),
            },
        )
    }
}

/// The handlers' handle on one App's mint object.
pub struct MintAppClient {
    stub: crate::objects::internal::ObjectStub,
    app: AppId,
}

impl MintAppClient {
    pub fn new(env: &Env, app: AppId) -> Result<Self, ApiError> {
        let stub =
            crate::objects::internal::stub(env, crate::settings::MINT_APPS, &object_name(app))?;
        Ok(Self { stub, app })
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
        let resp = internal::call(
            &self.stub,
            Method::Post,
            "https://mint-app/installations",
            Some(r),
            &[],
        )
        .await?;
        let answer: InstallationsAnswer = internal::json(resp).await?;
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

    pub async fn foreign(&self, r: &ForeignRequest) -> Result<ForeignAnswer, ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            "https://mint-app/foreign",
            Some(r),
            &[],
        )
        .await?;
        internal::json(resp).await
    }

    /// Drops every cached lookup that named `installation`.
    pub async fn forget(&self, installation: InstallationId) -> Result<(), ApiError> {
        let app = self.app.get();
        SEEN.with(|s| {
            s.borrow_mut()
                .retain(|(a, _, _), (id, _)| *a != app || *id != installation.get())
        });
        let body = ForgetRequest {
            installation_id: installation.get(),
        };
        let resp = internal::call(
            &self.stub,
            Method::Post,
            "https://mint-app/forget",
            Some(&body),
            &[],
        )
        .await?;
        if resp.status_code() == 204 {
            Ok(())
        } else {
            Err(internal::relayed(resp).await)
        }
    }
}
