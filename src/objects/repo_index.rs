//! `RepoIndex`: one Durable Object per GitHub repository id, named `repo-<repo id>`: which
//! projects follow which branch of it, through which installation. A push is routed by
//! repository id through this index, so a renamed repository keeps deploying.
//!
//! The index is written only by the projects' objects (when a source is linked, moved or
//! unlinked), and each project checks a routed push against its own source, so a stale entry
//! can never deploy anything.

use ghplane_core::deploy::{remove_link, upsert_link, RepoLink};
use ghplane_core::ids::RepoId;
use ghplane_core::projects::ProjectSlug;
use ghplane_core::ApiError;
use worker::{durable_object, Env, Method, Request, Response, State};

use crate::http::{error_response, json_response, no_content};
use crate::objects::internal;
use crate::settings;

const LINKS_KEY: &str = "links";

pub fn object_name(repo: RepoId) -> String {
    format!("repo-{repo}")
}

#[durable_object]
pub struct RepoIndex {
    state: State,
    #[allow(dead_code)]
    env: Env,
}

impl worker::DurableObject for RepoIndex {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let project = url
            .query_pairs()
            .find(|(k, _)| k == "project")
            .and_then(|(_, v)| ProjectSlug::parse(&v).ok());
        let result = match (req.method(), url.path()) {
            (Method::Get, "/links") => self.links().await.map(|l| json_response(200, &l)),
            (Method::Put, "/links") => match internal::body::<RepoLink>(&mut req).await {
                Ok(link) => self.upsert(link).await,
                Err(e) => Err(e),
            },
            (Method::Delete, "/links") => match project {
                Some(p) => self.remove(&p).await,
                None => Err(fail!()),
            },
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }
}

impl RepoIndex {
    async fn links(&self) -> Result<Vec<RepoLink>, ApiError> {
        Ok(self
            .state
            .storage()
            .get(LINKS_KEY)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default())
    }

    async fn save(&self, links: &[RepoLink]) -> Result<(), ApiError> {
        let storage = self.state.storage();
        if links.is_empty() {
            storage.delete(LINKS_KEY).await.map_err(|e| fail!(e))?;
        } else {
            storage.put(LINKS_KEY, links).await.map_err(|e| fail!(e))?;
        }
        Ok(())
    }

    async fn upsert(&self, link: RepoLink) -> Result<Response, ApiError> {
        let mut links = self.links().await?;
        upsert_link(&mut links, link).map_err(ApiError::Validation)?;
        self.save(&links).await?;
        Ok(no_content())
    }

    async fn remove(&self, project: &ProjectSlug) -> Result<Response, ApiError> {
        let mut links = self.links().await?;
        if remove_link(&mut links, project) {
            self.save(&links).await?;
        }
        Ok(no_content())
    }
}

/// A handle on one repository's index entry.
pub struct RepoIndexClient {
    stub: crate::objects::internal::ObjectStub,
}

impl RepoIndexClient {
    pub fn new(env: &Env, repo: RepoId) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, settings::REPO_INDEX, &object_name(repo))?;
        Ok(Self { stub })
    }

    pub async fn links(&self) -> Result<Vec<RepoLink>, ApiError> {
        let resp =
            internal::call::<()>(&self.stub, Method::Get, "https://index/links", None, &[]).await?;
        internal::json(resp).await
    }

    pub async fn upsert(&self, link: &RepoLink) -> Result<(), ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Put,
            "https://index/links",
            Some(link),
            &[],
        )
        .await?;
        internal::expect_success(resp).await
    }

    pub async fn remove(&self, project: &ProjectSlug) -> Result<(), ApiError> {
        let url = format!("https://index/links?project={}", project.as_str());
        let resp = internal::call::<()>(&self.stub, Method::Delete, &url, None, &[]).await?;
        internal::expect_success(resp).await
    }
}
