//! `MintApp`: one Durable Object per GitHub App the mint signs for, named `mint-app-<app id>`:
//! where that App is installed (org and repositories → installation id) and the FOREIGN
//! allow-list variables read with it.
//!
//! **Invariant:** an installation id is cached only from GitHub's own answer (a 200 whose
//! account is the org asked about) and is dropped on any `installation` or
//! `installation_repositories` delivery for it and whenever GitHub refuses a token on it
//! (404/422), so a warm mint costs GitHub exactly one call and a stale id costs one retry.
//! FOREIGN variables are kept 60 s (successful reads only) and read one at a time per
//! variable (single flight), as fullsend does. In front of the object, each isolate keeps
//! the ids it was told ([`client`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures_util::lock::Mutex;
use ghplane_core::github::error::GithubError;
use ghplane_core::mint::policy::{variable_value, FOREIGN_CACHE_TTL_SECS};
use ghplane_core::mint::wire::{
    access_tokens_path, installation_answer, parse_token_response, InstallationAnswer,
};
use ghplane_core::ApiError;
use serde::Deserialize;
use serde_json::Value;
use worker::{durable_object, Env, Method, Request, Response, SqlStorageValue, State};

use crate::clock::now_ms;
use crate::github::client::{now_unix, GithubClient, Idempotent};
use crate::objects::rpc;

pub mod client;

pub use client::{
    Answer, ForeignAnswer, ForeignRead, ForeignRequest, InstallationsAnswer, InstallationsRequest,
    MintAppClient, MintAppCommand, VariableRead,
};

/// A cached installation id is looked up again after this long even without a webhook
/// (the App's deliveries may not reach ghplane).
const INSTALLATION_MAX_AGE_MS: i64 = 24 * 60 * 60 * 1000;

#[durable_object]
pub struct MintApp {
    state: State,
    env: Env,
    /// cache key → (read at, unix seconds; the variable's value, `None`: unset).
    foreign: RefCell<HashMap<String, (i64, Option<String>)>>,
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

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |_, command: MintAppCommand| async move {
            match command {
                MintAppCommand::Installations(r) => rpc::reply(&self.installations(r).await?),
                MintAppCommand::Foreign(r) => rpc::reply(&self.foreign(r).await?),
                MintAppCommand::Forget { installation_id } => {
                    rpc::reply(&self.forget(installation_id.get())?)
                }
            }
        })
        .await
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
        let mut reads = Vec::with_capacity(r.reads.len());
        for read in &r.reads {
            let value = self.foreign_one(&github, &r.jwt, read).await?;
            let failed = value == VariableRead::Failed;
            reads.push(value);
            if failed {
                break;
            }
        }
        Ok(ForeignAnswer { reads })
    }

    fn fresh_foreign(&self, key: &str) -> Option<VariableRead> {
        self.foreign
            .borrow()
            .get(key)
            .filter(|(at, _)| now_unix() - at < FOREIGN_CACHE_TTL_SECS)
            .map(|(_, value)| VariableRead::Value(value.clone()))
    }

    async fn foreign_one(
        &self,
        github: &GithubClient,
        jwt: &str,
        read: &ForeignRead,
    ) -> Result<VariableRead, ApiError> {
        if let Some(value) = self.fresh_foreign(&read.cache_key) {
            return Ok(value);
        }
        let lock = self
            .foreign_locks
            .borrow_mut()
            .entry(read.cache_key.clone())
            .or_insert_with(|| Rc::new(Mutex::new(())))
            .clone();
        let _single_flight = lock.lock().await;
        if let Some(value) = self.fresh_foreign(&read.cache_key) {
            return Ok(value);
        }
        let value = match self.read_variable(github, jwt, read).await? {
            Ok(v) => v,
            Err(why) => {
                crate::log::event(
                    "warn",
                    "foreign allow-list read failed",
                    serde_json::json!({"variable": read.variable_path, "reason": ghplane_core::ids::truncate(&why, 200)}),
                );
                return Ok(VariableRead::Failed);
            }
        };
        self.foreign
            .borrow_mut()
            .insert(read.cache_key.clone(), (now_unix(), value.clone()));
        Ok(VariableRead::Value(value))
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
