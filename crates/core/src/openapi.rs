//! The OpenAPI 3.1 description of every route in [`crate::routes::ROUTES`], served at
//! `/openapi.json`. A test fails when a route is missing here, and the end-to-end tests
//! validate the responses they receive against these schemas.

use serde_json::{json, Value};

use crate::error::ApiError;

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn json_body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// The standard failures of an admin route.
fn admin_errors(mut responses: Value) -> Value {
    let map = responses.as_object_mut().expect("responses object");
    map.insert("401".into(), error_response("Missing or wrong admin token"));
    map.insert("500".into(), error_response("Server error (no internals)"));
    responses
}

fn installation_id_param() -> Value {
    json!({"name": "installation_id", "in": "path", "required": true,
        "description": "GitHub App installation id (positive integer).",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,15}$"}})
}

fn schemas() -> Value {
    let secret_view = json!({
        "type": "object", "additionalProperties": false, "required": ["set"],
        "properties": {"set": {"type": "boolean"}, "fingerprint": {"type": "string"}}
    });
    let repository = json!({
        "type": "object", "additionalProperties": false, "required": ["fullName"],
        "properties": {"fullName": {"type": "string"}, "id": {"type": "integer", "minimum": 1}}
    });
    let account = json!({
        "type": "object", "additionalProperties": false, "required": ["login", "id", "type"],
        "properties": {"login": {"type": "string"}, "id": {"type": "integer"},
            "type": {"enum": ["User", "Organization", "Enterprise"]}}
    });
    let permissions = json!({
        "type": "object", "additionalProperties": false,
        "required": ["canProcessIssues", "canCreatePullRequests", "maxContainersPerHour"],
        "properties": {"canProcessIssues": {"type": "boolean"}, "canCreatePullRequests": {"type": "boolean"},
            "maxContainersPerHour": {"type": "integer", "minimum": 0, "maximum": 100000}}
    });
    let nullable_string = json!({"type": ["string", "null"], "minLength": 1, "maxLength": 128});
    let input_props = json!({
        "appId": {"type": "integer", "minimum": 1},
        "privateKey": {"type": ["string", "null"], "description": "PEM, PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8. Write-only."},
        "webhookSecret": {"type": ["string", "null"], "minLength": 1, "maxLength": 1024, "description": "Write-only."},
        "account": {"oneOf": [{"$ref": "#/components/schemas/Account"}, {"type": "null"}]},
        "tenantId": nullable_string, "userId": nullable_string,
        "repositories": {"type": "array", "items": {"oneOf": [
            {"type": "string", "description": "owner/name"}, {"$ref": "#/components/schemas/Repository"}]}},
        "permissions": {"type": "object", "additionalProperties": false, "properties": {
            "canProcessIssues": {"type": "boolean"}, "canCreatePullRequests": {"type": "boolean"},
            "maxContainersPerHour": {"type": "integer", "minimum": 0, "maximum": 100000}}}
    });
    json!({
        "Error": {
            "type": "object", "additionalProperties": false, "required": ["error"],
            "properties": {"error": {"type": "object", "additionalProperties": false, "required": ["code", "message"],
                "properties": {"code": {"enum": ApiError::ALL_CODES}, "message": {"type": "string"}}}}
        },
        "Health": {
            "type": "object", "additionalProperties": false, "required": ["status", "version", "environment"],
            "properties": {"status": {"const": "ok"}, "version": {"type": "string"}, "environment": {"type": "string"}}
        },
        "SecretView": secret_view,
        "Repository": repository,
        "Account": account,
        "Permissions": permissions,
        "InstallationConfig": {
            "type": "object", "additionalProperties": false,
            "required": ["installationId", "appId", "privateKey", "webhookSecret", "account", "tenantId", "userId",
                "repositories", "permissions", "suspended", "createdAt", "updatedAt"],
            "properties": {
                "installationId": {"type": "integer", "minimum": 1},
                "appId": {"type": "integer", "minimum": 1},
                "privateKey": {"$ref": "#/components/schemas/SecretView"},
                "webhookSecret": {"$ref": "#/components/schemas/SecretView"},
                "account": {"oneOf": [{"$ref": "#/components/schemas/Account"}, {"type": "null"}]},
                "tenantId": {"type": ["string", "null"]},
                "userId": {"type": ["string", "null"]},
                "repositories": {"type": "array", "items": {"$ref": "#/components/schemas/Repository"}},
                "permissions": {"$ref": "#/components/schemas/Permissions"},
                "suspended": {"type": "boolean"},
                "createdAt": {"type": "string", "format": "date-time"},
                "updatedAt": {"type": "string", "format": "date-time"}
            }
        },
        "InstallationConfigInput": {
            "type": "object", "additionalProperties": false, "required": ["appId"], "properties": input_props
        },
        "InstallationConfigPatch": {
            "type": "object", "additionalProperties": false, "properties": input_props,
            "description": "JSON merge patch: an absent field is kept, null clears an optional field."
        }
    })
}

pub fn document(version: &str) -> Value {
    let config_path = json!({
        "parameters": [installation_id_param()],
        "put": {
            "operationId": "putInstallationConfig", "summary": "Create or replace an installation's config",
            "security": [{"adminToken": []}],
            "requestBody": json_body("InstallationConfigInput"),
            "responses": admin_errors(json!({
                "200": json_response("Replaced", "InstallationConfig"),
                "201": json_response("Created", "InstallationConfig"),
                "400": error_response("Malformed JSON, invalid field or invalid id"),
                "413": error_response("Body over 64 KiB"),
                "415": error_response("Body is not application/json")
            }))
        },
        "get": {
            "operationId": "getInstallationConfig", "summary": "Read an installation's config (secrets redacted)",
            "security": [{"adminToken": []}],
            "responses": admin_errors(json!({
                "200": json_response("The config", "InstallationConfig"),
                "400": error_response("Invalid id"),
                "404": error_response("No config for this installation")
            }))
        },
        "patch": {
            "operationId": "patchInstallationConfig", "summary": "Change some fields of an installation's config",
            "security": [{"adminToken": []}],
            "requestBody": json_body("InstallationConfigPatch"),
            "responses": admin_errors(json!({
                "200": json_response("Updated", "InstallationConfig"),
                "400": error_response("Malformed JSON, invalid field or invalid id"),
                "404": error_response("No config for this installation"),
                "413": error_response("Body over 64 KiB"),
                "415": error_response("Body is not application/json")
            }))
        },
        "delete": {
            "operationId": "deleteInstallationConfig", "summary": "Delete an installation's config and secrets",
            "security": [{"adminToken": []}],
            "responses": admin_errors(json!({
                "204": {"description": "Deleted"},
                "400": error_response("Invalid id"),
                "404": error_response("No config for this installation")
            }))
        }
    });
    json!({
        "openapi": "3.1.0",
        "info": {"title": "ghplane", "version": version,
            "description": "GitHub App control plane for multi-tenant services. Every error is `{\"error\":{\"code\",\"message\"}}`."},
        "paths": {
            "/healthz": {"get": {"operationId": "healthz", "summary": "Liveness", "security": [],
                "responses": {"200": json_response("Up", "Health")}}},
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/api/installations/{installation_id}/config": config_path
        },
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                "description": "The ADMIN_TOKEN secret."}},
            "schemas": schemas(),
            "responses": {
                "NotFound": error_response("Unknown route (`route_not_found`)"),
                "MethodNotAllowed": error_response("Known path, other method (`method_not_allowed`); `Allow` lists the methods")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::ROUTES;

    #[test]
    fn every_route_is_described_and_nothing_else() {
        let doc = document("test");
        let paths = doc["paths"].as_object().unwrap();
        for r in ROUTES {
            let op = &paths
                .get(r.path)
                .unwrap_or_else(|| panic!("{} not described", r.path))
                [r.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} not described", r.method, r.path);
            assert!(op["responses"].is_object());
            let needs_admin = r.auth == crate::routes::Auth::Admin;
            assert_eq!(
                op["security"] == json!([{"adminToken": []}]),
                needs_admin,
                "{} {} security",
                r.method,
                r.path
            );
        }
        for (path, item) in paths {
            for (method, _) in item
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| *k != "parameters")
            {
                assert!(
                    ROUTES
                        .iter()
                        .any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
                    "{method} {path} described but not routed"
                );
            }
        }
    }

    #[test]
    fn refs_resolve() {
        let doc = document("test");
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling $ref {name}"
            );
        }
    }
}
