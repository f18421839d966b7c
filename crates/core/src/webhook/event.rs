//! The event model: a verified payload's fields that ghplane uses, typed. [`parse`] reads a
//! body into it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{truncate, AppId, InstallationId, RepoFullName, RepoId};

/// Issue titles are for log lines and work-item labels, not for storage of the issue.
pub const MAX_TITLE_LEN: usize = 256;
/// Commit messages can be megabytes; the head commit's is kept for a deploy's description.
pub const MAX_MESSAGE_LEN: usize = 1024;
/// serde_json's own recursion limit. It guards only the fields that are read: serde_json
/// skips unknown fields iteratively and accepts them at any depth, so [`parse::parse_event`]
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

pub mod parse;

#[cfg(test)]
mod tests {
    use super::parse::parse_event;
    use super::*;
    use crate::webhook::error::WebhookError;
    use crate::webhook::json_depth::nesting_within;
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
