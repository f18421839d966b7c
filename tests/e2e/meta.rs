//! The service's own routes and the JSON shape of routing errors.

use crate::{Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "meta::healthz_reports_version_and_environment",
        healthz_reports_version_and_environment,
    ),
    ("meta::unknown_route_is_json_404", unknown_route_is_json_404),
    (
        "meta::wrong_method_is_json_405_with_allow",
        wrong_method_is_json_405_with_allow,
    ),
    ("meta::openapi_is_served", openapi_is_served),
];

fn healthz_reports_version_and_environment(s: &Shared) {
    let r = s.api.send("GET", "/healthz", &[], None);
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["environment"], s.worker.environment());
}

fn unknown_route_is_json_404(s: &Shared) {
    for path in ["/nope", "/api/installation", "/healthz/extra"] {
        let r = s.api.send("GET", path, &[], None);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.code(), "route_not_found");
        assert!(r
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/json"));
    }
}

fn wrong_method_is_json_405_with_allow(s: &Shared) {
    let r = s.api.send("POST", "/healthz", &[], None);
    assert_eq!(r.status, 405);
    assert_eq!(r.code(), "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET"));
    let r = s.api.send("POST", "/api/installations/1/config", &[], None);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("PUT, GET, PATCH, DELETE"));
}

fn openapi_is_served(s: &Shared) {
    let r = s.api.send("GET", "/openapi.json", &[], None);
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/installations/{installation_id}/config"]["put"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["adminToken"]["scheme"],
        "bearer"
    );
}
