//! Payloads as the workload writes them: one UTF-8 string per payload (`binary/plain`), so the
//! checkers compare results and signal values as strings.

use std::collections::HashMap;
use temporalio_protos::temporal::api::common::v1::{Payload, Payloads};

/// One string as a `Payloads` of one payload.
pub fn encode(value: &str) -> Payloads {
    Payloads {
        payloads: vec![Payload {
            metadata: HashMap::from([("encoding".to_owned(), b"binary/plain".to_vec())]),
            data: value.as_bytes().to_vec(),
            ..Default::default()
        }],
    }
}

/// The string a `Payloads` carries: its payloads' data as (lossy) UTF-8, joined by `,` when
/// there are several; `None` when absent or empty.
pub fn decode(payloads: Option<&Payloads>) -> Option<String> {
    let payloads = payloads?;
    if payloads.payloads.is_empty() {
        return None;
    }
    let parts: Vec<String> = payloads
        .payloads
        .iter()
        .map(|payload| String::from_utf8_lossy(&payload.data).into_owned())
        .collect();
    Some(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_round_trips_and_absence_is_none() {
        assert_eq!(decode(Some(&encode("r-1"))).as_deref(), Some("r-1"));
        assert_eq!(decode(None), None);
        assert_eq!(decode(Some(&Payloads::default())), None);
    }
}
