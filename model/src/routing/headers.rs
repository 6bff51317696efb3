//! Headers exchanges: a binding's arguments are matched against the message's `headers`.
//!
//! `x-match` chooses `all` (the default: every argument must be present with an equal value) or
//! `any` (at least one must be). Arguments whose names start with `x-` take no part in matching,
//! except in RabbitMQ's `all-with-x` and `any-with-x`, where every argument but `x-match` itself
//! does (`Profile::x_match_with_x`). A value the broker does not know is refused at the binding
//! ([`XMatch::of`], `Broker::check_x_match`). RabbitMQ 3.10.8 probed: docs/rabbitmq-3.10.md Q46.
//!
//! What "equal" means for values of different field types the specification does not say (its
//! grammar gives the types, the exchange type's description only pairs of names and values). A
//! [`HeaderValues`] reading says which values of different types a broker counts as equal, as a
//! set of equivalences, each on or off: 256 readings. RabbitMQ's ([`HeaderValues::RABBIT`],
//! probed on 3.10.8: docs/rabbitmq-3.10.md Q42) is one; the strict one, where a value equals only
//! the same value of the same type, is [`HeaderValues::EXACT`]. Under `spec` a broker may have
//! any: the model keeps those that agree with how it has routed so far
//! (`Broker::header_readings`, `Broker::settle_header_reading`).

use crate::fault::{Fault, Faults};
use crate::types::{Table, Value};
use serde::{Deserialize, Serialize};

/// Which values of different field types a headers binding counts as equal: a set of
/// equivalences (the constants), each a bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HeaderValues(pub u8);

impl HeaderValues {
    /// Integers of different widths (`1`, `u8:1`, `i64:1`) are equal by value.
    pub const WIDTHS: u8 = 1;
    /// Integers of any width, floats and doubles are equal by value (`u8:1` and `f64:1`,
    /// `f32:0.5` and `f64:0.5`).
    pub const FLOATS: u8 = 2;
    /// A timestamp is an integer like the others (equal to the integers of its value as far as
    /// `WIDTHS` or `FLOATS` merge integer types).
    pub const TIMESTAMPS: u8 = 4;
    /// Decimals are equal by value, whatever their scales (`dec:1.0` and `dec:1`).
    pub const DECIMALS: u8 = 8;
    /// A string equals a byte array of the same bytes.
    pub const BYTES: u8 = 16;
    /// A `void` binding argument asks only that the header be present.
    pub const VOID_ANY: u8 = 32;
    /// The equivalences hold between the elements of arrays too (otherwise arrays are equal only
    /// element for element, type and all).
    pub const IN_ARRAYS: u8 = 64;
    /// The equivalences hold between the values of nested tables too.
    pub const IN_TABLES: u8 = 128;
    /// RabbitMQ 3.10.8's reading (Q42).
    pub const RABBIT: HeaderValues =
        HeaderValues(Self::WIDTHS | Self::FLOATS | Self::TIMESTAMPS | Self::BYTES | Self::VOID_ANY);
    /// By type and value.
    pub const EXACT: HeaderValues = HeaderValues(0);

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// The reading inside an array or table: the same, but `void` there is a value like any
    /// other (only a binding argument asks for presence).
    pub fn inside(self) -> HeaderValues {
        HeaderValues(self.0 & !Self::VOID_ANY)
    }
}

/// How a headers binding matches: its `x-match` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XMatch {
    /// Every argument present with an equal value (the default); `x-` arguments left out.
    All,
    /// At least one; `x-` arguments left out.
    Any,
    /// As `All`, with the `x-` arguments (but `x-match`) too: RabbitMQ's.
    AllWithX,
    /// As `Any`, with the `x-` arguments (but `x-match`) too: RabbitMQ's.
    AnyWithX,
}

impl XMatch {
    /// The mode `arguments` ask for: `All` without `x-match`; `None` for a value the broker does
    /// not know: not a string, or none of `all`, `any` and, where `with_x`, `all-with-x` and
    /// `any-with-x` (RabbitMQ: case counts, a byte array is not a string).
    pub fn of(arguments: &Table, with_x: bool) -> Option<XMatch> {
        let Some(value) = arguments.get("x-match") else { return Some(XMatch::All) };
        let Value::Str(s) = value else { return None };
        match s.as_str() {
            "all" => Some(XMatch::All),
            "any" => Some(XMatch::Any),
            "all-with-x" if with_x => Some(XMatch::AllWithX),
            "any-with-x" if with_x => Some(XMatch::AnyWithX),
            _ => None,
        }
    }
}

/// Whether a binding with `arguments` matches a message with `headers`, `x-match` read with or
/// without RabbitMQ's `-with-x` modes (`with_x`); a value not known (kept only where the profile
/// lets a broker accept it) matches as `all`.
pub fn matches(arguments: &Table, headers: &Table, reading: HeaderValues, with_x: bool, faults: Faults) -> bool {
    let mode = XMatch::of(arguments, with_x).unwrap_or(XMatch::All);
    let any = matches!(mode, XMatch::Any | XMatch::AnyWithX) && !faults.has(Fault::HeadersAnyIsAll);
    let x_too = matches!(mode, XMatch::AllWithX | XMatch::AnyWithX) && !faults.has(Fault::HeadersWithXIgnored);
    let mut pairs =
        arguments.iter().filter(|(k, _)| k.as_str() != "x-match" && (x_too || !k.as_str().starts_with("x-")));
    let hit = |(k, v): (&crate::types::Name, &Value)| headers.get(k).is_some_and(|h| equal(v, h, reading));
    if any {
        pairs.any(hit)
    } else {
        pairs.all(hit)
    }
}

/// Whether a binding's value `want` matches a header's value `have`.
pub fn equal(want: &Value, have: &Value, reading: HeaderValues) -> bool {
    if want == have || (*want == Value::Void && reading.has(HeaderValues::VOID_ANY)) {
        return true;
    }
    let r = reading;
    match (want, have) {
        (Value::Str(a), Value::Bytes(b)) | (Value::Bytes(b), Value::Str(a)) => {
            r.has(HeaderValues::BYTES) && a.as_str().as_bytes() == b.as_slice()
        }
        (Value::Decimal { scale: s1, value: v1 }, Value::Decimal { scale: s2, value: v2 }) => {
            let scaled = |v: u32, s: u8, to: u8| u128::from(v) * 10u128.pow(u32::from(to - s));
            let to = (*s1).max(*s2);
            r.has(HeaderValues::DECIMALS) && to <= 30 && scaled(*v1, *s1, to) == scaled(*v2, *s2, to)
        }
        (Value::Array(a), Value::Array(b)) => {
            let inner = if r.has(HeaderValues::IN_ARRAYS) { r.inside() } else { HeaderValues::EXACT };
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y, inner))
        }
        (Value::Table(a), Value::Table(b)) => {
            let inner = if r.has(HeaderValues::IN_TABLES) { r.inside() } else { HeaderValues::EXACT };
            a.len() == b.len() && a.iter().zip(b).all(|((k1, x), (k2, y))| k1 == k2 && equal(x, y, inner))
        }
        _ => match (number(want), number(have)) {
            (Some(a), Some(b)) => class(want, r) == class(have, r) && a.equals(b),
            _ => false,
        },
    }
}

/// The class of numbers a number is compared within: its own field type, unless the reading
/// merges types (`WIDTHS`: the integers; `FLOATS`: integers, floats and doubles; `TIMESTAMPS`:
/// timestamps with the integers).
fn class(v: &Value, r: HeaderValues) -> &'static str {
    let int = |width: &'static str| match (r.has(HeaderValues::FLOATS), r.has(HeaderValues::WIDTHS)) {
        (true, _) => "number",
        (false, true) => "integer",
        (false, false) => width,
    };
    match v {
        Value::Int(_) => int("int"),
        Value::Sized(t, _) => int(t.name()),
        Value::Timestamp(_) if r.has(HeaderValues::TIMESTAMPS) => int("ts"),
        Value::Timestamp(_) => "ts",
        Value::Float(_) if r.has(HeaderValues::FLOATS) => "number",
        Value::Float(_) => "f32",
        Value::Double(_) if r.has(HeaderValues::FLOATS) => "number",
        Value::Double(_) => "f64",
        _ => "",
    }
}

/// A numeric field value, for comparing across types.
#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn equals(self, other: Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b,
            (Number::Int(i), Number::Float(f)) | (Number::Float(f), Number::Int(i)) => {
                f.fract() == 0.0 && (-1e38..1e38).contains(&f) && f as i128 == i
            }
        }
    }
}

fn number(v: &Value) -> Option<Number> {
    Some(match v {
        Value::Int(i) | Value::Sized(_, i) => Number::Int(i128::from(*i)),
        Value::Timestamp(t) => Number::Int(i128::from(*t)),
        Value::Float(bits) => Number::Float(f64::from(f32::from_bits(*bits))),
        Value::Double(bits) => Number::Float(f64::from_bits(*bits)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::IntType;

    #[test]
    fn rabbitmq_compares_numbers_by_value_and_strings_with_bytes() {
        let r = HeaderValues::RABBIT;
        let one = Value::Int(1);
        for v in [
            Value::Sized(IntType::U8, 1),
            Value::Sized(IntType::I64, 1),
            Value::Double(1f64.to_bits()),
            Value::Float(1f32.to_bits()),
            Value::Timestamp(1),
        ] {
            assert!(equal(&one, &v, r) && equal(&v, &one, r), "{v:?}");
            assert!(!equal(&one, &v, HeaderValues::EXACT), "{v:?}");
        }
        for v in [Value::Str("1".into()), Value::Bool(true), Value::Double(1.5f64.to_bits()), Value::Void] {
            assert!(!equal(&one, &v, r), "{v:?}");
        }
        assert!(equal(&Value::Str("1".into()), &Value::Bytes(vec![b'1']), r));
        assert!(equal(&Value::Void, &Value::Str("x".into()), r));
        assert!(!equal(&Value::Array(vec![one.clone()]), &Value::Array(vec![Value::Sized(IntType::U8, 1)]), r));
        let (d1, d10) = (Value::Decimal { scale: 0, value: 1 }, Value::Decimal { scale: 1, value: 10 });
        assert!(!equal(&d1, &d10, r) && equal(&d1, &d1, r));
        // LavinMQ's reading: numbers by value, inside arrays too, decimals by value; no void
        // wildcard, a byte array never a string, a timestamp never an integer.
        let lavin = HeaderValues(
            HeaderValues::WIDTHS | HeaderValues::FLOATS | HeaderValues::DECIMALS | HeaderValues::IN_ARRAYS,
        );
        assert!(equal(&Value::Array(vec![one.clone()]), &Value::Array(vec![Value::Sized(IntType::U8, 1)]), lavin));
        assert!(equal(&d1, &d10, lavin) && !equal(&Value::Void, &one, lavin));
        assert!(!equal(&one, &Value::Timestamp(1), lavin) && equal(&one, &Value::Double(1f64.to_bits()), lavin));
    }
}
