//! Structured log lines (one JSON object per line, read by Workers observability).
//!
//! Callers pass only fields that are safe to keep: ids, codes, statuses, durations. Bodies,
//! headers and secrets are never logged.

use serde_json::{Map, Value};

pub fn event(level: &str, msg: &str, fields: Value) {
    let mut line = Map::new();
    line.insert("level".into(), level.into());
    line.insert("msg".into(), msg.into());
    if let Value::Object(extra) = fields {
        line.extend(extra);
    }
    worker::console_log!("{}", Value::Object(line));
}
