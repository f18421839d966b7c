//! The runtime's clock. Read here, in the shell, and handed to the core as numbers: the
//! core never reads a clock.

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// Now as RFC 3339 text (UTC, milliseconds), the form stored records carry.
pub fn now_text() -> String {
    ghplane_core::time::rfc3339_from_millis(now_ms())
}
