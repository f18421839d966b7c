//! Reads a verified payload into the [`Event`] model.
//!
//! **Invariant:** this runs only after [`crate::webhook::verify`] accepted the exact bytes,
//! and never builds a `serde_json::Value` (or any tree) of the body: each event has its own
//! `Deserialize` struct, so serde skips everything else as it reads, and a 25 MB push costs
//! one pass and a few strings. Any payload nested deeper than [`MAX_DEPTH`] is refused,
//! whichever field is deep.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::ids::{truncate, AppId, InstallationId, RepoFullName, RepoId};
use crate::webhook::error::WebhookError;
use crate::webhook::event::{
    Account, Actor, CommitSha, Event, EventKind, HeadCommit, Installation, Issue, Push, RepoRef,
    Repository, RepositorySelection, MAX_DEPTH, MAX_MESSAGE_LEN, MAX_TITLE_LEN,
};
use crate::webhook::json_depth::nesting_within;

/// Reads `body` as the `event` named by `X-GitHub-Event`. Only events ghplane acts on get
/// their specific fields read; for any other event an unexpected shape in a field we never
/// use cannot turn a delivery into an error.
pub fn parse_event(event: &str, body: &[u8]) -> Result<Event, WebhookError> {
    // Derived structs also accept a JSON array (fields by position); a payload is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(WebhookError::MalformedPayload(
            "the payload must be a JSON object".into(),
        ));
    }
    if !nesting_within(body, MAX_DEPTH) {
        return Err(WebhookError::MalformedPayload(format!(
            "the payload nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let name = event.to_owned();
    match event {
        "installation" => {
            let p: InstallationPayload = serde_json::from_slice(body)?;
            let kind = EventKind::Installation {
                repositories: repo_refs(p.repositories)?,
            };
            let ev = envelope(name, p.action, p.installation, p.repository, p.sender, kind)?;
            require(ev.installation.is_some(), "installation", event)?;
            Ok(ev)
        }
        "installation_repositories" => {
            let p: InstallationRepositoriesPayload = serde_json::from_slice(body)?;
            let kind = EventKind::InstallationRepositories {
                repository_selection: p.repository_selection.and_then(selection),
                added: repo_refs(p.repositories_added)?,
                removed: repo_refs(p.repositories_removed)?,
            };
            let ev = envelope(name, p.action, p.installation, p.repository, p.sender, kind)?;
            require(ev.installation.is_some(), "installation", event)?;
            Ok(ev)
        }
        "push" => {
            let p: PushPayload = serde_json::from_slice(body)?;
            let kind = EventKind::Push(Push {
                git_ref: p.git_ref,
                before: p.before,
                after: p.after,
                created: p.created.unwrap_or(false),
                deleted: p.deleted.unwrap_or(false),
                forced: p.forced.unwrap_or(false),
                head_commit: p.head_commit.map(|c| HeadCommit {
                    id: c.id,
                    message: truncate(&c.message, MAX_MESSAGE_LEN),
                    timestamp: c.timestamp,
                }),
                pusher: p.pusher.and_then(|p| p.name),
            });
            let ev = envelope(name, p.action, p.installation, p.repository, p.sender, kind)?;
            require(ev.repository.is_some(), "repository", event)?;
            Ok(ev)
        }
        "issues" => {
            let p: IssuesPayload = serde_json::from_slice(body)?;
            let kind = EventKind::Issues {
                issue: Issue {
                    id: p.issue.id,
                    number: p.issue.number,
                    title: truncate(&p.issue.title, MAX_TITLE_LEN),
                },
                label: p.label.map(|l| l.name),
            };
            let ev = envelope(name, p.action, p.installation, p.repository, p.sender, kind)?;
            require(ev.repository.is_some(), "repository", event)?;
            Ok(ev)
        }
        "repository" => {
            let p: RepositoryPayload = serde_json::from_slice(body)?;
            let renamed_from = p
                .changes
                .and_then(|c| c.repository)
                .and_then(|r| r.name)
                .map(|n| n.from);
            let kind = EventKind::Repository { renamed_from };
            let ev = envelope(name, p.action, p.installation, p.repository, p.sender, kind)?;
            require(ev.repository.is_some(), "repository", event)?;
            Ok(ev)
        }
        "ping" => {
            let p: PingPayload = serde_json::from_slice(body)?;
            let app_id = p.hook.and_then(|h| h.app_id).map(app_id).transpose()?;
            let kind = EventKind::Ping {
                hook_id: p.hook_id,
                app_id,
            };
            envelope(name, p.action, p.installation, p.repository, p.sender, kind)
        }
        _ => {
            let p: EnvelopePayload = serde_json::from_slice(body)?;
            envelope(
                name,
                p.action,
                p.installation,
                p.repository,
                p.sender,
                EventKind::Other,
            )
        }
    }
}

fn require(present: bool, field: &str, event: &str) -> Result<(), WebhookError> {
    if present {
        Ok(())
    } else {
        Err(WebhookError::MalformedPayload(format!(
            "a {event} payload needs `{field}`"
        )))
    }
}

fn envelope(
    name: String,
    action: Option<String>,
    installation: Option<RawInstallation>,
    repository: Option<RawRepository>,
    sender: Option<RawActor>,
    kind: EventKind,
) -> Result<Event, WebhookError> {
    Ok(Event {
        name,
        action,
        installation: installation.map(RawInstallation::into_typed).transpose()?,
        repository: repository.map(RawRepository::into_typed).transpose()?,
        sender: sender.map(|s| Actor {
            login: s.login,
            id: s.id,
            kind: s.kind,
        }),
        kind,
    })
}

fn malformed(e: String) -> WebhookError {
    WebhookError::MalformedPayload(e)
}

fn app_id(n: u64) -> Result<AppId, WebhookError> {
    AppId::from_u64(n).map_err(malformed)
}

fn repo_refs(list: Option<Vec<RawRepoRef>>) -> Result<Vec<RepoRef>, WebhookError> {
    list.unwrap_or_default()
        .into_iter()
        .map(|r| {
            Ok(RepoRef {
                id: RepoId::from_u64(r.id).map_err(malformed)?,
                full_name: r.full_name,
                name: r.name,
                private: r.private,
            })
        })
        .collect()
}

/// A selection GitHub may add later is read as "not stated" rather than failing the
/// delivery; the adapter then keeps what it had.
fn selection(s: String) -> Option<RepositorySelection> {
    match s.as_str() {
        "all" => Some(RepositorySelection::All),
        "selected" => Some(RepositorySelection::Selected),
        _ => None,
    }
}

// The payload structs. Each repeats the envelope instead of using `#[serde(flatten)]`,
// which would buffer every unknown field (a push's whole `commits`) into a tree.
macro_rules! payload {
    ($name:ident { $($(#[$meta:meta])* $field:ident : $ty:ty,)* }) => {
        #[derive(Deserialize)]
        struct $name {
            action: Option<String>,
            installation: Option<RawInstallation>,
            repository: Option<RawRepository>,
            sender: Option<RawActor>,
            $($(#[$meta])* $field: $ty,)*
        }
    };
}

payload!(EnvelopePayload {});
payload!(InstallationPayload {
    repositories: Option<Vec<RawRepoRef>>,
});
payload!(InstallationRepositoriesPayload {
    repository_selection: Option<String>,
    repositories_added: Option<Vec<RawRepoRef>>,
    repositories_removed: Option<Vec<RawRepoRef>>,
});
payload!(PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    before: CommitSha,
    after: CommitSha,
    created: Option<bool>,
    deleted: Option<bool>,
    forced: Option<bool>,
    head_commit: Option<RawCommit>,
    pusher: Option<RawPusher>,
});
payload!(IssuesPayload {
    issue: RawIssue,
    label: Option<RawLabel>,
});
payload!(RepositoryPayload {
    changes: Option<RawChanges>,
});
payload!(PingPayload {
    hook_id: Option<u64>,
    hook: Option<RawHook>,
});

#[derive(Deserialize)]
struct RawInstallation {
    id: u64,
    app_id: Option<u64>,
    account: Option<RawAccount>,
    repository_selection: Option<String>,
    permissions: Option<BTreeMap<String, String>>,
    events: Option<Vec<String>>,
}

impl RawInstallation {
    fn into_typed(self) -> Result<Installation, WebhookError> {
        Ok(Installation {
            id: InstallationId::from_u64(self.id).map_err(malformed)?,
            app_id: self.app_id.map(app_id).transpose()?,
            account: self.account.and_then(RawAccount::into_typed),
            repository_selection: self.repository_selection.and_then(selection),
            permissions: self.permissions,
            events: self.events,
        })
    }
}

#[derive(Deserialize)]
struct RawAccount {
    login: Option<String>,
    slug: Option<String>,
    id: u64,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl RawAccount {
    fn into_typed(self) -> Option<Account> {
        let (login, kind) = match (self.login, self.slug) {
            (Some(login), _) => (login, self.kind.unwrap_or_default()),
            (None, Some(slug)) => (slug, self.kind.unwrap_or_else(|| "Enterprise".into())),
            (None, None) => return None,
        };
        Some(Account {
            login,
            id: self.id,
            kind,
        })
    }
}

#[derive(Deserialize)]
struct RawRepository {
    id: u64,
    node_id: String,
    full_name: RepoFullName,
    name: String,
    owner: RawLogin,
    private: bool,
    default_branch: Option<String>,
}

impl RawRepository {
    fn into_typed(self) -> Result<Repository, WebhookError> {
        Ok(Repository {
            id: RepoId::from_u64(self.id).map_err(malformed)?,
            node_id: self.node_id,
            full_name: self.full_name,
            name: self.name,
            owner_login: self.owner.login,
            private: self.private,
            default_branch: self.default_branch,
        })
    }
}

#[derive(Deserialize)]
struct RawLogin {
    login: String,
}

#[derive(Deserialize)]
struct RawActor {
    login: String,
    id: u64,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RawRepoRef {
    id: u64,
    full_name: RepoFullName,
    name: Option<String>,
    private: Option<bool>,
}

#[derive(Deserialize)]
struct RawCommit {
    id: CommitSha,
    message: String,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct RawPusher {
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawIssue {
    id: u64,
    number: u64,
    title: String,
}

#[derive(Deserialize)]
struct RawLabel {
    name: String,
}

#[derive(Deserialize)]
struct RawChanges {
    repository: Option<RawRepositoryChanges>,
}

#[derive(Deserialize)]
struct RawRepositoryChanges {
    name: Option<RawFrom>,
}

#[derive(Deserialize)]
struct RawFrom {
    from: String,
}

#[derive(Deserialize)]
struct RawHook {
    app_id: Option<u64>,
}
