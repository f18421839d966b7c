//! What ghplane does with a verified event, as data the adapter carries out.
//!
//! **Invariant:** [`classify`] is total and pure: every event maps to exactly one
//! [`Action`], unknown events and actions to [`Action::Ignored`] with a stable reason, and
//! every action carries the payload's installation id when it has one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{AppId, InstallationId, RepoFullName, RepoId};
use crate::webhook::event::{
    Account, CommitSha, Event, EventKind, Push, RepoRef, RepositorySelection,
};

/// Serializable so the worker can hand it to the installation's Durable Object as JSON
/// (`{"type":"upsert_tenant","installationId":…}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Action {
    /// `installation.created`: record the tenant.
    UpsertTenant {
        installation_id: InstallationId,
        /// `installation.app_id`; always sent by GitHub, else the verified target app.
        app_id: Option<AppId>,
        account: Option<Account>,
        repository_selection: Option<RepositorySelection>,
        repositories: Vec<RepoRef>,
        /// Empty when the payload lists none: a tenant starts with no grants, not stale ones.
        permissions: BTreeMap<String, String>,
        events: Vec<String>,
    },
    /// `installation.deleted`.
    PurgeTenant { installation_id: InstallationId },
    /// `installation.suspend` (true) / `installation.unsuspend` (false).
    SetSuspended {
        installation_id: InstallationId,
        suspended: bool,
    },
    /// `installation.new_permissions_accepted`: replaces the stored grants (empty when the
    /// payload lists none, which fails closed).
    RefreshPermissions {
        installation_id: InstallationId,
        permissions: BTreeMap<String, String>,
        events: Vec<String>,
    },
    /// `installation_repositories.added` / `.removed` (GitHub fills both lists).
    ChangeRepositories {
        installation_id: InstallationId,
        added: Vec<RepoRef>,
        removed: Vec<RepoRef>,
        repository_selection: Option<RepositorySelection>,
    },
    /// Any `push`; whether it deploys is [`push_target`]'s answer.
    Push {
        installation_id: Option<InstallationId>,
        repo_id: RepoId,
        full_name: RepoFullName,
        /// Set when the ref is `refs/heads/<branch>`, deleted or not.
        branch: Option<String>,
        /// The branch head the push moved from (all zeros when it created the branch).
        before: CommitSha,
        after: CommitSha,
        deleted: bool,
        /// A force push: the deploy history takes it even back to an older sha (a rollback).
        #[serde(default)]
        forced: bool,
        head_commit_id: Option<CommitSha>,
        head_commit_message: Option<String>,
        pusher: Option<String>,
        /// Why this push deploys nothing ([`push_target`]'s refusal), decided here so the
        /// delivery log can say "tag_push" even though only the branch travels on.
        skip: Option<PushSkip>,
    },
    /// `repository.renamed`: ids are stable, names are not.
    RepoRenamed {
        installation_id: Option<InstallationId>,
        repo_id: RepoId,
        new_full_name: RepoFullName,
        old_name: Option<String>,
    },
    /// `issues.opened` / `issues.labeled`: a work item keyed by [`work_item_key`].
    IssueWork {
        installation_id: Option<InstallationId>,
        issue_id: u64,
        number: u64,
        repo: RepoFullName,
        repo_id: RepoId,
        /// Truncated; for logs.
        title: String,
        /// The label just added, on `labeled`.
        label: Option<String>,
    },
    Ping {
        installation_id: Option<InstallationId>,
        hook_id: Option<u64>,
        app_id: Option<AppId>,
    },
    Ignored {
        installation_id: Option<InstallationId>,
        reason: IgnoreReason,
    },
}

impl Action {
    pub fn installation_id(&self) -> Option<InstallationId> {
        match self {
            Action::UpsertTenant {
                installation_id, ..
            }
            | Action::PurgeTenant { installation_id }
            | Action::SetSuspended {
                installation_id, ..
            }
            | Action::RefreshPermissions {
                installation_id, ..
            }
            | Action::ChangeRepositories {
                installation_id, ..
            } => Some(*installation_id),
            Action::Push {
                installation_id, ..
            }
            | Action::RepoRenamed {
                installation_id, ..
            }
            | Action::IssueWork {
                installation_id, ..
            }
            | Action::Ping {
                installation_id, ..
            }
            | Action::Ignored {
                installation_id, ..
            } => *installation_id,
        }
    }

    /// A stable name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::UpsertTenant { .. } => "upsert_tenant",
            Action::PurgeTenant { .. } => "purge_tenant",
            Action::SetSuspended { .. } => "set_suspended",
            Action::RefreshPermissions { .. } => "refresh_permissions",
            Action::ChangeRepositories { .. } => "change_repositories",
            Action::Push { .. } => "push",
            Action::RepoRenamed { .. } => "repo_renamed",
            Action::IssueWork { .. } => "issue_work",
            Action::Ping { .. } => "ping",
            Action::Ignored { .. } => "ignored",
        }
    }
}

/// Why an event needs nothing done. The strings are stable: they are stored with the
/// delivery record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    /// ghplane does not act on this event at all.
    EventNotHandled,
    /// ghplane handles the event, but not this action of it.
    ActionNotHandled,
    /// An installation event without its installation. [`crate::webhook::parse_event`]
    /// refuses such payloads, so only a hand-built [`Event`] gets here.
    MissingInstallation,
    /// A repository event without its repository (as above).
    MissingRepository,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::EventNotHandled => "event_not_handled",
            IgnoreReason::ActionNotHandled => "action_not_handled",
            IgnoreReason::MissingInstallation => "missing_installation",
            IgnoreReason::MissingRepository => "missing_repository",
        }
    }
}

/// Why a push deploys nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushSkip {
    /// `refs/tags/…`, created or deleted.
    TagPush,
    /// The branch was deleted: `deleted: true`, or `after` is all zeros.
    BranchDeleted,
    /// Neither a branch nor a tag (e.g. `refs/notes/…`, `refs/pull/…`), or an empty name.
    NotABranch,
}

impl PushSkip {
    pub fn as_str(self) -> &'static str {
        match self {
            PushSkip::TagPush => "tag_push",
            PushSkip::BranchDeleted => "branch_deleted",
            PushSkip::NotABranch => "not_a_branch",
        }
    }
}

pub fn classify(event: &Event) -> Action {
    let installation_id = event.installation_id();
    let ignored = |reason| Action::Ignored {
        installation_id,
        reason,
    };
    let action = event.action();
    match &event.kind {
        EventKind::Installation { repositories } => {
            let Some(inst) = &event.installation else {
                return ignored(IgnoreReason::MissingInstallation);
            };
            let id = inst.id;
            let permissions = || inst.permissions.clone().unwrap_or_default();
            let events = || inst.events.clone().unwrap_or_default();
            match action {
                Some("created") => Action::UpsertTenant {
                    installation_id: id,
                    app_id: inst.app_id,
                    account: inst.account.clone(),
                    repository_selection: inst.repository_selection,
                    repositories: repositories.clone(),
                    permissions: permissions(),
                    events: events(),
                },
                Some("deleted") => Action::PurgeTenant {
                    installation_id: id,
                },
                Some("suspend") => Action::SetSuspended {
                    installation_id: id,
                    suspended: true,
                },
                Some("unsuspend") => Action::SetSuspended {
                    installation_id: id,
                    suspended: false,
                },
                Some("new_permissions_accepted") => Action::RefreshPermissions {
                    installation_id: id,
                    permissions: permissions(),
                    events: events(),
                },
                _ => ignored(IgnoreReason::ActionNotHandled),
            }
        }
        EventKind::InstallationRepositories {
            repository_selection,
            added,
            removed,
        } => {
            let Some(id) = installation_id else {
                return ignored(IgnoreReason::MissingInstallation);
            };
            match action {
                Some("added" | "removed") => Action::ChangeRepositories {
                    installation_id: id,
                    added: added.clone(),
                    removed: removed.clone(),
                    // The top-level field is the installation's selection after the
                    // change; the nested one is the fallback.
                    repository_selection: repository_selection.or_else(|| {
                        event
                            .installation
                            .as_ref()
                            .and_then(|i| i.repository_selection)
                    }),
                },
                _ => ignored(IgnoreReason::ActionNotHandled),
            }
        }
        EventKind::Push(push) => {
            let Some(repo) = &event.repository else {
                return ignored(IgnoreReason::MissingRepository);
            };
            Action::Push {
                installation_id,
                repo_id: repo.id,
                full_name: repo.full_name.clone(),
                branch: branch_name(&push.git_ref).map(str::to_owned),
                before: push.before.clone(),
                after: push.after.clone(),
                deleted: push.deleted,
                forced: push.forced,
                head_commit_id: push.head_commit.as_ref().map(|c| c.id.clone()),
                head_commit_message: push.head_commit.as_ref().map(|c| c.message.clone()),
                pusher: push.pusher.clone(),
                skip: push_target(push).err(),
            }
        }
        EventKind::Repository { renamed_from } => match (action, &event.repository) {
            (Some("renamed"), Some(repo)) => Action::RepoRenamed {
                installation_id,
                repo_id: repo.id,
                new_full_name: repo.full_name.clone(),
                old_name: renamed_from.clone(),
            },
            (Some("renamed"), None) => ignored(IgnoreReason::MissingRepository),
            _ => ignored(IgnoreReason::ActionNotHandled),
        },
        EventKind::Issues { issue, label } => match (action, &event.repository) {
            (Some("opened" | "labeled"), Some(repo)) => Action::IssueWork {
                installation_id,
                issue_id: issue.id,
                number: issue.number,
                repo: repo.full_name.clone(),
                repo_id: repo.id,
                title: issue.title.clone(),
                label: label.clone(),
            },
            (Some("opened" | "labeled"), None) => ignored(IgnoreReason::MissingRepository),
            _ => ignored(IgnoreReason::ActionNotHandled),
        },
        EventKind::Ping { hook_id, app_id } => Action::Ping {
            installation_id,
            hook_id: *hook_id,
            app_id: *app_id,
        },
        EventKind::Other => ignored(IgnoreReason::EventNotHandled),
    }
}

/// The branch and commit a push deploys, or why it deploys nothing. The ref decides
/// first, so a deleted tag is a [`PushSkip::TagPush`], not a deleted branch.
pub fn push_target(push: &Push) -> Result<(String, CommitSha), PushSkip> {
    if push.git_ref.starts_with("refs/tags/") {
        return Err(PushSkip::TagPush);
    }
    let branch = branch_name(&push.git_ref).ok_or(PushSkip::NotABranch)?;
    if push.deleted || push.after.is_zero() {
        return Err(PushSkip::BranchDeleted);
    }
    Ok((branch.to_owned(), push.after.clone()))
}

/// The dedupe key of an issue's work item, `install-<installation id>-issue-<issue id>`.
/// Issue ids (not numbers) are global and survive transfers between repositories.
pub fn work_item_key(installation_id: InstallationId, issue_id: u64) -> String {
    format!("{}-issue-{issue_id}", installation_id.object_name())
}

fn branch_name(git_ref: &str) -> Option<&str> {
    git_ref
        .strip_prefix("refs/heads/")
        .filter(|b| !b.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::event::{HeadCommit, Installation, Issue, Repository};

    const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    const ZERO: &str = "0000000000000000000000000000000000000000";

    fn iid(n: u64) -> InstallationId {
        InstallationId::from_u64(n).unwrap()
    }

    fn sha(s: &str) -> CommitSha {
        CommitSha::parse(s).unwrap()
    }

    fn installation(id: u64) -> Installation {
        Installation {
            id: iid(id),
            app_id: AppId::from_u64(9).ok(),
            account: Some(Account {
                login: "acme".into(),
                id: 11,
                kind: "Organization".into(),
            }),
            repository_selection: Some(RepositorySelection::Selected),
            permissions: Some(BTreeMap::from([("contents".into(), "read".into())])),
            events: Some(vec!["push".into()]),
        }
    }

    fn repository() -> Repository {
        Repository {
            id: RepoId::from_u64(7).unwrap(),
            node_id: "R_7".into(),
            full_name: RepoFullName::parse("acme/app").unwrap(),
            name: "app".into(),
            owner_login: "acme".into(),
            private: false,
            default_branch: Some("main".into()),
        }
    }

    fn event(name: &str, action: Option<&str>, kind: EventKind) -> Event {
        Event {
            name: name.into(),
            action: action.map(str::to_owned),
            installation: Some(installation(5)),
            repository: Some(repository()),
            sender: None,
            kind,
        }
    }

    fn push(git_ref: &str, after: &str, deleted: bool) -> Push {
        Push {
            git_ref: git_ref.into(),
            before: sha(SHA),
            after: sha(after),
            created: false,
            deleted,
            forced: false,
            head_commit: None,
            pusher: Some("octo".into()),
        }
    }

    fn repo_ref(id: u64, name: &str) -> RepoRef {
        RepoRef {
            id: RepoId::from_u64(id).unwrap(),
            full_name: RepoFullName::parse(name).unwrap(),
            name: None,
            private: None,
        }
    }

    #[test]
    fn installation_lifecycle() {
        let kind = EventKind::Installation {
            repositories: vec![repo_ref(7, "acme/app")],
        };
        let created = classify(&event("installation", Some("created"), kind.clone()));
        let Action::UpsertTenant {
            installation_id,
            app_id,
            account,
            repository_selection,
            repositories,
            permissions,
            events,
        } = created
        else {
            panic!("{created:?}")
        };
        assert_eq!(installation_id, iid(5));
        assert_eq!(app_id, AppId::from_u64(9).ok());
        assert_eq!(account.unwrap().login, "acme");
        assert_eq!(repository_selection, Some(RepositorySelection::Selected));
        assert_eq!(repositories, vec![repo_ref(7, "acme/app")]);
        assert_eq!(permissions["contents"], "read");
        assert_eq!(events, ["push"]);

        let on = |a: &str| classify(&event("installation", Some(a), kind.clone()));
        assert_eq!(
            on("deleted"),
            Action::PurgeTenant {
                installation_id: iid(5)
            }
        );
        assert_eq!(
            on("suspend"),
            Action::SetSuspended {
                installation_id: iid(5),
                suspended: true
            }
        );
        assert_eq!(
            on("unsuspend"),
            Action::SetSuspended {
                installation_id: iid(5),
                suspended: false
            }
        );
        assert_eq!(
            on("new_permissions_accepted"),
            Action::RefreshPermissions {
                installation_id: iid(5),
                permissions: BTreeMap::from([("contents".into(), "read".into())]),
                events: vec!["push".into()],
            }
        );
        assert_eq!(
            on("renamed"),
            Action::Ignored {
                installation_id: Some(iid(5)),
                reason: IgnoreReason::ActionNotHandled
            }
        );
    }

    #[test]
    fn missing_permissions_fail_closed() {
        let mut ev = event(
            "installation",
            Some("new_permissions_accepted"),
            EventKind::Installation {
                repositories: vec![],
            },
        );
        if let Some(i) = ev.installation.as_mut() {
            i.permissions = None;
            i.events = None;
        }
        assert_eq!(
            classify(&ev),
            Action::RefreshPermissions {
                installation_id: iid(5),
                permissions: BTreeMap::new(),
                events: vec![],
            }
        );
    }

    #[test]
    fn installation_events_without_installation_are_ignored() {
        for (name, kind) in [
            (
                "installation",
                EventKind::Installation {
                    repositories: vec![],
                },
            ),
            (
                "installation_repositories",
                EventKind::InstallationRepositories {
                    repository_selection: None,
                    added: vec![],
                    removed: vec![],
                },
            ),
        ] {
            let mut ev = event(name, Some("created"), kind);
            ev.installation = None;
            assert_eq!(
                classify(&ev),
                Action::Ignored {
                    installation_id: None,
                    reason: IgnoreReason::MissingInstallation
                }
            );
        }
    }

    #[test]
    fn repository_changes() {
        let kind = EventKind::InstallationRepositories {
            repository_selection: None,
            added: vec![repo_ref(8, "acme/new")],
            removed: vec![repo_ref(7, "acme/app")],
        };
        for action in ["added", "removed"] {
            let got = classify(&event(
                "installation_repositories",
                Some(action),
                kind.clone(),
            ));
            assert_eq!(
                got,
                Action::ChangeRepositories {
                    installation_id: iid(5),
                    added: vec![repo_ref(8, "acme/new")],
                    removed: vec![repo_ref(7, "acme/app")],
                    // Falls back to the installation's own selection.
                    repository_selection: Some(RepositorySelection::Selected),
                }
            );
        }
        let other = classify(&event("installation_repositories", Some("renamed"), kind));
        assert_eq!(other.kind(), "ignored");
    }

    #[test]
    fn push_actions_and_targets() {
        let mut p = push("refs/heads/main", SHA, false);
        p.head_commit = Some(HeadCommit {
            id: sha(SHA),
            message: "Fix".into(),
            timestamp: None,
        });
        let mut ev = event("push", None, EventKind::Push(p.clone()));
        ev.installation = None;
        assert_eq!(
            classify(&ev),
            Action::Push {
                installation_id: None,
                repo_id: RepoId::from_u64(7).unwrap(),
                full_name: RepoFullName::parse("acme/app").unwrap(),
                branch: Some("main".into()),
                before: sha(SHA),
                after: sha(SHA),
                deleted: false,
                forced: false,
                head_commit_id: Some(sha(SHA)),
                head_commit_message: Some("Fix".into()),
                pusher: Some("octo".into()),
                skip: None,
            }
        );
        assert_eq!(push_target(&p), Ok(("main".into(), sha(SHA))));
        assert_eq!(
            push_target(&push("refs/heads/feature/x", SHA, false)),
            Ok(("feature/x".into(), sha(SHA)))
        );
    }

    #[test]
    fn push_skips() {
        for (git_ref, after, deleted, want) in [
            ("refs/tags/v1", SHA, false, PushSkip::TagPush),
            ("refs/tags/v1", ZERO, true, PushSkip::TagPush),
            ("refs/heads/main", ZERO, true, PushSkip::BranchDeleted),
            ("refs/heads/main", ZERO, false, PushSkip::BranchDeleted),
            ("refs/heads/main", SHA, true, PushSkip::BranchDeleted),
            ("refs/heads/", SHA, false, PushSkip::NotABranch),
            ("refs/notes/commits", SHA, false, PushSkip::NotABranch),
            ("refs/pull/1/head", SHA, false, PushSkip::NotABranch),
            ("main", SHA, false, PushSkip::NotABranch),
            ("", SHA, false, PushSkip::NotABranch),
        ] {
            assert_eq!(
                push_target(&push(git_ref, after, deleted)),
                Err(want),
                "{git_ref} {after} {deleted}"
            );
        }
        assert_eq!(PushSkip::BranchDeleted.as_str(), "branch_deleted");
    }

    #[test]
    fn deleted_branch_push_still_names_its_branch() {
        let ev = event(
            "push",
            None,
            EventKind::Push(push("refs/heads/old", ZERO, true)),
        );
        let Action::Push {
            branch,
            deleted,
            skip,
            ..
        } = classify(&ev)
        else {
            panic!()
        };
        assert_eq!((branch.as_deref(), deleted), (Some("old"), true));
        assert_eq!(skip, Some(PushSkip::BranchDeleted));
    }

    #[test]
    fn rename_and_issues() {
        let renamed = classify(&event(
            "repository",
            Some("renamed"),
            EventKind::Repository {
                renamed_from: Some("old".into()),
            },
        ));
        assert_eq!(
            renamed,
            Action::RepoRenamed {
                installation_id: Some(iid(5)),
                repo_id: RepoId::from_u64(7).unwrap(),
                new_full_name: RepoFullName::parse("acme/app").unwrap(),
                old_name: Some("old".into()),
            }
        );
        let issue = EventKind::Issues {
            issue: Issue {
                id: 444,
                number: 1,
                title: "t".into(),
            },
            label: None,
        };
        for action in ["opened", "labeled"] {
            let got = classify(&event("issues", Some(action), issue.clone()));
            let Action::IssueWork {
                installation_id,
                issue_id,
                number,
                repo,
                ..
            } = got
            else {
                panic!("{got:?}")
            };
            assert_eq!(
                (installation_id, issue_id, number, repo.as_str()),
                (Some(iid(5)), 444, 1, "acme/app")
            );
        }
        for action in ["closed", "edited", "unlabeled"] {
            let got = classify(&event("issues", Some(action), issue.clone()));
            assert_eq!(got.kind(), "ignored", "{action}");
        }
        let mut no_repo = event("issues", Some("opened"), issue);
        no_repo.repository = None;
        assert_eq!(
            classify(&no_repo),
            Action::Ignored {
                installation_id: Some(iid(5)),
                reason: IgnoreReason::MissingRepository
            }
        );
    }

    #[test]
    fn ping_and_everything_else() {
        let ping = classify(&event(
            "ping",
            None,
            EventKind::Ping {
                hook_id: Some(3),
                app_id: None,
            },
        ));
        assert_eq!(ping.kind(), "ping");
        assert_eq!(ping.installation_id(), Some(iid(5)));
        let star = classify(&event("star", Some("created"), EventKind::Other));
        assert_eq!(
            star,
            Action::Ignored {
                installation_id: Some(iid(5)),
                reason: IgnoreReason::EventNotHandled
            }
        );
    }

    #[test]
    fn actions_round_trip_as_tagged_json() {
        let mut p = push("refs/heads/main", SHA, false);
        p.head_commit = Some(HeadCommit {
            id: sha(SHA),
            message: "Fix".into(),
            timestamp: None,
        });
        let actions = [
            classify(&event(
                "installation",
                Some("created"),
                EventKind::Installation {
                    repositories: vec![repo_ref(7, "acme/app")],
                },
            )),
            classify(&event("push", None, EventKind::Push(p))),
            classify(&event("star", None, EventKind::Other)),
        ];
        for a in actions {
            let json = serde_json::to_value(&a).unwrap();
            assert_eq!(json["type"], a.kind(), "{json}");
            assert_eq!(serde_json::from_value::<Action>(json).unwrap(), a);
        }
        let json = serde_json::to_value(classify(&event(
            "installation",
            Some("created"),
            EventKind::Installation {
                repositories: vec![repo_ref(7, "acme/app")],
            },
        )))
        .unwrap();
        assert_eq!(json["installationId"], 5);
        assert_eq!(json["repositorySelection"], "selected");
        assert_eq!(json["repositories"][0]["fullName"], "acme/app");
        assert_eq!(json["account"]["type"], "Organization");
        let ignored =
            serde_json::to_value(classify(&event("star", None, EventKind::Other))).unwrap();
        assert_eq!(ignored["reason"], "event_not_handled");
    }

    #[test]
    fn work_item_key_format() {
        assert_eq!(
            work_item_key(iid(42), 444500041),
            "install-42-issue-444500041"
        );
    }

    #[test]
    fn reason_strings_are_stable() {
        for (r, s) in [
            (IgnoreReason::EventNotHandled, "event_not_handled"),
            (IgnoreReason::ActionNotHandled, "action_not_handled"),
            (IgnoreReason::MissingInstallation, "missing_installation"),
            (IgnoreReason::MissingRepository, "missing_repository"),
        ] {
            assert_eq!(r.as_str(), s);
            assert_eq!(serde_json::to_value(r).unwrap(), s);
        }
    }
}
