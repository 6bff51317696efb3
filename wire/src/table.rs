//! Field tables <-> the model's [`Table`]: every field type has a [`Value`], so tables cross the
//! wire both ways unchanged (a short string read from the wire becomes a long string, the one
//! string kind the model keeps).

use amq_protocol::types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString};
use amqp_model::{IntType, Name, Table, Value};

/// A model value as it goes on the wire (an unsized integer as `I` when it fits, `l`
/// otherwise, as lapin sends one; strings as `S`).
pub fn wire_value(v: &Value) -> AMQPValue {
    // A sized integer is checked when it is parsed; one out of its type's range wraps.
    match v {
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Int(i) => match i32::try_from(*i) {
            Ok(i) => AMQPValue::LongInt(i),
            Err(_) => AMQPValue::LongLongInt(*i),
        },
        Value::Sized(t, i) => match t {
            IntType::I8 => AMQPValue::ShortShortInt(*i as i8),
            IntType::U8 => AMQPValue::ShortShortUInt(*i as u8),
            IntType::I16 => AMQPValue::ShortInt(*i as i16),
            IntType::U16 => AMQPValue::ShortUInt(*i as u16),
            IntType::I32 => AMQPValue::LongInt(*i as i32),
            IntType::U32 => AMQPValue::LongUInt(*i as u32),
            IntType::I64 => AMQPValue::LongLongInt(*i),
        },
        Value::Str(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Float(bits) => AMQPValue::Float(f32::from_bits(*bits)),
        Value::Double(bits) => AMQPValue::Double(f64::from_bits(*bits)),
        Value::Decimal { scale, value } => AMQPValue::DecimalValue(DecimalValue { scale: *scale, value: *value }),
        Value::Timestamp(t) => AMQPValue::Timestamp(*t),
        Value::Bytes(b) => AMQPValue::ByteArray(ByteArray::from(b.clone())),
        Value::Array(items) => {
            AMQPValue::FieldArray(FieldArray::from(items.iter().map(wire_value).collect::<Vec<_>>()))
        }
        Value::Table(t) => AMQPValue::FieldTable(field_table(t)),
        Value::Void => AMQPValue::Void,
    }
}

/// A model table as it goes on the wire: how the runner's targets and the reference broker
/// write tables.
pub fn field_table(table: &Table) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in table {
        t.insert(ShortString::from(k.as_str()), wire_value(v));
    }
    t
}

/// A field value as the model keeps it: the inverse of [`wire_value`] (a long-long that fits in
/// 32 bits was sent sized, a long never was).
pub fn model_value(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(i) => Value::Sized(IntType::I8, i64::from(*i)),
        AMQPValue::ShortShortUInt(i) => Value::Sized(IntType::U8, i64::from(*i)),
        AMQPValue::ShortInt(i) => Value::Sized(IntType::I16, i64::from(*i)),
        AMQPValue::ShortUInt(i) => Value::Sized(IntType::U16, i64::from(*i)),
        AMQPValue::LongInt(i) => Value::Int(i64::from(*i)),
        AMQPValue::LongUInt(i) => Value::Sized(IntType::U32, i64::from(*i)),
        AMQPValue::LongLongInt(i) if i32::try_from(*i).is_ok() => Value::Sized(IntType::I64, *i),
        AMQPValue::LongLongInt(i) => Value::Int(*i),
        AMQPValue::Float(f) => Value::Float(f.to_bits()),
        AMQPValue::Double(d) => Value::Double(d.to_bits()),
        AMQPValue::DecimalValue(d) => Value::Decimal { scale: d.scale, value: d.value },
        AMQPValue::ShortString(s) => Value::Str(Name::from(s.as_str())),
        AMQPValue::LongString(s) => Value::Str(Name::from(String::from_utf8_lossy(s.as_bytes()).into_owned())),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(model_value).collect()),
        AMQPValue::Timestamp(t) => Value::Timestamp(*t),
        AMQPValue::FieldTable(t) => Value::Table(table(t)),
        AMQPValue::ByteArray(b) => Value::Bytes(b.as_slice().to_vec()),
        AMQPValue::Void => Value::Void,
    }
}

/// A field table as the model keeps it (method arguments and message headers alike).
pub fn table(t: &FieldTable) -> Table {
    t.inner().iter().map(|(k, v)| (Name::from(k.as_str()), model_value(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_type_crosses_the_wire_unchanged() {
        let mut t = FieldTable::default();
        t.insert("a".into(), AMQPValue::ShortShortInt(-3));
        t.insert("b".into(), AMQPValue::LongString("x".into()));
        t.insert("c".into(), AMQPValue::Boolean(true));
        t.insert("d".into(), AMQPValue::Double(1.5));
        t.insert("e".into(), AMQPValue::LongInt(7));
        t.insert("f".into(), AMQPValue::LongLongInt(7));
        t.insert("g".into(), AMQPValue::LongLongInt(1 << 40));
        t.insert("h".into(), AMQPValue::FieldArray(vec![AMQPValue::ShortShortUInt(9), AMQPValue::Void].into()));
        t.insert("i".into(), AMQPValue::Timestamp(u64::MAX));
        t.insert("j".into(), AMQPValue::DecimalValue(DecimalValue { scale: 2, value: 314 }));
        t.insert("k".into(), AMQPValue::ByteArray(vec![0, 255].into()));
        t.insert("l".into(), AMQPValue::FieldTable(FieldTable::default()));
        t.insert("m".into(), AMQPValue::Float(0.25));
        let m = table(&t);
        assert_eq!(m.get("a"), Some(&Value::Sized(IntType::I8, -3)));
        assert_eq!(m.get("e"), Some(&Value::Int(7)));
        assert_eq!(m.get("f"), Some(&Value::Sized(IntType::I64, 7)));
        assert_eq!(m.get("g"), Some(&Value::Int(1 << 40)));
        assert_eq!(m.get("h"), Some(&Value::Array(vec![Value::Sized(IntType::U8, 9), Value::Void])));
        assert_eq!(field_table(&m), t);
    }
}
