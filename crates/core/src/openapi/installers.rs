//! OpenAPI paths of the installers (per-repo and per-org) and the setup pages.

use serde_json::{json, Value};

use super::{admin_op, error_response, github_errors, json_response};

fn installer_id_param() -> Value {
    json!({"name": "installer_id", "in": "path", "required": true, "description": "Installer id (16 hex digits).",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}})
}

fn html(description: &str) -> Value {
    json!({"description": description, "content": {"text/html": {"schema": {"type": "string"}}}})
}

pub(crate) fn schemas() -> Vec<(&'static str, Value)> {
    let nullable = |t: &str| json!({"type": [t, "null"]});
    vec![
        (
            "InstallerInput",
            json!({
                "type": "object", "additionalProperties": false, "required": ["mode"],
                "properties": {
                    "mode": {"enum": ["repo", "org"]},
                    "repository": {"type": "string", "description": "owner/name; mode `repo`."},
                    "account": {"enum": ["organization", "user"], "default": "organization",
                        "description": "Mode `repo`: whether the repository's owner is an organisation (the app is created there) or a user."},
                    "org": {"type": "string", "description": "Organisation login; mode `org`."},
                    "exclude": {"type": "array", "items": {"type": "string"},
                        "description": "Mode `org`: repositories (owner/name) that keep or may get dedicated apps."}
                }
            }),
        ),
        (
            "EnrollInput",
            json!({
                "type": "object", "additionalProperties": false, "required": ["repositories"],
                "properties": {"repositories": {"type": "array", "minItems": 1, "items": {"type": "string"}}}
            }),
        ),
        (
            "Installer",
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["id", "mode", "repository", "org", "exclude", "phase", "setupUrl", "appId", "appSlug", "appUrl",
                    "installUrl", "installationId", "misconfiguration", "serviceKey", "enrolled", "claims", "conflicts",
                    "deleteAppUrl", "nextStep", "createdAt", "updatedAt", "uninstalledAt"],
                "properties": {
                    "id": {"type": "string"},
                    "mode": {"enum": ["repo", "org"]},
                    "repository": nullable("string"), "org": nullable("string"),
                    "exclude": {"type": "array", "items": {"type": "string"}},
                    "phase": {"enum": ["awaiting_app", "awaiting_installation", "misconfigured", "active", "uninstalled"]},
                    "setupUrl": {"type": "string", "description": "Open in a browser to create the app on GitHub."},
                    "appId": nullable("integer"), "appSlug": nullable("string"), "appUrl": nullable("string"),
                    "installUrl": nullable("string"), "installationId": nullable("integer"),
                    "misconfiguration": {"type": ["string", "null"],
                        "description": "Why the installation gets no tokens (a dedicated app must cover exactly its repository)."},
                    "serviceKey": {"oneOf": [{"type": "null"}, {"type": "object", "additionalProperties": false, "required": ["id"],
                        "properties": {"id": {"type": "string"}, "key": {"type": "string",
                            "description": "The tenant's service key, in the first status read after enrollment only."}}}]},
                    "enrolled": {"type": "array", "items": {"type": "string"}},
                    "claims": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                        "required": ["scope", "mode", "repository", "repositoryId", "installationId", "since"],
                        "properties": {"scope": {"enum": ["repository", "organization"]}, "mode": {"enum": ["repo", "org"]},
                            "repository": nullable("string"), "repositoryId": nullable("integer"),
                            "installationId": nullable("integer"), "since": {"type": "string"}}}},
                    "conflicts": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                        "required": ["repository", "dedicatedInstaller", "orgInstallation", "since"],
                        "properties": {"repository": {"type": "string"}, "dedicatedInstaller": nullable("string"),
                            "orgInstallation": {"type": "integer"}, "since": {"type": "string"}},
                        "description": "An org-level installation that also reaches a repository with a dedicated app: ghplane serves it only through the dedicated app."}},
                    "deleteAppUrl": {"type": ["string", "null"], "description": "After uninstalling: where the owner deletes the app (GitHub has no API for it)."},
                    "nextStep": {"type": "string"},
                    "createdAt": {"type": "string"}, "updatedAt": {"type": "string"},
                    "uninstalledAt": nullable("string")
                }
            }),
        ),
    ]
}

pub(crate) fn paths() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/api/installers",
            json!({
                "post": admin_op("createInstaller", "Start installing per repository (a dedicated app) or per organisation",
                    Some("InstallerInput"), json!({
                        "201": json_response("Created: open `setupUrl` in a browser", "Installer"),
                        "400": error_response("Invalid body"),
                        "409": error_response("The repository or organisation is already claimed by the other mode (`repository_claimed`, `repository_covered_by_org`, `org_has_dedicated_repositories`, `org_already_claimed`)"),
                        "413": error_response("Body over 64 KiB"), "415": error_response("Body is not application/json")}))
            }),
        ),
        (
            "/api/installers/{installer_id}",
            json!({
                "parameters": [installer_id_param()],
                "get": admin_op("getInstaller", "Mode, target, app, installation, claims, conflicts and the next step", None, json!({
                    "200": json_response("The installer", "Installer"), "400": error_response("Invalid id"),
                    "404": error_response("No such installer (`installer_not_found`)")})),
                "delete": admin_op("deleteInstaller", "Uninstall: delete the installation on GitHub, purge config, tokens, service keys and claims (idempotent)",
                    None, github_errors(json!({
                        "200": json_response("Uninstalled; `deleteAppUrl` is where the owner deletes the app", "Installer"),
                        "400": error_response("Invalid id"),
                        "404": error_response("No such installer (`installer_not_found`)")})))
            }),
        ),
        (
            "/api/installers/{installer_id}/enroll",
            json!({
                "parameters": [installer_id_param()],
                "post": admin_op("enrollRepositories", "Enroll repositories into an org installation (never one with a dedicated app)",
                    Some("EnrollInput"), json!({
                        "200": json_response("Enrolled", "Installer"), "400": error_response("Invalid body or id"),
                        "404": error_response("No such installer"),
                        "409": error_response("Not an org installer, not installed yet, uninstalled, or a repository has a dedicated app (`repository_claimed`)"),
                        "413": error_response("Body over 64 KiB"), "415": error_response("Body is not application/json")}))
            }),
        ),
        (
            "/setup/callback",
            json!({
                "get": {"operationId": "setupCallback", "summary": "GitHub's redirect after the app was created: converts the code and stores the app",
                    "security": [],
                    "parameters": [
                        {"name": "code", "in": "query", "required": true, "schema": {"type": "string"}},
                        {"name": "state", "in": "query", "required": true, "schema": {"type": "string"}}],
                    "responses": {
                        "200": html("The app is stored; the page links to installing it"),
                        "400": html("Missing, forged, expired or used state, or a code GitHub refused; nothing stored"),
                        "404": html("The installer no longer exists"),
                        "409": html("The installer already has its app or was uninstalled"),
                        "500": html("Server error"), "502": html("GitHub failed"), "503": html("GitHub rate limit")}}
            }),
        ),
        (
            "/setup/{installer_id}",
            json!({
                "parameters": [installer_id_param()],
                "get": {"operationId": "setupPage", "summary": "The page that posts the app's manifest to GitHub (`?autosubmit=1` submits it on load)",
                    "security": [],
                    "responses": {
                        "200": html("The setup page, or the installer's progress once the app exists"),
                        "404": html("No such installer"), "500": html("Server error")}}
            }),
        ),
    ]
}
