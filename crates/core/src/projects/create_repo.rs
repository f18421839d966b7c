//! How one run of "create the project's private repository in the org" proceeds after each
//! GitHub answer. Invariant: a run never makes a second repository because the first answer
//! was lost: a try whose outcome is unknown is repeated under the same name, and the
//! name-taken answer that follows is checked against the marker our description carries.
//!
//! A run, as the adapter drives it (`tries` counts POSTs for the current name):
//!
//! ```text
//! name = plan.name; attempt = 1; uncertain = plan.uncertain_attempt.is_some()
//! loop: POST /orgs/{org}/repos create_repo_body(name, plan.description)
//!   ok          → on_repo_created
//!   err → match next_after_failure(attempt, err, uncertain)
//!     RetrySame       → uncertain = true; POST again
//!     RetryWithSuffix → name = retry_name(slug, random); attempt = 2; uncertain = false
//!     ReadBack        → GET /repos/{org}/{name}; ours (plan.is_ours) → on_repo_created,
//!                       else next_after_failure(attempt, err, false)
//!     Fail(code)      → on_repo_failed
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::record::AttemptId;
use super::slug::{random_suffix, ProjectSlug};
use crate::github::error::GithubError;

/// GitHub refuses longer repository descriptions; the marker must survive, so the human part
/// is cut instead.
const MAX_GITHUB_DESCRIPTION: usize = 350;

/// Why a repository was not created, as the admin sees it in `repo.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepoFailure {
    /// Both the slug and a suffixed name exist already.
    #[serde(rename = "GITHUB_REPO_NAME_TAKEN")]
    NameTaken,
    #[serde(rename = "GITHUB_UNAUTHORIZED")]
    Unauthorized,
    #[serde(rename = "GITHUB_FORBIDDEN")]
    Forbidden,
    /// Network failure, GitHub 5xx, or an unreadable answer, twice in a row.
    #[serde(rename = "GITHUB_UNAVAILABLE")]
    Unavailable,
    #[serde(rename = "GITHUB_RATE_LIMITED")]
    RateLimited,
    /// 404: the org does not exist or the app is not installed on it.
    #[serde(rename = "GITHUB_ORG_NOT_FOUND")]
    OrgNotFound,
    /// Any other refusal (a 422 that is not about the name, an unexpected status).
    #[serde(rename = "GITHUB_REPO_REJECTED")]
    Rejected,
    /// `GITHUB_ORG` is not set, or no installation covers it; decided by the adapter.
    #[serde(rename = "GITHUB_ORG_NOT_CONFIGURED")]
    OrgNotConfigured,
}

impl RepoFailure {
    pub fn code(self) -> &'static str {
        match self {
            RepoFailure::NameTaken => "GITHUB_REPO_NAME_TAKEN",
            RepoFailure::Unauthorized => "GITHUB_UNAUTHORIZED",
            RepoFailure::Forbidden => "GITHUB_FORBIDDEN",
            RepoFailure::Unavailable => "GITHUB_UNAVAILABLE",
            RepoFailure::RateLimited => "GITHUB_RATE_LIMITED",
            RepoFailure::OrgNotFound => "GITHUB_ORG_NOT_FOUND",
            RepoFailure::Rejected => "GITHUB_REPO_REJECTED",
            RepoFailure::OrgNotConfigured => "GITHUB_ORG_NOT_CONFIGURED",
        }
    }

    /// What the admin should do about it.
    pub fn message(self) -> &'static str {
        match self {
            RepoFailure::NameTaken => {
                "a repository with the project's name (and a suffixed variant) already exists in the organization; choose one with PUT /projects/{slug}/github-repo"
            }
            RepoFailure::Unauthorized => {
                "GitHub rejected the org credentials; check the org app's id and private key, or GITHUB_TOKEN"
            }
            RepoFailure::Forbidden => {
                "the GitHub App (or GITHUB_TOKEN) may not create repositories in the organization: grant it the Administration (write) repository permission and accept it on the installation"
            }
            RepoFailure::Unavailable => "GitHub could not be reached; approve again to retry",
            RepoFailure::RateLimited => "GitHub's rate limit was hit; approve again later",
            RepoFailure::OrgNotFound => {
                "the organization in GITHUB_ORG does not exist or the app is not installed on it"
            }
            RepoFailure::Rejected => "GitHub refused to create the repository",
            RepoFailure::OrgNotConfigured => {
                "GITHUB_ORG is not configured, or neither GITHUB_ORG_INSTALLATION_ID (a configured installation of the app on it) nor GITHUB_TOKEN is set"
            }
        }
    }

    /// Getting the org's installation token failed with the error `code` (an [`ApiError`]
    /// code, as the installation's object rendered it): no repository was attempted.
    ///
    /// [`ApiError`]: crate::error::ApiError
    pub fn from_token_error(code: &str) -> RepoFailure {
        match code {
            "github_unauthorized" => RepoFailure::Unauthorized,
            "github_forbidden" => RepoFailure::Forbidden,
            "github_rate_limited" => RepoFailure::RateLimited,
            "github_rejected" => RepoFailure::Rejected,
            // The installation is not a configured tenant, its app is gone, GitHub does not
            // know it, or it is suspended: the org is not usable as configured.
            "installation_not_found"
            | "app_not_found"
            | "unknown_app"
            | "github_not_found"
            | "installation_suspended"
            | "server_misconfigured"
            | "forbidden"
            | "validation_failed" => RepoFailure::OrgNotConfigured,
            _ => RepoFailure::Unavailable,
        }
    }

    /// The try may have created the repository even though we saw a failure.
    pub fn outcome_unknown(self) -> bool {
        self == RepoFailure::Unavailable
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateRepoNext {
    /// The try may or may not have reached GitHub: POST the same name once more, and from
    /// now on pass `timed_out_before = true`.
    RetrySame,
    /// The slug is taken by someone else: try [`retry_name`].
    RetryWithSuffix,
    /// The name is taken, perhaps by our own earlier try: read the repository and decide
    /// with [`is_our_repo`].
    ReadBack,
    Fail(RepoFailure),
}

fn marker(slug: &str, attempt_id: &str) -> String {
    format!("[ghplane:{slug}:{attempt_id}]")
}

/// The repository description: the project's description on one line, then the marker
/// ` [ghplane:<slug>:<attempt id>]` by which [`is_our_repo`] recognises the repository.
pub fn repo_description(
    project_description: Option<&str>,
    slug: &ProjectSlug,
    attempt_id: &AttemptId,
) -> String {
    let marker = marker(slug.as_str(), attempt_id.as_str());
    // GitHub refuses control characters in descriptions.
    let flat: String = project_description
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let room = MAX_GITHUB_DESCRIPTION - marker.chars().count() - 1;
    let human: String = flat.trim().chars().take(room).collect();
    let human = human.trim_end();
    if human.is_empty() {
        marker
    } else {
        format!("{human} {marker}")
    }
}

/// The body of `POST /orgs/{org}/repos`. `auto_init: false` leaves the repository empty so
/// the first push, not GitHub, decides its history.
pub fn create_repo_body(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "private": true,
        "description": description,
        "auto_init": false,
    })
}

/// The fallback name when the slug is taken by a repository that is not ours.
pub fn retry_name(slug: &ProjectSlug, random: [u8; 4]) -> String {
    format!("{slug}-{}", random_suffix(random))
}

/// Whether a repository's description carries the marker of this slug and attempt.
pub fn is_our_repo(description: Option<&str>, slug: &str, attempt_id: &str) -> bool {
    description.is_some_and(|d| d.trim_end().ends_with(&marker(slug, attempt_id)))
}

/// The step after a failed POST. `attempt` is 1 while trying the slug and 2 while trying the
/// suffixed name; `timed_out_before` is true when an earlier try of this same name ended
/// without a clear answer (it may have created the repository).
pub fn next_after_failure(
    attempt: u8,
    err: &GithubError,
    timed_out_before: bool,
) -> CreateRepoNext {
    use CreateRepoNext::*;
    match err {
        e if e.is_name_taken() => {
            if timed_out_before {
                ReadBack
            } else if attempt <= 1 {
                RetryWithSuffix
            } else {
                Fail(RepoFailure::NameTaken)
            }
        }
        // An unreadable 2xx is as uncertain as a timeout: the repository may well exist.
        GithubError::Network(_)
        | GithubError::Server { .. }
        | GithubError::MalformedResponse(_) => {
            if timed_out_before {
                Fail(RepoFailure::Unavailable)
            } else {
                RetrySame
            }
        }
        GithubError::Unauthorized { .. } => Fail(RepoFailure::Unauthorized),
        GithubError::Forbidden { .. } => Fail(RepoFailure::Forbidden),
        // Retry-after is usually a minute or more: longer than an admin request should hang.
        GithubError::RateLimited { .. } => Fail(RepoFailure::RateLimited),
        GithubError::NotFound => Fail(RepoFailure::OrgNotFound),
        GithubError::Unprocessable { .. } | GithubError::Unexpected { .. } => {
            Fail(RepoFailure::Rejected)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::error::FieldError;

    fn taken() -> GithubError {
        GithubError::Unprocessable {
            message: "Repository creation failed.".into(),
            errors: vec![FieldError {
                resource: Some("Repository".into()),
                field: Some("name".into()),
                code: Some("custom".into()),
                message: Some("name already exists on this account".into()),
            }],
        }
    }

    fn slug() -> ProjectSlug {
        ProjectSlug::parse("acme-ab12").unwrap()
    }

    #[test]
    fn body_is_private_and_empty() {
        assert_eq!(
            create_repo_body("acme-ab12", "d"),
            json!({"name": "acme-ab12", "private": true, "description": "d", "auto_init": false})
        );
    }

    #[test]
    fn description_ends_with_a_recognisable_marker() {
        let a = AttemptId::from_random([0xab; 6]);
        let d = repo_description(Some("Widgets\nfor all"), &slug(), &a);
        assert_eq!(d, "Widgets for all [ghplane:acme-ab12:abababababab]");
        assert!(is_our_repo(Some(&d), "acme-ab12", a.as_str()));
        assert!(!is_our_repo(Some(&d), "acme-ab12", "000000000000"));
        assert!(!is_our_repo(Some(&d), "other-ab12", a.as_str()));
        assert!(!is_our_repo(None, "acme-ab12", a.as_str()));
        assert!(!is_our_repo(
            Some("[ghplane:acme-ab12:abababababab] copied"),
            "acme-ab12",
            a.as_str()
        ));
        assert_eq!(
            repo_description(None, &slug(), &a),
            "[ghplane:acme-ab12:abababababab]"
        );
    }

    #[test]
    fn a_long_description_is_cut_but_keeps_the_marker() {
        let a = AttemptId::from_random([1; 6]);
        let d = repo_description(Some(&"é".repeat(500)), &slug(), &a);
        assert_eq!(d.chars().count(), MAX_GITHUB_DESCRIPTION);
        assert!(is_our_repo(Some(&d), slug().as_str(), a.as_str()));
    }

    #[test]
    fn retry_name_appends_four_random_characters() {
        assert_eq!(retry_name(&slug(), [2, 3, 30, 31]), "acme-ab12-cd45");
    }

    #[test]
    fn name_taken_first_suffix_then_fail() {
        assert_eq!(
            next_after_failure(1, &taken(), false),
            CreateRepoNext::RetryWithSuffix
        );
        assert_eq!(
            next_after_failure(2, &taken(), false),
            CreateRepoNext::Fail(RepoFailure::NameTaken)
        );
    }

    #[test]
    fn name_taken_after_our_timeout_reads_back() {
        assert_eq!(
            next_after_failure(1, &taken(), true),
            CreateRepoNext::ReadBack
        );
        assert_eq!(
            next_after_failure(2, &taken(), true),
            CreateRepoNext::ReadBack
        );
    }

    #[test]
    fn uncertain_failures_retry_the_same_name_once() {
        for e in [
            GithubError::Network("timeout".into()),
            GithubError::Server { status: 502 },
            GithubError::MalformedResponse("eof".into()),
        ] {
            assert_eq!(next_after_failure(1, &e, false), CreateRepoNext::RetrySame);
            assert_eq!(
                next_after_failure(1, &e, true),
                CreateRepoNext::Fail(RepoFailure::Unavailable)
            );
        }
    }

    #[test]
    fn definite_failures_map_to_codes() {
        let cases = [
            (
                GithubError::Unauthorized {
                    message: "Bad credentials".into(),
                },
                RepoFailure::Unauthorized,
            ),
            (
                GithubError::Forbidden {
                    message: "Resource not accessible by integration".into(),
                },
                RepoFailure::Forbidden,
            ),
            (
                GithubError::RateLimited {
                    retry_after_secs: Some(60),
                },
                RepoFailure::RateLimited,
            ),
            (GithubError::NotFound, RepoFailure::OrgNotFound),
            (
                GithubError::Unprocessable {
                    message: "Validation Failed".into(),
                    errors: vec![],
                },
                RepoFailure::Rejected,
            ),
            (
                GithubError::Unexpected { status: 409 },
                RepoFailure::Rejected,
            ),
        ];
        for (e, code) in cases {
            for timed_out in [false, true] {
                assert_eq!(
                    next_after_failure(1, &e, timed_out),
                    CreateRepoNext::Fail(code)
                );
            }
        }
    }

    #[test]
    fn token_errors_map_to_failures() {
        for (code, failure) in [
            ("github_unauthorized", RepoFailure::Unauthorized),
            ("github_forbidden", RepoFailure::Forbidden),
            ("github_rate_limited", RepoFailure::RateLimited),
            ("installation_not_found", RepoFailure::OrgNotConfigured),
            ("installation_suspended", RepoFailure::OrgNotConfigured),
            ("app_not_found", RepoFailure::OrgNotConfigured),
            ("github_unavailable", RepoFailure::Unavailable),
            ("internal_error", RepoFailure::Unavailable),
        ] {
            assert_eq!(RepoFailure::from_token_error(code), failure, "{code}");
        }
    }

    #[test]
    fn codes_and_messages() {
        assert_eq!(
            serde_json::to_value(RepoFailure::NameTaken).unwrap(),
            "GITHUB_REPO_NAME_TAKEN"
        );
        for f in [
            RepoFailure::NameTaken,
            RepoFailure::Unauthorized,
            RepoFailure::Forbidden,
            RepoFailure::Unavailable,
            RepoFailure::RateLimited,
            RepoFailure::OrgNotFound,
            RepoFailure::Rejected,
            RepoFailure::OrgNotConfigured,
        ] {
            assert_eq!(serde_json::to_value(f).unwrap(), f.code());
        }
        assert!(RepoFailure::Forbidden
            .message()
            .contains("Administration (write)"));
    }
}
