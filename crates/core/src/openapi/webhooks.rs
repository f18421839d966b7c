//! OpenAPI paths of webhook ingest and the delivery log.

use serde_json::{json, Value};

use super::{admin_op, app_id_param, error_response, installation_id_param, json_response};

fn page_params() -> Value {
    json!([
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"},
            "description": "`nextCursor` of the previous page."}
    ])
}

pub(crate) fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "WebhookAnswer",
            json!({
                "type": "object", "additionalProperties": false, "required": ["status", "delivery"],
                "properties": {
                    "status": {"enum": ["accepted", "ignored", "throttled", "duplicate"]},
                    "delivery": {"type": "string"},
                    "reason": {"type": "string", "description": "Why nothing (or not everything) was done."}
                }
            }),
        ),
        (
            "DeliveryList",
            json!({
                "type": "object", "additionalProperties": false, "required": ["deliveries", "nextCursor"],
                "properties": {
                    "deliveries": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                        "required": ["id", "receivedAt", "event", "action", "repository", "outcome", "status", "errorCode",
                            "reason", "durationMs", "attempts"],
                        "properties": {
                            "id": {"type": "string"}, "receivedAt": {"type": "string", "format": "date-time"},
                            "event": {"type": "string"}, "action": {"type": ["string", "null"]},
                            "repository": {"type": ["string", "null"]},
                            "outcome": {"enum": ["processing", "accepted", "ignored", "throttled", "failed"]},
                            "status": {"type": "integer"}, "errorCode": {"type": ["string", "null"]},
                            "reason": {"type": ["string", "null"]}, "durationMs": {"type": ["integer", "null"]},
                            "attempts": {"type": "integer", "minimum": 1}
                        }}},
                    "nextCursor": {"type": ["string", "null"]}
                }
            }),
        ),
        (
            "SweepReport",
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["appId", "pages", "listed", "failed", "processed", "alreadyRequested", "requested",
                    "requestErrors", "truncated"],
                "properties": {
                    "appId": {"type": "integer", "minimum": 1},
                    "pages": {"type": "integer", "minimum": 0, "description": "Pages of GitHub's delivery list read."},
                    "listed": {"type": "integer", "minimum": 0, "description": "Deliveries listed."},
                    "failed": {"type": "integer", "minimum": 0, "description": "Distinct deliveries GitHub marks failed, inside its redelivery window."},
                    "processed": {"type": "integer", "minimum": 0, "description": "Of those, already processed by ghplane."},
                    "alreadyRequested": {"type": "integer", "minimum": 0, "description": "Of those, asked for by an earlier sweep."},
                    "requested": {"type": "integer", "minimum": 0, "description": "Redeliveries asked for now."},
                    "requestErrors": {"type": "integer", "minimum": 0, "description": "Asks that failed (retried by the next sweep)."},
                    "truncated": {"type": "boolean", "description": "A bound (pages, time, requests) stopped the sweep early."},
                    "error": {"type": "string", "description": "Why the listing stopped early (a `github_*` code)."}
                }
            }),
        ),
        (
            "WorkItemList",
            json!({
                "type": "object", "additionalProperties": false, "required": ["workItems"],
                "properties": {"workItems": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                    "required": ["key", "issueId", "number", "repository", "title", "label", "delivery", "state", "createdAt"],
                    "properties": {
                        "key": {"type": "string", "description": "install-<installation id>-issue-<issue id>"},
                        "issueId": {"type": "integer"}, "number": {"type": "integer"}, "repository": {"type": "string"},
                        "title": {"type": ["string", "null"]}, "label": {"type": ["string", "null"]},
                        "delivery": {"type": "string"}, "state": {"enum": ["queued", "throttled"]},
                        "createdAt": {"type": "string", "format": "date-time"}
                    }}}}
            }),
        ),
    ]
}

pub(crate) fn paths() -> Vec<(&'static str, Value)> {
    let header = |name: &str, required: bool, description: &str| json!({"name": name, "in": "header", "required": required, "schema": {"type": "string"}, "description": description});
    vec![
        (
            "/webhooks/github",
            json!({
                "post": {
                    "operationId": "githubWebhook",
                    "summary": "GitHub App webhook deliveries (verified, deduplicated, audited)",
                    "security": [],
                    "parameters": [
                        header("X-Hub-Signature-256", true, "`sha256=` + HMAC-SHA256 of the raw body, hex."),
                        header("X-GitHub-Event", true, "Event name."),
                        header("X-GitHub-Delivery", true, "Delivery id; a redelivery reuses it."),
                        header("X-GitHub-Hook-Installation-Target-ID", true, "The app id."),
                        header("X-GitHub-Hook-Installation-Target-Type", false, "`integration`.")
                    ],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "200": json_response("Duplicate delivery: nothing done again", "WebhookAnswer"),
                        "202": json_response("Accepted, ignored or throttled", "WebhookAnswer"),
                        "400": error_response("Missing headers or malformed payload"),
                        "401": error_response("Unknown app or bad signature"),
                        "403": error_response("The installation belongs to another app"),
                        "409": error_response("The installation was uninstalled by its installer (`installer_uninstalled`)"),
                        "413": error_response("Over 25 MB"),
                        "415": error_response("Not application/json"),
                        "500": error_response("Handling failed; a redelivery is processed"),
                        "503": error_response("Handling waits on GitHub's rate limit (`github_rate_limited`, with `Retry-After`) or a busy object (`service_unavailable`); a redelivery is processed")
                    }
                }
            }),
        ),
        (
            "/api/installations/{installation_id}/deliveries",
            json!({
                "parameters": [installation_id_param()],
                "get": {
                    "parameters": page_params(),
                    "operationId": "listDeliveries", "summary": "The installation's delivery log, newest first",
                    "security": [{"adminToken": []}],
                    "responses": admin_op("x", "x", None, json!({
                        "200": json_response("Deliveries", "DeliveryList"),
                        "400": error_response("Invalid id or query")}))["responses"]
                }
            }),
        ),
        (
            "/api/apps/{app_id}/deliveries",
            json!({
                "parameters": [app_id_param()],
                "get": {
                    "parameters": page_params(),
                    "operationId": "listAppDeliveries", "summary": "Deliveries that named no installation, newest first",
                    "security": [{"adminToken": []}],
                    "responses": admin_op("x", "x", None, json!({
                        "200": json_response("Deliveries", "DeliveryList"),
                        "400": error_response("Invalid id or query")}))["responses"]
                }
            }),
        ),
        (
            "/api/apps/{app_id}/redeliveries",
            json!({
                "parameters": [app_id_param()],
                "post": admin_op("sweepRedeliveries",
                    "Runs the redelivery sweep of this app now: GitHub's failed deliveries that ghplane never processed are redelivered, once each",
                    None,
                    super::github_errors(json!({
                        "200": json_response("What the sweep did", "SweepReport"),
                        "400": error_response("Invalid id"),
                        "404": error_response("The app is not registered (`app_not_found`)"),
                        "503": error_response("GitHub rate limit (`github_rate_limited`) or a busy object (`service_unavailable`)")})))
            }),
        ),
        (
            "/api/installations/{installation_id}/work",
            json!({
                "parameters": [installation_id_param()],
                "get": admin_op("listWorkItems", "Work items handed over from issues", None, json!({
                    "200": json_response("Work items", "WorkItemList"), "400": error_response("Invalid id")}))
            }),
        ),
    ]
}
