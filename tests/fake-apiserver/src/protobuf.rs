//! Just enough of Kubernetes' protobuf encoding to read a SelfSubjectAccessReview, which kubectl 1.36
//! and newer send as `application/vnd.kubernetes.protobuf` (`kubectl auth can-i`). Other protobuf
//! bodies are still answered 415 (see README.md, fidelity limits).
//!
//! The envelope is the magic `k8s\0` followed by a `runtime.Unknown` message whose field 2 holds the
//! object; field numbers come from k8s.io/api/authorization/v1/generated.proto.

use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// The review as JSON (`spec.resourceAttributes` or `spec.nonResourceAttributes`), or `None` when the
/// bytes are not a protobuf SelfSubjectAccessReview.
pub fn self_subject_access_review(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(MAGIC)?;
    let raw = field_bytes(unknown, 2)?;
    let spec = field_bytes(raw, 2)?;
    let mut out = Map::new();
    if let Some(attrs) = field_bytes(spec, 1) {
        let names = [
            "namespace",
            "verb",
            "group",
            "version",
            "resource",
            "subresource",
            "name",
        ];
        let mut a = Map::new();
        for (i, name) in names.iter().enumerate() {
            if let Some(v) = field_bytes(attrs, i as u64 + 1) {
                a.insert((*name).into(), json!(String::from_utf8_lossy(v)));
            }
        }
        out.insert("resourceAttributes".into(), Value::Object(a));
    } else if let Some(attrs) = field_bytes(spec, 2) {
        let mut a = Map::new();
        for (i, name) in ["path", "verb"].iter().enumerate() {
            if let Some(v) = field_bytes(attrs, i as u64 + 1) {
                a.insert((*name).into(), json!(String::from_utf8_lossy(v)));
            }
        }
        out.insert("nonResourceAttributes".into(), Value::Object(a));
    }
    Some(json!({"spec": Value::Object(out)}))
}

/// The first length-delimited field `number` of a message, skipping every other field.
fn field_bytes(mut msg: &[u8], number: u64) -> Option<&[u8]> {
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(&mut msg)?;
            }
            1 => msg = msg.get(8..)?,
            5 => msg = msg.get(4..)?,
            2 => {
                let len = usize::try_from(varint(&mut msg)?).ok()?;
                let value = msg.get(..len)?;
                msg = msg.get(len..)?;
                if field == number {
                    return Some(value);
                }
            }
            _ => return None,
        }
    }
    None
}

fn varint(msg: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = msg.split_first()?;
        *msg = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn reads_the_resource_attributes_kubectl_sends() {
        let attrs = [len_field(2, b"list"), len_field(5, b"pods")].concat();
        let spec = len_field(1, &attrs);
        let review = [len_field(1, b""), len_field(2, &spec)].concat();
        let unknown = [
            len_field(1, &len_field(1, b"authorization.k8s.io/v1")),
            len_field(2, &review),
        ]
        .concat();
        let body = [MAGIC, &unknown].concat();
        let v = self_subject_access_review(&body).unwrap();
        assert_eq!(v["spec"]["resourceAttributes"]["verb"], "list");
        assert_eq!(v["spec"]["resourceAttributes"]["resource"], "pods");
        assert!(v["spec"]["resourceAttributes"].get("group").is_none());
    }

    #[test]
    fn anything_else_is_not_a_review() {
        assert!(self_subject_access_review(b"{\"kind\":\"x\"}").is_none());
        assert!(self_subject_access_review(b"k8s\0\xff\xff").is_none());
    }
}
