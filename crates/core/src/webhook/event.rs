//! A verified payload, read into typed structs holding only the fields ghplane uses.
//!
//! **Invariant:** this runs only after [`crate::webhook::verify`] accepted the exact bytes,
//! and never builds a `serde_json::Value` (or any tree) of the body: each event has its own
//! `Deserialize` struct, so serde skips everything else as it reads, and a 25 MB push costs
//! one pass and a few strings. Any payload nested deeper than [`MAX_DEPTH`] is refused,
//! whichever field is deep.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{truncate, AppId, InstallationId, RepoFullName, RepoId};
use crate::webhook::error::WebhookError;

/// Issue titles are for log lines and work-item labels, not for storage of the issue.
pub const MAX_TITLE_LEN: usize = 256;
/// Commit messages can be megabytes; the head commit's is kept for a deploy's description.
pub const MAX_MESSAGE_LEN: usize = 1024;
/// serde_json's own recursion limit. It guards only the fields that are read: serde_json
/// skips unknown fields iteratively and accepts them at any depth, so [`parse_event`]
/// checks the whole body itself. GitHub's payloads nest fewer than 10 levels.
pub const MAX_DEPTH: usize = 128;

/// One delivery: the envelope every event shares, and what is specific to its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The `X-GitHub-Event` name, e.g. `installation_repositories`.
    pub name: String,
    pub action: Option<String>,
    /// Absent on events not sent through an app (e.g. `github_app_authorization`), and on
    /// repository-hook payloads. Most events carry only `id`.
    pub installation: Option<Installation>,
    pub repository: Option<Repository>,
    pub sender: Option<Actor>,
    pub kind: EventKind,
}

impl Event {
    pub fn installation_id(&self) -> Option<InstallationId> {
        self.installation.as_ref().map(|i| i.id)
    }

    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `installation`: the subject is `Event::installation`.
    Installation {
        repositories: Vec<RepoRef>,
    },
    InstallationRepositories {
        repository_selection: Option<RepositorySelection>,
        added: Vec<RepoRef>,
        removed: Vec<RepoRef>,
    },
    Push(Push),
    Issues {
        issue: Issue,
        label: Option<String>,
    },
    /// `repository`; `renamed_from` is `changes.repository.name.from` when renamed.
    Repository {
        renamed_from: Option<String>,
    },
    Ping {
        hook_id: Option<u64>,
        /// `hook.app_id`: set when the pinged hook is an app's.
        app_id: Option<AppId>,
    },
    /// Any other event: only the envelope was read.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    pub id: InstallationId,
    pub app_id: Option<AppId>,
    pub account: Option<Account>,
    pub repository_selection: Option<RepositorySelection>,
    pub permissions: Option<BTreeMap<String, String>>,
    pub events: Option<Vec<String>>,
}

/// The user, organization or enterprise an installation belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// `login`, or an enterprise's `slug` (enterprises have no login).
    pub login: String,
    pub id: u64,
    /// `User`, `Organization`, or `Enterprise`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepositorySelection {
    All,
    Selected,
}

impl RepositorySelection {
    pub fn as_str(self) -> &'static str {
        match self {
            RepositorySelection::All => "all",
            RepositorySelection::Selected => "selected",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    pub id: RepoId,
    pub node_id: String,
    pub full_name: RepoFullName,
    pub name: String,
    pub owner_login: String,
    pub private: bool,
    pub default_branch: Option<String>,
}

/// A repository as installation events list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoRef {
    pub id: RepoId,
    pub full_name: RepoFullName,
    pub name: Option<String>,
    pub private: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub login: String,
    pub id: u64,
    /// `User`, `Bot`, `Organization`.
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The full ref, e.g. `refs/heads/main` or `refs/tags/v1`.
    pub git_ref: String,
    pub before: CommitSha,
    pub after: CommitSha,
    pub created: bool,
    pub deleted: bool,
    pub forced: bool,
    /// Null when the ref was deleted (and on some tag pushes).
    pub head_commit: Option<HeadCommit>,
    pub pusher: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadCommit {
    pub id: CommitSha,
    /// Truncated to [`MAX_MESSAGE_LEN`].
    pub message: String,
    pub timestamp: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub id: u64,
    pub number: u64,
    /// Truncated to [`MAX_TITLE_LEN`].
    pub title: String,
}

/// A commit id: 40 lowercase hex digits (SHA-1), or 64 in SHA-256 repositories.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CommitSha(String);

impl CommitSha {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok =
            matches!(s.len(), 40 | 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(CommitSha(s.to_owned()))
        } else {
            Err(format!(
                "a commit id must be 40 or 64 lowercase hex digits, got {:?}",
                truncate(s, 80)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// All zeros: how a push names the missing side of a created or deleted ref.
    pub fn is_zero(&self) -> bool {
        self.0.bytes().all(|b| b == b'0')
    }
}

impl<'de> Deserialize<'de> for CommitSha {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CommitSha::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// Counts brackets outside strings. It does not validate JSON (serde does that next); it
/// only bounds how deep any value goes, in one pass without allocating.
fn nesting_within(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'"' => i = string_end(body, i),
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// The index just past the quote closing a string whose contents start at `i`, or the
/// end. Strings are most of a payload (a push's diffs and messages), so eight bytes are
/// stepped over at once while none of them is a quote or a backslash.
fn string_end(body: &[u8], mut i: usize) -> usize {
    loop {
        let rest = body.get(i..).unwrap_or_default();
        let plain = rest
            .chunks_exact(8)
            .take_while(|c| {
                <[u8; 8]>::try_from(*c).is_ok_and(|c| !quote_or_backslash(u64::from_ne_bytes(c)))
            })
            .count()
            * 8;
        // The next quote or backslash is in the next eight bytes, or in a short tail.
        let rest = &rest[plain..];
        let Some(at) = rest.iter().position(|&b| b == b'"' || b == b'\\') else {
            return body.len();
        };
        if rest[at] == b'"' {
            return i + plain + at + 1;
        }
        i += plain + at + 2;
    }
}

/// Whether any byte of `w` is a quote or a backslash: the exact has-zero-byte test, applied
/// to `w` XOR each of them.
fn quote_or_backslash(w: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let q = w ^ (ONES * u64::from(b'"'));
    let b = w ^ (ONES * u64::from(b'\\'));
    ((q.wrapping_sub(ONES) & !q) | (b.wrapping_sub(ONES) & !b)) & HIGHS != 0
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    const ZERO: &str = "0000000000000000000000000000000000000000";

    fn repo() -> serde_json::Value {
        json!({"id": 7, "node_id": "R_7", "full_name": "octo/app", "name": "app",
               "owner": {"login": "octo", "id": 1}, "private": true, "default_branch": "main"})
    }

    fn parse(event: &str, v: serde_json::Value) -> Result<Event, WebhookError> {
        parse_event(event, v.to_string().as_bytes())
    }

    #[test]
    fn envelope_fields_are_typed() {
        let ev = parse(
            "star",
            json!({"action": "created", "installation": {"id": 42, "node_id": "x"},
                   "repository": repo(), "sender": {"login": "u", "id": 3, "type": "User"},
                   "starred_at": "2019-05-15T15:20:40Z"}),
        )
        .unwrap();
        assert_eq!(ev.name, "star");
        assert_eq!(ev.action(), Some("created"));
        assert_eq!(ev.installation_id(), InstallationId::from_u64(42).ok());
        let r = ev.repository.unwrap();
        assert_eq!(
            (
                r.id.get(),
                r.full_name.as_str(),
                r.owner_login.as_str(),
                r.private
            ),
            (7, "octo/app", "octo", true)
        );
        assert_eq!(r.default_branch.as_deref(), Some("main"));
        assert_eq!(ev.sender.unwrap().kind, "User");
        assert_eq!(ev.kind, EventKind::Other);
    }

    #[test]
    fn installation_details_are_read() {
        let ev = parse(
            "installation",
            json!({"action": "created",
                   "installation": {"id": 5, "app_id": 9, "repository_selection": "selected",
                     "account": {"login": "acme", "id": 11, "type": "Organization"},
                     "permissions": {"contents": "read", "issues": "write"},
                     "events": ["push", "issues"]},
                   "repositories": [{"id": 7, "full_name": "acme/a", "name": "a", "private": false}],
                   "sender": {"login": "u", "id": 3, "type": "User"}}),
        )
        .unwrap();
        let i = ev.installation.unwrap();
        assert_eq!(i.app_id, AppId::from_u64(9).ok());
        assert_eq!(i.repository_selection, Some(RepositorySelection::Selected));
        assert_eq!(i.account.unwrap().kind, "Organization");
        assert_eq!(i.permissions.unwrap()["issues"], "write");
        assert_eq!(i.events.unwrap(), ["push", "issues"]);
        let EventKind::Installation { repositories } = ev.kind else {
            panic!("{:?}", ev.kind)
        };
        assert_eq!(repositories[0].full_name.as_str(), "acme/a");
    }

    #[test]
    fn enterprise_account_uses_its_slug() {
        let ev = parse(
            "installation",
            json!({"action": "created", "installation": {"id": 5,
                   "account": {"slug": "big-co", "id": 12, "name": "Big Co"}}}),
        )
        .unwrap();
        let a = ev.installation.unwrap().account.unwrap();
        assert_eq!(
            (a.login.as_str(), a.kind.as_str()),
            ("big-co", "Enterprise")
        );
    }

    #[test]
    fn unknown_repository_selection_is_not_stated() {
        let ev = parse(
            "installation",
            json!({"action": "created", "installation": {"id": 5, "repository_selection": "some"}}),
        )
        .unwrap();
        assert_eq!(ev.installation.unwrap().repository_selection, None);
    }

    #[test]
    fn installation_events_need_an_installation() {
        for event in ["installation", "installation_repositories"] {
            let e = parse(event, json!({"action": "created"})).unwrap_err();
            assert_eq!(e.code(), "malformed_payload", "{event}");
        }
    }

    #[test]
    fn push_fields_and_truncation() {
        let long = "m".repeat(5000);
        let ev = parse(
            "push",
            json!({"ref": "refs/heads/main", "before": ZERO, "after": SHA, "created": true,
                   "deleted": false, "forced": false, "repository": repo(),
                   "head_commit": {"id": SHA, "message": long, "timestamp": "2019-05-15T15:19:25-05:00"},
                   "commits": [{"id": SHA, "message": "x", "added": ["a"]}],
                   "pusher": {"name": "octo", "email": null}}),
        )
        .unwrap();
        let EventKind::Push(p) = ev.kind else {
            panic!("{:?}", ev.kind)
        };
        assert_eq!(p.git_ref, "refs/heads/main");
        assert!(p.before.is_zero() && !p.after.is_zero() && p.created);
        let c = p.head_commit.unwrap();
        assert_eq!(c.id.as_str(), SHA);
        assert!(c.message.len() <= MAX_MESSAGE_LEN + '…'.len_utf8());
        assert_eq!(p.pusher.as_deref(), Some("octo"));
    }

    #[test]
    fn push_with_null_head_commit() {
        let ev = parse(
            "push",
            json!({"ref": "refs/heads/gone", "before": SHA, "after": ZERO, "deleted": true,
                   "head_commit": null, "repository": repo(), "pusher": {"name": "octo"}}),
        )
        .unwrap();
        let EventKind::Push(p) = ev.kind else {
            panic!("{:?}", ev.kind)
        };
        assert!(p.deleted && p.head_commit.is_none() && !p.forced);
    }

    #[test]
    fn push_refuses_bad_shas_and_missing_parts() {
        let base =
            json!({"ref": "refs/heads/main", "before": ZERO, "after": SHA, "repository": repo()});
        assert!(parse("push", base.clone()).is_ok());
        for (field, value) in [
            ("after", json!("ABCDEF")),
            ("after", json!(SHA.to_uppercase())),
            ("after", json!(format!("{SHA}0"))),
            ("after", json!(null)),
            ("before", json!(1)),
            ("ref", json!(null)),
            ("repository", json!(null)),
        ] {
            let mut v = base.clone();
            v[field] = value;
            let e = parse("push", v).unwrap_err();
            assert_eq!(e.code(), "malformed_payload", "{field}");
        }
        let sha256 = "a".repeat(64);
        let mut v = base;
        v["after"] = json!(sha256);
        assert!(parse("push", v).is_ok(), "SHA-256 repositories");
    }

    #[test]
    fn issue_title_is_truncated() {
        let ev = parse(
            "issues",
            json!({"action": "labeled", "repository": repo(),
                   "issue": {"id": 99, "number": 3, "title": "é".repeat(1000), "body": "b"},
                   "label": {"id": 1, "name": "ghplane"}}),
        )
        .unwrap();
        let EventKind::Issues { issue, label } = ev.kind else {
            panic!("{:?}", ev.kind)
        };
        assert_eq!((issue.id, issue.number), (99, 3));
        assert!(issue.title.len() <= MAX_TITLE_LEN + '…'.len_utf8());
        assert_eq!(label.as_deref(), Some("ghplane"));
    }

    #[test]
    fn repository_rename_source() {
        let mut v = json!({"action": "renamed", "repository": repo(),
                           "changes": {"repository": {"name": {"from": "old"}}}});
        let ev = parse("repository", v.clone()).unwrap();
        assert_eq!(
            ev.kind,
            EventKind::Repository {
                renamed_from: Some("old".into())
            }
        );
        v["changes"] = json!({"default_branch": {"from": "master"}});
        let ev = parse("repository", v).unwrap();
        assert_eq!(ev.kind, EventKind::Repository { renamed_from: None });
    }

    #[test]
    fn unused_fields_of_other_events_never_fail_a_delivery() {
        // `ref`, `issue`, `changes` and `head_commit` mean something else (or are absent)
        // outside the events that read them.
        let ev = parse(
            "create",
            json!({"ref": 5, "issue": "x", "changes": [1], "head_commit": {"id": "not a sha"},
                   "repository": repo()}),
        )
        .unwrap();
        assert_eq!(ev.kind, EventKind::Other);
    }

    #[test]
    fn non_objects_and_garbage_are_malformed() {
        for body in [
            &b""[..],
            b"   ",
            b"null",
            b"[]",
            b"[\"created\", null, null, null, null]",
            b"{",
            b"{\"action\": }",
            b"{} trailing",
            b"{\"action\": 1}",
            b"\xff\xfe{}",
            b"{\"action\": \"\xff\"}",
        ] {
            for event in ["push", "installation", "star", "ping"] {
                let e = parse_event(event, body).unwrap_err();
                assert_eq!(
                    (e.code(), e.status()),
                    ("malformed_payload", 400),
                    "{event} {body:?}"
                );
            }
        }
    }

    #[test]
    fn a_large_push_is_read_without_keeping_its_commits() {
        // About 4 MB of commits, which the typed struct skips as it reads.
        let commit = json!({"id": SHA, "message": "x".repeat(4000), "added": vec!["a"; 20],
                            "author": {"name": "n", "email": "e"}});
        let commits = vec![commit; 1000];
        let body = json!({"ref": "refs/heads/main", "before": ZERO, "after": SHA,
                          "repository": repo(), "commits": commits,
                          "head_commit": {"id": SHA, "message": "y".repeat(100_000)}})
        .to_string();
        assert!(body.len() > 4_000_000);
        let ev = parse_event("push", body.as_bytes()).unwrap();
        let EventKind::Push(p) = ev.kind else {
            panic!("{:?}", ev.kind)
        };
        assert_eq!(p.after.as_str(), SHA);
        assert!(p.head_commit.unwrap().message.len() <= MAX_MESSAGE_LEN + 3);
    }

    #[test]
    fn duplicate_fields_are_malformed() {
        let body = br#"{"action":"created","action":"deleted","installation":{"id":1}}"#;
        assert_eq!(
            parse_event("installation", body).unwrap_err().code(),
            "malformed_payload"
        );
    }

    #[test]
    fn nesting_ten_thousand_deep_is_malformed_not_a_crash() {
        let deep = |open: &str, close: &str| {
            let n = 10_000;
            format!("{}{}", open.repeat(n), close.repeat(n))
        };
        let bodies = [
            format!("{{\"action\":\"opened\",\"extra\":{}}}", deep("[", "]")),
            format!(
                "{{\"extra\":{}}}",
                deep("{\"a\":", "}").replacen("}", "1}", 1)
            ),
            format!(
                "{{\"installation\":{{\"id\":1,\"permissions\":{}}}}}",
                deep("[", "]")
            ),
            deep("{\"a\":", "}"),
        ];
        for body in &bodies {
            for event in [
                "push",
                "installation",
                "issues",
                "repository",
                "ping",
                "star",
            ] {
                let e = parse_event(event, body.as_bytes()).unwrap_err();
                assert_eq!(e.code(), "malformed_payload", "{event}");
                assert_eq!(e.status(), 400);
            }
        }
        let e = parse_event("star", bodies[0].as_bytes()).unwrap_err();
        assert!(e.to_string().contains("deeper than 128"), "{e}");
    }

    #[test]
    fn depth_limit_is_exact_and_ignores_brackets_in_strings() {
        let nested = |n: usize| format!("{{\"x\":{}{}}}", "[".repeat(n), "]".repeat(n));
        assert!(parse_event("star", nested(MAX_DEPTH - 1).as_bytes()).is_ok());
        assert_eq!(
            parse_event("star", nested(MAX_DEPTH).as_bytes())
                .unwrap_err()
                .code(),
            "malformed_payload"
        );
        let in_string = format!(
            r#"{{"x":"{}\"{}","y":"\\"}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(
            parse_event("star", in_string.as_bytes()).is_ok(),
            "{in_string}"
        );
        // Escapes and quotes at every offset around the eight-byte steps.
        for pad in 0..17 {
            let s = format!(
                r#"{{"{}":"{}\\","z":"{}\"[[[[","w":[[1]]}}"#,
                "k".repeat(pad),
                "v".repeat(pad),
                "[".repeat(pad)
            );
            assert!(serde_json::from_str::<serde_json::Value>(&s).is_ok(), "{s}");
            assert!(nesting_within(s.as_bytes(), 3), "{s}");
            assert!(!nesting_within(s.as_bytes(), 2), "{s}");
        }
        // Unterminated strings and trailing backslashes end the scan without panicking.
        for s in [
            &br#"""#[..],
            br#""\"#,
            br#""abc\"#,
            br#"["x\"#,
            br#""0123456789abcdef\"#,
        ] {
            assert!(nesting_within(s, 1));
        }
    }

    #[test]
    fn depth_scan_agrees_with_a_byte_at_a_time_reference() {
        fn reference(body: &[u8]) -> usize {
            let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
            for &b in body {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => {
                        depth += 1;
                        deepest = deepest.max(depth);
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            deepest
        }
        let alphabet = b"{}[]\"\\aaaaaaaaaa";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 58) as usize;
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    alphabet[(seed >> 60) as usize]
                })
                .collect();
            let deepest = reference(&body);
            assert!(
                nesting_within(&body, deepest),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
            if deepest > 0 {
                assert!(
                    !nesting_within(&body, deepest - 1),
                    "{:?}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
    #[test]
    fn serde_recursion_limit_also_ends_as_malformed() {
        // The bound the scan shares with serde_json: both refuse, both become 400.
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let e: WebhookError = serde_json::from_str::<serde_json::Value>(&deep)
            .unwrap_err()
            .into();
        assert_eq!((e.code(), e.status()), ("malformed_payload", 400));
        assert!(e.to_string().contains("recursion limit"), "{e}");
    }

    #[test]
    fn ids_out_of_range_are_malformed() {
        for id in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!(9_007_199_254_740_992u64),
            json!("1"),
        ] {
            let e = parse("star", json!({"installation": {"id": id}})).unwrap_err();
            assert_eq!(e.code(), "malformed_payload", "{id}");
        }
    }

    #[test]
    fn commit_sha_rules() {
        assert!(CommitSha::parse(SHA).is_ok());
        assert!(CommitSha::parse(ZERO).unwrap().is_zero());
        for bad in [
            "",
            "abc",
            &SHA[..39],
            &SHA.to_uppercase(),
            &format!("{}g", &SHA[..39]),
        ] {
            assert!(CommitSha::parse(bad).is_err(), "{bad:?}");
        }
    }
}
