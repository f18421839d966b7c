//! OpenAPI of staff access: the security of every staff route (the admin token or a person's
//! session, with the role it needs as `x-ghplane-role`) and the admin audit route.

use serde_json::{json, Value};

use super::{error_response, json_response};
use crate::routes::{Auth, ROUTES};

/// What a staff route accepts: the `ADMIN_TOKEN`, or a person's session.
pub(crate) fn staff_security() -> Value {
    json!([{"adminToken": []}, {"sessionCookie": []}, {"sessionToken": []}])
}

/// Sets the security of every staff route from the route table.
pub(crate) fn apply(doc: &mut Value) {
    for r in ROUTES {
        let Auth::Staff { min } = r.auth else {
            continue;
        };
        let op = &mut doc["paths"][r.path][r.method.to_ascii_lowercase()];
        op["security"] = staff_security();
        op["x-ghplane-role"] = json!(min.as_str());
        op["responses"]["401"] =
            error_response("No admin token and no session (`unauthorized`, `session_invalid`)");
        op["responses"]["403"] = error_response(
            "Signed in without the role this route needs (`forbidden`); a cookie-authenticated write from another Origin",
        );
        if r.method != "GET" {
            op["responses"]["415"] = error_response("Not application/json");
        }
        op["responses"]["503"] = error_response(
            "GitHub did not answer the team membership check (`transient`), or the service is busy",
        );
    }
}

pub(crate) fn paths() -> Vec<(&'static str, Value)> {
    let q = |name: &str, description: &str| {
        json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"},
            "description": description})
    };
    vec![(
        "/api/audit",
        json!({"get": {
            "operationId": "listAdminAudit",
            "summary": "State-changing admin requests, newest first: who, what, the ids, the status",
            "parameters": [
                q("actor", "`token`, a GitHub login, or `id:<GitHub user id>`."),
                q("target", "The value of a path parameter (a slug, an id)."),
                q("since", "RFC 3339 UTC time."),
                q("cursor", "next_cursor of the previous page."),
                q("limit", "1 to 100 (default 50).")],
            "responses": {
                "200": json_response("A page of entries", "AdminAuditPage"),
                "400": error_response("A malformed filter or cursor"),
                "500": error_response("Server error (no internals)")}
        }}),
    )]
}

pub(crate) fn schemas() -> Vec<(&'static str, Value)> {
    vec![(
        "AdminAuditPage",
        json!({"type": "object", "required": ["entries", "next_cursor"], "properties": {
            "entries": {"type": "array", "items": {"type": "object",
                "required": ["id", "at", "actor", "method", "route", "targets", "status"],
                "properties": {
                    "id": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                    "actor": {"type": "object", "properties": {
                        "kind": {"enum": ["person", "token"]},
                        "login": {"type": ["string", "null"]},
                        "id": {"type": ["integer", "null"]}}},
                    "method": {"type": "string"},
                    "route": {"type": "string", "description": "The route template."},
                    "targets": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "The path parameters."},
                    "status": {"type": ["integer", "null"],
                        "description": "Null when the worker stopped before answering."},
                    "request_id": {"type": ["string", "null"]}}}},
            "next_cursor": {"type": ["string", "null"]}}}),
    )]
}
