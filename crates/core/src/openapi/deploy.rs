//! OpenAPI paths of push to deploy: a project's GitHub source, its deployments, and the two
//! routes a deployer calls (credentials, status).

use serde_json::{json, Value};

use super::{admin_op, error_response, github_errors, json_body, json_response};

fn slug_param() -> Value {
    json!({"name": "slug", "in": "path", "required": true, "description": "Project slug.",
        "schema": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"}})
}

fn deployment_param() -> Value {
    json!({"name": "deployment_id", "in": "path", "required": true,
        "description": "`<project slug>.<deployment number>`, e.g. `acme-ab12.3`.",
        "schema": {"type": "string"}})
}

pub(crate) fn schemas() -> Vec<(&'static str, Value)> {
    let source_props = json!({
        "project": {"type": "string"},
        "installationId": {"type": "integer", "minimum": 1},
        "repoId": {"type": "integer", "minimum": 1},
        "nodeId": {"type": "string"},
        "fullName": {"type": "string", "description": "Current `owner/name`; follows renames."},
        "branch": {"type": "string"},
        "deployHookUrl": {"type": ["string", "null"]},
        "hookSecret": {"type": "string",
            "description": "Only in the 201 of the first link: signs hook jobs and status reports. Shown once."}
    });
    vec![
        (
            "ProjectSourceInput",
            json!({
                "type": "object", "additionalProperties": false, "required": ["installationId", "repoId", "branch"],
                "properties": {
                    "installationId": {"type": "integer", "minimum": 1},
                    "repoId": {"type": "integer", "minimum": 1, "description": "GitHub's repository id (stable across renames)."},
                    "branch": {"type": "string", "description": "Branch name without `refs/heads/`."},
                    "deployHookUrl": {"type": ["string", "null"], "description": "https:// URL the signed deploy job is POSTed to."}
                }
            }),
        ),
        (
            "ProjectSource",
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["project", "installationId", "repoId", "nodeId", "fullName", "branch", "deployHookUrl"],
                "properties": source_props
            }),
        ),
        (
            "Deployment",
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["id", "sha", "trigger", "pushes", "state", "createdAt", "startedAt", "finishedAt",
                    "githubDeploymentId", "outcome"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1, "description": "Per project; the public id is `<slug>.<id>`."},
                    "sha": {"type": "string"},
                    "trigger": {"type": "object", "additionalProperties": false,
                        "required": ["deliveryId", "pusher", "sha", "message"],
                        "properties": {"deliveryId": {"type": "string"}, "pusher": {"type": "string"},
                            "sha": {"type": "string"}, "message": {"type": "string"}}},
                    "pushes": {"type": "integer", "minimum": 1, "description": "Pushes folded into this deployment."},
                    "state": {"enum": ["queued", "in_progress", "success", "failure", "error"]},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "startedAt": {"type": ["string", "null"], "format": "date-time"},
                    "finishedAt": {"type": ["string", "null"], "format": "date-time"},
                    "githubDeploymentId": {"type": ["integer", "null"]},
                    "outcome": {"enum": ["succeeded", "failed", "errored", "timed_out", "dispatch_failed", "alarm_failed", null]},
                    "error": {"type": "string", "description": "Why ghplane could not carry the deployment out (only when it ended `error` for that reason)."}
                }
            }),
        ),
        (
            "DeploymentList",
            json!({
                "type": "object", "additionalProperties": false, "required": ["deployments", "running", "pending", "jobs"],
                "properties": {
                    "deployments": {"type": "array", "items": {"$ref": "#/components/schemas/Deployment"},
                        "description": "Newest first, at most 50."},
                    "running": {"type": ["integer", "null"], "description": "The deployment holding the lock."},
                    "pending": {"oneOf": [{"type": "null"}, {"type": "object", "additionalProperties": false,
                        "required": ["sha", "dispatchAt"],
                        "properties": {"sha": {"type": "string"},
                            "dispatchAt": {"type": ["string", "null"], "format": "date-time",
                                "description": "Null for a follow-up waiting behind the running deployment."}}}]},
                    "jobs": {"type": "array", "description": "Calls still to make: creating the GitHub deployment and sending the job (`dispatch`), mirroring a status (`mirror`); a failed try waits until `nextAttemptAt` (never before GitHub's `Retry-After`).",
                        "items": {"type": "object", "additionalProperties": false,
                            "required": ["type", "deployment", "tries", "nextAttemptAt"],
                            "properties": {"type": {"enum": ["dispatch", "mirror"]},
                                "deployment": {"type": "integer", "minimum": 1},
                                "tries": {"type": "integer", "minimum": 0, "description": "Failed tries so far."},
                                "nextAttemptAt": {"type": "string", "format": "date-time"}}}}
                }
            }),
        ),
        (
            "DeployCredentials",
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["token", "expiresAt", "repositories", "permissions"],
                "properties": {
                    "token": {"type": "string", "description": "An installation token: this repository, contents: read."},
                    "expiresAt": {"type": "string", "format": "date-time"},
                    "repositories": {"type": "array", "items": {"type": "string"}},
                    "permissions": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            }),
        ),
        (
            "DeploymentStatusReport",
            json!({
                "type": "object", "additionalProperties": false, "required": ["state"],
                "properties": {"state": {"enum": ["in_progress", "success", "failure", "error"]}}
            }),
        ),
        (
            "DeploymentStatusAnswer",
            json!({
                "type": "object", "additionalProperties": false, "required": ["deployment"],
                "properties": {"deployment": {"$ref": "#/components/schemas/Deployment"}}
            }),
        ),
    ]
}

pub(crate) fn paths() -> Vec<(&'static str, Value)> {
    let signature = json!({"name": "X-Ghplane-Signature-256", "in": "header", "required": true,
        "schema": {"type": "string"},
        "description": "`sha256=` + hex HMAC-SHA256, with the project's hook secret, of `<X-Ghplane-Timestamp>.<deployment_id>.<raw body>` (docs/deploy-signing.md)."});
    let timestamp = json!({"name": "X-Ghplane-Timestamp", "in": "header", "required": true,
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
        "description": "Unix seconds when the report was signed; refused when more than 5 minutes from ghplane's clock."});
    vec![
        (
            "/projects/{slug}/source",
            json!({
                "parameters": [slug_param()],
                "put": admin_op("putProjectSource", "Link the project to a branch of a repository (by id, through an installation)",
                    Some("ProjectSourceInput"), github_errors(json!({
                        "200": json_response("Source replaced (the hook secret is kept, not shown)", "ProjectSource"),
                        "201": json_response("Source linked; `hookSecret` is shown this once", "ProjectSource"),
                        "400": error_response("Malformed JSON, invalid field or invalid slug"),
                        "403": error_response("The installation is suspended (`installation_suspended`)"),
                        "404": error_response("No such project (`project_not_found`); nothing stored"),
                        "413": error_response("Body over 64 KiB"),
                        "415": error_response("Body is not application/json"),
                        "422": error_response("The installation is unknown (`source_installation_unknown`) or its token does not reach the repository (`source_repo_unreachable`); nothing stored")
                    }))),
                "get": admin_op("getProjectSource", "The project's GitHub source", None, json!({
                    "200": json_response("The source", "ProjectSource"),
                    "400": error_response("Invalid slug"),
                    "404": error_response("No such project (`project_not_found`) or no source linked (`source_not_linked`)")
                })),
                "delete": admin_op("deleteProjectSource", "Unlink the project (and drop its hook secret)", None, json!({
                    "204": {"description": "Unlinked"},
                    "400": error_response("Invalid slug"),
                    "404": error_response("No such project (`project_not_found`) or no source linked (`source_not_linked`)")
                }))
            }),
        ),
        (
            "/projects/{slug}/deployments",
            json!({
                "parameters": [slug_param()],
                "get": admin_op("listProjectDeployments", "The project's deployments, newest first", None, json!({
                    "200": json_response("Deployments", "DeploymentList"),
                    "400": error_response("Invalid slug"),
                    "404": error_response("No such project (`project_not_found`)")
                }))
            }),
        ),
        (
            "/api/deployments/{deployment_id}/credentials",
            json!({
                "parameters": [deployment_param()],
                "post": {
                    "operationId": "redeemDeployCredentials",
                    "summary": "Trade the job's single-use ticket (`Authorization: Bearer ghpdt_…`) for a read-only token of the repository",
                    "security": [],
                    "responses": github_errors(json!({
                        "200": json_response("A token for this repository only, contents: read", "DeployCredentials"),
                        "400": error_response("Invalid deployment id"),
                        "401": error_response("No ticket presented (`unauthorized`)"),
                        "403": error_response("The ticket belongs to another deployment (`ticket_wrong_deployment`), or the installation is suspended"),
                        "404": error_response("Unknown ticket (`ticket_unknown`) or no source (`source_not_linked`)"),
                        "409": error_response("Already redeemed (`ticket_already_redeemed`)"),
                        "410": error_response("Expired (`ticket_expired`)"),
                        "500": error_response("Server error (no internals)")
                    }))
                }
            }),
        ),
        (
            "/api/deployments/{deployment_id}/status",
            json!({
                "parameters": [deployment_param()],
                "post": {
                    "operationId": "reportDeploymentStatus",
                    "summary": "The deployer's report; mirrored to GitHub, a final state frees the project's lock",
                    "security": [],
                    "parameters": [signature, timestamp],
                    "requestBody": json_body("DeploymentStatusReport"),
                    "responses": {
                        "200": json_response("Recorded (a repeated report changes nothing)", "DeploymentStatusAnswer"),
                        "400": error_response("Invalid deployment id or body"),
                        "401": error_response("Bad or missing signature or timestamp, or signed for another deployment (`invalid_signature`); timestamp more than 5 minutes off (`report_expired`). Nothing changes."),
                        "404": error_response("No such deployment (`deployment_not_found`) or no source (`source_not_linked`)"),
                        "409": error_response("The deployment already ended (`deployment_not_running`)"),
                        "413": error_response("Body over 64 KiB"),
                        "415": error_response("Body is not application/json"),
                        "500": error_response("Server error (no internals)")
                    }
                }
            }),
        ),
    ]
}
