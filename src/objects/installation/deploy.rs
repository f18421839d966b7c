//! The installation's part in push to deploy: resolving a repository by id with the
//! installation's own token (so a source can only name a repository the tenant reaches), and
//! routing verified `push` / `repository.renamed` deliveries to the projects that follow the
//! repository.
//!
//! Pushes are numbered here, in the order this object receives them, before any other await:
//! that number (`seq`) is what lets each project keep the newest push when forwarded pushes
//! overtake each other.

use ghplane_core::deploy::routing::known_reason;
use ghplane_core::deploy::{combine, next_push_seq, route_push, route_rename, DeployError};
use ghplane_core::ids::{InstallationId, RepoId};
use ghplane_core::webhook::delivery::DeliveryRequest;
use ghplane_core::webhook::Action;
use ghplane_core::ApiError;

use super::client::FoundRepository;
use super::{now_ms, InstallationStore};
use crate::objects::deliveries::Handled;
// The project's deploy object through its client alone (once it has a client module).
use crate::objects::project_deploy::client::{ProjectDeployClient, PushRequest, RenameRequest};
use crate::objects::repo_index::RepoIndexClient;

const PUSH_SEQ_KEY: &str = "push-seq";

impl InstallationStore {
    /// Finds `repo` among the repositories this installation's token reaches. GitHub has no
    /// "repository by id" route for installations in the operations ghplane uses, so the
    /// listing is searched; its token is the proof of reach.
    pub(super) async fn find_repository(
        &self,
        id: InstallationId,
        repo: RepoId,
    ) -> Result<FoundRepository, ApiError> {
        if self.load().await?.is_none() {
            return Err(DeployError::InstallationUnknown(id.get()).into());
        }
        let found = self
            .scan_repositories(id, |page| {
                let r = page.repositories.into_iter().find(|r| r.id == repo.get())?;
                Some(FoundRepository {
                    id: r.id,
                    node_id: r.node_id,
                    full_name: r.full_name,
                })
            })
            .await?;
        found.ok_or_else(|| {
            DeployError::RepoUnreachable {
                repo_id: repo.get(),
                installation_id: id.get(),
            }
            .into()
        })
    }

    /// The next number in this installation's delivery order (storage operations are not
    /// interleaved with other requests, so the read and the write are one step).
    async fn number_push(&self) -> Result<u64, ApiError> {
        let storage = self.state.storage();
        let last = storage
            .get::<u64>(PUSH_SEQ_KEY)
            .await
            .map_err(|e| fail!(e))?;
        let seq = next_push_seq(last, now_ms());
        storage.put(PUSH_SEQ_KEY, seq).await.map_err(|e| fail!(e))?;
        Ok(seq)
    }

    /// A verified `push` or `repository.renamed` of a known tenant, handed to every project
    /// it concerns. The delivery is answered once each project has taken note (no GitHub or
    /// deployer call happens on this path: the projects' alarms do those).
    pub(super) async fn route_to_projects(
        &self,
        id: InstallationId,
        req: &DeliveryRequest,
    ) -> Result<Handled, ApiError> {
        let answers = match &req.action {
            Action::Push {
                repo_id,
                branch,
                before,
                after,
                forced,
                head_commit_message,
                pusher,
                skip,
                ..
            } => {
                if let Some(skip) = skip {
                    return Ok(Handled::ignored(skip.as_str()));
                }
                let Some(branch) = branch else {
                    return Ok(Handled::ignored("not_a_branch"));
                };
                let seq = self.number_push().await?;
                let links = RepoIndexClient::new(&self.env, *repo_id)?.links().await?;
                let targets = match route_push(&links, id, branch) {
                    Ok(t) => t,
                    Err(reason) => return Ok(Handled::ignored(reason)),
                };
                let push = PushRequest {
                    repo_id: *repo_id,
                    installation_id: id,
                    branch: branch.clone(),
                    delivery_id: req.received.id.clone(),
                    before: before.as_str().to_owned(),
                    sha: after.as_str().to_owned(),
                    forced: *forced,
                    pusher: pusher.clone().unwrap_or_default(),
                    message: head_commit_message.clone().unwrap_or_default(),
                    seq,
                };
                let mut answers = Vec::with_capacity(targets.len());
                for project in &targets {
                    answers.push(
                        ProjectDeployClient::new(&self.env, project)?
                            .push(&push)
                            .await?,
                    );
                }
                answers
            }
            Action::RepoRenamed {
                repo_id,
                new_full_name,
                ..
            } => {
                let links = RepoIndexClient::new(&self.env, *repo_id)?.links().await?;
                let targets = match route_rename(&links, id) {
                    Ok(t) => t,
                    Err(reason) => return Ok(Handled::ignored(reason)),
                };
                let rename = RenameRequest {
                    repo_id: *repo_id,
                    installation_id: id,
                    full_name: new_full_name.clone(),
                };
                let mut answers = Vec::with_capacity(targets.len());
                for project in &targets {
                    answers.push(
                        ProjectDeployClient::new(&self.env, project)?
                            .rename(&rename)
                            .await?,
                    );
                }
                answers
            }
            _ => return Err(fail!()),
        };
        let answers: Vec<Result<(), &'static str>> = answers
            .iter()
            .map(|a| a.reason.as_deref().map_or(Ok(()), |r| Err(known_reason(r))))
            .collect();
        Ok(match combine(&answers) {
            Ok(()) => Handled::accepted(),
            Err(reason) => Handled::ignored(reason),
        })
    }
}
