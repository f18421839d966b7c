//! OpenAPI paths of admin access: the GitHub sign-in of the admin SPA, the installations and
//! repositories the signed-in user can act on.

use serde_json::{json, Value};

use super::{error_response, json_response};

fn session_security() -> Value {
    json!([{"sessionCookie": []}, {"sessionToken": []}])
}

fn session_op(operation_id: &str, summary: &str, pass_through: bool, responses: Value) -> Value {
    let mut security = session_security();
    if pass_through {
        security
            .as_array_mut()
            .expect("array")
            .push(json!({"githubUserToken": []}));
    }
    json!({"operationId": operation_id, "summary": summary, "security": security, "responses": responses})
}

fn optional_json_body(schema: &str) -> Value {
    json!({"required": false, "description": "Must be sent as application/json (even when empty), so a cross-site form cannot post it.",
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn redirect(description: &str) -> Value {
    json!({"description": description, "headers": {
        "Location": {"schema": {"type": "string"}, "required": true}}})
}

fn user_access_errors(mut responses: Value) -> Value {
    responses["401"] = error_response(
        "No session (`unauthorized`), or the session or GitHub's user token is no longer valid (`session_invalid`): sign in again",
    );
    responses["403"] =
        error_response("GitHub refused for lack of a permission (`missing_permissions`)");
    responses["500"] = error_response("Server error (no internals)");
    responses["503"] = error_response(
        "GitHub failed, was unreachable or rate limited (`transient`); `retry_after` (seconds) when known",
    );
    responses
}

/// The security schemes these routes use.
pub(crate) fn security_schemes() -> Vec<(&'static str, Value)> {
    vec![
        (
            "sessionCookie",
            json!({"type": "apiKey", "in": "cookie", "name": "__Host-ghplane_session",
            "description": "The admin session set by the sign-in callback (HttpOnly, Secure, SameSite=Lax)."}),
        ),
        (
            "sessionToken",
            json!({"type": "http", "scheme": "bearer",
            "description": "The same session as a bearer token (`ghpas_…`), for an SPA on another site."}),
        ),
        (
            "githubUserToken",
            json!({"type": "http", "scheme": "bearer",
            "description": "A GitHub App user token the SPA holds itself; passed to GitHub, never stored."}),
        ),
    ]
}

pub(crate) fn schemas() -> Vec<(&'static str, Value)> {
    let installation = json!({
        "type": "object", "additionalProperties": false,
        "required": ["id", "account", "repository_selection", "app_slug"],
        "properties": {
            "id": {"type": "integer"},
            "account": {"type": "object", "additionalProperties": false, "required": ["login", "type", "id", "avatar_url"],
                "properties": {"login": {"type": "string"}, "type": {"enum": ["Organization", "User"]},
                    "id": {"type": "integer"}, "avatar_url": {"type": ["string", "null"]}}},
            "repository_selection": {"type": ["string", "null"], "enum": ["all", "selected", null]},
            "app_slug": {"type": ["string", "null"]}
        }
    });
    let summary = json!({
        "type": "object", "additionalProperties": false, "required": ["count", "accounts", "incomplete"],
        "properties": {"count": {"type": "integer", "minimum": 0},
            "accounts": {"type": "array", "items": {"type": "string"}}, "incomplete": {"type": "boolean"}}
    });
    vec![
        (
            "EmptyObject",
            json!({"type": "object", "additionalProperties": false}),
        ),
        (
            "ConnectStartInput",
            json!({
                "type": "object", "additionalProperties": false,
                "properties": {"return_to": {"type": "string", "default": "/",
                    "description": "Relative path (one leading `/`) the browser returns to after signing in."},
                    "code_challenge": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$",
                        "description": "Required from a cross-site admin SPA (an allowed `Origin`): base64url SHA-256 of a verifier the SPA keeps (PKCE S256); it redeems its session with it at `/api/integrations/github/session`."}}
            }),
        ),
        (
            "ConnectStart",
            json!({
                "type": "object", "additionalProperties": false, "required": ["authorize_url", "state", "expires_at"],
                "properties": {
                    "authorize_url": {"type": "string", "description": "GitHub's authorize page; navigate the browser there."},
                    "state": {"type": "string", "description": "base64url(JSON {n, exp, r, t?, g?, o?}) \".\" base64url(HMAC-SHA256); single use."},
                    "expires_at": {"type": "string", "format": "date-time"}
                }
            }),
        ),
        ("GithubInstallation", installation),
        ("InstallationSummary", summary),
        (
            "ConnectStatus",
            json!({
                "type": "object", "additionalProperties": false, "required": ["connected"],
                "properties": {
                    "connected": {"type": "boolean"},
                    "login": {"type": "string"}, "user_id": {"type": "integer"},
                    "avatar_url": {"type": ["string", "null"]},
                    "session_expires_at": {"type": "string", "format": "date-time"},
                    "installations": {"oneOf": [{"$ref": "#/components/schemas/InstallationSummary"}, {"type": "null"}]},
                    "installations_error": {"type": "string", "description": "Error class when GitHub could not list them."}
                }
            }),
        ),
        (
            "Disconnected",
            json!({
                "type": "object", "additionalProperties": false, "required": ["connected", "revoked"],
                "properties": {"connected": {"const": false},
                    "revoked": {"type": "boolean", "description": "GitHub confirmed the grant is gone (false: revoke it in GitHub's settings)."}}
            }),
        ),
        (
            "UserInstallations",
            json!({
                "type": "object", "additionalProperties": false, "required": ["installations", "incomplete", "install_url"],
                "properties": {
                    "installations": {"type": "array", "items": {"$ref": "#/components/schemas/GithubInstallation"}},
                    "incomplete": {"type": "boolean", "description": "True when INSTALLATIONS_PAGE_CAP stopped the listing."},
                    "install_url": {"type": ["string", "null"], "description": "Where to install the app on another account."}
                }
            }),
        ),
        (
            "RepoRow",
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["repo_id", "node_id", "full_name", "default_branch", "private", "archived"],
                "properties": {"repo_id": {"type": "integer"}, "node_id": {"type": "string"}, "full_name": {"type": "string"},
                    "default_branch": {"type": ["string", "null"]}, "private": {"type": "boolean"}, "archived": {"type": "boolean"}}
            }),
        ),
        (
            "UserRepos",
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["installation_id", "repositories", "next_cursor", "incomplete", "synced_at"],
                "properties": {
                    "installation_id": {"type": "integer"},
                    "repositories": {"type": "array", "maxItems": 50, "items": {"$ref": "#/components/schemas/RepoRow"}},
                    "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next rows; null at the end."},
                    "incomplete": {"type": "boolean", "description": "True when GitHub holds more than the 1,000 repositories read."},
                    "synced_at": {"type": "string", "format": "date-time"}
                }
            }),
        ),
        (
            "ReposSyncInput",
            json!({
                "type": "object", "additionalProperties": false, "required": ["installation_id"],
                "properties": {"installation_id": {"type": "integer", "minimum": 1}}
            }),
        ),
        (
            "ReposSynced",
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["installation_id", "repositories", "changed", "incomplete", "synced_at"],
                "properties": {
                    "installation_id": {"type": "integer"},
                    "repositories": {"type": "integer", "description": "How many the cache now holds."},
                    "changed": {"type": "boolean", "description": "False when GitHub answered 304 for every page."},
                    "incomplete": {"type": "boolean"},
                    "synced_at": {"type": "string", "format": "date-time"}
                }
            }),
        ),
    ]
}

pub(crate) fn paths() -> Vec<(&'static str, Value)> {
    let return_to = json!({"name": "return_to", "in": "query", "required": false,
        "schema": {"type": "string"}, "description": "Relative path to return to after signing in."});
    vec![
        (
            "/oauth/authorize",
            json!({"get": {
                "operationId": "oauthAuthorize", "summary": "Start the GitHub sign-in by redirecting to GitHub",
                "security": [], "parameters": [return_to],
                "responses": {
                    "302": redirect("To GitHub's authorize page"),
                    "400": error_response("return_to is not a relative path"),
                    "500": error_response("Server error, or GITHUB_APP_ID / the app's client id missing")}
            }}),
        ),
        (
            "/api/integrations/github/start",
            json!({"post": {
                "operationId": "githubConnectStart", "summary": "Start the GitHub sign-in: the authorize URL and its state",
                "security": [], "requestBody": optional_json_body("ConnectStartInput"),
                "responses": {
                    "200": {"description": "Navigate the browser to authorize_url. A same-site sign-in also gets the `__Host-ghplane_oauth` cookie (HttpOnly, Secure, SameSite=Lax, 10 minutes) that binds the state to this browser",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ConnectStart"}}}},
                    "400": error_response("Invalid body or return_to, or no code_challenge from a cross-site SPA"),
                    "413": error_response("Body over 64 KiB"),
                    "415": error_response("Not application/json (e.g. a cross-site text/plain post)"),
                    "500": error_response("Server error, or GITHUB_APP_ID / the app's client id missing")}
            }}),
        ),
        (
            "/api/integrations/github/callback",
            json!({"get": {
                "operationId": "githubConnectCallback",
                "summary": "GitHub's redirect back: checks and consumes the state, exchanges the code, opens a session",
                "security": [],
                "parameters": [
                    {"name": "code", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "state", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "error", "in": "query", "required": false, "schema": {"type": "string"}}],
                "responses": {
                    "302": {"description": "Signed in: the session cookie is set (and the `__Host-ghplane_oauth` binding cookie cleared) and the browser goes to the return path; a sign-in started by a cross-site SPA goes back to that origin with `#ghplane_code=<one-time code>`, which the SPA redeems with its verifier at `/api/integrations/github/session`",
                        "headers": {"Location": {"schema": {"type": "string"}, "required": true},
                            "Set-Cookie": {"schema": {"type": "string"}, "required": false}}},
                    "400": error_response("State missing, tampered, with a non-relative path or started in another browser (no or another `__Host-ghplane_oauth` cookie) (`oauth_state_invalid`), expired (`oauth_state_expired`), already used (`oauth_state_reused`); sign-in declined (`oauth_denied`); code refused (`oauth_code_invalid`); no code exchange is made for a bad state"),
                    "500": error_response("Server error (no internals)"),
                    "502": error_response("GitHub refused the exchange (`oauth_exchange_failed`) or failed (`github_*`)"),
                    "503": error_response("GitHub rate limit (`github_rate_limited`)")}
            }}),
        ),
        (
            "/api/integrations/github/session",
            json!({"post": {
                "operationId": "githubConnectSession",
                "summary": "A cross-site SPA trades the callback's one-time code and its PKCE verifier for its session (once, within two minutes)",
                "security": [],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false, "required": ["code", "code_verifier"],
                    "properties": {"code": {"type": "string", "description": "The `ghplane_code` of the callback's redirect."},
                        "code_verifier": {"type": "string", "minLength": 43, "maxLength": 128}}}}}},
                "responses": {
                    "200": {"description": "The session, to send as `Authorization: Bearer`", "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": false, "required": ["session", "session_expires_at"],
                        "properties": {"session": {"type": "string"}, "session_expires_at": {"type": "string", "format": "date-time"}}}}}},
                    "400": error_response("Malformed code or verifier (`validation_failed`); unknown, expired, used or not this SPA's code (`oauth_code_invalid`)"),
                    "413": error_response("Body over 64 KiB"),
                    "415": error_response("Not application/json"),
                    "500": error_response("Server error (no internals)")}
            }}),
        ),
        (
            "/api/integrations/github/status",
            json!({"get": {
                "operationId": "githubConnectStatus", "summary": "Whether this browser is signed in, as whom, and an installation summary",
                "security": [],
                "responses": {"200": json_response("Status (connected: false without a valid session)", "ConnectStatus"),
                    "500": error_response("Server error (no internals)")}
            }}),
        ),
        (
            "/api/integrations/github/disconnect",
            json!({"post": {
                "operationId": "githubDisconnect",
                "summary": "Revoke the app's grant at GitHub, forget the user's tokens and end every session",
                "security": session_security(), "requestBody": optional_json_body("EmptyObject"),
                "responses": {
                    "200": json_response("Disconnected; the session cookie is cleared", "Disconnected"),
                    "400": error_response("Body is not an empty JSON object"),
                    "401": error_response("No valid session (`unauthorized`, `session_invalid`)"),
                    "413": error_response("Body over 64 KiB"),
                    "415": error_response("Not application/json"),
                    "500": error_response("Server error (no internals)")}
            }}),
        ),
        ("/api/integrations/github/installations", {
            let mut op = session_op("githubUserInstallations",
                "The app's installations this user can access (GET /user/installations); organisations only unless include=users",
                true,
                user_access_errors(json!({
                    "200": json_response("Installations", "UserInstallations"),
                    "400": error_response("include is not `users`")})));
            op["parameters"] = json!([{"name": "include", "in": "query", "required": false,
                "schema": {"enum": ["users"]}, "description": "`users`: also the users' own accounts."}]);
            json!({"get": op})
        }),
        ("/api/integrations/github/repos", {
            let mut op = session_op("githubUserRepos",
                "Repositories of one installation that this user can see, from the per-user cache, by cursor",
                false,
                user_access_errors(json!({
                    "200": json_response("Up to 50 repositories, by name", "UserRepos"),
                    "400": error_response("installation_id missing or invalid, bad cursor or query")})));
            op["parameters"] = json!([
                {"name": "installation_id", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,15}$"}},
                {"name": "cursor", "in": "query", "required": false, "schema": {"type": "string"},
                    "description": "next_cursor of the previous answer."},
                {"name": "query", "in": "query", "required": false, "schema": {"type": "string", "maxLength": 100},
                    "description": "Case-insensitive substring of owner/name."}]);
            json!({"get": op})
        }),
        (
            "/api/integrations/github/repos/sync",
            json!({"post": {
                "operationId": "githubUserReposSync",
                "summary": "Refresh the per-user repository cache of one installation (conditional requests: unchanged pages cost no rate limit)",
                "security": session_security(), "requestBody": {"required": true,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReposSyncInput"}}}},
                "responses": user_access_errors(json!({
                    "200": json_response("Synced", "ReposSynced"),
                    "400": error_response("Invalid body or installation_id"),
                    "413": error_response("Body over 64 KiB"),
                    "415": error_response("Not application/json")}))
            }}),
        ),
    ]
}
