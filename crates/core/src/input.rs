//! Reading a JSON request body: the helpers every input parser shares, so that each refuses
//! a non-object, names the field at fault and lists the fields it accepts in the same words.

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::ids::truncate;

/// Reads a JSON object body into `T`: a `#[derive(Deserialize)] #[serde(deny_unknown_fields)]`
/// type whose fields refuse a bad value with a `field: why` message of their own (see
/// [`checked`]). serde's own refusals are reworded into the same shapes as the hand-written
/// parsers': `field: is required`, `unknown field x; allowed: a, b`.
pub fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let map = parse_object(body)?;
    serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::Validation(reworded(&e.to_string())))
}

/// A field's `deserialize_with`: the value as JSON, through `parse`, whose `field: why`
/// error becomes the message.
pub(crate) fn checked<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: impl FnOnce(&Value) -> Result<T, ApiError>,
) -> Result<T, D::Error> {
    parse(&Value::deserialize(d)?).map_err(D::Error::custom)
}

/// serde's "missing field `x`" and "unknown field `x`, expected one of `a`, `b`" in ghplane's
/// words; any other message (a field's own) as it is.
fn reworded(message: &str) -> String {
    let quoted =
        |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
    if let Some(rest) = message.strip_prefix("missing field ") {
        if let Some(field) = quoted(rest).first() {
            return format!("{field}: is required");
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        if let Some((field, allowed)) = quoted(rest).split_first() {
            return format!(
                "unknown field {}; allowed: {}",
                truncate(field, 64),
                allowed.join(", ")
            );
        }
    }
    message.to_owned()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(rename = "fullName")]
        _full_name: String,
        #[serde(default, deserialize_with = "small")]
        _count: Option<u8>,
    }

    fn small<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
        checked(d, |v| {
            v.as_u64()
                .filter(|n| *n < 10)
                .map(|n| Some(n as u8))
                .ok_or_else(|| invalid("_count", "must be below 10"))
        })
    }

    #[test]
    fn serde_refusals_read_like_the_hand_parsers() {
        let message = |body: &[u8]| from_body::<Body>(body).unwrap_err().to_string();
        assert_eq!(message(b"{}"), "fullName: is required");
        assert_eq!(
            message(br#"{"fullName":"a","x":1}"#),
            "unknown field x; allowed: fullName, _count"
        );
        assert_eq!(
            message(br#"{"fullName":"a","_count":12}"#),
            "_count: must be below 10"
        );
        assert_eq!(message(b"[]"), "the body must be a JSON object");
        assert!(matches!(
            from_body::<Body>(b"{"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(from_body::<Body>(br#"{"fullName":"a","_count":3}"#).is_ok());
    }
}
