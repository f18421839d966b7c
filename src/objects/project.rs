//! `ProjectStore`: one Durable Object per project, named `project-<slug>`, holding the
//! project record; `ProjectIndex` (`projects-index`): one summary row per project, for the
//! listing.
//!
//! Every change is a read-modify-write of the one record under a lock, so the decisions in
//! `ghplane_core::projects` always see the latest state. The lock is NOT held across the
//! GitHub calls of an approval (those run in the request, between `/approve` and
//! `/repo-result`): the in-flight marker that `/approve` stores is what makes a second
//! approval create nothing, and what lets a manual override win while a creation runs.

use futures_util::lock::Mutex;
use ghplane_core::projects::{
    approve, manual_override, on_repo_outcome, ApproveStep, AttemptId, CreateRepoPlan, GithubRepo,
    NewProject, Project, ProjectPatch, ProjectSlug, RepoOutcome, INDEX_OBJECT_NAME,
};
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wasm_bindgen::JsCast;
use worker::{durable_object, Env, ListOptions, Method, Request, Response, State};

use crate::http::{error_response, json_response, no_content};
use crate::log;
use crate::objects::internal::{self, now_ms};
use crate::settings;

const RECORD_KEY: &str = "project";
const INDEX_PREFIX: &str = "p:";

/// `/approve`'s answer: the project as stored, and either a creation to run or the report of
/// the step that was skipped.
#[derive(Serialize, Deserialize)]
pub struct ApproveAnswer {
    pub project: Value,
    pub plan: Option<CreateRepoPlan>,
    pub repo: Option<Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoResult {
    pub attempt_id: AttemptId,
    pub outcome: RepoOutcome,
}

#[durable_object]
pub struct ProjectStore {
    state: State,
    env: Env,
    lock: Mutex<()>,
}

impl worker::DurableObject for ProjectStore {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            lock: Mutex::new(()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let slug = url
            .query_pairs()
            .find(|(k, _)| k == "slug")
            .and_then(|(_, v)| ProjectSlug::parse(&v).ok());
        let Some(slug) = slug else {
            return Ok(error_response(&fail!()));
        };
        let result = match (req.method(), url.path()) {
            (Method::Put, "/project") => match internal::body(&mut req).await {
                Ok(input) => self.create(slug, input).await,
                Err(e) => Err(e),
            },
            (Method::Get, "/project") => self
                .existing(&slug)
                .await
                .map(|p| json_response(200, &p.view())),
            (Method::Patch, "/project") => match internal::body(&mut req).await {
                Ok(patch) => self.patch(&slug, patch).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/approve") => self.approve(&slug).await,
            (Method::Post, "/repo-result") => match internal::body(&mut req).await {
                Ok(result) => self.repo_result(&slug, result).await,
                Err(e) => Err(e),
            },
            (Method::Put, "/github-repo") => match internal::body(&mut req).await {
                Ok(repo) => self.github_repo(&slug, repo).await,
                Err(e) => Err(e),
            },
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }
}

impl ProjectStore {
    /// The record is kept as JSON text: its history entries are flattened, tagged enums,
    /// which round-trip exactly through serde_json.
    async fn load(&self) -> Result<Option<Project>, ApiError> {
        let text: Option<String> = self
            .state
            .storage()
            .get(RECORD_KEY)
            .await
            .map_err(|e| fail!(e))?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| fail!(e)))
            .transpose()
    }

    async fn existing(&self, slug: &ProjectSlug) -> Result<Project, ApiError> {
        self.load()
            .await?
            .ok_or_else(|| ApiError::ProjectNotFound(slug.to_string()))
    }

    /// Stores the project, then its listing row. The record is the truth: a listing row that
    /// could not be written is logged and rewritten with the project's next change.
    async fn save(&self, project: &Project) -> Result<(), ApiError> {
        let text = serde_json::to_string(project).map_err(|e| fail!(e))?;
        self.state
            .storage()
            .put(RECORD_KEY, text)
            .await
            .map_err(|e| fail!(e))?;
        let synced = match IndexClient::new(&self.env) {
            Ok(index) => index.upsert(&project.summary()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            log::event(
                "error",
                "project_index_sync_failed",
                json!({"slug": project.slug, "code": e.code()}),
            );
        }
        Ok(())
    }

    /// A new project under a fresh slug; 409 (bare, internal) when the slug is taken, so the
    /// caller draws another.
    async fn create(&self, slug: ProjectSlug, input: NewProject) -> Result<Response, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        if self.load().await?.is_some() {
            return Ok(Response::empty().map_err(|e| fail!(e))?.with_status(409));
        }
        let project = Project::new(slug, input, now_ms());
        self.save(&project).await?;
        Ok(json_response(201, &project.view()))
    }

    async fn patch(&self, slug: &ProjectSlug, patch: ProjectPatch) -> Result<Response, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        let mut project = self.existing(slug).await?;
        project.apply_patch(patch, now_ms())?;
        self.save(&project).await?;
        Ok(json_response(200, &project.view()))
    }

    /// Approves and, when a repository must be created, stores the in-flight marker before
    /// answering: the caller creates the repository only after this is durable.
    async fn approve(&self, slug: &ProjectSlug) -> Result<Response, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        let mut project = self.existing(slug).await?;
        let before = project.clone();
        let attempt = AttemptId::from_random(random_bytes::<6>());
        let step = approve(&mut project, attempt, now_ms())?;
        if project != before {
            self.save(&project).await?;
        }
        let answer = match step {
            ApproveStep::CreateRepo(plan) => ApproveAnswer {
                project: project.view(),
                plan: Some(plan),
                repo: None,
            },
            skip => ApproveAnswer {
                project: project.view(),
                plan: None,
                repo: skip.skipped_report().map(|r| r.to_json()),
            },
        };
        Ok(json_response(200, &answer))
    }

    async fn repo_result(
        &self,
        slug: &ProjectSlug,
        result: RepoResult,
    ) -> Result<Response, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        let mut project = self.existing(slug).await?;
        let report = on_repo_outcome(&mut project, &result.attempt_id, result.outcome, now_ms());
        self.save(&project).await?;
        Ok(json_response(
            200,
            &json!({"project": project.view(), "repo": report.to_json()}),
        ))
    }

    async fn github_repo(
        &self,
        slug: &ProjectSlug,
        repo: GithubRepo,
    ) -> Result<Response, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        let mut project = self.existing(slug).await?;
        manual_override(&mut project, repo, now_ms());
        self.save(&project).await?;
        Ok(json_response(200, &project.view()))
    }
}

/// The route handlers' handle on one project's object.
pub struct ProjectClient {
    stub: crate::objects::internal::ObjectStub,
    slug: ProjectSlug,
}

impl ProjectClient {
    pub fn new(env: &Env, slug: &ProjectSlug) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, settings::PROJECTS, &slug.object_name())?;
        Ok(Self {
            stub,
            slug: slug.clone(),
        })
    }

    fn url(&self, op: &str) -> String {
        format!("https://project/{op}?slug={}", self.slug)
    }

    /// `None` when the slug is taken already.
    pub async fn create(&self, input: &NewProject) -> Result<Option<Response>, ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Put,
            &self.url("project"),
            Some(input),
            &[],
        )
        .await?;
        Ok((resp.status_code() != 409).then_some(resp))
    }

    pub async fn get(&self) -> Result<Response, ApiError> {
        internal::call::<()>(&self.stub, Method::Get, &self.url("project"), None, &[]).await
    }

    pub async fn patch(&self, patch: &ProjectPatch) -> Result<Response, ApiError> {
        internal::call(
            &self.stub,
            Method::Patch,
            &self.url("project"),
            Some(patch),
            &[],
        )
        .await
    }

    pub async fn approve(&self) -> Result<ApproveAnswer, ApiError> {
        let resp =
            internal::call::<()>(&self.stub, Method::Post, &self.url("approve"), None, &[]).await?;
        internal::json(resp).await
    }

    /// Reports how a creation ended; the answer is the approval's response body.
    pub async fn repo_result(&self, result: &RepoResult) -> Result<Value, ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            &self.url("repo-result"),
            Some(result),
            &[],
        )
        .await?;
        internal::json(resp).await
    }

    pub async fn set_github_repo(&self, repo: &GithubRepo) -> Result<Response, ApiError> {
        internal::call(
            &self.stub,
            Method::Put,
            &self.url("github-repo"),
            Some(repo),
            &[],
        )
        .await
    }
}

/// The listing: one row per project under `p:<slug>`, each the project's summary as JSON
/// text. A row is only replaced by one at least as recent, so updates that arrive out of order
/// never roll it back.
#[durable_object]
pub struct ProjectIndex {
    pub(super) state: State,
    lock: Mutex<()>,
}

impl worker::DurableObject for ProjectIndex {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            lock: Mutex::new(()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        // The tenant listing's shards are objects of this class too (`tenant_index.rs`).
        if url.path() == "/tenants" {
            return self.tenants(&mut req).await;
        }
        let result = match (req.method(), url.path()) {
            (Method::Put, "/entry") => match internal::body::<Value>(&mut req).await {
                Ok(row) => self.upsert(row).await.map(|()| no_content()),
                Err(e) => Err(e),
            },
            (Method::Get, "/entries") => self
                .entries()
                .await
                .map(|rows| json_response(200, &json!({ "projects": rows }))),
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }
}

fn text_field<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_default()
}

impl ProjectIndex {
    async fn upsert(&self, row: Value) -> Result<(), ApiError> {
        let slug = ProjectSlug::parse(text_field(&row, "slug")).map_err(|e| fail!(e))?;
        let key = format!("{INDEX_PREFIX}{slug}");
        let _one_at_a_time = self.lock.lock().await;
        let stored: Option<String> = self.state.storage().get(&key).await.map_err(|e| fail!(e))?;
        let newer = stored
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|old| text_field(&old, "updatedAt") > text_field(&row, "updatedAt"));
        if newer {
            return Ok(());
        }
        self.state
            .storage()
            .put(&key, row.to_string())
            .await
            .map_err(|e| fail!(e))
    }

    /// Every row, newest project first.
    async fn entries(&self) -> Result<Vec<Value>, ApiError> {
        let map = self
            .state
            .storage()
            .list_with_options(ListOptions::new().prefix(INDEX_PREFIX))
            .await
            .map_err(|e| fail!(e))?;
        let mut rows: Vec<Value> = Vec::with_capacity(map.size() as usize);
        map.for_each(&mut |value, _key| {
            if let Some(row) = value
                .dyn_ref::<js_sys::JsString>()
                .and_then(|s| serde_json::from_str(&String::from(s)).ok())
            {
                rows.push(row);
            }
        });
        rows.sort_by(|a, b| {
            text_field(b, "createdAt")
                .cmp(text_field(a, "createdAt"))
                .then_with(|| text_field(a, "slug").cmp(text_field(b, "slug")))
        });
        Ok(rows)
    }
}

/// The route handlers' (and project stores') handle on the listing.
pub struct IndexClient {
    stub: crate::objects::internal::ObjectStub,
}

impl IndexClient {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, settings::PROJECT_INDEX, INDEX_OBJECT_NAME)?;
        Ok(Self { stub })
    }

    pub async fn upsert(&self, row: &Value) -> Result<(), ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Put,
            "https://projects-index/entry",
            Some(row),
            &[],
        )
        .await?;
        if (200..300).contains(&resp.status_code()) {
            Ok(())
        } else {
            Err(internal::relayed(resp).await)
        }
    }

    pub async fn list(&self) -> Result<Response, ApiError> {
        internal::call::<()>(
            &self.stub,
            Method::Get,
            "https://projects-index/entries",
            None,
            &[],
        )
        .await
    }
}
