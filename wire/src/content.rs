//! A message's content as the model sees it <-> the basic properties and body on the wire: one
//! translation for the reference broker and the runner's live target alike.

use crate::table::{field_table, table};
use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::types::ShortString;
use amqp_model::{Content, Name, Properties};

/// The model's content of a message sent with these properties and body.
pub fn model_content(props: &AMQPProperties, body: &[u8]) -> Content {
    let mut properties = Properties::default();
    for (name, value) in Properties::TEXT.iter().zip(text_properties(props)) {
        properties.set(name, value.as_ref().map(|v| Name::from(v.as_str())));
    }
    properties.timestamp = *props.timestamp();
    Content {
        body: Name::from(String::from_utf8_lossy(body).into_owned()),
        persistent: *props.delivery_mode() == Some(2),
        headers: props.headers().as_ref().map(table).unwrap_or_default(),
        priority: *props.priority(),
        properties,
    }
}

/// The properties a message with this content is sent with (the body is the content's text).
pub fn wire_properties(c: &Content) -> AMQPProperties {
    let mut props = AMQPProperties::default();
    if c.persistent {
        props = props.with_delivery_mode(2);
    }
    if !c.headers.is_empty() {
        props = props.with_headers(field_table(&c.headers));
    }
    if let Some(p) = c.priority {
        props = props.with_priority(p);
    }
    let setters: [fn(AMQPProperties, ShortString) -> AMQPProperties; 8] = [
        AMQPProperties::with_content_type,
        AMQPProperties::with_content_encoding,
        AMQPProperties::with_correlation_id,
        AMQPProperties::with_reply_to,
        AMQPProperties::with_message_id,
        AMQPProperties::with_type,
        AMQPProperties::with_app_id,
        AMQPProperties::with_expiration,
    ];
    for (set, (_, value)) in setters.into_iter().zip(c.properties.texts()) {
        if let Some(v) = value {
            props = set(props, ShortString::from(v.as_str()));
        }
    }
    if let Some(t) = c.properties.timestamp {
        props = props.with_timestamp(t);
    }
    props
}

/// The text properties in [`Properties::TEXT`]'s order.
fn text_properties(p: &AMQPProperties) -> [&Option<ShortString>; 8] {
    [
        p.content_type(),
        p.content_encoding(),
        p.correlation_id(),
        p.reply_to(),
        p.message_id(),
        p.kind(),
        p.app_id(),
        p.expiration(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use amqp_model::{IntType, Value};

    #[test]
    fn content_crosses_the_wire_unchanged() {
        let mut c = Content::persistent("b");
        c.headers.insert("h".into(), Value::Array(vec![Value::Sized(IntType::U8, 1)]));
        for (i, name) in Properties::TEXT.iter().enumerate() {
            c.properties.set(name, Some(Name::from(format!("v{i}"))));
        }
        c.properties.timestamp = Some(u64::MAX);
        c.priority = Some(9);
        let props = wire_properties(&c);
        assert_eq!(props.kind().as_ref().map(ShortString::as_str), Some("v5"));
        assert_eq!(model_content(&props, b"b"), c);
        assert_eq!(model_content(&AMQPProperties::default(), b"x"), Content::text("x"));
    }
}
