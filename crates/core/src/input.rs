//! Reading a JSON request body: the helpers every input parser shares, so that each refuses
//! a non-object, names the field at fault and lists the fields it accepts in the same words.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::ids::truncate;

/// Parses a JSON body into an object, mapping serde's failure to `malformed_json`.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::Validation(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::MalformedJson(e.to_string())),
    }
}

/// A body's top-level keys must all be in `allowed`.
pub(crate) fn reject_unknown(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    reject_unknown_in(map, allowed, "")
}

/// The keys of a nested object, whose path (e.g. `account.`) prefixes the unknown key.
pub(crate) fn reject_unknown_in(
    map: &Map<String, Value>,
    allowed: &[&str],
    at: &str,
) -> Result<(), ApiError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::Validation(format!(
            "unknown field {at}{}; allowed: {}",
            truncate(k, 64),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// `field: why`, the one shape of a `validation_failed` message.
pub(crate) fn invalid(field: &str, why: &str) -> ApiError {
    ApiError::Validation(format!("{field}: {why}"))
}

/// A present field that must not be `null`.
pub(crate) fn not_null<'a>(
    map: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Value>, ApiError> {
    match map.get(key) {
        Some(Value::Null) => Err(invalid(key, "cannot be null")),
        other => Ok(other),
    }
}
