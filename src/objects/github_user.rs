//! `GithubUserStore`: one Durable Object per admin who signed in with GitHub, named
//! `user-<github user id>`: the link (the user's GitHub token and refresh token, sealed),
//! the user's sessions (hashes only) and the user's repository listings, cached with
//! GitHub's ETags.
//!
//! Every request but `PUT /link` carries a session secret and is refused unless it matches
//! a live session of this user, so a handler can never act for a user it did not
//! authenticate. Disconnecting deletes everything the object holds.

use ghplane_core::admin_access::installations::classify;
use ghplane_core::admin_access::repos::{self, assemble, CacheMeta, CachedPage, RepoRow};
use ghplane_core::admin_access::session::{admit, StoredSession};
use ghplane_core::github::pages::Pager;
use ghplane_core::ids::{GithubUserId, InstallationId};
use ghplane_core::sealed::Sealed;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, Env, Method, Request, Response, State};

use crate::github::client::{now_unix, GithubClient};
use crate::http::{error_response, json_response, no_content};
use crate::objects::internal::{self, now_ms};
use crate::secrets::{Keyring, ResealReport};
use crate::settings;

const LINK_KEY: &str = "link";
const SESSIONS_KEY: &str = "sessions";
pub const USER_TOKEN_SLOT: &str = "userToken";
pub const REFRESH_TOKEN_SLOT: &str = "refreshToken";
const SESSION_HEADER: &str = "x-ghplane-session-secret";

/// The link between a GitHub user and ghplane.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserLink {
    pub user_id: GithubUserId,
    pub login: String,
    pub avatar_url: Option<String>,
    pub token: Sealed,
    /// Unix seconds; `None` for tokens that do not expire.
    pub token_expires_at: Option<i64>,
    pub refresh_token: Option<Sealed>,
    pub refresh_token_expires_at: Option<i64>,
    pub connected_at: String,
    pub updated_at: String,
}

#[derive(Serialize, Deserialize)]
pub struct LinkWrite {
    pub link: UserLink,
    pub session: StoredSession,
}

/// What an authenticated request learns: who, until when, and the token to act with.
#[derive(Serialize, Deserialize)]
pub struct Authenticated {
    pub user_id: GithubUserId,
    pub login: String,
    pub avatar_url: Option<String>,
    pub session_expires_at: i64,
    pub token: String,
}

#[derive(Serialize, Deserialize)]
pub struct ReposRequest {
    pub installation_id: InstallationId,
    /// Revalidate with GitHub even when the cache is fresh.
    pub sync: bool,
}

#[derive(Serialize, Deserialize)]
pub struct ReposAnswer {
    pub rows: Vec<RepoRow>,
    pub incomplete: bool,
    /// Unix milliseconds.
    pub synced_at: i64,
    pub changed: bool,
}

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

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let id = url
            .query_pairs()
            .find(|(k, _)| k == "id")
            .and_then(|(_, v)| GithubUserId::parse(&v).ok());
        let Some(id) = id else {
            return Ok(error_response(&fail!()));
        };
        if !self.enrolled.replace(true) {
            let holds = matches!(
                self.state.storage().get::<UserLink>(LINK_KEY).await,
                Ok(Some(_))
            );
            crate::objects::sealed_registry::enroll_self(
                &self.state,
                &self.env,
                "user",
                &id.to_string(),
                holds,
            )
            .await;
        }
        let secret = req
            .headers()
            .get(SESSION_HEADER)
            .ok()
            .flatten()
            .unwrap_or_default();
        let result = match (req.method(), url.path()) {
            (Method::Put, "/link") => match internal::body(&mut req).await {
                Ok(w) => self.link(w).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/reseal") => self.reseal(id).await.map(|r| json_response(200, &r)),
            (Method::Post, "/authenticate") => self
                .authenticate(id, &secret)
                .await
                .map(|a| json_response(200, &a)),
            (Method::Post, "/disconnect") => self.disconnect(id, &secret).await,
            (Method::Post, "/repos") => match internal::body::<ReposRequest>(&mut req).await {
                Ok(r) => self
                    .repos(id, &secret, r)
                    .await
                    .map(|a| json_response(200, &a)),
                Err(e) => Err(e),
            },
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
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
        let mut changed = false;
        for (slot, value) in slots {
            let outcome = ring.reseal(&object, slot, value).await;
            changed |= report.apply(&object, slot, outcome, value);
        }
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
    async fn link(&self, w: LinkWrite) -> Result<Response, ApiError> {
        let storage = self.state.storage();
        let previous: Option<UserLink> = storage.get(LINK_KEY).await.map_err(|e| fail!(e))?;
        let mut link = w.link;
        if let Some(p) = previous {
            link.connected_at = p.connected_at;
        }
        let mut sessions = self.sessions().await?;
        admit(&mut sessions, w.session, now_unix());
        storage.put(LINK_KEY, &link).await.map_err(|e| fail!(e))?;
        storage
            .put(SESSIONS_KEY, &sessions)
            .await
            .map_err(|e| fail!(e))?;
        Ok(no_content())
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
    async fn disconnect(&self, id: GithubUserId, secret: &str) -> Result<Response, ApiError> {
        let (link, _) = self.check(secret).await?;
        let token = self.open_token(id, &link).await?;
        self.state
            .storage()
            .delete_all()
            .await
            .map_err(|e| fail!(e))?;
        Ok(json_response(200, &serde_json::json!({"token": token})))
    }

    async fn repos(
        &self,
        id: GithubUserId,
        secret: &str,
        r: ReposRequest,
    ) -> Result<ReposAnswer, ApiError> {
        let (link, _) = self.check(secret).await?;
        let storage = self.state.storage();
        let meta: Option<CacheMeta> = storage
            .get(&meta_key(r.installation_id))
            .await
            .map_err(|e| fail!(e))?;
        let mut cached = Vec::new();
        if let Some(m) = &meta {
            for n in 1..=m.pages {
                let page: Option<CachedPage> = storage
                    .get(&page_key(r.installation_id, n))
                    .await
                    .map_err(|e| fail!(e))?;
                match page {
                    Some(p) => cached.push(p),
                    None => break,
                }
            }
        }
        let complete_cache = meta.as_ref().is_some_and(|m| m.pages == cached.len());
        if let (Some(m), false, true) = (&meta, r.sync, complete_cache) {
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
        self.revalidate(r.installation_id, &token, cached).await
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

/// The route handlers' handle on one user's object.
pub struct GithubUserClient {
    stub: crate::objects::internal::ObjectStub,
    id: GithubUserId,
}

impl GithubUserClient {
    pub fn new(env: &Env, id: GithubUserId) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, settings::GITHUB_USERS, &id.object_name())?;
        Ok(Self { stub, id })
    }

    fn url(&self, op: &str) -> String {
        format!("https://github-user/{op}?id={}", self.id)
    }

    pub async fn reseal(&self) -> Result<ResealReport, ApiError> {
        let resp =
            internal::call::<()>(&self.stub, Method::Post, &self.url("reseal"), None, &[]).await?;
        internal::json(resp).await
    }

    pub async fn link(&self, w: &LinkWrite) -> Result<(), ApiError> {
        let resp = internal::call(&self.stub, Method::Put, &self.url("link"), Some(w), &[]).await?;
        if resp.status_code() == 204 {
            Ok(())
        } else {
            Err(internal::relayed(resp).await)
        }
    }

    pub async fn authenticate(&self, secret: &str) -> Result<Authenticated, ApiError> {
        let resp = internal::call::<()>(
            &self.stub,
            Method::Post,
            &self.url("authenticate"),
            None,
            &[(SESSION_HEADER, secret)],
        )
        .await?;
        internal::json(resp).await
    }

    /// Deletes the link and every session; returns the token for the grant revocation.
    pub async fn disconnect(&self, secret: &str) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let resp = internal::call::<()>(
            &self.stub,
            Method::Post,
            &self.url("disconnect"),
            None,
            &[(SESSION_HEADER, secret)],
        )
        .await?;
        internal::json::<Token>(resp).await.map(|t| t.token)
    }

    pub async fn repos(&self, secret: &str, r: &ReposRequest) -> Result<ReposAnswer, ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            &self.url("repos"),
            Some(r),
            &[(SESSION_HEADER, secret)],
        )
        .await?;
        internal::json(resp).await
    }
}
