//! A tenant's life as GitHub reports it: installation webhooks turned into the next state of
//! the `install-<id>` record. Admin-owned parts (ghplane's permission flags, tenant and user
//! ids, secrets) are never touched by a webhook.

use crate::ids::{AppId, InstallationId};
use crate::tenancy::config::{InstallationRecord, Permissions, Repository};
use crate::webhook::event::RepoRef;
use crate::webhook::Action;

/// What an installation webhook does to the stored record.
#[derive(Debug, PartialEq)]
pub enum Lifecycle {
    /// Store this record.
    Write(Box<InstallationRecord>),
    /// Drop the tenant: config, keys, tokens, work.
    Purge,
    /// Nothing to do, and why (a stable reason for the delivery log).
    Unchanged(&'static str),
}

fn repository(r: &RepoRef) -> Repository {
    Repository {
        full_name: r.full_name.clone(),
        id: Some(r.id.get()),
    }
}

fn empty(id: InstallationId, app: AppId, now: &str) -> InstallationRecord {
    InstallationRecord {
        installation_id: id,
        app_id: app,
        private_key: None,
        webhook_secret: None,
        account: None,
        tenant_id: None,
        user_id: None,
        repositories: Vec::new(),
        permissions: Permissions::default(),
        suspended: false,
        repository_selection: None,
        github_permissions: Default::default(),
        events: Vec::new(),
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    }
}

/// Applies an installation action to `current`; other actions leave it unchanged.
pub fn apply(
    current: Option<InstallationRecord>,
    action: &Action,
    verified_app: AppId,
    now: &str,
) -> Lifecycle {
    let write = |mut r: InstallationRecord| {
        r.updated_at = now.to_owned();
        Lifecycle::Write(Box::new(r))
    };
    match action {
        Action::UpsertTenant {
            installation_id,
            account: acc,
            repository_selection,
            repositories,
            permissions,
            events,
            ..
        } => {
            let mut r = current.unwrap_or_else(|| empty(*installation_id, verified_app, now));
            r.app_id = verified_app;
            r.account = acc.clone().or(r.account);
            r.repository_selection = repository_selection.map(|s| s.as_str().to_owned());
            r.repositories = repositories.iter().map(repository).collect();
            r.github_permissions = permissions.clone();
            r.events = events.clone();
            write(r)
        }
        Action::PurgeTenant { .. } => match current {
            Some(_) => Lifecycle::Purge,
            None => Lifecycle::Unchanged("unknown_installation"),
        },
        Action::SetSuspended { suspended, .. } => match current {
            Some(mut r) => {
                r.suspended = *suspended;
                write(r)
            }
            None => Lifecycle::Unchanged("unknown_installation"),
        },
        Action::RefreshPermissions {
            permissions,
            events,
            ..
        } => match current {
            Some(mut r) => {
                r.github_permissions = permissions.clone();
                r.events = events.clone();
                write(r)
            }
            None => Lifecycle::Unchanged("unknown_installation"),
        },
        Action::ChangeRepositories {
            added,
            removed,
            repository_selection,
            ..
        } => match current {
            Some(mut r) => {
                let gone = |repo: &Repository| {
                    removed
                        .iter()
                        .any(|x| Some(x.id.get()) == repo.id || x.full_name == repo.full_name)
                };
                r.repositories.retain(|repo| !gone(repo));
                for a in added {
                    if !r
                        .repositories
                        .iter()
                        .any(|x| x.id == Some(a.id.get()) || x.full_name == a.full_name)
                    {
                        r.repositories.push(repository(a));
                    }
                }
                if let Some(s) = repository_selection {
                    r.repository_selection = Some(s.as_str().to_owned());
                }
                write(r)
            }
            None => Lifecycle::Unchanged("unknown_installation"),
        },
        _ => Lifecycle::Unchanged("not_an_installation_event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::{classify, parse_event};

    fn act(event: &str, body: &str) -> Action {
        classify(&parse_event(event, body.as_bytes()).unwrap())
    }

    fn app() -> AppId {
        AppId::from_u64(9).unwrap()
    }

    const CREATED: &str = r#"{"action":"created","installation":{"id":5,"app_id":9,"account":{"login":"octo-org","id":1,"type":"Organization"},"repository_selection":"selected","permissions":{"issues":"write"},"events":["push"]},"repositories":[{"id":11,"full_name":"octo-org/a","name":"a","private":true},{"id":12,"full_name":"octo-org/b","name":"b","private":false}]}"#;

    fn created() -> InstallationRecord {
        match apply(None, &act("installation", CREATED), app(), "t0") {
            Lifecycle::Write(r) => *r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn created_makes_a_tenant_from_the_payload() {
        let r = created();
        assert_eq!(r.installation_id.get(), 5);
        assert_eq!(r.account.as_ref().unwrap().login, "octo-org");
        assert_eq!(
            r.repositories
                .iter()
                .map(|x| x.full_name.as_str())
                .collect::<Vec<_>>(),
            ["octo-org/a", "octo-org/b"]
        );
        assert_eq!(
            r.github_permissions.get("issues").map(String::as_str),
            Some("write")
        );
        assert_eq!(r.repository_selection.as_deref(), Some("selected"));
        assert_eq!(
            r.permissions,
            Permissions::default(),
            "ghplane's own flags start closed"
        );
    }

    #[test]
    fn created_again_keeps_admin_fields() {
        let mut r = created();
        r.permissions.can_process_issues = true;
        r.tenant_id = Some("t".into());
        let Lifecycle::Write(again) = apply(Some(r), &act("installation", CREATED), app(), "t1")
        else {
            panic!()
        };
        assert!(again.permissions.can_process_issues);
        assert_eq!(again.tenant_id.as_deref(), Some("t"));
        assert_eq!(again.created_at, "t0");
        assert_eq!(again.updated_at, "t1");
    }

    #[test]
    fn repositories_added_and_removed_keep_the_list_exact() {
        let body = r#"{"action":"added","installation":{"id":5},"repository_selection":"selected","repositories_added":[{"id":13,"full_name":"octo-org/c"},{"id":11,"full_name":"octo-org/a"}],"repositories_removed":[]}"#;
        let Lifecycle::Write(r) = apply(
            Some(created()),
            &act("installation_repositories", body),
            app(),
            "t",
        ) else {
            panic!()
        };
        assert_eq!(r.repositories.len(), 3);
        let body = r#"{"action":"removed","installation":{"id":5},"repository_selection":"selected","repositories_added":[],"repositories_removed":[{"id":11,"full_name":"octo-org/a"}]}"#;
        let Lifecycle::Write(r) = apply(
            Some(*r),
            &act("installation_repositories", body),
            app(),
            "t",
        ) else {
            panic!()
        };
        assert_eq!(
            r.repositories
                .iter()
                .map(|x| x.full_name.as_str())
                .collect::<Vec<_>>(),
            ["octo-org/b", "octo-org/c"]
        );
    }

    #[test]
    fn suspend_delete_and_unknown_installations() {
        let suspend = act(
            "installation",
            r#"{"action":"suspend","installation":{"id":5}}"#,
        );
        let Lifecycle::Write(r) = apply(Some(created()), &suspend, app(), "t") else {
            panic!()
        };
        assert!(r.suspended);
        assert_eq!(
            apply(None, &suspend, app(), "t"),
            Lifecycle::Unchanged("unknown_installation")
        );
        let deleted = act(
            "installation",
            r#"{"action":"deleted","installation":{"id":5}}"#,
        );
        assert_eq!(
            apply(Some(created()), &deleted, app(), "t"),
            Lifecycle::Purge
        );
        assert_eq!(
            apply(None, &deleted, app(), "t"),
            Lifecycle::Unchanged("unknown_installation")
        );
    }
}
