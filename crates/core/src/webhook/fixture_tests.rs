//! The webhook pipeline over GitHub's real payloads (octokit/webhooks' examples, vendored in
//! `tests/fixtures/github-webhooks/<event>/<action>….json`; source and license beside them).
//!
//! **Invariant:** every payload parses, and every handled one classifies to what its JSON
//! says. The JSON is read as a `serde_json::Value` here only, to have an independent view.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

use super::*;
use crate::webhook::event::RepoRef;

struct Fixture {
    event: String,
    file: String,
    body: Vec<u8>,
    json: Value,
}

impl Fixture {
    fn action(&self) -> Option<&str> {
        self.json["action"].as_str()
    }

    fn label(&self) -> String {
        format!("{}/{}", self.event, self.file)
    }
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/github-webhooks"
    ))
}

/// Read once for all the tests in this file.
fn fixtures() -> &'static [Fixture] {
    static ALL: OnceLock<Vec<Fixture>> = OnceLock::new();
    ALL.get_or_init(load)
}

fn load() -> Vec<Fixture> {
    let dir = fixtures_dir();
    let folders = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "webhook fixtures not found at {} ({e}); they are part of the repository",
            dir.display()
        )
    });
    let mut out = Vec::new();
    for folder in folders {
        let folder = folder.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        let event = folder.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&folder).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let body = std::fs::read(&path).unwrap();
            let json =
                serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push(Fixture {
                event: event.clone(),
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                body,
                json,
            });
        }
    }
    out.sort_by_key(|f| f.label());
    assert!(!out.is_empty(), "no payloads under {}", dir.display());
    out
}

/// What ghplane should do with each (event, action), per the issue.
fn expected_kind(event: &str, action: Option<&str>) -> &'static str {
    match (event, action) {
        ("installation", Some("created")) => "upsert_tenant",
        ("installation", Some("deleted")) => "purge_tenant",
        ("installation", Some("suspend" | "unsuspend")) => "set_suspended",
        ("installation", Some("new_permissions_accepted")) => "refresh_permissions",
        ("installation_repositories", Some("added" | "removed")) => "change_repositories",
        ("push", _) => "push",
        ("repository", Some("renamed")) => "repo_renamed",
        ("issues", Some("opened" | "labeled")) => "issue_work",
        ("ping", _) => "ping",
        _ => "ignored",
    }
}

fn u64_at(v: &Value, pointer: &str) -> Option<u64> {
    v.pointer(pointer).and_then(Value::as_u64)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn repo_refs(v: &Value) -> Vec<(u64, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap(),
                r["full_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn typed_refs(refs: &[RepoRef]) -> Vec<(u64, String)> {
    refs.iter()
        .map(|r| (r.id.get(), r.full_name.as_str().to_owned()))
        .collect()
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn string_vec(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_payload_parses_verifies_and_classifies() {
    let all = fixtures();
    let mut failures = Vec::new();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    let mut without_installation = 0;
    for f in all {
        // The whole pipeline, headers to action, on the exact bytes.
        let signature = sign(b"fixture secret", &f.body);
        let length = f.body.len().to_string();
        let headers = check_headers(|name| match name {
            "X-GitHub-Event" => Some(f.event.clone()),
            "X-GitHub-Delivery" => Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
            "Content-Type" => Some("application/json".into()),
            "Content-Length" => Some(length.clone()),
            "X-Hub-Signature-256" => Some(signature.clone()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{}: {e}", f.label()));
        verify(&[b"fixture secret"], &f.body, headers.signature.as_deref()).unwrap();
        let event = match parse_event(&headers.event, &f.body) {
            Ok(ev) => ev,
            Err(e) => {
                failures.push(format!("{}: {e}", f.label()));
                continue;
            }
        };
        let action = classify(&event);
        *by_kind.entry(action.kind()).or_default() += 1;
        if let Action::Ignored { reason, .. } = &action {
            *by_reason.entry(reason.as_str()).or_default() += 1;
        }

        // The envelope matches the JSON for every payload, handled or not.
        let label = f.label();
        assert_eq!(event.name, f.event, "{label}");
        assert_eq!(event.action(), f.action(), "{label}");
        let want_installation = u64_at(&f.json, "/installation/id");
        without_installation += usize::from(want_installation.is_none());
        assert_eq!(
            event.installation_id().map(|i| i.get()),
            want_installation,
            "{label}"
        );
        assert_eq!(
            action.installation_id().map(|i| i.get()),
            want_installation,
            "{label}"
        );
        match &event.repository {
            Some(r) => {
                assert_eq!(
                    Some(r.id.get()),
                    u64_at(&f.json, "/repository/id"),
                    "{label}"
                );
                assert_eq!(
                    Some(r.full_name.as_str()),
                    str_at(&f.json, "/repository/full_name")
                );
                assert_eq!(
                    Some(r.owner_login.as_str()),
                    str_at(&f.json, "/repository/owner/login")
                );
                assert_eq!(
                    Some(r.private),
                    f.json
                        .pointer("/repository/private")
                        .and_then(Value::as_bool)
                );
                assert_eq!(
                    r.default_branch.as_deref(),
                    str_at(&f.json, "/repository/default_branch")
                );
            }
            None => assert!(f.json["repository"].is_null(), "{label}"),
        }
        match &event.sender {
            Some(s) => {
                assert_eq!(
                    Some(s.login.as_str()),
                    str_at(&f.json, "/sender/login"),
                    "{label}"
                );
                assert_eq!(Some(s.id), u64_at(&f.json, "/sender/id"), "{label}");
            }
            None => assert!(f.json["sender"].is_null(), "{label}"),
        }

        assert_eq!(
            action.kind(),
            expected_kind(&f.event, f.action()),
            "{label}: {action:?}"
        );
        if let Action::Ignored { reason, .. } = &action {
            let handled_event = matches!(
                f.event.as_str(),
                "installation"
                    | "installation_repositories"
                    | "push"
                    | "repository"
                    | "issues"
                    | "ping"
            );
            let want = if handled_event {
                IgnoreReason::ActionNotHandled
            } else {
                IgnoreReason::EventNotHandled
            };
            assert_eq!(*reason, want, "{label}");
        }
    }
    assert!(
        failures.is_empty(),
        "payloads that did not parse:\n{}",
        failures.join("\n")
    );

    println!(
        "{} webhook payloads under {}",
        all.len(),
        fixtures_dir().display()
    );
    println!("  {without_installation} without `installation`");
    for (kind, n) in &by_kind {
        println!("  {kind}: {n}");
    }
    for (reason, n) in &by_reason {
        println!("  ignored/{reason}: {n}");
    }
}

fn by_event(event: &str) -> Vec<(&'static Fixture, Action)> {
    fixtures()
        .iter()
        .filter(|f| f.event == event)
        .map(|f| {
            let ev = parse_event(&f.event, &f.body).unwrap();
            let action = classify(&ev);
            (f, action)
        })
        .collect()
}

#[test]
fn installation_payloads() {
    let mut seen = Vec::new();
    for (f, action) in by_event("installation") {
        let j = &f.json;
        let id = u64_at(j, "/installation/id").unwrap();
        seen.push(f.action().unwrap().to_owned());
        match action {
            Action::UpsertTenant {
                installation_id,
                app_id,
                account,
                repository_selection,
                repositories,
                permissions,
                events,
            } => {
                assert_eq!(installation_id.get(), id);
                assert_eq!(app_id.map(|a| a.get()), u64_at(j, "/installation/app_id"));
                let account = account.unwrap();
                assert_eq!(
                    Some(account.login.as_str()),
                    str_at(j, "/installation/account/login")
                );
                assert_eq!(Some(account.id), u64_at(j, "/installation/account/id"));
                assert_eq!(
                    Some(account.kind.as_str()),
                    str_at(j, "/installation/account/type")
                );
                assert_eq!(
                    repository_selection.map(|s| s.as_str()),
                    str_at(j, "/installation/repository_selection")
                );
                assert_eq!(typed_refs(&repositories), repo_refs(&j["repositories"]));
                assert_eq!(permissions, string_map(&j["installation"]["permissions"]));
                assert_eq!(events, string_vec(&j["installation"]["events"]));
            }
            Action::PurgeTenant { installation_id } => {
                assert_eq!((f.action(), installation_id.get()), (Some("deleted"), id));
            }
            Action::SetSuspended {
                installation_id,
                suspended,
            } => {
                assert_eq!(installation_id.get(), id);
                assert_eq!(suspended, f.action() == Some("suspend"), "{}", f.label());
            }
            Action::RefreshPermissions {
                installation_id,
                permissions,
                events,
            } => {
                assert_eq!(installation_id.get(), id);
                assert_eq!(permissions, string_map(&j["installation"]["permissions"]));
                assert_eq!(events, string_vec(&j["installation"]["events"]));
            }
            other => panic!("{}: {other:?}", f.label()),
        }
    }
    seen.sort();
    seen.dedup();
    for a in [
        "created",
        "deleted",
        "new_permissions_accepted",
        "suspend",
        "unsuspend",
    ] {
        assert!(seen.iter().any(|s| s == a), "no installation.{a} fixture");
    }
}

#[test]
fn installation_repositories_payloads() {
    let mut seen = Vec::new();
    for (f, action) in by_event("installation_repositories") {
        let j = &f.json;
        let Action::ChangeRepositories {
            installation_id,
            added,
            removed,
            repository_selection,
        } = action
        else {
            panic!("{}: {action:?}", f.label())
        };
        seen.push(f.action().unwrap().to_owned());
        assert_eq!(Some(installation_id.get()), u64_at(j, "/installation/id"));
        assert_eq!(typed_refs(&added), repo_refs(&j["repositories_added"]));
        assert_eq!(typed_refs(&removed), repo_refs(&j["repositories_removed"]));
        assert_eq!(
            repository_selection.map(|s| s.as_str()),
            str_at(j, "/repository_selection")
        );
    }
    seen.sort();
    assert_eq!(seen, ["added", "removed"]);
}

#[test]
fn push_payloads() {
    let mut targets = BTreeMap::new();
    for (f, action) in by_event("push") {
        let j = &f.json;
        let ev = parse_event("push", &f.body).unwrap();
        let EventKind::Push(push) = &ev.kind else {
            panic!("{}", f.label())
        };
        let Action::Push {
            installation_id: _,
            repo_id,
            full_name,
            branch,
            before,
            after,
            deleted,
            forced,
            head_commit_id,
            head_commit_message,
            pusher,
            skip,
        } = action
        else {
            panic!("{}: {action:?}", f.label())
        };
        let git_ref = str_at(j, "/ref").unwrap();
        assert_eq!(push.git_ref, git_ref);
        assert_eq!(Some(push.before.as_str()), str_at(j, "/before"));
        assert_eq!(Some(repo_id.get()), u64_at(j, "/repository/id"));
        assert_eq!(Some(full_name.as_str()), str_at(j, "/repository/full_name"));
        assert_eq!(branch.as_deref(), git_ref.strip_prefix("refs/heads/"));
        assert_eq!(Some(before.as_str()), str_at(j, "/before"));
        assert_eq!(Some(after.as_str()), str_at(j, "/after"));
        assert_eq!(Some(deleted), j["deleted"].as_bool());
        assert_eq!(Some(forced), j["forced"].as_bool());
        assert_eq!(
            head_commit_id.as_ref().map(|c| c.as_str()),
            str_at(j, "/head_commit/id")
        );
        assert_eq!(
            head_commit_message.as_deref(),
            str_at(j, "/head_commit/message")
        );
        assert_eq!(pusher.as_deref(), str_at(j, "/pusher/name"));

        let target = push_target(push);
        let want = if git_ref.starts_with("refs/tags/") {
            Err(PushSkip::TagPush)
        } else if j["deleted"] == true || after.is_zero() {
            Err(PushSkip::BranchDeleted)
        } else {
            Ok((branch.clone().unwrap(), after.clone()))
        };
        assert_eq!(target, want, "{}", f.label());
        assert_eq!(skip, target.clone().err(), "{}", f.label());
        targets.insert(
            f.file.clone(),
            target
                .map(|(b, s)| format!("{b}@{s}"))
                .map_err(PushSkip::as_str),
        );
    }
    // The two shapes the fixtures hold: a deleted tag, and a new branch.
    assert_eq!(targets["payload.json"], Err("tag_push"));
    assert_eq!(
        targets["with-new-branch.payload.json"],
        Ok("master@6113728f27ae82c7b1a177c8d03f9e96e0adf246".to_owned())
    );
}

#[test]
fn repository_renamed_payload() {
    let mut renamed = 0;
    for (f, action) in by_event("repository") {
        let j = &f.json;
        if f.action() != Some("renamed") {
            assert_eq!(action.kind(), "ignored", "{}", f.label());
            continue;
        }
        renamed += 1;
        assert_eq!(
            action,
            Action::RepoRenamed {
                installation_id: u64_at(j, "/installation/id")
                    .map(|i| crate::ids::InstallationId::from_u64(i).unwrap()),
                repo_id: crate::ids::RepoId::from_u64(u64_at(j, "/repository/id").unwrap())
                    .unwrap(),
                new_full_name: crate::ids::RepoFullName::parse(
                    str_at(j, "/repository/full_name").unwrap()
                )
                .unwrap(),
                old_name: str_at(j, "/changes/repository/name/from").map(str::to_owned),
            }
        );
    }
    assert_eq!(renamed, 1);
}

#[test]
fn issues_payloads() {
    let mut work = 0;
    for (f, action) in by_event("issues") {
        let j = &f.json;
        let Action::IssueWork {
            installation_id,
            issue_id,
            number,
            repo,
            repo_id,
            title,
            label,
        } = action
        else {
            assert!(
                !matches!(f.action(), Some("opened" | "labeled")),
                "{}",
                f.label()
            );
            continue;
        };
        work += 1;
        assert_eq!(
            installation_id.map(|i| i.get()),
            u64_at(j, "/installation/id")
        );
        assert_eq!(Some(issue_id), u64_at(j, "/issue/id"));
        assert_eq!(Some(number), u64_at(j, "/issue/number"));
        assert_eq!(Some(repo.as_str()), str_at(j, "/repository/full_name"));
        assert_eq!(Some(repo_id.get()), u64_at(j, "/repository/id"));
        assert_eq!(Some(title.as_str()), str_at(j, "/issue/title"));
        assert_eq!(label.as_deref(), str_at(j, "/label/name"));
        if f.action() == Some("labeled") {
            assert!(label.is_some(), "{}", f.label());
        }
        let key = work_item_key(crate::ids::InstallationId::from_u64(1).unwrap(), issue_id);
        assert_eq!(key, format!("install-1-issue-{}", j["issue"]["id"]));
    }
    assert!(work >= 2, "opened and labeled fixtures: {work}");
}

#[test]
fn ping_payloads() {
    let pings = by_event("ping");
    assert!(!pings.is_empty());
    for (f, action) in pings {
        let j = &f.json;
        let Action::Ping {
            installation_id,
            hook_id,
            app_id,
        } = action
        else {
            panic!("{}: {action:?}", f.label())
        };
        assert_eq!(
            installation_id.map(|i| i.get()),
            u64_at(j, "/installation/id")
        );
        assert_eq!(hook_id, u64_at(j, "/hook_id"));
        assert_eq!(app_id.map(|a| a.get()), u64_at(j, "/hook/app_id"));
    }
}

#[test]
fn one_changed_byte_in_a_real_payload_fails_verification() {
    let f = fixtures().iter().find(|f| f.event == "push").unwrap();
    let header = sign(b"k", &f.body);
    let mut body = f.body.clone();
    let mid = body.len() / 2;
    body[mid] ^= 0x20;
    assert_eq!(
        verify(&[b"k"], &body, Some(&header)),
        Err(SignatureError::Mismatch)
    );
}
