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

use serde_json::{json, Value};

use super::slug::{random_suffix, ProjectSlug};
use super::types::{AttemptId, RepoFailure};
use crate::github::error::GithubError;

/// GitHub refuses longer repository descriptions; the marker must survive, so the human part
/// is cut instead.
const MAX_GITHUB_DESCRIPTION: usize = 350;

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
