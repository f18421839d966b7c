//! FOREIGN grants: which `FULLSEND_FOREIGN_<ROLE>_REPOS` variables a request needs read
//! (GitHub request shapes for the adapter), and what the reads answered.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::super::roles;
use super::super::text::{eq_fold, go_lower, split_csv};

/// The org or repository whose `FULLSEND_FOREIGN_<ROLE>_REPOS` variable to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignScope {
    /// An org variable: authorizes installation-wide tokens on a foreign org.
    Org { org: String },
    /// A repository variable: authorizes tokens naming that repository.
    Repo { org: String, repo: String },
}

/// One FOREIGN variable read. The adapter, as the role's App (`app_id`, key of
/// `roles::pem_secret_name(role)`): finds the installation ([`Self::installation_path`],
/// whose `account.login` must equal the org ignoring case), creates a token with
/// [`Self::token_request_body`], reads [`Self::variable_path`] with it (404 = unset), and
/// records the outcome in [`ForeignGrants`]. Any other failure is a failed read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignLookup {
    pub scope: ForeignScope,
    pub role: String,
    pub app_id: String,
}

impl ForeignLookup {
    pub fn org(&self) -> &str {
        match &self.scope {
            ForeignScope::Org { org } | ForeignScope::Repo { org, .. } => org,
        }
    }

    /// `FULLSEND_FOREIGN_<ROLE>_REPOS`.
    pub fn variable(&self) -> String {
        foreign_variable_name(&self.role)
    }

    /// fullsend's cache key (successful reads are cached
    /// [`FOREIGN_CACHE_TTL_SECS`](super::FOREIGN_CACHE_TTL_SECS)).
    pub fn cache_key(&self) -> String {
        match &self.scope {
            ForeignScope::Org { org } => format!("{}/{}", go_lower(org), go_lower(&self.role)),
            ForeignScope::Repo { org, repo } => format!(
                "{}/{}/{}",
                go_lower(org),
                go_lower(repo),
                go_lower(&self.role)
            ),
        }
    }

    /// GitHub REST path finding the App's installation (App JWT).
    pub fn installation_path(&self) -> String {
        match &self.scope {
            ForeignScope::Org { org } => format!("/orgs/{org}/installation"),
            ForeignScope::Repo { org, repo } => format!("/repos/{org}/{repo}/installation"),
        }
    }

    /// Body of `POST /app/installations/{id}/access_tokens` for the token that reads the
    /// variable: only the variable-read permission, and only that repository.
    pub fn token_request_body(&self) -> String {
        let body = match &self.scope {
            ForeignScope::Org { .. } => serde_json::json!({
                "permissions": roles::to_permissions(roles::FOREIGN_ORG_POLICY_PERMISSIONS),
            }),
            ForeignScope::Repo { repo, .. } => serde_json::json!({
                "permissions": roles::to_permissions(roles::FOREIGN_REPO_POLICY_PERMISSIONS),
                "repositories": [repo],
            }),
        };
        body.to_string()
    }

    /// GitHub REST path of the variable (installation token).
    pub fn variable_path(&self) -> String {
        let name = self.variable();
        match &self.scope {
            ForeignScope::Org { org } => format!("/orgs/{org}/actions/variables/{name}"),
            ForeignScope::Repo { org, repo } => {
                format!("/repos/{org}/{repo}/actions/variables/{name}")
            }
        }
    }
}

/// `FULLSEND_FOREIGN_<ROLE>_REPOS` (role uppercased, hyphens kept).
pub fn foreign_variable_name(role: &str) -> String {
    format!("FULLSEND_FOREIGN_{}_REPOS", role.to_uppercase())
}

/// A FOREIGN variable's value: comma list of `owner/repo` (that repository) or `owner`
/// (any repository of that owner).
pub fn parse_foreign_allowlist(value: &str) -> Vec<String> {
    split_csv(value)
}

/// Whether an allow-list admits the calling workflow's repository (case-insensitive).
pub fn caller_allowed(allowlist: &[String], repository: &str, repository_owner: &str) -> bool {
    allowlist.iter().any(|e| {
        if e.contains('/') {
            eq_fold(e, repository)
        } else {
            eq_fold(e, repository_owner)
        }
    })
}

/// Decodes a 200 answer of GitHub's "get a variable" (`{"name","value"}`) to its value.
/// A 404 is not an answer to decode: it means unset, record `None`.
pub fn variable_value(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Var {
        #[serde(default)]
        value: Option<String>,
    }
    serde_json::from_slice::<Var>(body)
        .ok()
        .map(|v| v.value.unwrap_or_default())
}

/// The FOREIGN variables the adapter read, by lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForeignGrants {
    /// Cache key → allow-list, or `None` for a failed read.
    read: BTreeMap<String, Option<Vec<String>>>,
}

impl ForeignGrants {
    pub fn new() -> Self {
        Self::default()
    }

    /// A read that answered: `Some(value)` (200) or `None` (404, unset).
    pub fn record_value(&mut self, lookup: &ForeignLookup, value: Option<&str>) {
        let list = value.map(parse_foreign_allowlist).unwrap_or_default();
        self.read.insert(lookup.cache_key(), Some(list));
    }

    /// A read that failed (installation lookup, token, or variable call).
    pub fn record_failure(&mut self, lookup: &ForeignLookup) {
        self.read.insert(lookup.cache_key(), None);
    }

    /// The allow-list read for `lookup`, to cache; `None` if it failed or was not read.
    pub fn allowlist(&self, lookup: &ForeignLookup) -> Option<&[String]> {
        self.read.get(&lookup.cache_key())?.as_deref()
    }

    /// `None` when the read failed or is missing.
    pub fn allows(&self, lookup: &ForeignLookup, repository: &str, owner: &str) -> Option<bool> {
        self.allowlist(lookup)
            .map(|list| caller_allowed(list, repository, owner))
    }
}
