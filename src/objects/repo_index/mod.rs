//! `RepoIndex`: one Durable Object per GitHub repository id, named `repo-<repo id>`: which
//! projects follow which branch of it, through which installation. A push is routed by
//! repository id through this index, so a renamed repository keeps deploying.
//!
//! The index is written only by the projects' objects (when a source is linked, moved or
//! unlinked), and each project checks a routed push against its own source, so a stale entry
//! can never deploy anything.

pub mod client;

pub use client::RepoIndexClient;

use ghplane_core::deploy::{remove_link, upsert_link, RepoLink};
use ghplane_core::projects::ProjectSlug;
use ghplane_core::ApiError;
use worker::{durable_object, Env, Request, Response, State};

use crate::objects::rpc;
use client::RepoIndexCommand;

const LINKS_KEY: &str = "links";

#[durable_object]
pub struct RepoIndex {
    state: State,
}

impl worker::DurableObject for RepoIndex {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |_, command| async move {
            match command {
                RepoIndexCommand::Links => rpc::reply(&self.links().await?),
                RepoIndexCommand::Upsert { link } => rpc::reply(&self.upsert(link).await?),
                RepoIndexCommand::Remove { project } => rpc::reply(&self.remove(&project).await?),
            }
        })
        .await
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

    async fn upsert(&self, link: RepoLink) -> Result<(), ApiError> {
        let mut links = self.links().await?;
        upsert_link(&mut links, link).map_err(ApiError::Validation)?;
        self.save(&links).await
    }

    async fn remove(&self, project: &ProjectSlug) -> Result<(), ApiError> {
        let mut links = self.links().await?;
        if remove_link(&mut links, project) {
            self.save(&links).await?;
        }
        Ok(())
    }
}
