//! The GitHub App Manifest of an installer's app, where it is posted, and what GitHub's
//! conversion (`POST /app-manifests/{code}/conversions`) returns.
//!
//! **Invariant:** the app asks for exactly [`PERMISSIONS`] and [`EVENTS`] (the README lists
//! them), is private, and points its webhook, redirect and setup URLs at the worker that
//! created the installer.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::installer::{AccountKind, InstallerRecord, Target};
use crate::tenancy::app::PlainAppInput;

/// What ghplane does with a tenant's repository: read it, push branches, work on issues,
/// open pull requests, record deployments.
pub const PERMISSIONS: &[(&str, &str)] = &[
    ("contents", "write"),
    ("deployments", "write"),
    ("issues", "write"),
    ("metadata", "read"),
    ("pull_requests", "write"),
];

/// Issues become work, pushes deploy, renames keep projects linked. (`installation` and
/// `installation_repositories` reach every app without a subscription.)
pub const EVENTS: &[&str] = &["issues", "push", "repository"];

/// GitHub limits app names to 34 characters.
pub const MAX_APP_NAME: usize = 34;

/// `ghplane-<owner>-<name>` cut to fit, plus the installer's first six hex digits, which
/// keeps names unique on GitHub (app names are global).
pub fn app_name(record: &InstallerRecord) -> String {
    let base = match &record.target {
        Target::Repo { repository, .. } => {
            format!("ghplane-{}-{}", repository.owner(), repository.name())
        }
        Target::Org { org, .. } => format!("ghplane-{org}"),
    };
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let suffix = &record.id.as_str()[..6];
    let room = MAX_APP_NAME - suffix.len() - 1;
    let head: String = cleaned.chars().take(room).collect();
    format!("{}-{suffix}", head.trim_end_matches('-'))
}

pub fn manifest(record: &InstallerRecord) -> Value {
    let base = &record.base_url;
    let description = match &record.target {
        Target::Repo { repository, .. } => format!(
            "ghplane's dedicated app for {repository} only. Install it on that one repository."
        ),
        Target::Org { org, .. } => format!("ghplane's org-level app for {org}."),
    };
    json!({
        "name": app_name(record),
        "url": base,
        "description": description,
        "hook_attributes": {"url": format!("{base}/webhooks/github"), "active": true},
        "redirect_url": format!("{base}/setup/callback"),
        "setup_url": record.setup_url(),
        "setup_on_update": true,
        "public": false,
        "default_permissions": PERMISSIONS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "default_events": EVENTS,
    })
}

/// Where the setup page posts the manifest: the owner's organisation, or the signed-in
/// user's account.
pub fn form_action(web_base: &str, record: &InstallerRecord, state: &str) -> String {
    let web = web_base.trim_end_matches('/');
    match record.target.account() {
        AccountKind::Organization => format!(
            "{web}/organizations/{}/settings/apps/new?state={state}",
            record.target.owner()
        ),
        AccountKind::User => format!("{web}/settings/apps/new?state={state}"),
    }
}

#[derive(Deserialize)]
struct Owner {
    login: String,
}

/// The fields of GitHub's conversion answer ghplane keeps.
#[derive(Deserialize)]
pub struct Conversion {
    pub id: u64,
    slug: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    webhook_secret: Option<String>,
    pem: String,
    html_url: String,
    owner: Option<Owner>,
}

impl Conversion {
    /// The registry input for the new app, checked like `PUT /api/apps/{id}` (the key must be
    /// a usable RSA key) before anything is stored.
    pub fn app_input(&self, target: &Target) -> Result<PlainAppInput, ApiError> {
        let mut body = json!({
            "slug": self.slug, "clientId": self.client_id, "clientSecret": self.client_secret,
            "webhookSecret": self.webhook_secret, "privateKey": self.pem, "htmlUrl": self.html_url,
            "owner": self.owner.as_ref().map(|o| o.login.as_str()),
        });
        match target {
            Target::Repo { repository, .. } => {
                body["mode"] = json!("repo");
                body["repository"] = json!(repository);
            }
            Target::Org { .. } => body["mode"] = json!("org"),
        }
        PlainAppInput::parse(body.to_string().as_bytes())
    }

    pub fn slug(&self) -> &str {
        &self.slug
    }

    pub fn html_url(&self) -> &str {
        &self.html_url
    }

    pub fn owner(&self) -> Option<&str> {
        self.owner.as_ref().map(|o| o.login.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::{parse_input, InstallerId};

    const PEM: &str = include_str!("../../tests/fixtures/test-rsa-2048-pkcs1.pem");

    fn record(body: Value) -> InstallerRecord {
        InstallerRecord::new(
            InstallerId::from_random(&[0xa1; 8]),
            parse_input(body.to_string().as_bytes()).unwrap(),
            "https://gp.example",
            "t",
        )
    }

    #[test]
    fn manifest_has_github_required_keys_and_only_our_permissions() {
        let r =
            record(json!({"mode": "repo", "repository": "octo-org/a-very-long-repository-name"}));
        let m = manifest(&r);
        for key in [
            "name",
            "url",
            "redirect_url",
            "public",
            "default_permissions",
            "default_events",
        ] {
            assert!(!m[key].is_null(), "{key}");
        }
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://gp.example/webhooks/github"
        );
        assert_eq!(m["redirect_url"], "https://gp.example/setup/callback");
        assert_eq!(m["setup_url"], "https://gp.example/setup/a1a1a1a1a1a1a1a1");
        assert_eq!(m["public"], false);
        // Exactly the README's list ("Permissions the apps ask for (nothing else)"), written
        // out here rather than read from PERMISSIONS, so a change to either is caught.
        assert_eq!(
            m["default_permissions"],
            json!({"contents": "write", "deployments": "write", "issues": "write",
                   "metadata": "read", "pull_requests": "write"})
        );
        assert_eq!(m["default_events"], json!(["issues", "push", "repository"]));
        assert_eq!(m["setup_on_update"], true);
        assert_eq!(m["hook_attributes"]["active"], true);
        let name = m["name"].as_str().unwrap();
        assert!(
            name.len() <= MAX_APP_NAME && name.ends_with("-a1a1a1"),
            "{name}"
        );
        assert!(name.starts_with("ghplane-octo-org-a-very"), "{name}");
    }

    #[test]
    fn form_posts_to_the_owner() {
        let org = record(json!({"mode": "repo", "repository": "octo/api"}));
        assert_eq!(
            form_action("https://github.com/", &org, "s"),
            "https://github.com/organizations/octo/settings/apps/new?state=s"
        );
        let user = record(json!({"mode": "repo", "repository": "me/api", "account": "user"}));
        assert_eq!(
            form_action("https://github.com", &user, "s"),
            "https://github.com/settings/apps/new?state=s"
        );
    }

    #[test]
    fn conversion_becomes_a_checked_repo_app() {
        let r = record(json!({"mode": "repo", "repository": "octo/api"}));
        let c: Conversion = serde_json::from_value(json!({
            "id": 7, "slug": "gp", "client_id": "Iv1.x", "client_secret": "cs", "webhook_secret": "ws",
            "pem": PEM, "html_url": "https://github.com/apps/gp", "owner": {"login": "octo"}
        }))
        .unwrap();
        let input = c.app_input(&r.target).unwrap();
        assert_eq!(
            input.mode,
            crate::tenancy::app::AppMode::Repo {
                repository: crate::ids::RepoFullName::parse("octo/api").unwrap()
            }
        );
        let bad: Conversion = serde_json::from_value(json!({
            "id": 7, "slug": "gp", "pem": "nope", "html_url": "https://github.com/apps/gp"
        }))
        .unwrap();
        assert!(bad.app_input(&r.target).is_err());
    }
}
