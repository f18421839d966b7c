//! The OpenAPI 3.1 description of every route in [`crate::routes::ROUTES`], served at
//! `/openapi.json`. A test fails when a route is missing here, and the end-to-end tests
//! validate the responses they receive against these schemas.

use serde_json::{json, Value};

mod admin_access;
mod deploy;
mod identity;
mod installers;
mod mint;
mod projects;
mod staff;
mod tenants;
mod webhooks;

#[cfg(test)]
mod docs_tests;

pub(crate) fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

pub(crate) fn json_response(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

pub(crate) fn json_body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// The standard failures of an admin route.
pub(crate) fn admin_errors(mut responses: Value) -> Value {
    let map = responses.as_object_mut().expect("responses object");
    map.insert("401".into(), error_response("Missing or wrong admin token"));
    map.insert("500".into(), error_response("Server error (no internals)"));
    responses
}

pub(crate) fn installation_id_param() -> Value {
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
                "properties": {"code": {"enum": crate::error::all_codes()}, "message": {"type": "string"},
                    "retry_after": {"type": "integer", "minimum": 0, "description": "Seconds to wait before retrying, when GitHub said so (also the `Retry-After` header)."}}}}
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
                "repositories", "permissions", "suspended", "repositorySelection", "githubPermissions", "events",
                "createdAt", "updatedAt"],
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
                "repositorySelection": {"type": ["string", "null"], "enum": ["all", "selected", null]},
                "githubPermissions": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "The permissions GitHub granted the installation (from its webhooks)."},
                "events": {"type": "array", "items": {"type": "string"}},
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
        },
        "App": {
            "type": "object", "additionalProperties": false,
            "required": ["appId", "clientId", "slug", "owner", "htmlUrl", "mode", "repository", "privateKey",
                "webhookSecret", "clientSecret", "createdAt", "updatedAt"],
            "properties": {
                "appId": {"type": "integer", "minimum": 1},
                "clientId": {"type": ["string", "null"]}, "slug": {"type": ["string", "null"]},
                "owner": {"type": ["string", "null"]}, "htmlUrl": {"type": ["string", "null"]},
                "mode": {"enum": ["org", "repo"]},
                "repository": {"type": ["string", "null"], "description": "The one repository of a `repo`-mode app."},
                "privateKey": {"type": "object", "additionalProperties": false, "required": ["set", "fingerprint"],
                    "properties": {"set": {"const": true}, "fingerprint": {"type": ["string", "null"]}}},
                "webhookSecret": {"type": "object", "additionalProperties": false, "required": ["set"],
                    "properties": {"set": {"type": "boolean"},
                        "previousValidUntil": {"type": "string", "format": "date-time",
                            "description": "While rotating: until when the previous secret still verifies."}}},
                "clientSecret": {"$ref": "#/components/schemas/SecretView"},
                "createdAt": {"type": "string", "format": "date-time"},
                "updatedAt": {"type": "string", "format": "date-time"}
            }
        },
        "AppInput": {
            "type": "object", "additionalProperties": false, "required": ["privateKey"],
            "properties": {
                "clientId": {"type": "string"}, "slug": {"type": "string"}, "owner": {"type": "string"},
                "htmlUrl": {"type": "string", "format": "uri"},
                "privateKey": {"type": "string", "description": "PEM, PKCS#1 or PKCS#8, RSA ≥ 2048 bits. Write-only."},
                "webhookSecret": {"type": "string", "description": "Write-only."},
                "clientSecret": {"type": "string", "description": "Write-only."},
                "mode": {"enum": ["org", "repo"], "default": "org"},
                "repository": {"type": "string", "description": "owner/name; required for mode `repo`."}
            }
        },
        "RotateWebhookSecret": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "webhookSecret": {"type": "string", "description": "Omit to let ghplane generate one that only GitHub learns."},
                "updateGithub": {"type": "boolean", "default": true,
                    "description": "Send the new secret to GitHub (`PATCH /app/hook/config`) before switching."}
            }
        },
        "ServiceKeyCreated": {
            "type": "object", "additionalProperties": false, "required": ["id", "key", "createdAt"],
            "properties": {"id": {"type": "string"}, "key": {"type": "string", "description": "Shown once; only its hash is stored."},
                "createdAt": {"type": "string", "format": "date-time"}}
        },
        "ServiceKeyList": {
            "type": "object", "additionalProperties": false, "required": ["serviceKeys"],
            "properties": {"serviceKeys": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["id", "createdAt"], "properties": {"id": {"type": "string"}, "createdAt": {"type": "string"}}}}}
        },
        "TokenRequest": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "repositories": {"type": "array", "items": {"type": "string"},
                    "description": "Names (or owner/name) of the installation's repositories; omit for all."},
                "permissions": {"type": "object", "additionalProperties": {"enum": ["read", "write"]},
                    "description": "Required unless the installation may both process issues and create pull requests."}
            }
        },
        "InstallationToken": {
            "type": "object", "additionalProperties": false, "required": ["token", "expires_at", "repositories", "permissions"],
            "properties": {"token": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"},
                "repositories": {"type": "array", "items": {"type": "string"}},
                "permissions": {"type": "object", "additionalProperties": {"type": "string"}}}
        },
        "RepositoryList": {
            "type": "object", "additionalProperties": false, "required": ["repositories", "totalCount", "incomplete"],
            "properties": {
                "repositories": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                    "required": ["id", "fullName", "private"],
                    "properties": {"id": {"type": "integer"}, "fullName": {"type": "string"}, "private": {"type": "boolean"}}}},
                "totalCount": {"type": "integer"},
                "incomplete": {"type": "boolean", "description": "True when the page cap stopped the listing."}
            }
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
                "422": error_response("appId names an app that is not registered (`unknown_app`)"),
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
                "422": error_response("appId names an app that is not registered (`unknown_app`)"),
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
    let mut doc = json!({
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
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer", "description": "The ADMIN_TOKEN secret."},
                "serviceKey": {"type": "http", "scheme": "bearer",
                    "description": "A service key (`ghpsk_<installation id>_…`) of the installation in the path."}
            },
            "schemas": schemas(),
            "responses": {
                "NotFound": error_response("Unknown route (`route_not_found`)"),
                "MethodNotAllowed": error_response("Known path, other method (`method_not_allowed`); `Allow` lists the methods")
            }
        }
    });
    // Each area describes its own paths in a file of its own.
    for (path, item) in identity::paths()
        .into_iter()
        .chain(webhooks::paths())
        .chain(projects::paths())
        .chain(deploy::paths())
        .chain(installers::paths())
        .chain(mint::paths())
    {
        doc["paths"][path] = item;
    }
    for (name, schema) in webhooks::schemas()
        .into_iter()
        .chain(projects::schemas())
        .chain(deploy::schemas())
        .chain(installers::schemas())
        .chain(mint::schemas())
    {
        doc["components"]["schemas"][name] = schema;
    }
    for (path, item) in admin_access::paths() {
        doc["paths"][path] = item;
    }
    for (name, schema) in admin_access::schemas() {
        doc["components"]["schemas"][name] = schema;
    }
    for (path, item) in tenants::paths() {
        doc["paths"][path] = item;
    }
    for (name, schema) in tenants::schemas() {
        doc["components"]["schemas"][name] = schema;
    }
    for (name, scheme) in admin_access::security_schemes() {
        doc["components"]["securitySchemes"][name] = scheme;
    }
    for (path, item) in staff::paths() {
        doc["paths"][path] = item;
    }
    for (name, schema) in staff::schemas() {
        doc["components"]["schemas"][name] = schema;
    }
    staff::apply(&mut doc);
    doc
}

pub(crate) fn admin_op(
    operation_id: &str,
    summary: &str,
    body: Option<&str>,
    responses: Value,
) -> Value {
    let mut op = json!({"operationId": operation_id, "summary": summary, "security": [{"adminToken": []}],
        "responses": admin_errors(responses)});
    if let Some(schema) = body {
        op["requestBody"] = json_body(schema);
    }
    op
}

pub(crate) fn app_id_param() -> Value {
    json!({"name": "app_id", "in": "path", "required": true, "description": "GitHub App id.",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,15}$"}})
}

/// 502/503 for routes that call GitHub.
pub(crate) fn github_errors(mut responses: Value) -> Value {
    responses["502"] = error_response("GitHub failed or refused (`github_*`)");
    responses["503"] = error_response("GitHub rate limit (`github_rate_limited`)");
    responses
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
            let scheme = match r.auth {
                crate::routes::Auth::Staff { .. } => staff::staff_security(),
                crate::routes::Auth::ServiceKey => json!([{"serviceKey": []}]),
                crate::routes::Auth::Public => json!([]),
                crate::routes::Auth::Session => {
                    json!([{"sessionCookie": []}, {"sessionToken": []}])
                }
                crate::routes::Auth::SessionOrUserToken => {
                    json!([{"sessionCookie": []}, {"sessionToken": []}, {"githubUserToken": []}])
                }
            };
            assert_eq!(op["security"], scheme, "{} {} security", r.method, r.path);
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
