//! The handle on one signed-in admin's `GithubUserStore` (`user-<github user id>`), its
//! command and its replies.

use ghplane_core::admin_access::repos::RepoRow;
use ghplane_core::admin_access::session::StoredSession;
use ghplane_core::ids::{GithubUserId, InstallationId};
use ghplane_core::rpc::Command;
use ghplane_core::sealed::Sealed;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::Env;

use crate::objects::rpc::Object;
use crate::secrets::ResealReport;
use crate::settings;

pub const USER_TOKEN_SLOT: &str = "userToken";
pub const REFRESH_TOKEN_SLOT: &str = "refreshToken";

const PREFIX: &str = "user-";

/// The user a `GithubUserStore` serves, from its object name
/// ([`GithubUserId::object_name`]).
pub fn user_of(name: &str) -> Result<GithubUserId, ApiError> {
    name.strip_prefix(PREFIX)
        .and_then(|id| GithubUserId::parse(id).ok())
        .ok_or_else(|| fail!(name.to_owned()))
}

/// The link between a GitHub user and ghplane (stored as is).
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

/// What a `GithubUserStore` is asked. Every command but `Link` and `Reseal` carries the
/// session secret and is refused unless it matches a live session of this user.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserCommand {
    /// Stores the link and admits the new session: `()`.
    Link {
        link: Box<UserLink>,
        session: StoredSession,
    },
    /// The user's tokens under the current key: [`ResealReport`].
    Reseal,
    /// Who the session's user is, with the token to act with: [`Authenticated`].
    Authenticate { secret: String },
    /// Forgets the user entirely; the token (`String`) comes back once, for the grant
    /// revocation.
    Disconnect { secret: String },
    /// The repositories the user sees through the installation, from the cache unless
    /// stale or `sync`: [`ReposAnswer`].
    Repos {
        secret: String,
        installation_id: InstallationId,
        sync: bool,
    },
}

impl Command for UserCommand {
    fn idempotent(&self) -> bool {
        matches!(self, UserCommand::Link { .. })
    }
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
pub struct ReposAnswer {
    pub rows: Vec<RepoRow>,
    pub incomplete: bool,
    /// Unix milliseconds.
    pub synced_at: i64,
    pub changed: bool,
}

/// The route handlers' handle on one user's object.
pub struct GithubUserClient {
    object: Object,
}

impl GithubUserClient {
    pub fn new(env: &Env, id: GithubUserId) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::GITHUB_USERS, &id.object_name())?;
        Ok(Self { object })
    }

    pub async fn reseal(&self) -> Result<ResealReport, ApiError> {
        self.object.call(&UserCommand::Reseal).await
    }

    pub async fn link(&self, link: UserLink, session: StoredSession) -> Result<(), ApiError> {
        self.object
            .call(&UserCommand::Link {
                link: Box::new(link),
                session,
            })
            .await
    }

    pub async fn authenticate(&self, secret: &str) -> Result<Authenticated, ApiError> {
        let secret = secret.to_owned();
        self.object
            .call(&UserCommand::Authenticate { secret })
            .await
    }

    /// Deletes the link and every session; returns the token for the grant revocation.
    pub async fn disconnect(&self, secret: &str) -> Result<String, ApiError> {
        let secret = secret.to_owned();
        self.object.call(&UserCommand::Disconnect { secret }).await
    }

    pub async fn repos(
        &self,
        secret: &str,
        installation_id: InstallationId,
        sync: bool,
    ) -> Result<ReposAnswer, ApiError> {
        let command = UserCommand::Repos {
            secret: secret.to_owned(),
            installation_id,
            sync,
        };
        self.object.call(&command).await
    }
}
