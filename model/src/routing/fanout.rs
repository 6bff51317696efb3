//! Fanout exchanges: every binding matches; the routing key is ignored.

/// Every binding of a fanout exchange matches every message.
pub fn matches() -> bool {
    true
}
