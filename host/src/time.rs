//! Timestamps as they appear in records: RFC 3339, UTC, second precision.

use std::time::SystemTime;

/// The current time as RFC 3339.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
