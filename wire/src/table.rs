//! Field tables <-> the model's [`Table`]: booleans, integers and strings are kept (the kinds the
//! model's behaviour depends on); other kinds are left out of message headers and refused in
//! method arguments.

use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use amqp_model::{Name, Table, Value};

/// A model table as lapin sends it (integers as `I` when they fit, `l` otherwise; strings as
/// `S`): how the runner's targets and the reference broker write tables.
pub fn field_table(table: &Table) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in table {
        let v = match v {
            Value::Bool(b) => AMQPValue::Boolean(*b),
            Value::Int(i) => match i32::try_from(*i) {
                Ok(i) => AMQPValue::LongInt(i),
                Err(_) => AMQPValue::LongLongInt(*i),
            },
            Value::Str(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        };
        t.insert(ShortString::from(k.as_str()), v);
    }
    t
}

/// A field value as the model keeps it (booleans, integers, strings); other kinds are `None`.
pub fn model_value(v: &AMQPValue) -> Option<Value> {
    Some(match v {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(i) => Value::Int(i64::from(*i)),
        AMQPValue::ShortShortUInt(i) => Value::Int(i64::from(*i)),
        AMQPValue::ShortInt(i) => Value::Int(i64::from(*i)),
        AMQPValue::ShortUInt(i) => Value::Int(i64::from(*i)),
        AMQPValue::LongInt(i) => Value::Int(i64::from(*i)),
        AMQPValue::LongUInt(i) => Value::Int(i64::from(*i)),
        AMQPValue::LongLongInt(i) => Value::Int(*i),
        AMQPValue::ShortString(s) => Value::Str(Name::from(s.as_str())),
        AMQPValue::LongString(s) => Value::Str(Name::from(String::from_utf8_lossy(s.as_bytes()).into_owned())),
        _ => return None,
    })
}

/// A method argument of a kind the model does not keep (floats, decimals, timestamps, arrays,
/// nested tables, byte arrays, void): the reference broker refuses the method (540).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnkeptValue {
    /// The argument's name.
    pub field: String,
    /// Its kind, as amq-protocol names it.
    pub kind: String,
}

impl std::fmt::Display for UnkeptValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "argument `{}` is of a kind ({}) the model does not keep", self.field, self.kind)
    }
}

impl std::error::Error for UnkeptValue {}

/// A method argument table as the model keeps it; an error names a field whose value kind the
/// model does not keep.
pub fn table(t: &FieldTable) -> Result<Table, UnkeptValue> {
    let mut out = Table::new();
    for (k, v) in t.inner() {
        match model_value(v) {
            Some(v) => {
                out.insert(Name::from(k.as_str()), v);
            }
            None => return Err(UnkeptValue { field: k.to_string(), kind: format!("{:?}", v.get_type()) }),
        }
    }
    Ok(out)
}

/// Message headers as the model sees them: the fields of the kinds it keeps (the others cannot
/// match a binding, whose arguments are of those kinds, so leaving them out changes no routing).
pub fn headers(t: &FieldTable) -> Table {
    t.inner().iter().filter_map(|(k, v)| Some((Name::from(k.as_str()), model_value(v)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_keep_what_the_model_keeps() {
        let mut t = FieldTable::default();
        t.insert("a".into(), AMQPValue::ShortShortInt(-3));
        t.insert("b".into(), AMQPValue::LongString("x".into()));
        t.insert("c".into(), AMQPValue::Boolean(true));
        let m = table(&t).expect("all kept");
        assert_eq!(m.get("a"), Some(&Value::Int(-3)));
        assert_eq!(field_table(&m).inner().get("b"), Some(&AMQPValue::LongString("x".into())));
        t.insert("d".into(), AMQPValue::Double(1.5));
        assert!(table(&t).unwrap_err().to_string().contains("`d`"));
        assert_eq!(headers(&t).len(), 3);
    }
}
