//! Canonical protobuf encoding: map entries sorted by their encoded bytes.
//!
//! `temporalio-protos` represents protobuf maps (payload metadata, headers, memo, search
//! attributes) as `HashMap`, and prost encodes a `HashMap` in its randomly seeded iteration
//! order. Two replicas applying the same command would then store different bytes for equal
//! values. Everything the engine persists goes through [`encode`], which re-orders the entries of
//! every map field, at every depth, using the schema in the descriptor set that
//! `temporalio-protos` publishes (copied into this crate by `build.rs`). Pure: no I/O.

use prost::Message;
use prost_types::FileDescriptorSet;
use prost_types::field_descriptor_proto::Type;
use std::collections::BTreeMap;
use std::sync::OnceLock;

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/temporal_descriptors.bin"));

/// What the canonicalizer needs to know of one field.
#[derive(Clone, Debug)]
enum FieldKind {
    /// A nested message (of this full name) or a map entry message (flagged `map`).
    Message { type_name: String, map: bool },
}

/// Message full name (without leading dot) → field number → kind, for message-typed fields.
type Schema = BTreeMap<String, BTreeMap<u32, FieldKind>>;

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let set = FileDescriptorSet::decode(DESCRIPTORS)
            .expect("the descriptor set built into this crate decodes");
        let mut schema = Schema::new();
        let mut map_entries = Vec::new();
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                collect(&mut schema, &mut map_entries, package, message);
            }
        }
        for fields in schema.values_mut() {
            for kind in fields.values_mut() {
                let FieldKind::Message { type_name, map } = kind;
                *map = map_entries.contains(type_name);
            }
        }
        schema
    })
}

fn collect(
    schema: &mut Schema,
    map_entries: &mut Vec<String>,
    scope: &str,
    message: &prost_types::DescriptorProto,
) {
    let name = format!("{scope}.{}", message.name());
    if message.options.as_ref().is_some_and(|o| o.map_entry()) {
        map_entries.push(name.clone());
    }
    let fields = message
        .field
        .iter()
        .filter(|f| f.r#type() == Type::Message)
        .map(|f| {
            let type_name = f.type_name().trim_start_matches('.').to_string();
            (
                f.number() as u32,
                FieldKind::Message {
                    type_name,
                    map: false,
                },
            )
        })
        .collect();
    schema.insert(name.clone(), fields);
    for nested in &message.nested_type {
        collect(schema, map_entries, &name, nested);
    }
}

/// The canonical encoding of a message: prost's encoding with every map's entries sorted.
pub fn encode<M: Message + prost::Name>(message: &M) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let name = M::full_name();
    canonicalize(&bytes, &name).unwrap_or(bytes)
}

/// Re-orders map entries in an encoded message of type `type_name`. `None` if the bytes do not
/// parse (the caller keeps prost's encoding, which is still valid protobuf).
pub fn canonicalize(bytes: &[u8], type_name: &str) -> Option<Vec<u8>> {
    let fields = schema().get(type_name);
    let mut out = Vec::with_capacity(bytes.len());
    let mut pending_map: Option<(u64, Vec<Vec<u8>>)> = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        let start = rest;
        let key = read_varint(&mut rest)?;
        let (number, wire_type) = ((key >> 3) as u32, key & 7);
        let kind = fields.and_then(|f| f.get(&number));
        let value = match wire_type {
            0 => {
                read_varint(&mut rest)?;
                None
            }
            1 => Some(skip(&mut rest, 8)?),
            5 => Some(skip(&mut rest, 4)?),
            2 => {
                let len = usize::try_from(read_varint(&mut rest)?).ok()?;
                Some(skip(&mut rest, len)?)
            }
            _ => return None,
        };
        let whole = &start[..start.len() - rest.len()];
        match (kind, wire_type, value) {
            (Some(FieldKind::Message { type_name, map }), 2, Some(payload)) => {
                let inner = canonicalize(payload, type_name)?;
                let mut field = Vec::new();
                write_varint(&mut field, key);
                write_varint(&mut field, inner.len() as u64);
                field.extend_from_slice(&inner);
                if *map {
                    match &mut pending_map {
                        Some((k, entries)) if *k == key => entries.push(field),
                        _ => {
                            flush(&mut out, pending_map.take());
                            pending_map = Some((key, vec![field]));
                        }
                    }
                } else {
                    flush(&mut out, pending_map.take());
                    out.extend_from_slice(&field);
                }
            }
            _ => {
                flush(&mut out, pending_map.take());
                out.extend_from_slice(whole);
            }
        }
    }
    flush(&mut out, pending_map.take());
    Some(out)
}

fn flush(out: &mut Vec<u8>, map: Option<(u64, Vec<Vec<u8>>)>) {
    if let Some((_, mut entries)) = map {
        entries.sort();
        for entry in entries {
            out.extend_from_slice(&entry);
        }
    }
}

fn skip<'a>(rest: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if rest.len() < len {
        return None;
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Some(head)
}

fn read_varint(rest: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use temporalio_protos::temporal::api::common::v1::{Header, Memo, Payload, Payloads};
    use temporalio_protos::temporal::api::history::v1::{
        HistoryEvent, WorkflowExecutionStartedEventAttributes, history_event,
    };

    fn payload(entries: &[(&str, &str)]) -> Payload {
        Payload {
            metadata: entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            data: b"{}".to_vec(),
            ..Default::default()
        }
    }

    fn event(order: &[&str]) -> HistoryEvent {
        // Build the maps in different insertion orders (and fresh hashers) for each call.
        let metadata: Vec<(&str, &str)> = order.iter().map(|k| (*k, "v")).collect();
        let fields: HashMap<String, Payload> = order
            .iter()
            .map(|k| (k.to_string(), payload(&metadata)))
            .collect();
        HistoryEvent {
            event_id: 1,
            attributes: Some(
                history_event::Attributes::WorkflowExecutionStartedEventAttributes(
                    WorkflowExecutionStartedEventAttributes {
                        input: Some(Payloads {
                            payloads: vec![payload(&metadata)],
                        }),
                        header: Some(Header {
                            fields: fields.clone(),
                        }),
                        memo: Some(Memo { fields }),
                        ..Default::default()
                    },
                ),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn equal_messages_with_maps_encode_to_identical_bytes() {
        let keys = ["encoding", "messageType", "a", "b", "c", "d", "e", "f"];
        let mut reversed = keys;
        reversed.reverse();
        // The test is not vacuous: prost's own encoding of these equal messages varies.
        let plain = event(&keys).encode_to_vec();
        assert!(
            (0..20).any(|_| event(&reversed).encode_to_vec() != plain),
            "prost encoding was stable"
        );
        let first = encode(&event(&keys));
        for _ in 0..20 {
            assert_eq!(encode(&event(&reversed)), first);
            assert_eq!(encode(&event(&keys)), first);
        }
        // Still the same message.
        assert_eq!(
            HistoryEvent::decode(first.as_slice()).expect("decodes"),
            event(&keys)
        );
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert_eq!(
            canonicalize(&[0x0a, 0x05, 0x01], "temporal.api.common.v1.Payload"),
            None
        );
        assert_eq!(
            canonicalize(&[0xff; 12], "temporal.api.common.v1.Payload"),
            None
        );
    }
}
