//! The route table: every public path, its method, and who may call it.
//!
//! The adapter dispatches on [`Route`]; the OpenAPI document is checked against [`ROUTES`], so
//! a route that is not described fails the tests. The mint's routes differ only by data
//! ([`ErrorDialect::Fullsend`]), so the adapter holds no mint knowledge.

pub use crate::admin_access::roles::Role;
use crate::error::ApiError;
use crate::mint::Denial;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Healthz,
    OpenApi,
    PutInstallationConfig,
    GetInstallationConfig,
    PatchInstallationConfig,
    DeleteInstallationConfig,
    CreateServiceKey,
    ListServiceKeys,
    DeleteServiceKey,
    InstallationToken,
    ListInstallationRepositories,
    ListRepositoryBranches,
    PutApp,
    GetApp,
    DeleteApp,
    RotateWebhookSecret,
    GithubWebhook,
    ListDeliveries,
    ListWorkItems,
    ListAppDeliveries,
    SweepRedeliveries,
    CreateProject,
    ListProjects,
    GetProject,
    PatchProject,
    ApproveProject,
    PutProjectGithubRepo,
    ListGithubRepos,
    OAuthAuthorize,
    GithubConnectStart,
    GithubConnectCallback,
    GithubConnectStatus,
    GithubDisconnect,
    GithubUserInstallations,
    GithubUserRepos,
    GithubUserReposSync,
    PutProjectSource,
    GetProjectSource,
    DeleteProjectSource,
    ListProjectDeployments,
    RedeployProject,
    RedeemDeployCredentials,
    ReportDeploymentStatus,
    CreateInstaller,
    GetInstaller,
    DeleteInstaller,
    EnrollInstaller,
    SetupCallback,
    SetupPage,
    MintToken,
    MintTokenAlias,
    MintHealth,
    MintStatus,
    MintAudit,
    MintAuditStats,
    AdminReseal,
    GithubConnectSession,
    ListInstallations,
    ListAdminAudit,
    ConsolePage,
    ListApps,
    ListInstallers,
    ListAllDeliveries,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Public,
    /// Staff: `Authorization: Bearer <ADMIN_TOKEN>` (automation; every staff route), or a
    /// GitHub session (cookie or `Authorization: Bearer ghpas_…`) of a person whose role is
    /// at least `min` (see `admin_access::roles`).
    Staff {
        min: Role,
    },
    /// `Authorization: Bearer ghpsk_…`, a service key of the installation in the path;
    /// checked by the handler, which must refuse other tenants' keys before any lookup.
    ServiceKey,
    /// An admin session (cookie or `Authorization: Bearer ghpas_…`); checked by the handler
    /// against the user's own object.
    Session,
    /// A session, or a GitHub user token passed through as `Authorization: Bearer`.
    SessionOrUserToken,
}

/// Whose conventions a route follows where the table matches paths and refuses methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorDialect {
    /// ghplane's: exact paths; a wrong method is `method_not_allowed` naming the allowed ones.
    Ghplane,
    /// fullsend's mint (its `ServeHTTP`): leading slashes collapse to one, so a `MINT_URL`
    /// with a trailing slash still works (`//v1/token`); a wrong method is fullsend's 405
    /// sentence ([`Denial::method_not_allowed`]).
    Fullsend,
}

impl Auth {
    /// Read-only and secret-free: viewers and admins.
    pub const VIEWER: Auth = Auth::Staff { min: Role::Viewer };
    /// Changes state, or shows or creates a secret: admins only.
    pub const ADMIN: Auth = Auth::Staff { min: Role::Admin };
}

#[derive(Debug)]
pub struct RouteSpec {
    pub method: &'static str,
    /// OpenAPI-style template: `{name}` matches one non-empty segment.
    pub path: &'static str,
    pub route: Route,
    pub auth: Auth,
    pub errors: ErrorDialect,
}

const fn spec(method: &'static str, path: &'static str, route: Route, auth: Auth) -> RouteSpec {
    RouteSpec {
        method,
        path,
        route,
        auth,
        errors: ErrorDialect::Ghplane,
    }
}

/// A route of fullsend's mint protocol (public: the caller's OIDC token authenticates it).
const fn fullsend(method: &'static str, path: &'static str, route: Route) -> RouteSpec {
    RouteSpec {
        method,
        path,
        route,
        auth: Auth::Public,
        errors: ErrorDialect::Fullsend,
    }
}

#[rustfmt::skip]
pub const ROUTES: &[RouteSpec] = &[
    spec("GET", "/healthz", Route::Healthz, Auth::Public),
    spec("GET", "/openapi.json", Route::OpenApi, Auth::Public),
    spec("PUT", "/api/installations/{installation_id}/config", Route::PutInstallationConfig, Auth::ADMIN),
    spec("GET", "/api/installations/{installation_id}/config", Route::GetInstallationConfig, Auth::VIEWER),
    spec("PATCH", "/api/installations/{installation_id}/config", Route::PatchInstallationConfig, Auth::ADMIN),
    spec("DELETE", "/api/installations/{installation_id}/config", Route::DeleteInstallationConfig, Auth::ADMIN),
    spec("POST", "/api/installations/{installation_id}/service-keys", Route::CreateServiceKey, Auth::ADMIN),
    spec("GET", "/api/installations/{installation_id}/service-keys", Route::ListServiceKeys, Auth::VIEWER),
    spec("DELETE", "/api/installations/{installation_id}/service-keys/{key_id}", Route::DeleteServiceKey, Auth::ADMIN),
    spec("POST", "/api/installations/{installation_id}/token", Route::InstallationToken, Auth::ServiceKey),
    spec("GET", "/api/installations/{installation_id}/repositories", Route::ListInstallationRepositories, Auth::VIEWER),
    spec("GET", "/api/installations/{installation_id}/repositories/{owner}/{repo}/branches", Route::ListRepositoryBranches, Auth::VIEWER),
    spec("PUT", "/api/apps/{app_id}", Route::PutApp, Auth::ADMIN),
    spec("GET", "/api/apps/{app_id}", Route::GetApp, Auth::VIEWER),
    spec("DELETE", "/api/apps/{app_id}", Route::DeleteApp, Auth::ADMIN),
    spec("POST", "/api/apps/{app_id}/webhook-secret", Route::RotateWebhookSecret, Auth::ADMIN),
    spec("GET", "/api/apps/{app_id}/deliveries", Route::ListAppDeliveries, Auth::VIEWER),
    spec("POST", "/api/apps/{app_id}/redeliveries", Route::SweepRedeliveries, Auth::ADMIN),
    // Authenticated by the delivery's signature.
    spec("POST", "/webhooks/github", Route::GithubWebhook, Auth::Public),
    spec("GET", "/api/installations/{installation_id}/deliveries", Route::ListDeliveries, Auth::VIEWER),
    spec("GET", "/api/installations/{installation_id}/work", Route::ListWorkItems, Auth::VIEWER),
    spec("POST", "/projects", Route::CreateProject, Auth::ADMIN),
    spec("GET", "/projects", Route::ListProjects, Auth::VIEWER),
    spec("GET", "/projects/{slug}", Route::GetProject, Auth::VIEWER),
    spec("PATCH", "/projects/{slug}", Route::PatchProject, Auth::ADMIN),
    spec("POST", "/projects/{slug}/approve", Route::ApproveProject, Auth::ADMIN),
    spec("PUT", "/projects/{slug}/github-repo", Route::PutProjectGithubRepo, Auth::ADMIN),
    spec("GET", "/github/repos", Route::ListGithubRepos, Auth::VIEWER),
    spec("GET", "/oauth/authorize", Route::OAuthAuthorize, Auth::Public),
    spec("POST", "/api/integrations/github/start", Route::GithubConnectStart, Auth::Public),
    spec("GET", "/api/integrations/github/callback", Route::GithubConnectCallback, Auth::Public),
    spec("GET", "/api/integrations/github/status", Route::GithubConnectStatus, Auth::Public),
    spec("POST", "/api/integrations/github/disconnect", Route::GithubDisconnect, Auth::Session),
    spec("GET", "/api/integrations/github/installations", Route::GithubUserInstallations, Auth::SessionOrUserToken),
    spec("GET", "/api/integrations/github/repos", Route::GithubUserRepos, Auth::Session),
    spec("POST", "/api/integrations/github/repos/sync", Route::GithubUserReposSync, Auth::Session),
    spec("PUT", "/projects/{slug}/source", Route::PutProjectSource, Auth::ADMIN),
    spec("GET", "/projects/{slug}/source", Route::GetProjectSource, Auth::VIEWER),
    spec("DELETE", "/projects/{slug}/source", Route::DeleteProjectSource, Auth::ADMIN),
    spec("GET", "/projects/{slug}/deployments", Route::ListProjectDeployments, Auth::VIEWER),
    spec("POST", "/projects/{slug}/redeploy", Route::RedeployProject, Auth::ADMIN),
    // Authenticated by the deployment's single-use ticket (bearer), checked by the handler.
    spec("POST", "/api/deployments/{deployment_id}/credentials", Route::RedeemDeployCredentials, Auth::Public),
    // Authenticated by the body's signature with the project's hook secret.
    spec("POST", "/api/deployments/{deployment_id}/status", Route::ReportDeploymentStatus, Auth::Public),
    spec("POST", "/api/installers", Route::CreateInstaller, Auth::ADMIN),
    spec("GET", "/api/installers/{installer_id}", Route::GetInstaller, Auth::VIEWER),
    spec("DELETE", "/api/installers/{installer_id}", Route::DeleteInstaller, Auth::ADMIN),
    spec("POST", "/api/installers/{installer_id}/enroll", Route::EnrollInstaller, Auth::ADMIN),
    // The GitHub App Manifest flow's browser pages; the state carries the authorization.
    spec("GET", "/setup/callback", Route::SetupCallback, Auth::Public),
    spec("GET", "/setup/{installer_id}", Route::SetupPage, Auth::Public),
    // The token mint (fullsend's protocol): authenticated by the caller's OIDC token.
    fullsend("POST", "/v1/token", Route::MintToken),
    fullsend("POST", "/", Route::MintTokenAlias),
    fullsend("GET", "/health", Route::MintHealth),
    fullsend("GET", "/v1/status", Route::MintStatus),
    spec("GET", "/api/mint/audit", Route::MintAudit, Auth::VIEWER),
    spec("GET", "/api/mint/audit/stats", Route::MintAuditStats, Auth::VIEWER),
    spec("POST", "/api/admin/reseal", Route::AdminReseal, Auth::ADMIN),
    spec("POST", "/api/integrations/github/session", Route::GithubConnectSession, Auth::Public),
    spec("GET", "/api/installations", Route::ListInstallations, Auth::VIEWER),
    spec("GET", "/api/audit", Route::ListAdminAudit, Auth::VIEWER),
    spec("GET", "/", Route::ConsolePage, Auth::Public),
    spec("GET", "/api/apps", Route::ListApps, Auth::VIEWER),
    spec("GET", "/api/installers", Route::ListInstallers, Auth::VIEWER),
    spec("GET", "/api/deliveries", Route::ListAllDeliveries, Auth::VIEWER),
];

/// The methods `path` is served with (for `Allow` and CORS preflights); empty when none.
pub fn methods_for(path: &str) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|spec| match_spec(spec, path).is_some())
        .map(|spec| spec.method)
        .collect()
}

/// A matched route with its path parameters (raw segments; typed parsing happens in handlers).
#[derive(Debug)]
pub struct Matched {
    pub spec: &'static RouteSpec,
    params: Vec<(&'static str, String)>,
}

impl Matched {
    /// Every path parameter, in template order.
    pub fn params(&self) -> &[(&'static str, String)] {
        &self.params
    }

    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Finds the route for `method` + `path`. A path that exists under other methods is a 405
/// naming them (in fullsend's words on the mint's paths); anything else is a 404.
pub fn match_route(method: &str, path: &str) -> Result<Matched, ApiError> {
    let mut allowed = Vec::new();
    let mut fullsend = true;
    for spec in ROUTES {
        if let Some(params) = match_spec(spec, path) {
            if spec.method == method {
                return Ok(Matched { spec, params });
            }
            allowed.push(spec.method.to_owned());
            fullsend &= spec.errors == ErrorDialect::Fullsend;
        }
    }
    if allowed.is_empty() {
        Err(ApiError::RouteNotFound {
            method: method.to_owned(),
            path: crate::ids::truncate(path, 200),
        })
    } else if fullsend {
        Err(Denial::method_not_allowed().into())
    } else {
        Err(ApiError::MethodNotAllowed {
            method: method.to_owned(),
            allowed,
        })
    }
}

fn match_spec(spec: &'static RouteSpec, path: &str) -> Option<Vec<(&'static str, String)>> {
    let path = match spec.errors {
        ErrorDialect::Ghplane => path,
        ErrorDialect::Fullsend => collapse_leading_slashes(path),
    };
    match_template(spec.path, path)
}

/// `//v1/token` is `/v1/token`, `//` is `/`.
fn collapse_leading_slashes(path: &str) -> &str {
    let rest = path.trim_start_matches('/');
    if rest.len() + 1 < path.len() {
        &path[path.len() - rest.len() - 1..]
    } else {
        path
    }
}

fn match_template(template: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut want = template.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name, g.to_owned()));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_params() {
        let m = match_route("GET", "/api/installations/42/config").unwrap();
        assert_eq!(m.spec.route, Route::GetInstallationConfig);
        assert_eq!(m.param("installation_id"), "42");
        assert_eq!(m.spec.auth, Auth::VIEWER);
        assert_eq!(m.params(), [("installation_id", "42".to_owned())]);
    }

    #[test]
    fn wrong_method_is_405_with_allowed_list() {
        match match_route("POST", "/api/installations/42/config") {
            Err(ApiError::MethodNotAllowed { allowed, .. }) => {
                assert_eq!(allowed, vec!["PUT", "GET", "PATCH", "DELETE"])
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            match_route("DELETE", "/healthz"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn unknown_paths_are_404() {
        for p in [
            "/nope",
            "/healthz/",
            "/api/installations//config",
            "/api/installations/1/config/x",
        ] {
            assert!(
                matches!(match_route("GET", p), Err(ApiError::RouteNotFound { .. })),
                "{p}"
            );
        }
    }

    #[test]
    fn methods_for_paths() {
        assert_eq!(
            methods_for("/api/installations/1/config"),
            ["PUT", "GET", "PATCH", "DELETE"]
        );
        assert_eq!(methods_for("/api/integrations/github/repos/sync"), ["POST"]);
        assert!(methods_for("/nope").is_empty());
    }

    #[test]
    fn mint_paths_answer_like_fullsend() {
        let route = |m: &str, p: &str| match_route(m, p).map(|m| m.spec.route);
        assert_eq!(route("POST", "/v1/token"), Ok(Route::MintToken));
        assert_eq!(route("POST", "/"), Ok(Route::MintTokenAlias));
        assert_eq!(route("GET", "/health"), Ok(Route::MintHealth));
        assert_eq!(route("GET", "/v1/status"), Ok(Route::MintStatus));
        // Leading slashes collapse on the mint's paths only.
        assert_eq!(route("POST", "//v1/token"), Ok(Route::MintToken));
        assert_eq!(route("GET", "///v1/status"), Ok(Route::MintStatus));
        assert_eq!(route("POST", "//"), Ok(Route::MintTokenAlias));
        assert_eq!(methods_for("//v1/token"), ["POST"]);
        for p in ["//healthz", "//api/apps/1", "/v1/token/", "/v1%2Ftoken", ""] {
            assert!(
                matches!(match_route("GET", p), Err(ApiError::RouteNotFound { .. })),
                "{p}"
            );
        }
        // A wrong method is fullsend's 405 sentence, and ghplane's elsewhere.
        // `GET /` is the admin console's page, not the mint's.
        assert_eq!(route("GET", "/"), Ok(Route::ConsolePage));
        for (m, p) in [
            ("GET", "/v1/token"),
            ("GET", "//v1/token"),
            ("POST", "/v1/status"),
            ("POST", "/health"),
        ] {
            let e = match_route(m, p).unwrap_err();
            assert_eq!(e, Denial::method_not_allowed().into(), "{m} {p}");
            assert_eq!(
                (e.status(), e.public_message()),
                (405, "method not allowed".into())
            );
        }
        assert!(matches!(
            match_route("POST", "/healthz"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn only_reads_are_open_to_viewers() {
        for r in ROUTES {
            if r.auth == Auth::VIEWER {
                assert_eq!(r.method, "GET", "{} {}", r.method, r.path);
            }
            if let Auth::Staff { min: Role::Admin } = r.auth {
                assert_ne!(r.method, "GET", "{} {} shows no secret", r.method, r.path);
            }
        }
    }

    #[test]
    fn table_has_no_duplicate_method_and_path() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }
}
