//! OpenAPI paths of the token mint: fullsend's protocol (`/v1/token`, `/`, `/health`,
//! `/v1/status`) and ghplane's audit trail of it.

use serde_json::{json, Value};

use super::{admin_op, error_response, json_response};

/// Every mint answer, errors included, carries `Cache-Control: no-store`.
fn no_store() -> Value {
    json!({"Cache-Control": {"description": "Always `no-store`.", "schema": {"const": "no-store"}}})
}

fn with_no_store(mut response: Value) -> Value {
    response["headers"] = no_store();
    response
}

fn mint_error(description: &str) -> Value {
    with_no_store(error_response(description))
}

fn token_op(operation_id: &str, summary: &str) -> Value {
    json!({
        "operationId": operation_id,
        "summary": summary,
        "description": "fullsend's mint protocol. `Authorization: Bearer <GitHub Actions OIDC token>` \
            (prefix case-sensitive). Checks in order: rate limit, configuration, bearer, body, \
            OIDC verification, policy, repos scope, GitHub. Error `message`s are fullsend's sentences.",
        "security": [],
        "parameters": [{"name": "Authorization", "in": "header", "required": true,
            "schema": {"type": "string", "pattern": "^Bearer "}}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MintTokenRequest"}}}},
        "responses": {
            "200": with_no_store(json_response("A role-scoped installation token", "MintToken")),
            "400": mint_error("Invalid body (`invalid_json`, `role_required`, `invalid_role`, `repos_required`, `too_many_repos`, `invalid_repo_name`, `invalid_target_org`)"),
            "401": mint_error("No bearer (`missing_bearer`) or the token or caller failed verification (`authentication_failed`, never saying which check)"),
            "403": mint_error("Role or repos scope not allowed (`role_not_allowed`, `same_org_requires_repos`, `per_repo_scope`, `per_org_scope`, `foreign_*`), or no key for the role (`pem_unavailable`, `app_not_configured`)"),
            "413": mint_error("Body over 64 KiB (`payload_too_large`)"),
            "422": mint_error("A repository is not covered by the App's installation (`repo_not_covered`) or by a different one (`installation_mismatch`)"),
            "429": mint_error("Rate limited (`rate_limited`)"),
            "500": mint_error("The mint's configuration failed its start-up check (`init_failed`) or an internal failure"),
            "502": mint_error("GitHub failed or refused (`github_failure`, message `mint failed`)")
        }
    })
}

pub(crate) fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "MintTokenRequest",
            json!({
                "type": "object",
                "required": ["role", "repos"],
                "properties": {
                    "role": {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"},
                    "repos": {"type": "array", "minItems": 1, "maxItems": 500,
                        "items": {"type": "string", "pattern": "^[a-zA-Z0-9_.][a-zA-Z0-9._-]{0,99}$"},
                        "description": "Bare repository names of the org; exactly `[\"*\"]` for the whole installation."},
                    "target_org": {"type": "string", "description": "Another org, authorized by its FULLSEND_FOREIGN_<ROLE>_REPOS variables."}
                },
                "description": "Unknown fields are ignored."
            }),
        ),
        (
            "MintToken",
            json!({
                "type": "object", "additionalProperties": false, "required": ["token", "expires_at"],
                "properties": {
                    "token": {"type": "string"},
                    "expires_at": {"type": "string"},
                    "granted_repos": {"type": "array", "items": {"type": "string"}, "description": "`owner/name` as GitHub granted them."},
                    "granted_permissions": {"type": "object", "additionalProperties": {"type": "string"}},
                    "repository_selection": {"enum": ["all", "selected"]}
                }
            }),
        ),
        (
            "MintHealth",
            json!({
                "type": "object", "additionalProperties": false, "required": ["status"],
                "properties": {"status": {"const": "ok"}, "version": {"type": "string"}, "commit": {"type": "string"}}
            }),
        ),
        (
            "MintUnhealthy",
            json!({
                "type": "object", "additionalProperties": false, "required": ["status", "reason"],
                "properties": {"status": {"const": "unhealthy"}, "reason": {"type": "string"}}
            }),
        ),
        (
            "MintStatus",
            json!({
                "type": "object", "additionalProperties": false, "required": ["roles"],
                "properties": {
                    "org": {"type": "string", "description": "The caller's org, lowercased."},
                    "roles": {"type": ["array", "null"], "items": {"type": "string"}},
                    "workflow_host_repos": {"type": "array", "items": {"type": "string"}},
                    "version": {"type": "string"},
                    "commit": {"type": "string"}
                }
            }),
        ),
        (
            "MintAuditPage",
            json!({
                "type": "object", "additionalProperties": false, "required": ["records", "nextCursor"],
                "properties": {
                    "records": {"type": "array", "items": {"$ref": "#/components/schemas/MintAuditRecord"}},
                    "nextCursor": {"type": ["string", "null"]}
                }
            }),
        ),
        (
            "MintAuditRecord",
            json!({
                "type": "object",
                "required": ["id", "at", "outcome", "status", "reason_code"],
                "description": "One mint decision. Never holds a token, an OIDC token or a key.",
                "properties": {
                    "id": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                    "at_ms": {"type": "integer"},
                    "outcome": {"enum": ["granted", "denied"]},
                    "status": {"type": "integer"},
                    "reason_code": {"type": ["string", "null"]},
                    "reason_detail": {"type": ["string", "null"]},
                    "repository": {"type": ["string", "null"]},
                    "repository_owner": {"type": ["string", "null"]},
                    "job_workflow_ref": {"type": ["string", "null"]},
                    "workflow_ref": {"type": ["string", "null"]},
                    "run_id": {"type": ["string", "null"]},
                    "run_attempt": {"type": ["string", "null"]},
                    "actor": {"type": ["string", "null"]},
                    "jti": {"type": ["string", "null"]},
                    "event_name": {"type": ["string", "null"]},
                    "ref": {"type": ["string", "null"]},
                    "sha": {"type": ["string", "null"]},
                    "caller_mode": {"enum": ["per_org", "per_repo", "dual_enrolled", null]},
                    "role": {"type": ["string", "null"]},
                    "target_org": {"type": ["string", "null"]},
                    "repos_requested": {"type": ["array", "null"], "items": {"type": "string"}},
                    "app_id": {"type": ["string", "null"]},
                    "installation_id": {"type": ["integer", "null"]},
                    "repos_granted": {"type": ["array", "null"], "items": {"type": "string"}},
                    "permissions_granted": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
                    "repository_selection": {"type": ["string", "null"]},
                    "expires_at": {"type": ["string", "null"]},
                    "truncated": {"type": "boolean", "description": "The record was cut to 16 KiB: lists keep their first 20 names."},
                    "repos_requested_count": {"type": "integer"},
                    "repos_granted_count": {"type": "integer"}
                }
            }),
        ),
    ]
}

pub(crate) fn paths() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/v1/token",
            json!({"post": token_op("mintToken", "Trade a GitHub Actions OIDC token for a role-scoped installation token")}),
        ),
        (
            "/",
            json!({"post": token_op("mintTokenAlias", "Alias of POST /v1/token (fullsend's)")}),
        ),
        (
            "/health",
            json!({"get": {
                "operationId": "mintHealth",
                "summary": "The mint's health as fullsend reports it (`fullsend mint status` reads it)",
                "security": [],
                "responses": {
                    "200": json_response("The mint's configuration passed its start-up check", "MintHealth"),
                    "503": json_response("The configuration failed its check; `reason` says why", "MintUnhealthy")
                }
            }}),
        ),
        (
            "/v1/status",
            json!({"get": {
                "operationId": "mintStatus",
                "summary": "The mint's configuration as a verified caller sees it",
                "security": [],
                "parameters": [{"name": "Authorization", "in": "header", "required": true,
                    "schema": {"type": "string"}, "description": "`Bearer <GitHub Actions OIDC token>`"}],
                "responses": {
                    "200": with_no_store(json_response("Roles, workflow host repos, version", "MintStatus")),
                    "401": mint_error("Not a verified, enrolled caller (`authentication_failed`)"),
                    "429": mint_error("Rate limited (`rate_limited`)"),
                    "500": mint_error("The mint's configuration failed its start-up check (`init_failed`)")
                }
            }}),
        ),
        ("/api/mint/audit", json!({"get": audit_op()})),
        ("/api/mint/audit/stats", json!({"get": audit_stats_op()})),
        ("/api/admin/reseal", json!({"post": reseal_op()})),
    ]
}

fn audit_stats_op() -> Value {
    let mut op = admin_op(
        "mintAuditStats",
        "The audit's size against its budget, rows the budget dropped, and requests refused before their OIDC token verified (counted per reason and minute, never stored)",
        None,
        json!({
            "200": {"description": "Stats", "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": false, "required": ["records", "dropped", "unauthenticated"],
                "properties": {
                    "records": {"type": "object", "additionalProperties": false,
                        "required": ["rows", "bytes", "maxRows", "maxBytes", "maxRecordBytes"],
                        "properties": {"rows": {"type": "integer"}, "bytes": {"type": "integer"},
                            "maxRows": {"type": "integer"}, "maxBytes": {"type": "integer"}, "maxRecordBytes": {"type": "integer"}}},
                    "dropped": {"type": "object", "additionalProperties": false, "required": ["rows", "lastAt"],
                        "properties": {"rows": {"type": "integer"}, "lastAt": {"type": ["string", "null"], "format": "date-time"}}},
                    "unauthenticated": {"type": "object", "additionalProperties": false,
                        "required": ["since", "total", "byReason", "perMinute"],
                        "properties": {
                            "since": {"type": "string", "format": "date-time"},
                            "total": {"type": "integer"},
                            "byReason": {"type": "object", "additionalProperties": {"type": "integer"}},
                            "perMinute": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                                "required": ["minute", "reason", "count"],
                                "properties": {"minute": {"type": "string", "format": "date-time"},
                                    "reason": {"type": "string"}, "count": {"type": "integer"}}}}}}
                }}}}},
            "400": error_response("Invalid `since` (`validation_failed`)")
        }),
    );
    op["parameters"] = json!([
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Count from this minute on (default: the last hour; counters are kept 7 days)."}
    ]);
    op
}

fn reseal_op() -> Value {
    let mut op = admin_op(
        "reseal",
        "Seal every stored secret again under the current ENCRYPTION_KEY, a batch of objects per call (idempotent; call with nextCursor until done)",
        None,
        json!({
            "200": {"description": "What this batch did", "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": false,
                "required": ["keyId", "objects", "resealed", "alreadyCurrent", "couldNotOpen", "unopenable", "failedObjects", "enrolledOnUse", "nextCursor", "done"],
                "properties": {
                    "keyId": {"type": "string", "description": "Id of the current key (first 8 hex digits of its SHA-256)."},
                    "objects": {"type": "integer"},
                    "resealed": {"type": "integer"},
                    "alreadyCurrent": {"type": "integer"},
                    "couldNotOpen": {"type": "integer"},
                    "unopenable": {"type": "array", "items": {"type": "string"}, "description": "`object/slot` of each value no configured key opens."},
                    "failedObjects": {"type": "array", "items": {"type": "object"}},
                    "enrolledOnUse": {"type": "array", "items": {"type": "string", "enum": ["installation", "user"]}, "description": "Kinds of objects an older version wrote that no index lists: each is found once it has served a request since the upgrade (a delivery, a mint, an admin read, a sign-in)."},
                    "nextCursor": {"type": ["string", "null"]},
                    "done": {"type": "boolean"}
                }}}}},
            "400": error_response("Invalid cursor or limit (`validation_failed`)"),
            "413": error_response("Body over 64 KiB"),
            "415": error_response("Body is not application/json")
        }),
    );
    op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": false,
        "properties": {"cursor": {"type": ["string", "null"]}, "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}}}}}});
    op
}

fn audit_op() -> Value {
    let mut op = admin_op(
        "listMintAudit",
        "Every mint decision, newest first",
        None,
        json!({
            "200": json_response("A page of records", "MintAuditPage"),
            "400": error_response("Invalid filter or cursor (`validation_failed`)")
        }),
    );
    op["parameters"] = json!([
        {"name": "repository", "in": "query", "schema": {"type": "string"}, "description": "`owner/name` of the calling workflow's repository."},
        {"name": "outcome", "in": "query", "schema": {"enum": ["granted", "denied"]}},
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "`nextCursor` of the previous page."}
    ]);
    op
}
