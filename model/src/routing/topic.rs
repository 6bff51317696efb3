//! Topic exchanges: routing keys are dot-separated words and binding keys are patterns in which
//! `*` stands for exactly one word and `#` for zero or more words.
//!
//! Words may be empty: `a.` is the two words `a` and `""`, `a..b` has an empty middle word. The
//! empty routing key is zero words (so `#` matches it and `*` does not), as RabbitMQ splits keys.

use crate::fault::{Fault, Faults};

/// The words of a routing key or pattern (the empty string has none).
pub fn words(s: &str) -> Vec<&str> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('.').collect()
    }
}

/// Whether topic pattern `pattern` matches routing key `key`.
///
/// ```
/// use amqp_model::routing::topic::matches;
/// use amqp_model::Faults;
/// assert!(matches("europe.*", "europe.weather", Faults::NONE));
/// assert!(matches("europe.#", "europe.weather.bad", Faults::NONE));
/// assert!(!matches("europe.", "europe.weather", Faults::NONE));
/// assert!(matches("#", "", Faults::NONE));
/// ```
pub fn matches(pattern: &str, key: &str, faults: Faults) -> bool {
    let p = words(pattern);
    let k = words(key);
    // reach[j]: pattern prefix consumed so far can match key prefix of length j.
    let mut reach = vec![false; k.len() + 1];
    reach[0] = true;
    for w in &p {
        let mut next = vec![false; k.len() + 1];
        match *w {
            "#" if !faults.has(Fault::TopicHashIsOneWord) => {
                // zero or more words: every position at or after a reachable one
                let mut on = false;
                for j in 0..=k.len() {
                    on |= reach[j];
                    next[j] = on;
                }
            }
            "*" if faults.has(Fault::TopicStarIsMany) => {
                let mut on = false;
                for j in 0..=k.len() {
                    next[j] = on;
                    on |= reach[j];
                }
            }
            "*" | "#" => next[1..].copy_from_slice(&reach[..k.len()]),
            literal => {
                for j in 0..k.len() {
                    next[j + 1] = reach[j] && k[j] == literal;
                }
            }
        }
        reach = next;
    }
    reach[k.len()]
}
