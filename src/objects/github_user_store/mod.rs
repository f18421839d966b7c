//! `GithubUserStore`: one Durable Object per admin who signed in with GitHub, named
//! `user-<github user id>`: the link (the user's GitHub token and refresh token, sealed),
//! the user's sessions (hashes only) and the user's repository listings, cached with
//! GitHub's ETags.
//!
//! Every command but `Link` and `Reseal` carries a session secret and is refused unless it matches
//! a live session of this user, so a handler can never act for a user it did not
//! authenticate. Disconnecting deletes everything the object holds.

pub mod client;

use ghplane_core::admin_access::installations::classify;
use ghplane_core::admin_access::repos::{self, assemble, CacheMeta, CachedPage};
use ghplane_core::admin_access::session::{admit, StoredSession};
use ghplane_core::github::pages::Pager;
use ghplane_core::ids::{GithubUserId, InstallationId};
use ghplane_core::ApiError;
use worker::{durable_object, Env, Request, Response, State};

use crate::clock::now_ms;
use crate::github::client::{now_unix, GithubClient};
use crate::objects::rpc;
use crate::objects::sealed_registry;
use crate::secrets::{Keyring, ResealReport};
use client::{
    user_of, Authenticated, ReposAnswer, UserCommand, UserLink, REFRESH_TOKEN_SLOT, USER_TOKEN_SLOT,
};

const LINK_KEY: &str = "link";
const SESSIONS_KEY: &str = "sessions";

fn session_invalid() -> ApiError {
    ApiError::UserAccess {
        kind: ghplane_core::error::UserAccessKind::SessionInvalid,
        message: "the session is unknown, ended or expired; sign in again".into(),
        retry_after_secs: None,
    }
}

fn meta_key(id: InstallationId) -> String {
    format!("repos:{id}")
}

fn page_key(id: InstallationId, page: usize) -> String {
    format!("repos:{id}:{page}")
}

#[durable_object]
pub struct GithubUserStore {
    state: State,
    env: Env,
    /// Whether this instance already saw to its enrolment in the sealed-secrets registry.
    enrolled: std::cell::Cell<bool>,
}

impl worker::DurableObject for GithubUserStore {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            enrolled: std::cell::Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |name, command| async move {
            let id = user_of(&name)?;
            self.enroll_once(id).await;
            match command {
                UserCommand::Link { link, session } => {
                    rpc::reply(&self.link(*link, session).await?)
                }
                UserCommand::Reseal => rpc::reply(&self.reseal(id).await?),
                UserCommand::Authenticate { secret } => {
                    rpc::reply(&self.authenticate(id, &secret).await?)
                }
                UserCommand::Disconnect { secret } => {
                    rpc::reply(&self.disconnect(id, &secret).await?)
                }
                UserCommand::Repos {
                    secret,
                    installation_id,
                    sync,
                } => rpc::reply(&self.repos(id, &secret, installation_id, sync).await?),
            }
        })
        .await
    }
}

impl GithubUserStore {
    /// Sees to this object's enrolment in the sealed-secrets registry, once per instance.
    async fn enroll_once(&self, id: GithubUserId) {
        if self.enrolled.replace(true) {
            return;
        }
        let holds = matches!(
            self.state.storage().get::<UserLink>(LINK_KEY).await,
            Ok(Some(_))
        );
        sealed_registry::enroll_self(&self.state, &self.env, "user", &id.to_string(), holds).await;
    }
}

impl GithubUserStore {
    /// The user's GitHub tokens under the current key.
    async fn reseal(&self, id: GithubUserId) -> Result<ResealReport, ApiError> {
        let mut report = ResealReport::default();
        let storage = self.state.storage();
        let Some(mut link) = storage
            .get::<UserLink>(LINK_KEY)
            .await
            .map_err(|e| fail!(e))?
        else {
            return Ok(report);
        };
        let ring = Keyring::from_env(&self.env).await?;
        let object = id.object_name();
        let mut slots = vec![(USER_TOKEN_SLOT, &mut link.token)];
        if let Some(r) = link.refresh_token.as_mut() {
            slots.push((REFRESH_TOKEN_SLOT, r));
        }
        let changed = ring.reseal_all(&object, slots, &mut report).await;
        if changed {
            storage.put(LINK_KEY, &link).await.map_err(|e| fail!(e))?;
        }
        Ok(report)
    }
}

impl GithubUserStore {
    async fn sessions(&self) -> Result<Vec<StoredSession>, ApiError> {
        Ok(self
            .state
            .storage()
            .get(SESSIONS_KEY)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default())
    }

    /// Stores the link (a re-connect keeps `connected_at`) and admits the new session.
    async fn link(&self, link: UserLink, session: StoredSession) -> Result<(), ApiError> {
        let storage = self.state.storage();
        let previous: Option<UserLink> = storage.get(LINK_KEY).await.map_err(|e| fail!(e))?;
        let mut link = link;
        if let Some(p) = previous {
            link.connected_at = p.connected_at;
        }
        let mut sessions = self.sessions().await?;
        admit(&mut sessions, session, now_unix());
        storage.put(LINK_KEY, &link).await.map_err(|e| fail!(e))?;
        storage
            .put(SESSIONS_KEY, &sessions)
            .await
            .map_err(|e| fail!(e))?;
        Ok(())
    }

    async fn check(&self, secret: &str) -> Result<(UserLink, StoredSession), ApiError> {
        let now = now_unix();
        let session = self
            .sessions()
            .await?
            .into_iter()
            .find(|s| s.matches(secret, now))
            .ok_or_else(session_invalid)?;
        let link: UserLink = self
            .state
            .storage()
            .get(LINK_KEY)
            .await
            .map_err(|e| fail!(e))?
            .ok_or_else(session_invalid)?;
        Ok((link, session))
    }

    async fn open_token(&self, id: GithubUserId, link: &UserLink) -> Result<String, ApiError> {
        let ring = Keyring::from_env(&self.env).await?;
        let token = ring
            .open(&id.object_name(), USER_TOKEN_SLOT, &link.token)
            .await?;
        Ok(token.expose().to_owned())
    }

    async fn authenticate(
        &self,
        id: GithubUserId,
        secret: &str,
    ) -> Result<Authenticated, ApiError> {
        let (link, session) = self.check(secret).await?;
        Ok(Authenticated {
            user_id: link.user_id,
            login: link.login.clone(),
            avatar_url: link.avatar_url.clone(),
            session_expires_at: session.expires_at,
            token: self.open_token(id, &link).await?,
        })
    }

    /// Forgets the user entirely and hands the token back once, for the grant revocation.
    async fn disconnect(&self, id: GithubUserId, secret: &str) -> Result<String, ApiError> {
        let (link, _) = self.check(secret).await?;
        let token = self.open_token(id, &link).await?;
        self.state
            .storage()
            .delete_all()
            .await
            .map_err(|e| fail!(e))?;
        Ok(token)
    }

    async fn repos(
        &self,
        id: GithubUserId,
        secret: &str,
        installation: InstallationId,
        sync: bool,
    ) -> Result<ReposAnswer, ApiError> {
        let (link, _) = self.check(secret).await?;
        let storage = self.state.storage();
        let meta: Option<CacheMeta> = storage
            .get(&meta_key(installation))
            .await
            .map_err(|e| fail!(e))?;
        let mut cached = Vec::new();
        if let Some(m) = &meta {
            for n in 1..=m.pages {
                let page: Option<CachedPage> = storage
                    .get(&page_key(installation, n))
                    .await
                    .map_err(|e| fail!(e))?;
                match page {
                    Some(p) => cached.push(p),
                    None => break,
                }
            }
        }
        let complete_cache = meta.as_ref().is_some_and(|m| m.pages == cached.len());
        if let (Some(m), false, true) = (&meta, sync, complete_cache) {
            if m.fresh(now_unix()) {
                let (rows, incomplete) = assemble(&cached);
                return Ok(ReposAnswer {
                    rows,
                    incomplete,
                    synced_at: m.synced_at.saturating_mul(1000),
                    changed: false,
                });
            }
        }
        let token = self.open_token(id, &link).await?;
        self.revalidate(installation, &token, cached).await
    }

    /// Walks GitHub's pages with the cached ETags: an unchanged page is a free `304`.
    async fn revalidate(
        &self,
        installation: InstallationId,
        token: &str,
        cached: Vec<CachedPage>,
    ) -> Result<ReposAnswer, ApiError> {
        let github = GithubClient::from_env(&self.env)?;
        let mut pages: Vec<CachedPage> = Vec::new();
        let mut changed_pages = Vec::new();
        let mut pager = Pager::new(repos::page_path(installation, 1), repos::PAGE_CAP as u32);
        while let Some(path) = pager.next_path().map(str::to_owned) {
            let n = pager.pages_read() as usize + 1;
            let old = cached.get(n - 1);
            let resp = github
                .get_conditional(&path, token, old.and_then(|p| p.etag.as_deref()))
                .await
                .map_err(|e| classify(&e))?;
            let page = match (resp.not_modified, old) {
                (true, Some(old)) => old.clone(),
                (true, None) => {
                    return Err(classify(
                        &ghplane_core::github::error::GithubError::Unexpected { status: 304 },
                    ))
                }
                (false, _) => {
                    let parsed = resp.json().map_err(|e| classify(&e))?;
                    changed_pages.push(n);
                    CachedPage::from_github(parsed, resp.etag.clone(), resp.link.clone())
                }
            };
            // A 304 carries no `Link`: the cached page's own says whether more follow.
            let link = page.link(installation, n, github.api_base());
            pages.push(page);
            pager.advance(link.as_deref(), github.api_base());
        }
        let changed = !changed_pages.is_empty() || pages.len() != cached.len();
        let storage = self.state.storage();
        for n in &changed_pages {
            storage
                .put(&page_key(installation, *n), &pages[n - 1])
                .await
                .map_err(|e| fail!(e))?;
        }
        for n in pages.len() + 1..=cached.len() {
            storage
                .delete(&page_key(installation, n))
                .await
                .map_err(|e| fail!(e))?;
        }
        let synced_at = now_unix();
        storage
            .put(
                &meta_key(installation),
                &CacheMeta {
                    pages: pages.len(),
                    synced_at,
                },
            )
            .await
            .map_err(|e| fail!(e))?;
        let (rows, incomplete) = assemble(&pages);
        Ok(ReposAnswer {
            rows,
            incomplete,
            synced_at: now_ms(),
            changed,
        })
    }
}
