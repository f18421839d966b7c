//! OpenAPI path of the tenant listing (`GET /api/installations`).

use serde_json::{json, Value};

use super::{admin_op, error_response, json_response};

pub(crate) fn paths() -> Vec<(&'static str, Value)> {
    let mut list = admin_op(
        "listInstallations",
        "Every tenant (installation), in installation-id order, a page at a time; never a secret",
        None,
        json!({
            "200": json_response("A page of tenants", "InstallationList"),
            "400": error_response("Invalid limit, cursor or query parameter (`validation_failed`)")
        }),
    );
    list["parameters"] = json!([
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"},
            "description": "`nextCursor` of the previous page."}
    ]);
    vec![("/api/installations", json!({ "get": list }))]
}

pub(crate) fn schemas() -> Vec<(&'static str, Value)> {
    vec![(
        "InstallationList",
        json!({
            "type": "object", "additionalProperties": false, "required": ["installations", "nextCursor"],
            "properties": {
                "installations": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                    "required": ["id", "appId", "account", "status", "repositoryCount", "createdAt", "updatedAt"],
                    "properties": {
                        "id": {"type": "integer", "minimum": 1, "description": "The installation id."},
                        "appId": {"type": "integer", "minimum": 1},
                        "account": {"oneOf": [{"$ref": "#/components/schemas/Account"}, {"type": "null"}],
                            "description": "Null for a tenant an admin created without one."},
                        "status": {"enum": ["active", "suspended"]},
                        "repositoryCount": {"type": "integer", "minimum": 0,
                            "description": "Repositories in the tenant's config."},
                        "createdAt": {"type": "string", "format": "date-time"},
                        "updatedAt": {"type": "string", "format": "date-time"}
                    }}},
                "nextCursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last."}
            }
        }),
    )]
}
