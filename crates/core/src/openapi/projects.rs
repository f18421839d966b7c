//! OpenAPI paths and schemas of the project routes: projects, their approval, their GitHub
//! repository, and the org's repositories.

use serde_json::{json, Value};

use super::{admin_op, error_response, github_errors, json_response};

fn slug_param() -> Value {
    json!({"name": "slug", "in": "path", "required": true,
        "description": "The project's slug: lowercase letters, digits and single dashes, 1–64 characters.",
        "schema": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"}})
}

fn body_errors(mut responses: Value) -> Value {
    responses["413"] = error_response("Body over 64 KiB");
    responses["415"] = error_response("Body is not application/json");
    responses
}

/// The project routes.
pub(crate) fn paths() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/projects",
            json!({
                "post": admin_op("createProject", "Create a project (a draft; its slug is derived from the name)",
                    Some("ProjectInput"), body_errors(json!({
                        "201": json_response("Created", "Project"),
                        "400": error_response("Malformed JSON or invalid field")}))),
                "get": admin_op("listProjects", "List projects, newest first", None, json!({
                    "200": json_response("Projects", "ProjectList")}))
            }),
        ),
        (
            "/projects/{slug}",
            json!({
                "parameters": [slug_param()],
                "get": admin_op("getProject", "Read a project with its history", None, json!({
                    "200": json_response("The project", "Project"), "400": error_response("Invalid slug"),
                    "404": error_response("No such project (`project_not_found`)")})),
                "patch": admin_op("patchProject", "Rename, describe, or move the spec status one step forward",
                    Some("ProjectPatch"), body_errors(json!({
                        "200": json_response("Updated", "Project"),
                        "400": error_response("Malformed JSON, invalid field or invalid slug"),
                        "404": error_response("No such project (`project_not_found`)"),
                        "409": error_response("A status move the spec cannot make (`illegal_status_transition`); nothing changed")})))
            }),
        ),
        (
            "/projects/{slug}/approve",
            json!({
                "parameters": [slug_param()],
                "post": admin_op("approveProject",
                    "Approve the spec (status review) and create the project's private repository in GITHUB_ORG unless one is set",
                    None, json!({
                        "200": json_response("Approved; `repo` says what happened to the repository (a failure never undoes the approval)", "ApproveResult"),
                        "400": error_response("Invalid slug"),
                        "404": error_response("No such project (`project_not_found`)"),
                        "409": error_response("The spec is still a draft (`illegal_status_transition`)")}))
            }),
        ),
        (
            "/projects/{slug}/github-repo",
            json!({
                "parameters": [slug_param()],
                "put": admin_op("putProjectGithubRepo",
                    "Choose the project's repository by hand (checked on GitHub); replaces any repository, now and later",
                    Some("GithubRepoInput"), github_errors(body_errors(json!({
                        "200": json_response("Stored with origin `manual`", "Project"),
                        "400": error_response("Malformed JSON, invalid fullName or invalid slug"),
                        "403": error_response("The org installation is suspended"),
                        "404": error_response("No such project (`project_not_found`)"),
                        "422": error_response("GitHub shows no such repository to the org credentials (`github_repo_not_found`); nothing stored")}))))
            }),
        ),
        (
            "/github/repos",
            json!({
                "get": admin_op("listGithubRepos", "The repositories the org credentials reach (every page)", None,
                    github_errors(json!({
                        "200": json_response("Repositories", "GithubRepoList"),
                        "403": error_response("The org installation is suspended")})))
            }),
        ),
    ]
}

/// The schemas the project routes use.
pub(crate) fn schemas() -> Vec<(&'static str, Value)> {
    let status = json!({"enum": ["draft", "interviewing", "review"]});
    let time = json!({"type": "string", "format": "date-time"});
    let nullable_time = json!({"type": ["string", "null"], "format": "date-time"});
    let summary_props = json!({
        "slug": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "status": status,
        "githubRepo": {"oneOf": [{"$ref": "#/components/schemas/GithubRepo"}, {"type": "null"}]},
        "githubRepoOrigin": {"enum": ["auto", "manual", null],
            "description": "`auto`: created on approval; `manual`: chosen by an admin and never replaced automatically."},
        "createdAt": time, "updatedAt": time, "approvedAt": nullable_time
    });
    let summary_required = json!([
        "slug",
        "name",
        "description",
        "status",
        "githubRepo",
        "githubRepoOrigin",
        "createdAt",
        "updatedAt",
        "approvedAt"
    ]);
    let mut project_props = summary_props.clone();
    project_props["autoCreate"] = json!({
        "description": "A repository creation in flight: approvals meanwhile create nothing.",
        "oneOf": [{"type": "null"}, {"type": "object", "additionalProperties": false,
            "required": ["attemptId", "startedAt"],
            "properties": {"attemptId": {"type": "string"}, "startedAt": time}}]});
    project_props["history"] =
        json!({"type": "array", "items": {"$ref": "#/components/schemas/ProjectHistoryEntry"}});
    let mut project_required = summary_required.clone();
    if let Some(list) = project_required.as_array_mut() {
        list.push(json!("autoCreate"));
        list.push(json!("history"));
    }
    let repo_codes = json!([
        "GITHUB_REPO_NAME_TAKEN",
        "GITHUB_UNAUTHORIZED",
        "GITHUB_FORBIDDEN",
        "GITHUB_UNAVAILABLE",
        "GITHUB_RATE_LIMITED",
        "GITHUB_ORG_NOT_FOUND",
        "GITHUB_REPO_REJECTED",
        "GITHUB_ORG_NOT_CONFIGURED"
    ]);
    vec![
        (
            "GithubRepo",
            json!({"type": "object", "additionalProperties": false,
                "required": ["fullName", "defaultBranch", "private"],
                "properties": {"fullName": {"type": "string"}, "defaultBranch": {"type": "string"},
                    "private": {"type": "boolean"}}}),
        ),
        (
            "ProjectHistoryEntry",
            json!({"type": "object", "additionalProperties": false, "required": ["at", "event"],
                "properties": {
                    "at": time,
                    "event": {"enum": ["status_changed", "approved", "repo_created", "repo_create_failed",
                        "manual_override", "repo_created_but_overridden", "auto_create_taken_over"],
                        "description": "`repo_created_but_overridden`: a repository ghplane created that lost to one set meanwhile; it exists on GitHub, unused."},
                    "from": status, "to": status,
                    "fullName": {"type": "string"}, "attemptId": {"type": "string"},
                    "code": {"enum": repo_codes},
                    "previous": {"type": ["string", "null"]}, "kept": {"type": "string"},
                    "staleAttemptId": {"type": "string"}}}),
        ),
        (
            "Project",
            json!({"type": "object", "additionalProperties": false, "required": project_required,
                "properties": project_props}),
        ),
        (
            "ProjectSummary",
            json!({"type": "object", "additionalProperties": false, "required": summary_required,
                "properties": summary_props}),
        ),
        (
            "ProjectList",
            json!({"type": "object", "additionalProperties": false, "required": ["projects"],
                "properties": {"projects": {"type": "array", "items": {"$ref": "#/components/schemas/ProjectSummary"}}}}),
        ),
        (
            "ProjectInput",
            json!({"type": "object", "additionalProperties": false, "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "description": {"type": ["string", "null"], "maxLength": 500}}}),
        ),
        (
            "ProjectPatch",
            json!({"type": "object", "additionalProperties": false,
                "description": "Absent keeps a field; `description: null` clears it. Status moves one step forward only: draft → interviewing → review.",
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "description": {"type": ["string", "null"], "maxLength": 500}, "status": status}}),
        ),
        (
            "GithubRepoInput",
            json!({"type": "object", "additionalProperties": false, "required": ["fullName"],
                "properties": {"fullName": {"type": "string", "description": "owner/name"}}}),
        ),
        (
            "RepoReport",
            json!({"type": "object", "additionalProperties": false, "required": ["status"],
                "properties": {
                    "status": {"enum": ["created", "skipped", "failed"]},
                    "reason": {"enum": ["manual", "already_set", "in_flight"],
                        "description": "Why nothing was created (skipped)."},
                    "fullName": {"type": "string", "description": "The project's repository."},
                    "unusedRepo": {"type": "string",
                        "description": "Created by this approval but a repository was set meanwhile; recorded in the history."},
                    "code": {"enum": repo_codes}, "message": {"type": "string"}}}),
        ),
        (
            "ApproveResult",
            json!({"type": "object", "additionalProperties": false, "required": ["project", "repo"],
                "properties": {"project": {"$ref": "#/components/schemas/Project"},
                    "repo": {"$ref": "#/components/schemas/RepoReport"}}}),
        ),
        (
            "GithubRepoList",
            json!({"type": "object", "additionalProperties": false, "required": ["org", "repositories", "incomplete"],
                "properties": {
                    "org": {"type": "string"},
                    "repositories": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                        "required": ["id", "nodeId", "fullName", "defaultBranch", "private", "archived"],
                        "properties": {"id": {"type": "integer"}, "nodeId": {"type": ["string", "null"]},
                            "fullName": {"type": "string"}, "defaultBranch": {"type": "string"},
                            "private": {"type": "boolean"}, "archived": {"type": "boolean"}}}},
                    "incomplete": {"type": "boolean", "description": "True when the page cap stopped the listing."}}}),
        ),
    ]
}
