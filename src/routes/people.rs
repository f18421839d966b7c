//! Staff access: who may call a staff route (the `ADMIN_TOKEN`, or a signed-in person with a
//! role), the admin audit around every staff write, and `GET /api/audit`. Decisions are in
//! `ghplane_core::admin_access::{roles, audit}`; this file moves data between the request,
//! the user's object, GitHub and the `AdminAudit` object.

use std::collections::BTreeMap;

use ghplane_core::admin_access::audit::{parse_query, Actor, AuditEntry};
use ghplane_core::admin_access::roles::{
    self, combine, cookie_write, is_write, membership, parse_logins, role_from_logins,
    team_check_failed, CachedMembership, LoginBinding, Membership, People, Role, Team,
};
use ghplane_core::admin_access::session::{credential, Credential};
use ghplane_core::auth::bearer_matches;
use ghplane_core::github::error::GithubError;
use ghplane_core::projects::OrgAuth;
use ghplane_core::routes::Matched;
use ghplane_core::tenancy::token::TokenScope;
use ghplane_core::ApiError;
use worker::{Env, Method, Request, Response};

use crate::github::client::{GithubClient, Idempotent};
use crate::http::json_response;
use crate::objects::admin_audit::AdminAuditClient;
use crate::objects::github_user_store::client::GithubUserClient;
use crate::objects::installation::InstallationClient;
use crate::routes::org_access::OrgAccess;
use crate::settings;

/// Membership answers are kept this long unless `ADMIN_TEAM_CACHE_SECONDS` says otherwise.
const DEFAULT_TEAM_CACHE_SECS: u64 = 300;

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Who may call a route that needs `min`: the `ADMIN_TOKEN` (when set), else a person's
/// session with a role of at least `min`. A cookie-authenticated write must also pass the
/// origin and content-type checks. 401 without credentials, 403 signed in without the role.
pub async fn authorize(req: &Request, env: &Env, min: Role) -> Result<Actor, ApiError> {
    let authorization = header(req, "authorization");
    if let Some(expected) = settings::get(env, settings::ADMIN_TOKEN) {
        if bearer_matches(authorization.as_deref(), &expected) {
            return Ok(Actor::token());
        }
    }
    let session = match credential(authorization.as_deref(), header(req, "cookie").as_deref()) {
        Some(Credential::Session(s)) => s,
        Some(Credential::MalformedSession) => {
            return Err(ApiError::UserAccess {
                kind: ghplane_core::error::UserAccessKind::SessionInvalid,
                message: "the session token is malformed; sign in again".into(),
                retry_after_secs: None,
            })
        }
        Some(Credential::UserToken(_)) | None => return Err(ApiError::Unauthorized),
    };
    let by_cookie = !authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer "));
    if by_cookie && is_write(req.method().as_ref()) {
        let own = req
            .url()
            .map_err(|e| fail!(e))?
            .origin()
            .ascii_serialization();
        cookie_write(
            header(req, "content-type").as_deref(),
            header(req, "origin").as_deref(),
            &own,
            &crate::settings::admin_origins(env)?,
        )?;
    }
    let who = GithubUserClient::new(env, session.user)?
        .authenticate(&session.secret)
        .await?;
    let user_id = who.user_id.get();
    let role = role_of(env, user_id, &who.login).await?;
    roles::check(min, role, &who.login)?;
    Ok(Actor::person(&who.login, user_id))
}

fn people(env: &Env) -> Result<People, ApiError> {
    let logins = |var: &'static str| {
        parse_logins(settings::get(env, var).as_deref())
            .map_err(|_| ApiError::Misconfigured(var.into()))
    };
    let team = |var: &'static str| match settings::get(env, var) {
        None => Ok(None),
        Some(text) => Team::parse(&text)
            .map(Some)
            .ok_or(ApiError::Misconfigured(var.into())),
    };
    Ok(People {
        admin_logins: logins(settings::ADMIN_GITHUB_LOGINS)?,
        viewer_logins: logins(settings::VIEWER_GITHUB_LOGINS)?,
        admin_team: team(settings::ADMIN_GITHUB_TEAM)?,
        viewer_team: team(settings::VIEWER_GITHUB_TEAM)?,
    })
}

/// The role the configuration gives the user, asking GitHub about teams only when the
/// logins do not already settle it and no fresh answer is cached.
pub(crate) async fn role_of(
    env: &Env,
    user_id: u64,
    login: &str,
) -> Result<Option<Role>, ApiError> {
    let people = people(env)?;
    if people.logins().is_empty() && people.teams().is_empty() {
        return Ok(None);
    }
    let ledger = AdminAuditClient::new(env)?;
    let state = ledger.access(people.logins(), user_id).await?;
    let grant = role_from_logins(&people, &state.bindings, user_id, login);
    let ttl = settings::seconds(
        env,
        settings::ADMIN_TEAM_CACHE_SECONDS,
        DEFAULT_TEAM_CACHE_SECS,
    )?;
    let now = crate::clock::now_ms();
    let mut asked = Vec::new();
    let mut ctx = TeamCheck {
        env,
        login,
        user_id,
        now,
        ttl,
        cached: &state.memberships,
        asked: &mut asked,
    };
    let mut admin_team = false;
    let mut viewer_team = false;
    if grant.role < Some(Role::Admin) {
        if let Some(team) = &people.admin_team {
            admin_team = ctx.member(team).await?;
        }
    }
    if grant.role.is_none() && !admin_team {
        if let Some(team) = &people.viewer_team {
            viewer_team = ctx.member(team).await?;
        }
    }
    if !grant.bind.is_empty() || !asked.is_empty() {
        let bind = grant
            .bind
            .iter()
            .map(|l| LoginBinding {
                login: l.clone(),
                user_id,
            })
            .collect();
        ledger.remember(bind, asked).await?;
    }
    Ok(combine(grant.role, admin_team, viewer_team))
}

/// One person's team checks: cached answers first, GitHub for the rest (kept in `asked`).
struct TeamCheck<'a> {
    env: &'a Env,
    login: &'a str,
    user_id: u64,
    now: i64,
    ttl: u64,
    cached: &'a [CachedMembership],
    asked: &'a mut Vec<CachedMembership>,
}

impl TeamCheck<'_> {
    async fn member(&mut self, team: &Team) -> Result<bool, ApiError> {
        let key = team.key();
        if let Some(m) = self
            .cached
            .iter()
            .find(|m| m.team == key && m.fresh(self.now, self.ttl))
        {
            return Ok(m.member);
        }
        let member = ask_github(self.env, team, self.login).await? == Membership::Active;
        self.asked.push(CachedMembership {
            team: key,
            user_id: self.user_id,
            member,
            checked_at_ms: self.now,
        });
        Ok(member)
    }
}

/// GitHub's answer about `login` in `team`, with the org's installation token narrowed to
/// `members: read`. Any failure is `transient` (503): never a grant.
async fn ask_github(env: &Env, team: &Team, login: &str) -> Result<Membership, ApiError> {
    let org = OrgAccess::require(env)?;
    if !org.org().eq_ignore_ascii_case(&team.org) {
        // Only the org's own credentials are used, and they only read their own org.
        return Err(ApiError::Misconfigured(
            "ADMIN_GITHUB_TEAM / VIEWER_GITHUB_TEAM (the team must be in GITHUB_ORG)".into(),
        ));
    }
    let token = match org.setting.auth {
        OrgAuth::Installation(id) => {
            let scope = TokenScope {
                repositories: vec![],
                permissions: BTreeMap::from([("members".to_owned(), "read".to_owned())]),
            };
            match InstallationClient::new(env, id)?.token(&scope).await {
                Ok(grant) => grant.token,
                Err(e @ ApiError::Misconfigured(_)) => return Err(e),
                Err(e) => {
                    crate::log::event(
                        "warn",
                        "team check: no org token",
                        serde_json::json!({"errorCode": e.code()}),
                    );
                    return Err(team_check_failed(e.retry_after_secs()));
                }
            }
        }
        OrgAuth::Token => settings::require(env, settings::GITHUB_TOKEN)?,
    };
    let answer = GithubClient::from_env(env)?
        .send(
            Method::Get,
            &team.membership_path(login),
            &token,
            None,
            Idempotent::Yes,
        )
        .await;
    let (status, state) = match &answer {
        Ok(resp) => {
            #[derive(serde::Deserialize)]
            struct Answer {
                state: Option<String>,
            }
            let state = resp.json::<Answer>().ok().and_then(|a| a.state);
            (resp.status, state)
        }
        Err(GithubError::NotFound) => (404, None),
        Err(_) => (0, None),
    };
    membership(status, state.as_deref()).ok_or_else(|| {
        let retry = match &answer {
            Err(GithubError::RateLimited { retry_after_secs }) => *retry_after_secs,
            _ => None,
        };
        crate::log::event(
            "warn",
            "team check failed",
            serde_json::json!({"team": team.key(), "status": status}),
        );
        team_check_failed(retry)
    })
}

/// Runs a staff write with its audit entry: recorded before the handler runs (a write that
/// cannot be recorded is not made: the error is answered instead), completed with the status
/// before the answer leaves.
pub async fn audited<F>(env: &Env, actor: Actor, m: &Matched, run: F) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<Response, ApiError>>,
{
    let ledger = AdminAuditClient::new(env)?;
    let entry = AuditEntry::new(
        actor,
        m.spec.method,
        m.spec.path,
        m.params(),
        crate::log::current(),
    );
    let seq = ledger.begin(entry).await?;
    let result = run.await;
    let status = match &result {
        Ok(r) => r.status_code(),
        Err(e) => e.status(),
    };
    if let Err(e) = ledger.finish(seq, status).await {
        // The entry is there (without its status); the answer is not withheld for that.
        crate::log::event(
            "error",
            "admin audit: status not recorded",
            serde_json::json!({"seq": seq, "status": status, "errorCode": e.code()}),
        );
    }
    result
}

/// `GET /api/audit`.
pub async fn list_audit(req: Request, env: &Env) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let query = parse_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let page = AdminAuditClient::new(env)?.list(query).await?;
    Ok(json_response(200, &page))
}

/// Whether the route is a staff write (audited).
pub fn audits(m: &Matched) -> bool {
    matches!(m.spec.auth, ghplane_core::routes::Auth::Staff { .. }) && is_write(m.spec.method)
}
