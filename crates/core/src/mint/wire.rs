//! The mint's conversations with GitHub and its answers to clients, as bytes.
//!
//! **Invariant:** every body the mint sends is fullsend's (field names, field order, Go's
//! escaping, trailing newline), and every GitHub answer it acts on is judged the way
//! fullsend judges it: an installation lookup is "not covered" only on 404 and only for a
//! named repository, any other failure is a GitHub failure (502), and a token is accepted
//! only from a 201 with a non-empty `token`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::denial::Denial;
use super::oidc::ActionsClaims;
use super::policy::{Decision, Policy};
use super::request::RepoScope;
use super::text::{eq_fold, go_json_escape, go_lower};
use crate::ids::InstallationId;

/// fullsend's Worker limits `POST /v1/token` to this many requests…
pub const RATE_LIMIT_REQUESTS: u32 = 60;
/// …per this many seconds, per host and client IP.
pub const RATE_LIMIT_PERIOD_SECS: u32 = 60;
/// Every mint answer is JSON.
pub const CONTENT_TYPE: &str = "application/json";
/// fullsend sends `Cache-Control: no-store` on every answer but `/health`'s; a token or
/// an error must never be cached by anything in between.
pub const CACHE_CONTROL: &str = "no-store";
pub const GITHUB_API: &str = "https://api.github.com";

/// The limiter key of fullsend's Worker: `<host>:/v1/token:<CF-Connecting-IP or unknown>`.
pub fn rate_limit_key(host: &str, client_ip: Option<&str>) -> String {
    format!("{host}:/v1/token:{}", client_ip.unwrap_or("unknown"))
}

/// What GitHub said about an App's installation on an org or repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallationAnswer {
    Found(InstallationId),
    /// 404: the App is not installed there (or not on that repository).
    NotFound,
    /// Anything else, including an installation on another account.
    Failed(String),
}

/// Judges `GET /orgs/{org}/installation` or `GET /repos/{org}/{repo}/installation`
/// (App JWT). The installation must belong to `org` (ignoring case) so a token can never
/// be minted on an account the policy did not name.
pub fn installation_answer(status: u16, body: &[u8], org: &str) -> InstallationAnswer {
    if status == 404 {
        return InstallationAnswer::NotFound;
    }
    if status != 200 {
        return InstallationAnswer::Failed(format!("installation lookup returned status {status}"));
    }
    let Some(Ok(v)) = serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .next()
    else {
        return InstallationAnswer::Failed("decoding installation".into());
    };
    let id = v.get("id").and_then(Value::as_u64).unwrap_or(0);
    let login = v
        .get("account")
        .and_then(|a| a.get("login"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let Ok(id) = InstallationId::from_u64(id) else {
        return InstallationAnswer::Failed(format!("no installation found for {org}"));
    };
    if !eq_fold(login, org) {
        return InstallationAnswer::Failed(format!(
            "installation for {org} belongs to {}, not {org}",
            crate::ids::truncate(login, 60)
        ));
    }
    InstallationAnswer::Found(id)
}

impl Decision {
    /// The installation lookups to make, in order: the org's for a whole-installation
    /// token, else one per named repository (stop at the first answer that is not
    /// `Found`, or whose id differs from the first).
    pub fn installation_paths(&self) -> Vec<String> {
        match &self.repos {
            RepoScope::Installation => vec![format!("/orgs/{}/installation", self.target_org)],
            RepoScope::Repos(repos) => repos
                .iter()
                .map(|r| format!("/repos/{}/{r}/installation", self.target_org))
                .collect(),
        }
    }

    /// The installation to mint on, from the answers to [`Self::installation_paths`]
    /// (a missing answer counts as a failure). All named repositories must be covered by
    /// one installation: 422 with fullsend's sentence otherwise.
    pub fn resolve_installation(
        &self,
        answers: &[InstallationAnswer],
    ) -> Result<InstallationId, Denial> {
        let org = &self.target_org;
        let failed = |why: &str| Denial::github_failure(why.to_owned());
        let not_covered = |repo: &str| {
            Denial::new(
                422,
                "repo_not_covered",
                format!("repository {org}/{repo} is not covered by the GitHub App installation"),
            )
        };
        let repos = match &self.repos {
            RepoScope::Installation => {
                return match answers.first() {
                    Some(InstallationAnswer::Found(id)) => Ok(*id),
                    Some(InstallationAnswer::NotFound) => Err(failed(&format!(
                        "getting org installation for {org} returned status 404"
                    ))),
                    Some(InstallationAnswer::Failed(why)) => Err(failed(why)),
                    None => Err(failed("no installation answer")),
                }
            }
            RepoScope::Repos(repos) => repos,
        };
        let mut first = None;
        for (i, repo) in repos.iter().enumerate() {
            let id = match answers.get(i) {
                Some(InstallationAnswer::Found(id)) => *id,
                Some(InstallationAnswer::NotFound) => return Err(not_covered(repo)),
                Some(InstallationAnswer::Failed(why)) => return Err(failed(why)),
                None => return Err(failed("no installation answer")),
            };
            match first {
                None => first = Some(id),
                Some(f) if f != id => {
                    return Err(Denial::new(
                        422,
                        "installation_mismatch",
                        format!(
                        "repository {org}/{repo} uses a different GitHub App installation than {}",
                        repos[0]
                    ),
                    ))
                }
                Some(_) => {}
            }
        }
        first.ok_or_else(|| failed("no repositories"))
    }

    /// Body of `POST /app/installations/{id}/access_tokens`: the role's permissions and,
    /// unless the whole installation was asked for, the named repositories.
    pub fn token_request_body(&self) -> String {
        let mut body = serde_json::json!({ "permissions": self.permissions });
        if let RepoScope::Repos(r) = &self.repos {
            body["repositories"] = serde_json::json!(r);
        }
        body.to_string()
    }
}

pub fn access_tokens_path(installation: InstallationId) -> String {
    format!("/app/installations/{installation}/access_tokens")
}

/// An installation token and what GitHub says it grants.
#[derive(Clone, PartialEq, Eq)]
pub struct GrantedToken {
    pub token: String,
    pub expires_at: String,
    /// `full_name`s of the repositories GitHub listed.
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
    pub repository_selection: String,
}

impl fmt::Debug for GrantedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantedToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("repositories", &self.repositories)
            .field("permissions", &self.permissions)
            .field("repository_selection", &self.repository_selection)
            .finish()
    }
}

/// Judges GitHub's answer to the access-token request.
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<GrantedToken, Denial> {
    #[derive(Deserialize)]
    struct Repo {
        #[serde(default)]
        full_name: Option<String>,
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        expires_at: Option<String>,
        #[serde(default)]
        permissions: Option<BTreeMap<String, String>>,
        #[serde(default)]
        repositories: Option<Vec<Repo>>,
        #[serde(default)]
        repository_selection: Option<String>,
    }
    if status != 201 {
        return Err(Denial::github_failure(format!(
            "creating installation token returned status {status}"
        )));
    }
    let a = serde_json::Deserializer::from_slice(body)
        .into_iter::<Answer>()
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| Denial::github_failure("decoding token response"))?;
    let token = a.token.unwrap_or_default();
    if token.is_empty() {
        return Err(Denial::github_failure("empty installation token returned"));
    }
    Ok(GrantedToken {
        token,
        expires_at: a.expires_at.unwrap_or_default(),
        repositories: a
            .repositories
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.full_name.unwrap_or_default())
            .collect(),
        permissions: a.permissions.unwrap_or_default(),
        repository_selection: a.repository_selection.unwrap_or_default(),
    })
}

impl GrantedToken {
    /// The 200 body: `token`, `expires_at`, then `granted_repos`, `granted_permissions`,
    /// `repository_selection` each only when non-empty.
    pub fn response_body(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            token: &'a str,
            expires_at: &'a str,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            granted_repos: &'a [String],
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            granted_permissions: &'a BTreeMap<String, String>,
            #[serde(skip_serializing_if = "str::is_empty")]
            repository_selection: &'a str,
        }
        go_body(&Body {
            token: &self.token,
            expires_at: &self.expires_at,
            granted_repos: &self.repositories,
            granted_permissions: &self.permissions,
            repository_selection: &self.repository_selection,
        })
    }

    /// Unix seconds of `expires_at`, when GitHub's timestamp parses.
    pub fn expires_at_unix(&self) -> Option<i64> {
        crate::time::parse_rfc3339_utc(&self.expires_at)
    }
}

/// `/health`: 200 `{"commit"?,"status":"ok","version"?}`, or 503
/// `{"reason","status":"unhealthy"}` when `problem` is set (keys sorted, as Go encodes a
/// map). fullsend sends no Cache-Control here.
pub fn health_response(problem: Option<&str>, version: &str, commit: &str) -> (u16, String) {
    let mut m = BTreeMap::new();
    if let Some(reason) = problem {
        m.insert("status", "unhealthy");
        m.insert("reason", reason);
        return (503, go_body(&m));
    }
    m.insert("status", "ok");
    if !version.is_empty() {
        m.insert("version", version);
    }
    if !commit.is_empty() {
        m.insert("commit", commit);
    }
    (200, go_body(&m))
}

/// `/v1/status` for a caller that passed [`Policy::authorize`]: its org (lowercased), the
/// allowed roles (`null` when none), the workflow host repos, and the version.
pub fn status_body(policy: &Policy, claims: &ActionsClaims, version: &str, commit: &str) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(skip_serializing_if = "String::is_empty")]
        org: String,
        roles: Option<&'a [String]>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        workflow_host_repos: Vec<&'a str>,
        #[serde(skip_serializing_if = "str::is_empty")]
        version: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        commit: &'a str,
    }
    let roles = policy.allowed_roles();
    go_body(&Body {
        org: go_lower(&claims.repository_owner),
        roles: (!roles.is_empty()).then_some(roles),
        workflow_host_repos: policy.workflow_host_repos().collect(),
        version,
        commit,
    })
}

fn go_body<T: Serialize>(v: &T) -> String {
    // Serializing these plain structs and maps cannot fail.
    go_json_escape(serde_json::to_string(v).unwrap_or_default()) + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mint::policy::{CallerMode, Decision};

    fn decision(repos: RepoScope) -> Decision {
        Decision {
            role: "coder".into(),
            app_role: "coder".into(),
            app_id: "200".into(),
            target_org: "test-org".into(),
            repos,
            permissions: crate::mint::roles::builtin_permissions("coder").unwrap(),
            caller_mode: CallerMode::PerOrg,
            cross_org: false,
            shape: None,
            foreign_grant: None,
        }
    }

    fn id(n: u64) -> InstallationId {
        InstallationId::from_u64(n).unwrap()
    }

    fn repos(names: &[&str]) -> RepoScope {
        RepoScope::Repos(names.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn installation_answers() {
        let ok = br#"{"id":12345,"account":{"login":"Test-Org"}}"#;
        assert_eq!(
            installation_answer(200, ok, "test-org"),
            InstallationAnswer::Found(id(12345))
        );
        assert_eq!(
            installation_answer(404, b"", "test-org"),
            InstallationAnswer::NotFound
        );
        for (status, body) in [
            (500, &ok[..]),
            (403, &ok[..]),
            (200, br#"{"id":0,"account":{"login":"test-org"}}"#),
            (200, br#"{"id":1,"account":{"login":"other-org"}}"#),
            (200, b"nope"),
        ] {
            assert!(
                matches!(
                    installation_answer(status, body, "test-org"),
                    InstallationAnswer::Failed(_)
                ),
                "{status} {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn single_repo_not_covered_is_422() {
        let d = decision(repos(&["uncovered-repo"]));
        assert_eq!(
            d.installation_paths(),
            ["/repos/test-org/uncovered-repo/installation"]
        );
        let e = d
            .resolve_installation(&[InstallationAnswer::NotFound])
            .unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(
            e.message,
            "repository test-org/uncovered-repo is not covered by the GitHub App installation"
        );
    }

    #[test]
    fn multi_repo_gap_mismatch_and_transient() {
        let d = decision(repos(&["repo-a", "repo-b"]));
        assert_eq!(
            d.resolve_installation(&[
                InstallationAnswer::Found(id(1)),
                InstallationAnswer::Found(id(1))
            ]),
            Ok(id(1))
        );
        let gap = d
            .resolve_installation(&[
                InstallationAnswer::Found(id(1)),
                InstallationAnswer::NotFound,
            ])
            .unwrap_err();
        assert_eq!((gap.status, gap.code), (422, "repo_not_covered"));
        assert!(gap.message.contains("test-org/repo-b"));
        let mismatch = d
            .resolve_installation(&[
                InstallationAnswer::Found(id(1)),
                InstallationAnswer::Found(id(2)),
            ])
            .unwrap_err();
        assert_eq!(mismatch.status, 422);
        assert_eq!(
            mismatch.message,
            "repository test-org/repo-b uses a different GitHub App installation than repo-a"
        );
        let transient = d
            .resolve_installation(&[
                InstallationAnswer::Found(id(1)),
                InstallationAnswer::Failed("503".into()),
            ])
            .unwrap_err();
        assert_eq!(
            (transient.status, transient.message.as_str()),
            (502, "mint failed")
        );
        let short = d
            .resolve_installation(&[InstallationAnswer::Found(id(1))])
            .unwrap_err();
        assert_eq!(short.status, 502);
    }

    #[test]
    fn org_installation_failures_are_502() {
        let d = decision(RepoScope::Installation);
        assert_eq!(d.installation_paths(), ["/orgs/test-org/installation"]);
        assert_eq!(
            d.resolve_installation(&[InstallationAnswer::Found(id(9))]),
            Ok(id(9))
        );
        for a in [
            InstallationAnswer::NotFound,
            InstallationAnswer::Failed("x".into()),
        ] {
            assert_eq!(d.resolve_installation(&[a]).unwrap_err().status, 502);
        }
    }

    #[test]
    fn token_request_bodies() {
        let d = decision(repos(&["api"]));
        let v: Value = serde_json::from_str(&d.token_request_body()).unwrap();
        assert_eq!(v["repositories"], serde_json::json!(["api"]));
        assert_eq!(v["permissions"]["contents"], "write");
        let whole = decision(RepoScope::Installation).token_request_body();
        assert!(!whole.contains("repositories"));
        assert_eq!(
            access_tokens_path(id(12345)),
            "/app/installations/12345/access_tokens"
        );
    }

    #[test]
    fn token_response_and_body() {
        let answer = br#"{"token":"ghs_x","expires_at":"2026-01-01T00:00:00Z",
            "permissions":{"metadata":"read","contents":"write"},
            "repositories":[{"full_name":"test-org/api","id":1}],
            "repository_selection":"selected"}"#;
        let g = parse_token_response(201, answer).unwrap();
        assert_eq!(g.repositories, ["test-org/api"]);
        assert_eq!(g.expires_at_unix(), Some(1_767_225_600));
        assert_eq!(
            g.response_body(),
            "{\"token\":\"ghs_x\",\"expires_at\":\"2026-01-01T00:00:00Z\",\"granted_repos\":[\"test-org/api\"],\"granted_permissions\":{\"contents\":\"write\",\"metadata\":\"read\"},\"repository_selection\":\"selected\"}\n"
        );
        assert!(!format!("{g:?}").contains("ghs_x"));
        let bare = parse_token_response(201, br#"{"token":"ghs_y","expires_at":"t"}"#).unwrap();
        assert_eq!(
            bare.response_body(),
            "{\"token\":\"ghs_y\",\"expires_at\":\"t\"}\n"
        );
        let all =
            parse_token_response(201, br#"{"token":"t","repository_selection":"all"}"#).unwrap();
        assert!(!all.response_body().contains("granted_repos"));
        for (status, body) in [
            (200, &br#"{"token":"t"}"#[..]),
            (422, br#"{"message":"x"}"#),
            (201, br#"{"token":""}"#),
            (201, b"{}"),
            (201, b"junk"),
        ] {
            let e = parse_token_response(status, body).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (502, "mint failed"));
        }
    }

    #[test]
    fn health_bodies() {
        assert_eq!(
            health_response(None, "", ""),
            (200, "{\"status\":\"ok\"}\n".into())
        );
        assert_eq!(
            health_response(None, "1.2.3", "abc"),
            (
                200,
                "{\"commit\":\"abc\",\"status\":\"ok\",\"version\":\"1.2.3\"}\n".into()
            )
        );
        let (s, b) = health_response(Some(crate::mint::policy::LEGACY_APP_IDS_REASON), "1", "");
        assert_eq!(s, 503);
        assert_eq!(
            b,
            "{\"reason\":\"ROLE_APP_IDS contains legacy org/role keys but no role-only keys; migration required\",\"status\":\"unhealthy\"}\n"
        );
    }

    #[test]
    fn rate_limit_key_like_fullsend() {
        assert_eq!(
            rate_limit_key("mint.example", Some("1.2.3.4")),
            "mint.example:/v1/token:1.2.3.4"
        );
        assert_eq!(rate_limit_key("h", None), "h:/v1/token:unknown");
    }
}
