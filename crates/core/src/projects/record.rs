//! The stored project and the rules every change to it obeys: the spec status only moves
//! forward (draft → interviewing → review), a project has at most one GitHub repository, and
//! its history is bounded, keeping the newest entries.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::input::{NewProject, ProjectPatch};
use super::slug::ProjectSlug;
use super::types::{AttemptId, ProjectError, RepoFailure, SpecStatus};
use crate::ids::RepoFullName;
use crate::time::rfc3339_from_millis;

/// Enough to explain the last few repository decisions; older entries are dropped first.
pub const MAX_HISTORY: usize = 50;

/// The repository a project deploys from, as GitHub reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GithubRepo {
    pub full_name: RepoFullName,
    pub default_branch: String,
    pub private: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoOrigin {
    /// Created by ghplane on approval.
    Auto,
    /// Chosen by an admin; nothing automatic replaces it.
    Manual,
}

/// A repository creation in flight. While it is fresh, approvals create nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoCreate {
    pub attempt_id: AttemptId,
    pub started_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: String,
    #[serde(flatten)]
    pub event: HistoryEvent,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum HistoryEvent {
    StatusChanged {
        from: SpecStatus,
        to: SpecStatus,
    },
    Approved,
    RepoCreated {
        full_name: RepoFullName,
        attempt_id: AttemptId,
    },
    RepoCreateFailed {
        code: RepoFailure,
        attempt_id: AttemptId,
    },
    ManualOverride {
        full_name: RepoFullName,
        previous: Option<RepoFullName>,
    },
    /// An auto-created repository that lost to a repository set meanwhile. It exists on
    /// GitHub, unused: recorded so an admin can find and delete it.
    RepoCreatedButOverridden {
        full_name: RepoFullName,
        attempt_id: AttemptId,
        kept: RepoFullName,
    },
    /// A creation that never reported back was presumed dead and replaced.
    AutoCreateTakenOver {
        stale_attempt_id: AttemptId,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub slug: ProjectSlug,
    pub name: String,
    pub description: Option<String>,
    pub status: SpecStatus,
    pub github_repo: Option<GithubRepo>,
    pub github_repo_origin: Option<RepoOrigin>,
    pub created_at: String,
    pub updated_at: String,
    pub approved_at: Option<String>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    #[serde(default)]
    pub auto_create: Option<AutoCreate>,
}

impl Project {
    pub fn new(slug: ProjectSlug, input: NewProject, now_ms: i64) -> Project {
        let now = rfc3339_from_millis(now_ms);
        Project {
            slug,
            name: input.name,
            description: input.description,
            status: SpecStatus::Draft,
            github_repo: None,
            github_repo_origin: None,
            created_at: now.clone(),
            updated_at: now,
            approved_at: None,
            history: Vec::new(),
            auto_create: None,
        }
    }

    /// Applies a PATCH. Nothing changes unless the whole patch is acceptable.
    pub fn apply_patch(&mut self, patch: ProjectPatch, now_ms: i64) -> Result<(), ProjectError> {
        if let Some(to) = patch.status {
            self.status.check_move(to)?;
        }
        if let Some(name) = patch.name {
            self.name = name;
        }
        if let Some(description) = patch.description {
            self.description = description;
        }
        if let Some(to) = patch.status {
            if to != self.status {
                let from = self.status;
                self.status = to;
                self.record(now_ms, HistoryEvent::StatusChanged { from, to });
            }
        }
        self.updated_at = rfc3339_from_millis(now_ms);
        Ok(())
    }

    pub(crate) fn record(&mut self, now_ms: i64, event: HistoryEvent) {
        self.history.push(HistoryEntry {
            at: rfc3339_from_millis(now_ms),
            event,
        });
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
        }
    }

    /// What clients see. The in-flight marker is shown (as `autoCreate`) so a UI can say
    /// "creating the repository…" instead of offering to approve again.
    pub fn view(&self) -> Value {
        json!({
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "githubRepo": self.github_repo,
            "githubRepoOrigin": self.github_repo_origin,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "approvedAt": self.approved_at,
            "autoCreate": self.auto_create.as_ref().map(|a| json!({
                "attemptId": a.attempt_id,
                "startedAt": rfc3339_from_millis(a.started_at_ms),
            })),
            "history": self.history,
        })
    }

    /// The row of the project listing: the view without history and in-flight marker, so the
    /// index stays small however long a project lives.
    pub fn summary(&self) -> Value {
        let mut v = self.view();
        if let Some(map) = v.as_object_mut() {
            map.remove("history");
            map.remove("autoCreate");
        }
        v
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const T0: i64 = 1_700_000_000_000;

    #[test]
    fn project_errors_keep_their_code_and_status() {
        let core = ProjectError::IllegalStatusTransition {
            from: SpecStatus::Review,
            to: SpecStatus::Draft,
        };
        let api = crate::ApiError::from(core.clone());
        assert_eq!((api.code(), api.status()), (core.code(), core.status()));
        assert_eq!(api.to_string(), core.to_string());
    }

    pub(crate) fn project(status: SpecStatus) -> Project {
        let mut p = Project::new(
            ProjectSlug::parse("acme-x1y2").unwrap(),
            NewProject {
                name: "Acme".into(),
                description: Some("Widgets".into()),
            },
            T0,
        );
        p.status = status;
        p
    }

    fn patch(status: Option<SpecStatus>) -> ProjectPatch {
        ProjectPatch {
            name: None,
            description: None,
            status,
        }
    }

    #[test]
    fn new_project_is_a_draft_without_repo() {
        let p = project(SpecStatus::Draft);
        assert_eq!(p.created_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(p.created_at, p.updated_at);
        assert!(p.github_repo.is_none() && p.github_repo_origin.is_none());
        assert!(p.history.is_empty());
    }

    #[test]
    fn patch_moves_status_one_step_forward_only() {
        use SpecStatus::*;
        let allowed = [
            (Draft, Interviewing),
            (Interviewing, Review),
            (Draft, Draft),
            (Interviewing, Interviewing),
            (Review, Review),
        ];
        for (from, to) in allowed {
            let mut p = project(from);
            p.apply_patch(patch(Some(to)), T0 + 1).unwrap();
            assert_eq!(p.status, to);
            assert_eq!(p.history.len(), usize::from(from != to));
        }
        for (from, to) in [
            (Draft, Review),
            (Interviewing, Draft),
            (Review, Interviewing),
            (Review, Draft),
        ] {
            let mut p = project(from);
            let before = p.clone();
            let mut full = patch(Some(to));
            full.name = Some("Renamed".into());
            let err = p.apply_patch(full, T0 + 1).unwrap_err();
            assert_eq!(err.code(), "illegal_status_transition");
            assert_eq!(err.status(), 409);
            let msg = err.to_string();
            assert!(
                msg.contains(from.as_str()) && msg.contains(to.as_str()),
                "{msg}"
            );
            assert_eq!(p, before, "a refused patch changes nothing");
        }
    }

    #[test]
    fn patch_sets_and_clears_fields() {
        let mut p = project(SpecStatus::Draft);
        p.apply_patch(
            ProjectPatch {
                name: Some("New".into()),
                description: Some(None),
                status: None,
            },
            T0 + 5,
        )
        .unwrap();
        assert_eq!(p.name, "New");
        assert_eq!(p.description, None);
        assert_eq!(p.updated_at, "2023-11-14T22:13:20.005Z");
    }

    #[test]
    fn approve_needs_a_spec_under_discussion() {
        assert!(SpecStatus::Draft.check_approve().is_err());
        assert!(SpecStatus::Interviewing.check_approve().is_ok());
        assert!(SpecStatus::Review.check_approve().is_ok());
    }

    #[test]
    fn history_is_bounded_and_keeps_the_newest() {
        let mut p = project(SpecStatus::Draft);
        for i in 0..(MAX_HISTORY as i64 + 7) {
            p.record(T0 + i, HistoryEvent::Approved);
        }
        assert_eq!(p.history.len(), MAX_HISTORY);
        assert_eq!(
            p.history.last().unwrap().at,
            rfc3339_from_millis(T0 + MAX_HISTORY as i64 + 6)
        );
    }

    #[test]
    fn history_serialises_as_flat_tagged_objects() {
        let e = HistoryEntry {
            at: "t".into(),
            event: HistoryEvent::RepoCreatedButOverridden {
                full_name: RepoFullName::parse("org/auto").unwrap(),
                attempt_id: AttemptId::from_random([1, 2, 3, 4, 5, 6]),
                kept: RepoFullName::parse("org/manual").unwrap(),
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"at": "t", "event": "repo_created_but_overridden", "fullName": "org/auto",
                   "attemptId": "010203040506", "kept": "org/manual"})
        );
        assert_eq!(serde_json::from_value::<HistoryEntry>(v).unwrap(), e);
        let failed = HistoryEntry {
            at: "t".into(),
            event: HistoryEvent::RepoCreateFailed {
                code: RepoFailure::Forbidden,
                attempt_id: AttemptId::from_random([0; 6]),
            },
        };
        let v = serde_json::to_value(&failed).unwrap();
        assert_eq!(v["code"], "GITHUB_FORBIDDEN");
        assert_eq!(serde_json::from_value::<HistoryEntry>(v).unwrap(), failed);
    }

    #[test]
    fn project_round_trips_through_storage_and_view_names_fields() {
        let mut p = project(SpecStatus::Review);
        p.auto_create = Some(AutoCreate {
            attempt_id: AttemptId::from_random([9; 6]),
            started_at_ms: T0,
        });
        let stored = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Project>(&stored).unwrap(), p);
        let v = p.view();
        assert_eq!(v["status"], "review");
        assert_eq!(v["githubRepo"], Value::Null);
        assert_eq!(v["autoCreate"]["startedAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["autoCreate"]["attemptId"], "090909090909");
        let row = p.summary();
        assert!(row.get("history").is_none() && row.get("autoCreate").is_none());
        assert_eq!(row["slug"], "acme-x1y2");
        assert_eq!(row["createdAt"], v["createdAt"]);
    }
}
