//! The deployment's one-time credentials ticket: issued for a dispatch (stored hashed, kept
//! sealed in the job so every try of it sends the same one), and redeemed by the deployer for
//! a token of the linked repository with `contents: read` only.

use ghplane_core::deploy::outbox::{JobTicket, Outbox, Work};
use ghplane_core::deploy::DeployError;
use ghplane_core::deploy::{keep_stored, redeem_stored, release_stored, token_scope, Ticket};
use ghplane_core::projects::ProjectSlug;
use ghplane_core::tenancy::token::TokenScope;
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde_json::{json, Value};

use super::client::{object_name, CredentialsRequest};
use super::{now_ms, ProjectDeploy, OUTBOX_KEY};
use crate::objects::installation::InstallationClient;
use crate::secrets::Keyring;
use crate::settings;

pub(super) const TICKETS_KEY: &str = "tickets";
const TICKET_SLOT: &str = "ticket";

impl ProjectDeploy {
    /// The ticket of dispatch job `job`: the one kept in the job, or a new one issued now.
    pub(super) async fn job_ticket(
        &self,
        project: &ProjectSlug,
        job: u64,
        deployment_id: u64,
        kept: Option<&JobTicket>,
    ) -> Result<Ticket, ApiError> {
        let ring = Keyring::from_env(&self.env).await?;
        let Some(kept) = kept else {
            return self.issue_ticket(&ring, project, job, deployment_id).await;
        };
        Ok(Ticket {
            id: ring
                .open(&object_name(project), TICKET_SLOT, &kept.sealed)
                .await?
                .expose()
                .to_owned(),
            deployment_id,
            expires_at_ms: kept.expires_at_ms,
            redeemed: false,
        })
    }

    /// Issues the deployment's ticket: stored hashed, kept sealed in the job for its retries.
    async fn issue_ticket(
        &self,
        ring: &Keyring,
        project: &ProjectSlug,
        job: u64,
        deployment_id: u64,
    ) -> Result<Ticket, ApiError> {
        let now = now_ms();
        let mut ticket = Ticket::issue(random_bytes::<32>(), deployment_id, now);
        ticket.expires_at_ms = now
            + ghplane_core::deploy::ticket::ticket_ttl_ms(
                settings::get(&self.env, settings::DEPLOY_TICKET_TTL_SECONDS).as_deref(),
            )
            .map_err(|_| ApiError::Misconfigured(settings::DEPLOY_TICKET_TTL_SECONDS.into()))?;
        let sealed = ring
            .seal(&object_name(project), TICKET_SLOT, &ticket.id)
            .await?;
        let mut tickets: Vec<Ticket> = self.load(TICKETS_KEY).await?;
        keep_stored(&mut tickets, ticket.stored(), now);
        self.save(TICKETS_KEY, &tickets).await?;
        let kept = JobTicket {
            sealed,
            expires_at_ms: ticket.expires_at_ms,
        };
        let mut outbox: Outbox = self.load(OUTBOX_KEY).await?;
        if let Some(j) = outbox.job_mut(job) {
            j.work = Work::Dispatch {
                deployment_id,
                ticket: Some(kept),
            };
            self.save(OUTBOX_KEY, &outbox).await?;
        }
        Ok(ticket)
    }

    /// Redeems the ticket, then asks the installation for a token of the linked repository
    /// with `contents: read` only. The ticket is used up before the token is asked for, so
    /// two racing redemptions cannot both succeed; it is given back only if no token came.
    pub(super) async fn credentials(
        &self,
        slug: &ProjectSlug,
        c: CredentialsRequest,
    ) -> Result<Value, ApiError> {
        let linked = self.linked_or_404(slug).await?;
        let mut tickets: Vec<Ticket> = self.load(TICKETS_KEY).await?;
        redeem_stored(&mut tickets, &c.ticket, c.number, now_ms()).map_err(DeployError::from)?;
        self.save(TICKETS_KEY, &tickets).await?;
        let scope: TokenScope =
            serde_json::from_value(token_scope(&linked.source.full_name)).map_err(|e| fail!(e))?;
        let installation = InstallationClient::new(&self.env, linked.source.installation_id)?;
        match installation.token(&scope).await {
            Ok(grant) => {
                crate::log::event(
                    "info",
                    "deploy credentials issued",
                    json!({"project": slug, "deployment": c.number}),
                );
                Ok(json!({"token": grant.token, "expiresAt": grant.expires_at,
                    "repositories": grant.repositories, "permissions": grant.permissions}))
            }
            Err(e) => {
                let mut tickets: Vec<Ticket> = self.load(TICKETS_KEY).await?;
                release_stored(&mut tickets, &c.ticket);
                self.save(TICKETS_KEY, &tickets).await?;
                Err(e)
            }
        }
    }
}
