//! One test per policy rule, with fullsend's status and sentence (cases from fullsend's
//! `claims_test.go`, `repos_scope_test.go`, `config_test.go`, `foreign_test.go` and
//! `handler_test.go`).

use super::*;
use crate::mint::request::parse_token_request;

const CODE_YML: &str = "test-org/.fullsend/.github/workflows/code.yml@refs/heads/main";
const UPSTREAM_YML: &str = "fullsend-ai/fullsend/.github/workflows/code.yml@refs/heads/main";

fn try_policy(vars: &[(&str, &str)]) -> Result<Policy, Vec<PolicyProblem>> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Policy::from_vars(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

fn policy(vars: &[(&str, &str)]) -> Policy {
    try_policy(vars).unwrap()
}

fn problems(vars: &[(&str, &str)]) -> Vec<String> {
    try_policy(vars)
        .unwrap_err()
        .into_iter()
        .map(|p| p.message)
        .collect()
}

/// ROLE_APP_IDS={"coder":"200"}, ALLOWED_ORGS=test-org, any workflow file, plus `extra`.
fn base(extra: &[(&'static str, &'static str)]) -> Policy {
    let mut v = vec![
        ("ROLE_APP_IDS", r#"{"coder":"200"}"#),
        ("ALLOWED_ORGS", "test-org"),
        ("ALLOWED_WORKFLOW_FILES", "*"),
    ];
    for (k, val) in extra {
        v.retain(|(n, _)| n != k);
        v.push((k, val));
    }
    policy(&v)
}

fn claims(repository: &str, owner: &str, job_workflow_ref: &str) -> ActionsClaims {
    ActionsClaims {
        iss: DEFAULT_ISSUER.into(),
        aud: vec![DEFAULT_AUDIENCE.into()],
        iat: 1,
        exp: 2,
        repository: repository.into(),
        repository_owner: owner.into(),
        job_workflow_ref: job_workflow_ref.into(),
        sub: None,
        repository_id: None,
        repository_owner_id: None,
        workflow_ref: None,
        run_id: None,
        run_attempt: None,
        actor: None,
        jti: None,
        git_ref: None,
        sha: None,
        event_name: None,
    }
}

fn caller() -> ActionsClaims {
    claims("test-org/test-repo", "test-org", CODE_YML)
}

fn req(body: &str) -> TokenRequest {
    parse_token_request(body.as_bytes(), |_| true).unwrap()
}

fn deny(p: &Policy, c: &ActionsClaims, body: &str) -> (u16, String, &'static str) {
    let d = p.check(c, &req(body), &ForeignGrants::new()).unwrap_err();
    (d.status, d.message, d.code)
}

fn wf_err(p: &Policy, job_ref: &str, repository: &str, per_repo: bool) -> String {
    p.check_workflow_ref(job_ref, repository, per_repo)
        .err()
        .unwrap_or_default()
}

// ---- configuration -------------------------------------------------------------------

#[test]
fn allowed_roles_default_to_role_app_ids_keys_sorted() {
    let p = policy(&[("ROLE_APP_IDS", r#"{"triage":"100","coder":"200"}"#)]);
    assert_eq!(p.allowed_roles(), ["coder", "triage"]);
    assert!(p.allows_role("coder") && p.allows_role("triage") && !p.allows_role("review"));
}

#[test]
fn explicit_allowed_roles_restrict() {
    let p = policy(&[
        (
            "ROLE_APP_IDS",
            r#"{"triage":"100","coder":"200","review":"300"}"#,
        ),
        ("ALLOWED_ROLES", " coder , triage ,"),
    ]);
    assert_eq!(p.allowed_roles(), ["coder", "triage"]);
    assert!(!p.allows_role("review"));
    // Set but blank: explicitly no roles (fullsend does not fall back to the keys).
    let none = policy(&[
        ("ROLE_APP_IDS", r#"{"coder":"200"}"#),
        ("ALLOWED_ROLES", " , "),
    ]);
    assert!(none.allowed_roles().is_empty());
}

#[test]
fn missing_role_app_ids_refuses_to_start() {
    let e = try_policy(&[]).unwrap_err();
    assert_eq!(e[0].kind, ProblemKind::MissingRoleAppIds);
    assert_eq!(e[0].message, "missing required Worker env: ROLE_APP_IDS");
    assert_eq!(
        try_policy(&[("ROLE_APP_IDS", "")]).unwrap_err()[0].kind,
        ProblemKind::MissingRoleAppIds
    );
}

#[test]
fn role_app_ids_must_be_a_json_object_of_strings() {
    assert!(
        problems(&[("ROLE_APP_IDS", "not-json")])[0].starts_with("failed to parse ROLE_APP_IDS: ")
    );
    for (raw, got) in [
        ("null", "null"),
        ("[]", "array"),
        ("5", "number"),
        ("\"x\"", "string"),
        ("true", "boolean"),
    ] {
        assert_eq!(
            problems(&[("ROLE_APP_IDS", raw)]),
            [format!("ROLE_APP_IDS must be a JSON object (got {got})")]
        );
    }
    assert_eq!(
        problems(&[("ROLE_APP_IDS", r#"{"coder":200}"#)]),
        ["failed to parse ROLE_APP_IDS: json: cannot unmarshal number into Go value of type string"]
    );
}

#[test]
fn invalid_allowed_role_entry() {
    assert_eq!(
        problems(&[
            ("ROLE_APP_IDS", r#"{"coder":"200"}"#),
            ("ALLOWED_ROLES", "INVALID")
        ]),
        ["ALLOWED_ROLES contains invalid entry \"INVALID\": must match ^[a-z][a-z0-9_-]*$"]
    );
}

#[test]
fn allowed_role_without_permission_set() {
    assert_eq!(
        problems(&[
            ("ROLE_APP_IDS", r#"{"nonexistent":"100"}"#),
            ("ALLOWED_ROLES", "nonexistent")
        ]),
        ["ALLOWED_ROLES contains \"nonexistent\" but RolePermissions has no entry for it"]
    );
    // Defaulted roles are checked too.
    assert_eq!(
        problems(&[("ROLE_APP_IDS", r#"{"coder":"1","deploy":"2"}"#)]),
        ["ALLOWED_ROLES contains \"deploy\" but RolePermissions has no entry for it"]
    );
}

#[test]
fn allowed_role_without_app() {
    assert_eq!(
        problems(&[
            ("ROLE_APP_IDS", r#"{"coder":"200"}"#),
            ("ALLOWED_ROLES", "triage")
        ]),
        ["ALLOWED_ROLES contains \"triage\" but ROLE_APP_IDS has no entry for it"]
    );
    // `fix` needs its own key even though it signs with the coder App.
    assert_eq!(
        problems(&[
            ("ROLE_APP_IDS", r#"{"coder":"200"}"#),
            ("ALLOWED_ROLES", "fix")
        ]),
        ["ALLOWED_ROLES contains \"fix\" but ROLE_APP_IDS has no entry for it"]
    );
}

#[test]
fn every_problem_is_reported() {
    let e = problems(&[
        ("ROLE_APP_IDS", r#"{"coder":"200"}"#),
        ("ALLOWED_ROLES", "BAD,triage,ghost"),
        ("OIDC_ISSUER", "token.actions.githubusercontent.com"),
    ]);
    assert_eq!(e.len(), 5, "{e:?}");
}

#[test]
fn custom_role_permissions() {
    let p = policy(&[
        ("ROLE_APP_IDS", r#"{"triage":"100","custom-role":"200"}"#),
        (
            "CUSTOM_ROLE_PERMISSIONS",
            r#"{"custom-role":{"contents":"read","metadata":"read"}}"#,
        ),
    ]);
    assert!(p.allows_role("custom-role"));
    assert_eq!(
        p.permissions_for("custom-role")
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [
            ("contents".to_owned(), "read".to_owned()),
            ("metadata".to_owned(), "read".to_owned())
        ]
    );
    assert_eq!(
        p.permissions_for("triage"),
        roles::builtin_permissions("triage")
    );
    assert!(policy(&[
        ("ROLE_APP_IDS", r#"{"coder":"1"}"#),
        ("CUSTOM_ROLE_PERMISSIONS", "null")
    ])
    .permissions_for("x")
    .is_none());
}

#[test]
fn custom_roles_cannot_override_builtins() {
    assert_eq!(
        problems(&[
            ("ROLE_APP_IDS", r#"{"triage":"100"}"#),
            ("CUSTOM_ROLE_PERMISSIONS", r#"{"triage":{"contents":"read"}}"#)
        ]),
        ["registering custom role permissions: custom role \"triage\" collides with built-in role"]
    );
}

#[test]
fn custom_role_names_and_levels_are_checked() {
    let ids = ("ROLE_APP_IDS", r#"{"triage":"100"}"#);
    assert_eq!(
        problems(&[ids, ("CUSTOM_ROLE_PERMISSIONS", r#"{"bad--name":{}}"#)]),
        ["registering custom role permissions: custom role name invalid: invalid role name \"bad--name\""]
    );
    assert_eq!(
        problems(&[ids, ("CUSTOM_ROLE_PERMISSIONS", r#"{"ops":{"contents":"admin"}}"#)]),
        ["registering custom role permissions: custom role \"ops\": permission \"contents\" has invalid level \"admin\" (must be read or write)"]
    );
    assert!(problems(&[ids, ("CUSTOM_ROLE_PERMISSIONS", "not-json")])[0]
        .starts_with("failed to parse CUSTOM_ROLE_PERMISSIONS: "));
    assert!(problems(&[ids, ("CUSTOM_ROLE_PERMISSIONS", "[]")])[0]
        .starts_with("failed to parse CUSTOM_ROLE_PERMISSIONS: "));
}

#[test]
fn secret_name_collisions() {
    let e = try_policy(&[("ROLE_APP_IDS", r#"{"my-role":"1","my_role":"2"}"#)]).unwrap_err();
    assert_eq!(e[0].kind, ProblemKind::SecretNameCollision);
    assert_eq!(
        e[0].message,
        "role name secret collision after hyphen→underscore normalization: \"my-role\" and \"my_role\" both map to secret MY_ROLE_APP_PEM"
    );
}

#[test]
fn legacy_org_role_keys() {
    let legacy = policy(&[("ROLE_APP_IDS", r#"{"test-org/coder":"200"}"#)]);
    assert_eq!(legacy.health_problem(), Some(LEGACY_APP_IDS_REASON));
    assert!(legacy.allowed_roles().is_empty());
    assert_eq!(legacy.app_id_for("coder"), None);
    let mixed = policy(&[("ROLE_APP_IDS", r#"{"acme/coder":"100","coder":"200"}"#)]);
    assert_eq!(mixed.health_problem(), None);
    assert_eq!(mixed.allowed_roles(), ["coder"]);
    assert_eq!(mixed.app_id_for("coder"), Some("200"));
}

#[test]
fn app_lookup_rules() {
    let p = policy(&[(
        "ROLE_APP_IDS",
        r#"{"coder":"200","fix":"400","triage":"100"}"#,
    )]);
    assert_eq!(p.app_id_for("coder"), Some("200"));
    assert_eq!(p.app_id_for("fix"), Some("200"));
    assert_eq!(p.app_id_for("deploy"), None);
    assert_eq!(
        try_policy(&[("ROLE_APP_IDS", r#"{"Review":"300"}"#)]).unwrap_err()[0].kind,
        ProblemKind::RoleWithoutPermissions
    );
    let explicit = policy(&[
        ("ROLE_APP_IDS", r#"{"Review":"300","triage":""}"#),
        ("ALLOWED_ROLES", "triage"),
    ]);
    assert_eq!(explicit.app_id_for("review"), Some("300"));
    assert_eq!(explicit.app_id_for("triage"), None);
}

#[test]
fn fix_without_coder_app_is_a_warning() {
    let p = policy(&[("ROLE_APP_IDS", r#"{"fix":"400"}"#)]);
    assert_eq!(p.warnings()[0].kind, ProblemKind::FixWithoutCoderApp);
    assert!(base(&[]).warnings().is_empty());
}

#[test]
fn list_variables_are_trimmed_and_lowercased() {
    let p = base(&[
        ("PER_REPO_WIF_REPOS", "org/repo-a, Org/Repo-B"),
        ("WORKFLOW_HOST_REPOS", "acme/workflows, Acme/Other"),
    ]);
    assert!(p.per_repo_wif_repos.contains("org/repo-b"));
    assert_eq!(p.per_repo_wif_repos.len(), 2);
    assert_eq!(
        p.workflow_host_repos().collect::<Vec<_>>(),
        ["acme/other", "acme/workflows"]
    );
    assert_eq!(
        base(&[]).workflow_host_repos().collect::<Vec<_>>(),
        ["fullsend-ai/fullsend"]
    );
}

#[test]
fn issuer_and_audience_vars() {
    let p = base(&[]);
    assert_eq!(
        (p.issuer(), p.audience()),
        (DEFAULT_ISSUER, DEFAULT_AUDIENCE)
    );
    let p = base(&[
        ("OIDC_ISSUER", "http://127.0.0.1:8787"),
        ("MINT_AUDIENCE", "ghplane"),
    ]);
    assert_eq!(
        (p.issuer(), p.audience()),
        ("http://127.0.0.1:8787", "ghplane")
    );
    let e = try_policy(&[
        ("ROLE_APP_IDS", r#"{"coder":"1"}"#),
        ("OIDC_ISSUER", "ftp://x"),
    ])
    .unwrap_err();
    assert_eq!(e[0].kind, ProblemKind::InvalidIssuer);
}

// ---- enrollment ------------------------------------------------------------------------

#[test]
fn per_org_caller_must_be_in_allowed_orgs() {
    let p = base(&[("ALLOWED_ORGS", "myorg,OtherOrg")]);
    let ok = claims(
        "otherorg/.fullsend",
        "otherorg",
        "otherorg/.fullsend/.github/workflows/x.yml@main",
    );
    assert_eq!(p.authorize(&ok), Ok(CallerMode::PerOrg));
    let evil = claims(
        "evilorg/.fullsend",
        "evilorg",
        "evilorg/.fullsend/.github/workflows/x.yml@main",
    );
    assert_eq!(
        p.authorize(&evil),
        Err(AuthError::NotAuthorized(
            "repository_owner \"evilorg\" not in allowed orgs".into()
        ))
    );
    assert_eq!(
        deny(&p, &evil, r#"{"role":"coder","repos":[".fullsend"]}"#).0,
        401
    );
    let none = base(&[("ALLOWED_ORGS", "")]);
    assert!(none.authorize(&caller()).is_err());
}

#[test]
fn missing_repository_owner_is_refused() {
    let p = base(&[("PER_REPO_WIF_REPOS", "*")]);
    let c = claims("test-org/test-repo", "", UPSTREAM_YML);
    assert_eq!(
        p.authorize(&c),
        Err(AuthError::NotAuthorized(
            "missing repository_owner claim".into()
        ))
    );
}

#[test]
fn wildcard_allowed_orgs_accepts_any_org() {
    let p = base(&[("ALLOWED_ORGS", "*")]);
    let c = claims(
        "anyorg/.fullsend",
        "AnyOrg",
        "anyorg/.fullsend/.github/workflows/x.yml@main",
    );
    assert_eq!(p.authorize(&c), Ok(CallerMode::PerOrg));
}

#[test]
fn per_repo_caller_bypasses_allowed_orgs() {
    let p = base(&[
        ("ALLOWED_ORGS", "other-org"),
        ("PER_REPO_WIF_REPOS", "MyOrg/My-Repo"),
    ]);
    let c = claims("myorg/my-repo", "myorg", UPSTREAM_YML);
    assert_eq!(p.authorize(&c), Ok(CallerMode::PerRepo));
}

#[test]
fn public_mint_makes_every_repo_per_repo() {
    let p = base(&[
        ("ALLOWED_ORGS", ""),
        ("PER_REPO_WIF_REPOS", "*"),
        ("ALLOWED_WORKFLOW_FILES", "dispatch.yml"),
    ]);
    let c = claims(
        "anyorg/any-repo",
        "anyorg",
        "fullsend-ai/fullsend/.github/workflows/dispatch.yml@refs/tags/v1.0.0",
    );
    assert_eq!(p.authorize(&c), Ok(CallerMode::PerRepo));
    // Public mode is never dual, even with the org allowed.
    let p = base(&[
        ("ALLOWED_ORGS", "anyorg"),
        ("PER_REPO_WIF_REPOS", "*"),
        ("ALLOWED_WORKFLOW_FILES", "dispatch.yml"),
    ]);
    assert_eq!(p.authorize(&c), Ok(CallerMode::PerRepo));
    // …and a legacy .fullsend workflow is not a host repo.
    let legacy = claims(
        "anyorg/.fullsend",
        "anyorg",
        "anyorg/.fullsend/.github/workflows/dispatch.yml@main",
    );
    assert!(matches!(
        p.authorize(&legacy),
        Err(AuthError::WorkflowRef(_))
    ));
}

#[test]
fn dual_enrollment_accepts_workflows_of_either_mode() {
    let p = base(&[
        ("PER_REPO_WIF_REPOS", "test-org/test-repo"),
        ("WORKFLOW_HOST_REPOS", "test-org/custom-workflows"),
    ]);
    for (wf, ok) in [
        (CODE_YML, true),
        (
            "test-org/custom-workflows/.github/workflows/code.yml@refs/heads/main",
            true,
        ),
        (UPSTREAM_YML, true),
        (
            "test-org/random-repo/.github/workflows/code.yml@refs/heads/main",
            false,
        ),
    ] {
        let c = claims("test-org/test-repo", "test-org", wf);
        if ok {
            assert_eq!(p.authorize(&c), Ok(CallerMode::DualEnrolled), "{wf}");
        } else {
            assert_eq!(
                deny(&p, &c, r#"{"role":"coder","repos":["test-repo"]}"#).0,
                401,
                "{wf}"
            );
        }
    }
}

// ---- workflow refs ---------------------------------------------------------------------

#[test]
fn workflow_ref_per_org() {
    let p = base(&[("ALLOWED_WORKFLOW_FILES", "dispatch.yml,triage.yml")]);
    for (job_ref, repository, want) in [
        ("", "myorg/my-repo", "missing job_workflow_ref claim"),
        (
            "myorg/.fullsend/.github/workflows/dispatch.yml@refs/heads/main",
            "myorg/.fullsend",
            "",
        ),
        (
            "fullsend-ai/fullsend/.github/workflows/dispatch.yml@refs/heads/main",
            "myorg/my-repo",
            "",
        ),
        (
            "MyOrg/.Fullsend/.github/workflows/Dispatch.YML@refs/heads/main",
            "myorg/api",
            "",
        ),
        (
            "myorg/my-repo/.github/workflows/triage.yml@refs/heads/main",
            "myorg/my-repo",
            "job_workflow_ref does not reference .fullsend or upstream repo",
        ),
        (
            "otherorg/.fullsend/.github/workflows/dispatch.yml@main",
            "myorg/my-repo",
            "job_workflow_ref does not reference .fullsend or upstream repo",
        ),
        (
            "myorg/.fullsend/scripts/run.sh@refs/heads/main",
            "myorg/.fullsend",
            "job_workflow_ref does not reference a workflow file",
        ),
        (
            "myorg/.fullsend/.github/workflows/evil.yml@refs/heads/main",
            "myorg/.fullsend",
            "workflow file \"evil.yml\" not in allowed list",
        ),
        (
            "myorg/.fullsend/.github/workflows/sub/dispatch.yml@main",
            "myorg/.fullsend",
            "workflow file \"sub/dispatch.yml\" not in allowed list",
        ),
    ] {
        assert_eq!(wf_err(&p, job_ref, repository, false), want, "{job_ref}");
    }
}

#[test]
fn workflow_ref_per_repo() {
    let p = base(&[
        ("WORKFLOW_HOST_REPOS", "myorg/my-repo"),
        ("ALLOWED_WORKFLOW_FILES", "dispatch.yml,triage.yml"),
    ]);
    for (job_ref, want) in [
        (
            "fullsend-ai/fullsend/.github/workflows/dispatch.yml@refs/heads/main",
            "",
        ),
        (
            "myorg/my-repo/.github/workflows/triage.yml@refs/heads/main",
            "",
        ),
        (
            "myorg/other-repo/.github/workflows/dispatch.yml@refs/heads/main",
            "job_workflow_ref does not reference an allowed workflow host repo",
        ),
        (
            "myorg/.fullsend/.github/workflows/dispatch.yml@refs/heads/main",
            "job_workflow_ref does not reference an allowed workflow host repo",
        ),
        (
            "myorg/my-repo/.github/workflows/evil.yml@refs/heads/main",
            "workflow file \"evil.yml\" not in allowed list",
        ),
        (
            "fullsend-ai/fullsend/.github/workflows/dispatch.yml@abc123def456",
            "",
        ),
        (
            "fullsend-ai/fullsend/.github/workflows/@refs/heads/main",
            "workflow file \"\" not in allowed list",
        ),
        (
            "fullsend-ai/fullsend/scripts/run.sh@refs/heads/main",
            "job_workflow_ref does not reference a workflow file",
        ),
    ] {
        assert_eq!(
            wf_err(&p, job_ref, "myorg/my-repo", true),
            want,
            "{job_ref}"
        );
    }
}

#[test]
fn workflow_files_unset_denies_all_and_star_allows_any() {
    let none = base(&[("ALLOWED_WORKFLOW_FILES", "")]);
    assert_eq!(
        wf_err(&none, CODE_YML, "test-org/test-repo", false),
        "workflow file \"code.yml\" not in allowed list"
    );
    assert_eq!(
        deny(
            &none,
            &caller(),
            r#"{"role":"coder","repos":["test-repo"]}"#
        )
        .1,
        "authentication failed"
    );
    let any = base(&[]);
    assert_eq!(
        wf_err(
            &any,
            "test-org/.fullsend/.github/workflows/anything.yml@x",
            "test-org/a",
            false
        ),
        ""
    );
}

// ---- repos scope -----------------------------------------------------------------------

#[test]
fn repos_scope_table() {
    use ScopeShape::*;
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    for (foreign, requesting, repos, per_repo, want) in [
        (true, "fullsend-ai/fullsend", s(&[]), false, Ok(None)),
        (
            true,
            "fullsend-ai/fullsend",
            s(&["e2e-lock"]),
            false,
            Ok(Some(ForeignRepoScoped)),
        ),
        (
            true,
            "fullsend-ai/fullsend",
            s(&["a", "b"]),
            true,
            Ok(Some(ForeignRepoScoped)),
        ),
        (false, "acme/api", s(&["api"]), false, Ok(None)),
        (false, "acme/api", s(&["API"]), true, Ok(None)),
        (
            false,
            "acme/api",
            s(&[]),
            false,
            Err(ScopeError::SameOrgEmpty),
        ),
        (
            false,
            "acme/api",
            s(&[]),
            true,
            Err(ScopeError::SameOrgEmpty),
        ),
        (
            false,
            "acme/.fullsend",
            s(&["api"]),
            true,
            Err(ScopeError::PerRepoCrossRepo),
        ),
        (
            false,
            "acme/.fullsend",
            s(&["api"]),
            false,
            Ok(Some(FullsendAny)),
        ),
        (
            false,
            "acme/.fullsend",
            s(&["a", "b", "c"]),
            false,
            Ok(Some(FullsendAny)),
        ),
        (
            false,
            "acme/.fullsend",
            s(&["api", ".fullsend"]),
            false,
            Ok(Some(FullsendAny)),
        ),
        (false, "acme/.fullsend", s(&[".fullsend"]), true, Ok(None)),
        (
            false,
            "acme/api",
            s(&[".fullsend"]),
            false,
            Ok(Some(EnrolledFullsend)),
        ),
        (
            false,
            "acme/api",
            s(&["api", ".fullsend"]),
            false,
            Ok(Some(EnrolledPair)),
        ),
        (
            false,
            "acme/api",
            s(&[".fullsend", "api"]),
            false,
            Ok(Some(EnrolledPair)),
        ),
        (
            false,
            "acme/api",
            s(&["other"]),
            false,
            Err(ScopeError::PerOrg),
        ),
        (
            false,
            "acme/api",
            s(&["api", ".fullsend", "x"]),
            false,
            Err(ScopeError::PerOrg),
        ),
        (
            false,
            "acme/api",
            s(&["api", ".fullsend"]),
            true,
            Err(ScopeError::PerRepoCrossRepo),
        ),
    ] {
        assert_eq!(
            repos_scope(foreign, requesting, &repos, per_repo),
            want,
            "{requesting} {repos:?}"
        );
    }
}

#[test]
fn own_repository_is_granted() {
    let p = base(&[]);
    let d = p
        .check(
            &caller(),
            &req(r#"{"role":"coder","repos":["test-repo"]}"#),
            &ForeignGrants::new(),
        )
        .unwrap();
    assert_eq!(d.app_id, "200");
    assert_eq!(d.target_org, "test-org");
    assert_eq!(d.repos, RepoScope::Repos(vec!["test-repo".into()]));
    assert_eq!(Some(d.permissions), roles::builtin_permissions("coder"));
    assert_eq!(
        (d.caller_mode, d.cross_org, d.shape, d.foreign_grant),
        (CallerMode::PerOrg, false, None, None)
    );
}

#[test]
fn same_org_whole_installation_is_refused() {
    assert_eq!(
        deny(&base(&[]), &caller(), r#"{"role":"coder","repos":["*"]}"#),
        (
            403,
            "same-org mint requires non-empty repos".into(),
            "same_org_requires_repos"
        )
    );
}

#[test]
fn per_repo_caller_gets_only_its_repository() {
    let p = base(&[
        ("PER_REPO_WIF_REPOS", "test-org/test-repo"),
        ("ALLOWED_ORGS", ""),
    ]);
    let c = claims("test-org/test-repo", "test-org", UPSTREAM_YML);
    assert_eq!(
        deny(&p, &c, r#"{"role":"coder","repos":["api"]}"#),
        (
            403,
            "per-repo mint requires repos to be exactly the requesting repository".into(),
            "per_repo_scope"
        )
    );
    assert!(p
        .check(
            &c,
            &req(r#"{"role":"coder","repos":["TEST-REPO"]}"#),
            &ForeignGrants::new()
        )
        .is_ok());
}

#[test]
fn per_org_caller_shapes() {
    let p = base(&[]);
    let c = claims("test-org/api", "test-org", CODE_YML);
    for repos in [r#"[".fullsend"]"#, r#"["api",".fullsend"]"#, r#"["api"]"#] {
        let body = format!(r#"{{"role":"coder","repos":{repos}}}"#);
        assert!(
            p.check(&c, &req(&body), &ForeignGrants::new()).is_ok(),
            "{repos}"
        );
    }
    assert_eq!(
        deny(&p, &c, r#"{"role":"coder","repos":["other"]}"#),
        (
            403,
            "repos scope not allowed for per-org caller".into(),
            "per_org_scope"
        )
    );
    let cfg = claims("test-org/.fullsend", "test-org", CODE_YML);
    let d = p
        .check(
            &cfg,
            &req(r#"{"role":"coder","repos":["a","b","c"]}"#),
            &ForeignGrants::new(),
        )
        .unwrap();
    assert_eq!(d.shape, Some(ScopeShape::FullsendAny));
}

#[test]
fn dual_enrolled_caller_gets_per_org_scope() {
    for orgs in ["test-org", "*"] {
        let p = policy(&[
            ("ROLE_APP_IDS", r#"{"coder":"200"}"#),
            ("ALLOWED_ORGS", orgs),
            ("ALLOWED_WORKFLOW_FILES", "*"),
            ("PER_REPO_WIF_REPOS", "test-org/test-repo"),
        ]);
        for repos in [
            r#"[".fullsend"]"#,
            r#"["test-repo",".fullsend"]"#,
            r#"["test-repo"]"#,
        ] {
            let body = format!(r#"{{"role":"coder","repos":{repos}}}"#);
            let d = p
                .check(&caller(), &req(&body), &ForeignGrants::new())
                .unwrap();
            assert_eq!(d.caller_mode, CallerMode::DualEnrolled);
        }
        assert_eq!(
            deny(&p, &caller(), r#"{"role":"coder","repos":["other"]}"#).1,
            "repos scope not allowed for per-org caller"
        );
    }
}

#[test]
fn target_org_equal_to_own_org_is_same_org() {
    let p = base(&[]);
    let d = p
        .check(
            &caller(),
            &req(r#"{"role":"coder","repos":["test-repo"],"target_org":"Test-Org"}"#),
            &ForeignGrants::new(),
        )
        .unwrap();
    assert!(!d.cross_org);
    assert!(p
        .foreign_lookups(
            &caller(),
            &req(r#"{"role":"coder","repos":["test-repo"],"target_org":"Test-Org"}"#)
        )
        .is_empty());
}

// ---- FOREIGN grants ----------------------------------------------------------------------

fn per_repo_caller_policy() -> (Policy, ActionsClaims) {
    let p = policy(&[
        ("ROLE_APP_IDS", r#"{"coder":"400"}"#),
        ("ALLOWED_ORGS", "other-org"),
        ("ALLOWED_WORKFLOW_FILES", "*"),
        ("PER_REPO_WIF_REPOS", "test-org/caller-repo"),
        ("WORKFLOW_HOST_REPOS", "test-org/caller-repo"),
    ]);
    let c = claims(
        "test-org/caller-repo",
        "test-org",
        "test-org/caller-repo/.github/workflows/code.yml@refs/heads/main",
    );
    (p, c)
}

#[test]
fn intra_org_repo_grant_lifts_per_repo_scope() {
    let (p, c) = per_repo_caller_policy();
    let r = req(r#"{"role":"coder","repos":["target-repo"]}"#);
    let lookups = p.foreign_lookups(&c, &r);
    assert_eq!(lookups.len(), 1);
    let l = &lookups[0];
    assert_eq!(
        l.scope,
        ForeignScope::Repo {
            org: "test-org".into(),
            repo: "target-repo".into()
        }
    );
    assert_eq!(l.app_id, "400");
    assert_eq!(
        l.installation_path(),
        "/repos/test-org/target-repo/installation"
    );
    assert_eq!(
        l.variable_path(),
        "/repos/test-org/target-repo/actions/variables/FULLSEND_FOREIGN_CODER_REPOS"
    );
    assert_eq!(
        l.token_request_body(),
        r#"{"permissions":{"actions_variables":"read"},"repositories":["target-repo"]}"#
    );
    assert_eq!(l.cache_key(), "test-org/target-repo/coder");

    let mut g = ForeignGrants::new();
    g.record_value(l, Some("test-org/caller-repo"));
    let d = p.check(&c, &r, &g).unwrap();
    assert_eq!(d.foreign_grant, Some(ForeignGrantKind::IntraOrgRepos));
    assert_eq!(d.caller_mode, CallerMode::PerRepo);

    for grants in [
        ForeignGrants::new(),
        {
            let mut g = ForeignGrants::new();
            g.record_value(l, None);
            g
        },
        {
            let mut g = ForeignGrants::new();
            g.record_failure(l);
            g
        },
    ] {
        let e = p.check(&c, &r, &grants).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (
                403,
                "per-repo mint requires repos to be exactly the requesting repository"
            )
        );
    }
}

#[test]
fn intra_org_grant_must_cover_every_repo() {
    let (p, c) = per_repo_caller_policy();
    let r = req(r#"{"role":"coder","repos":["authorized-repo","unauthorized-repo"]}"#);
    let lookups = p.foreign_lookups(&c, &r);
    let mut g = ForeignGrants::new();
    g.record_value(&lookups[0], Some("test-org/caller-repo"));
    g.record_value(&lookups[1], None);
    assert_eq!(p.check(&c, &r, &g).unwrap_err().status, 403);
    // Other scope refusals are never lifted by grants.
    let per_org = base(&[]);
    assert!(per_org
        .foreign_lookups(&caller(), &req(r#"{"role":"coder","repos":["other"]}"#))
        .is_empty());
}

fn cross_org_policy() -> (Policy, ActionsClaims) {
    let p = policy(&[
        ("ROLE_APP_IDS", r#"{"coder":"400","e2e":"300"}"#),
        ("ALLOWED_ORGS", "test-org,fullsend-ai"),
        ("ALLOWED_WORKFLOW_FILES", "*"),
    ]);
    let c = claims(
        "fullsend-ai/fullsend",
        "fullsend-ai",
        "fullsend-ai/fullsend/.github/workflows/e2e.yml@refs/heads/main",
    );
    (p, c)
}

#[test]
fn cross_org_named_repos_need_repo_grants() {
    let (p, c) = cross_org_policy();
    let r = req(r#"{"role":"coder","target_org":"Target-Org","repos":["target-repo"]}"#);
    let lookups = p.foreign_lookups(&c, &r);
    // Only repo-level variables: an org-level grant never authorizes named repos.
    assert_eq!(lookups.len(), 1);
    assert_eq!(
        lookups[0].scope,
        ForeignScope::Repo {
            org: "target-org".into(),
            repo: "target-repo".into()
        }
    );
    let mut g = ForeignGrants::new();
    g.record_value(&lookups[0], Some(" fullsend-ai/fullsend , other "));
    let d = p.check(&c, &r, &g).unwrap();
    assert_eq!((d.target_org.as_str(), d.cross_org), ("target-org", true));
    assert_eq!(
        (d.shape, d.foreign_grant),
        (
            Some(ScopeShape::ForeignRepoScoped),
            Some(ForeignGrantKind::CrossOrgRepos)
        )
    );

    let mut denied = ForeignGrants::new();
    denied.record_value(&lookups[0], None);
    let e = p.check(&c, &r, &denied).unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str(), e.code),
        (403, "mint failed", "foreign_repos_not_authorized")
    );
    let mut failed = ForeignGrants::new();
    failed.record_failure(&lookups[0]);
    assert_eq!(p.check(&c, &r, &failed).unwrap_err().status, 403);
}

#[test]
fn cross_org_whole_installation_needs_org_grant() {
    let (p, c) = cross_org_policy();
    let r = req(r#"{"role":"e2e","target_org":"pool-org","repos":["*"]}"#);
    let lookups = p.foreign_lookups(&c, &r);
    assert_eq!(lookups.len(), 1);
    let l = &lookups[0];
    assert_eq!(
        l.scope,
        ForeignScope::Org {
            org: "pool-org".into()
        }
    );
    assert_eq!(l.installation_path(), "/orgs/pool-org/installation");
    assert_eq!(
        l.variable_path(),
        "/orgs/pool-org/actions/variables/FULLSEND_FOREIGN_E2E_REPOS"
    );
    assert_eq!(
        l.token_request_body(),
        r#"{"permissions":{"organization_actions_variables":"read"}}"#
    );
    assert_eq!(l.cache_key(), "pool-org/e2e");

    let mut g = ForeignGrants::new();
    g.record_value(l, Some("fullsend-ai/fullsend"));
    let d = p.check(&c, &r, &g).unwrap();
    assert_eq!(
        (d.repos.clone(), d.foreign_grant),
        (
            RepoScope::Installation,
            Some(ForeignGrantKind::CrossOrgInstallation)
        )
    );
    assert_eq!(
        g.allowlist(l),
        Some(&["fullsend-ai/fullsend".to_owned()][..])
    );

    let mut org_entry = ForeignGrants::new();
    org_entry.record_value(l, Some("Fullsend-AI"));
    assert!(p.check(&c, &r, &org_entry).is_ok());

    let mut missing = ForeignGrants::new();
    missing.record_value(l, None);
    let e = p.check(&c, &r, &missing).unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str(), e.code),
        (403, "mint failed", "foreign_org_not_authorized")
    );

    let evil = claims(
        "evil-org/.fullsend",
        "evil-org",
        "evil-org/.fullsend/.github/workflows/code.yml@main",
    );
    let p2 = policy(&[
        ("ROLE_APP_IDS", r#"{"e2e":"300"}"#),
        ("ALLOWED_ORGS", "test-org,evil-org"),
        ("ALLOWED_WORKFLOW_FILES", "*"),
    ]);
    let l2 = &p2.foreign_lookups(&evil, &r)[0];
    let mut g2 = ForeignGrants::new();
    g2.record_value(l2, Some("fullsend-ai/fullsend"));
    assert_eq!(p2.check(&evil, &r, &g2).unwrap_err().status, 403);

    let mut failed = ForeignGrants::new();
    failed.record_failure(l);
    let e = p.check(&c, &r, &failed).unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str(), e.code),
        (502, "mint failed", "github_failure")
    );
    assert_eq!(
        p.check(&c, &r, &ForeignGrants::new()).unwrap_err().status,
        502
    );
}

#[test]
fn foreign_helpers() {
    assert_eq!(foreign_variable_name("e2e"), "FULLSEND_FOREIGN_E2E_REPOS");
    assert_eq!(
        foreign_variable_name("my-role"),
        "FULLSEND_FOREIGN_MY-ROLE_REPOS"
    );
    assert_eq!(
        parse_foreign_allowlist(" fullsend-ai/fullsend , fullsend-ai "),
        ["fullsend-ai/fullsend", "fullsend-ai"]
    );
    assert!(parse_foreign_allowlist("  ").is_empty());
    let list = vec!["fullsend-ai/fullsend".to_owned(), "konflux-ci".to_owned()];
    assert!(caller_allowed(&list, "fullsend-ai/fullsend", "fullsend-ai"));
    assert!(caller_allowed(&list, "konflux-ci/foo", "konflux-ci"));
    assert!(!caller_allowed(&list, "other-org/repo", "other-org"));
    assert!(caller_allowed(&list, "FULLSEND-AI/fullsend", "fullsend-ai"));
    assert!(!caller_allowed(&list, "fullsend-ai/other", "fullsend-ai"));
    assert_eq!(
        variable_value(br#"{"name":"X","value":"a,b"}"#).as_deref(),
        Some("a,b")
    );
    assert_eq!(variable_value(b"junk"), None);
}

// ---- role → App and permissions ---------------------------------------------------------

#[test]
fn fix_mints_with_coder_app_and_fix_permissions() {
    let p = base(&[("ROLE_APP_IDS", r#"{"coder":"200","fix":"400"}"#)]);
    let d = p
        .check(
            &caller(),
            &req(r#"{"role":"fix","repos":["test-repo"]}"#),
            &ForeignGrants::new(),
        )
        .unwrap();
    assert_eq!((d.app_id.as_str(), d.app_role.as_str()), ("200", "coder"));
    assert_eq!(Some(d.permissions), roles::builtin_permissions("fix"));
}

#[test]
fn role_without_app_at_mint_time_is_403_mint_failed() {
    let p = base(&[("ROLE_APP_IDS", r#"{"fix":"400"}"#)]);
    assert_eq!(
        deny(&p, &caller(), r#"{"role":"fix","repos":["test-repo"]}"#),
        (403, "mint failed".into(), "app_not_configured")
    );
}

#[test]
fn authentication_failures_say_nothing_more() {
    let p = base(&[]);
    let c = claims(
        "test-org/test-repo",
        "test-org",
        "test-org/test-repo/.github/workflows/code.yml@main",
    );
    let (status, message, code) = deny(&p, &c, r#"{"role":"coder","repos":["test-repo"]}"#);
    assert_eq!(
        (status, message.as_str(), code),
        (401, "authentication failed", "authentication_failed")
    );
    let d = p
        .check(
            &c,
            &req(r#"{"role":"coder","repos":["test-repo"]}"#),
            &ForeignGrants::new(),
        )
        .unwrap_err();
    assert_eq!(d.body()["error"]["message"], "authentication failed");
    assert!(d.detail.unwrap().contains(".fullsend or upstream"));
}

#[test]
fn status_body_like_fullsend() {
    let p = policy(&[
        ("ROLE_APP_IDS", r#"{"triage":"100","coder":"200"}"#),
        ("ALLOWED_ORGS", "Test-Org"),
        ("ALLOWED_WORKFLOW_FILES", "*"),
    ]);
    let c = claims("test-org/test-repo", "Test-Org", CODE_YML);
    assert!(p.authorize(&c).is_ok());
    assert_eq!(
        crate::mint::wire::status_body(&p, &c, "0.27.0", ""),
        "{\"org\":\"test-org\",\"roles\":[\"coder\",\"triage\"],\"workflow_host_repos\":[\"fullsend-ai/fullsend\"],\"version\":\"0.27.0\"}\n"
    );
    let empty = policy(&[("ROLE_APP_IDS", r#"{"a/coder":"1"}"#)]);
    assert!(crate::mint::wire::status_body(&empty, &c, "", "").contains("\"roles\":null"));
}

// Gaps `make mutants` found (docs/testing.md).

#[test]
fn a_problem_displays_as_its_message() {
    let all = try_policy(&[("ALLOWED_ORGS", "test-org")]).unwrap_err();
    assert!(!all.is_empty());
    for p in all {
        assert!(!p.message.is_empty());
        assert_eq!(p.to_string(), p.message);
    }
}

#[test]
fn no_coder_app_is_no_warning_when_fix_is_not_allowed() {
    let p = policy(&[
        ("ROLE_APP_IDS", r#"{"review":"300"}"#),
        ("ALLOWED_ROLES", "review"),
    ]);
    assert!(!p.allows_role("fix"));
    assert_eq!(p.app_id_for("fix"), None);
    assert!(p.warnings().is_empty());
}

#[test]
fn a_repository_with_no_owner_has_no_own_fullsend_repo() {
    let p = base(&[("ALLOWED_WORKFLOW_FILES", "dispatch.yml")]);
    assert_eq!(
        wf_err(
            &p,
            "/.fullsend/.github/workflows/dispatch.yml@main",
            "/my-repo",
            false
        ),
        "job_workflow_ref does not reference .fullsend or upstream repo"
    );
    assert_eq!(
        wf_err(
            &p,
            "myorg/.fullsend/@main/.github/workflows/dispatch.yml",
            "myorg/my-repo",
            false
        ),
        "job_workflow_ref does not reference a workflow file"
    );
}

#[test]
fn a_null_custom_role_is_a_role_without_permissions_not_a_parse_error() {
    let ids = ("ROLE_APP_IDS", r#"{"triage":"100"}"#);
    let p = policy(&[ids, ("CUSTOM_ROLE_PERMISSIONS", r#"{"ops":null}"#)]);
    assert_eq!(p.custom_roles.len(), 1);
    assert!(p.custom_roles["ops"].is_empty());
    assert_eq!(
        problems(&[ids, ("CUSTOM_ROLE_PERMISSIONS", r#"{"ops":1}"#)]),
        ["failed to parse CUSTOM_ROLE_PERMISSIONS: role \"ops\": want an object"]
    );
}

#[test]
fn an_enrolled_pair_is_the_own_repository_and_fullsend_only() {
    let scope = |repos: &[&str]| {
        let repos: Vec<String> = repos.iter().map(|r| (*r).to_owned()).collect();
        repos_scope(false, "org/api", &repos, false)
    };
    assert_eq!(
        scope(&["api", ".fullsend"]),
        Ok(Some(ScopeShape::EnrolledPair))
    );
    assert_eq!(
        scope(&[".fullsend", "api"]),
        Ok(Some(ScopeShape::EnrolledPair))
    );
    for other in [
        ["api", "web"],
        ["web", "api"],
        ["web", ".fullsend"],
        [".fullsend", "web"],
    ] {
        assert_eq!(scope(&other), Err(ScopeError::PerOrg), "{other:?}");
    }
}

#[test]
fn a_foreign_lookup_names_its_org_and_a_failed_read_is_no_grant() {
    let org = ForeignLookup {
        scope: ForeignScope::Org {
            org: "other".into(),
        },
        role: "coder".into(),
        app_id: "200".into(),
    };
    let repo = ForeignLookup {
        scope: ForeignScope::Repo {
            org: "other".into(),
            repo: "api".into(),
        },
        ..org.clone()
    };
    assert_eq!((org.org(), repo.org()), ("other", "other"));
    let mut g = ForeignGrants::new();
    g.record_value(&org, Some("test-org"));
    assert_eq!(g.allows(&org, "test-org/api", "test-org"), Some(true));
    // The latest read counts: a failure after a value leaves no grant.
    g.record_failure(&org);
    assert_eq!(g.allows(&org, "test-org/api", "test-org"), None);
    assert_eq!(g.allowlist(&org), None);
}

#[test]
fn a_null_level_reads_as_empty_and_a_repeated_role_is_no_collision() {
    let ids = ("ROLE_APP_IDS", r#"{"triage":"100"}"#);
    // As Go decodes `null` into a string: "", then refused as a level (not as the shape).
    assert_eq!(
        problems(&[ids, ("CUSTOM_ROLE_PERMISSIONS", r#"{"ops":{"contents":null}}"#)]),
        ["registering custom role permissions: custom role \"ops\": permission \"contents\" has invalid level \"\" (must be read or write)"]
    );
    // A key given twice is one role (the last value wins), not two colliding secrets.
    let p = policy(&[("ROLE_APP_IDS", r#"{"coder":"1","coder":"2"}"#)]);
    assert_eq!(p.app_id_for("coder"), Some("2"));
}
