//! fullsend's built-in roles and the permissions each token is cut down to.
//!
//! **Invariant:** this table is fullsend's `canonicalRolePermissions` (internal/mintcore/
//! github.go) entry for entry; a token minted for a role never asks GitHub for more than
//! its row. `fix` has its own row but signs with the `coder` App.

use std::collections::BTreeMap;

/// Role → (permission, level), sorted by role.
pub const BUILTIN_ROLES: &[(&str, &[(&str, &str)])] = &[
    (
        "coder",
        &[
            ("checks", "read"),
            ("contents", "write"),
            ("issues", "write"),
            ("metadata", "read"),
            ("pull_requests", "write"),
        ],
    ),
    (
        "e2e",
        &[
            ("actions", "write"),
            ("actions_variables", "write"),
            ("administration", "write"),
            ("contents", "write"),
            ("issues", "write"),
            ("members", "write"),
            ("metadata", "read"),
            ("organization_actions_variables", "write"),
            ("organization_administration", "write"),
            ("pull_requests", "write"),
            ("secrets", "write"),
            ("workflows", "write"),
        ],
    ),
    (
        "fix",
        &[
            ("contents", "write"),
            ("issues", "write"),
            ("metadata", "read"),
            ("pull_requests", "write"),
        ],
    ),
    (
        "fullsend",
        &[
            ("actions", "write"),
            ("actions_variables", "read"),
            ("contents", "write"),
            ("metadata", "read"),
            ("pull_requests", "write"),
            ("workflows", "write"),
        ],
    ),
    (
        "prioritize",
        &[
            ("contents", "read"),
            ("issues", "write"),
            ("metadata", "read"),
            ("organization_projects", "write"),
        ],
    ),
    (
        "retro",
        &[
            ("actions", "read"),
            ("contents", "read"),
            ("issues", "write"),
            ("metadata", "read"),
            ("pull_requests", "write"),
        ],
    ),
    (
        "review",
        &[
            ("checks", "read"),
            ("contents", "read"),
            ("issues", "write"),
            ("metadata", "read"),
            ("pull_requests", "write"),
        ],
    ),
    (
        "scribe",
        &[
            ("contents", "read"),
            ("issues", "write"),
            ("metadata", "read"),
        ],
    ),
    (
        "triage",
        &[
            ("contents", "read"),
            ("issues", "write"),
            ("metadata", "read"),
        ],
    ),
];

/// Permissions of the installation token used to read an org-level
/// `FULLSEND_FOREIGN_<ROLE>_REPOS` variable.
pub const FOREIGN_ORG_POLICY_PERMISSIONS: &[(&str, &str)] =
    &[("organization_actions_variables", "read")];
/// Permissions of the installation token used to read a repo-level one.
pub const FOREIGN_REPO_POLICY_PERMISSIONS: &[(&str, &str)] = &[("actions_variables", "read")];

pub type Permissions = BTreeMap<String, String>;

pub fn is_builtin(role: &str) -> bool {
    BUILTIN_ROLES.iter().any(|(r, _)| *r == role)
}

/// The built-in row for `role`, or `None` for a role fullsend does not define.
pub fn builtin_permissions(role: &str) -> Option<Permissions> {
    BUILTIN_ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, p)| to_permissions(p))
}

pub(crate) fn to_permissions(p: &[(&str, &str)]) -> Permissions {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The role whose App (ROLE_APP_IDS entry and private key) signs for `role`: fullsend's
/// `PemSecretRole`, where the fix stage borrows the coder App.
pub fn app_role(role: &str) -> &str {
    if role == "fix" {
        "coder"
    } else {
        role
    }
}

/// The Worker secret holding `role`'s private key, as fullsend's Worker names it:
/// `<APP_ROLE>_APP_PEM`, hyphens → underscores (secret names are JS identifiers).
pub fn pem_secret_name(role: &str) -> String {
    format!(
        "{}_APP_PEM",
        app_role(role).replace('-', "_").to_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(role: &str) -> Vec<(String, String)> {
        builtin_permissions(role).unwrap().into_iter().collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        to_permissions(p).into_iter().collect()
    }

    #[test]
    fn exactly_fullsends_roles() {
        let names: Vec<_> = BUILTIN_ROLES.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            names,
            [
                "coder",
                "e2e",
                "fix",
                "fullsend",
                "prioritize",
                "retro",
                "review",
                "scribe",
                "triage"
            ]
        );
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert!(builtin_permissions("deploy").is_none());
        assert!(!is_builtin("Coder"));
    }

    #[test]
    fn rows_match_fullsend() {
        let tri = [
            ("contents", "read"),
            ("issues", "write"),
            ("metadata", "read"),
        ];
        assert_eq!(row("triage"), pairs(&tri));
        assert_eq!(row("scribe"), pairs(&tri));
        assert_eq!(
            row("coder"),
            pairs(&[
                ("contents", "write"),
                ("pull_requests", "write"),
                ("issues", "write"),
                ("checks", "read"),
                ("metadata", "read")
            ])
        );
        assert_eq!(
            row("review"),
            pairs(&[
                ("contents", "read"),
                ("pull_requests", "write"),
                ("issues", "write"),
                ("checks", "read"),
                ("metadata", "read")
            ])
        );
        assert_eq!(
            row("fix"),
            pairs(&[
                ("contents", "write"),
                ("pull_requests", "write"),
                ("issues", "write"),
                ("metadata", "read")
            ])
        );
        assert_eq!(
            row("retro"),
            pairs(&[
                ("actions", "read"),
                ("contents", "read"),
                ("pull_requests", "write"),
                ("issues", "write"),
                ("metadata", "read")
            ])
        );
        assert_eq!(
            row("prioritize"),
            pairs(&[
                ("contents", "read"),
                ("issues", "write"),
                ("organization_projects", "write"),
                ("metadata", "read")
            ])
        );
        assert_eq!(
            row("fullsend"),
            pairs(&[
                ("actions", "write"),
                ("actions_variables", "read"),
                ("contents", "write"),
                ("pull_requests", "write"),
                ("workflows", "write"),
                ("metadata", "read")
            ])
        );
        let e2e = row("e2e");
        assert_eq!(e2e.len(), 12);
        assert!(e2e.iter().all(|(k, v)| (k == "metadata") == (v == "read")));
    }

    #[test]
    fn fix_signs_with_coder() {
        assert_eq!(app_role("fix"), "coder");
        assert_eq!(app_role("triage"), "triage");
        assert_eq!(pem_secret_name("fix"), "CODER_APP_PEM");
        assert_eq!(pem_secret_name("my-role"), "MY_ROLE_APP_PEM");
    }
}
