//! OpenAPI paths of the app-identity routes: apps, service keys, installation tokens.

use serde_json::{json, Value};

use super::{
    admin_op, app_id_param, error_response, github_errors, installation_id_param, json_response,
};

/// Apps, service keys, tokens (the app-identity routes).
pub(crate) fn paths() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/api/apps/{app_id}",
            json!({
                "parameters": [app_id_param()],
                "put": admin_op("putApp", "Register or replace a GitHub App's credentials", Some("AppInput"), json!({
                    "200": json_response("Replaced", "App"), "201": json_response("Registered", "App"),
                    "400": error_response("Invalid body, id or private key (`private_key_*`)"),
                    "413": error_response("Body over 64 KiB"), "415": error_response("Body is not application/json")})),
                "get": admin_op("getApp", "Read an app (secrets redacted)", None, json!({
                    "200": json_response("The app", "App"), "400": error_response("Invalid id"),
                    "404": error_response("Not registered")})),
                "delete": admin_op("deleteApp", "Forget an app and its credentials", None, json!({
                    "204": {"description": "Deleted"}, "400": error_response("Invalid id"),
                    "404": error_response("Not registered")}))
            }),
        ),
        (
            "/api/apps/{app_id}/webhook-secret",
            json!({
                "parameters": [app_id_param()],
                "post": admin_op("rotateWebhookSecret", "Rotate the webhook secret (the previous one stays valid for the grace period)",
                    Some("RotateWebhookSecret"), github_errors(json!({
                        "200": json_response("Rotated", "App"), "400": error_response("Invalid body or id"),
                        "404": error_response("Not registered"), "413": error_response("Body over 64 KiB"),
                        "415": error_response("Body is not application/json")})))
            }),
        ),
        (
            "/api/installations/{installation_id}/service-keys",
            json!({
                "parameters": [installation_id_param()],
                "post": admin_op("createServiceKey", "Create a service key for the tenant's workloads (shown once)", None, json!({
                    "201": json_response("Created", "ServiceKeyCreated"), "400": error_response("Invalid id or too many keys"),
                    "404": error_response("No config for this installation")})),
                "get": admin_op("listServiceKeys", "List service key ids", None, json!({
                    "200": json_response("Keys (ids only)", "ServiceKeyList"), "400": error_response("Invalid id"),
                    "404": error_response("No config for this installation")}))
            }),
        ),
        (
            "/api/installations/{installation_id}/service-keys/{key_id}",
            json!({
                "parameters": [installation_id_param(), {"name": "key_id", "in": "path", "required": true,
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{8}$"}}],
                "delete": admin_op("deleteServiceKey", "Revoke a service key", None, json!({
                    "204": {"description": "Revoked"}, "400": error_response("Invalid id"),
                    "404": error_response("No such key or installation")}))
            }),
        ),
        (
            "/api/installations/{installation_id}/token",
            json!({
                "parameters": [installation_id_param()],
                "post": {
                    "operationId": "installationToken",
                    "summary": "Trade a service key for an installation token scoped to this tenant",
                    "security": [{"serviceKey": []}],
                    "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}}},
                    "responses": github_errors(json!({
                        "200": json_response("A token (cached until 5 minutes before it expires)", "InstallationToken"),
                        "400": error_response("Invalid body or id"),
                        "401": error_response("Missing or unknown service key"),
                        "403": error_response("Key of another installation, repository or permission not allowed, or suspended"),
                        "404": error_response("No config for this installation"),
                        "413": error_response("Body over 64 KiB"), "415": error_response("Body is not application/json"),
                        "500": error_response("Server error (no internals)")}))
                }
            }),
        ),
        (
            "/api/installations/{installation_id}/repositories",
            json!({
                "parameters": [installation_id_param()],
                "get": admin_op("listInstallationRepositories", "Repositories the installation's token reaches", None, github_errors(json!({
                    "200": json_response("Repositories", "RepositoryList"), "400": error_response("Invalid id"),
                    "403": error_response("Installation suspended"),
                    "404": error_response("No config for this installation")})))
            }),
        ),
    ]
}
