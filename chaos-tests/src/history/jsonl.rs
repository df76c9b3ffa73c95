//! Reading and writing the JSONL history and the final-read JSON document.

use super::final_read::FinalRead;
use super::record::OpRecord;
use std::io::{BufRead, Write};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum JsonlError {
    #[error("history line {line}: {source}")]
    BadLine {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading history line {line}: {source}")]
    Read {
        line: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("final read: {0}")]
    BadFinalRead(#[source] serde_json::Error),
    #[error("writing: {0}")]
    Write(#[source] std::io::Error),
    #[error("encoding: {0}")]
    Encode(#[source] serde_json::Error),
}

/// A record with the 1-based line it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberedRecord {
    pub line: usize,
    pub record: OpRecord,
}

/// Reads every record; blank lines are skipped, a malformed line is an error naming it.
pub fn read_history(reader: impl BufRead) -> Result<Vec<NumberedRecord>, JsonlError> {
    let mut records = Vec::new();
    for (zero_based, text) in reader.lines().enumerate() {
        let line = zero_based + 1;
        let text = text.map_err(|source| JsonlError::Read { line, source })?;
        if text.trim().is_empty() {
            continue;
        }
        let record =
            serde_json::from_str(&text).map_err(|source| JsonlError::BadLine { line, source })?;
        records.push(NumberedRecord { line, record });
    }
    Ok(records)
}

/// Appends one record as one line. The harness calls it as operations happen, so a crash of the
/// harness loses at most the line being written.
pub fn write_record(mut writer: impl Write, record: &OpRecord) -> Result<(), JsonlError> {
    let mut line = serde_json::to_vec(record).map_err(JsonlError::Encode)?;
    line.push(b'\n');
    writer.write_all(&line).map_err(JsonlError::Write)
}

pub fn read_final_read(reader: impl std::io::Read) -> Result<FinalRead, JsonlError> {
    serde_json::from_reader(reader).map_err(JsonlError::BadFinalRead)
}

pub fn write_final_read(writer: impl Write, final_read: &FinalRead) -> Result<(), JsonlError> {
    serde_json::to_writer_pretty(writer, final_read).map_err(JsonlError::Encode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType, OpValue};
    use crate::ids::{HarnessNanos, NodeId, OpIndex, ProcessId};

    fn start_ok() -> OpRecord {
        OpRecord {
            process: ProcessId(3),
            index: OpIndex(7),
            op_type: OpType::Ok,
            f: Op::StartWorkflow {
                workflow_id: "w1".into(),
                request_id: "r1".into(),
                workflow_type: None,
                attach_to_existing: false,
                run_timeout_ms: None,
            },
            value: Some(OpValue::Started {
                run_id: "run-a".into(),
            }),
            node: Some(NodeId(2)),
            time_ns: HarnessNanos(1_500),
            error: None,
        }
    }

    #[test]
    fn a_record_round_trips_through_one_line_in_the_documented_shape() {
        let mut buffer = Vec::new();
        write_record(&mut buffer, &start_ok()).unwrap();
        let text = String::from_utf8(buffer.clone()).unwrap();
        assert_eq!(
            text,
            r#"{"process":3,"index":7,"type":"ok","f":{"name":"start_workflow","workflow_id":"w1","request_id":"r1"},"value":{"kind":"started","run_id":"run-a"},"node":2,"time_ns":1500}"#
                .to_owned()
                + "\n"
        );
        let back = read_history(buffer.as_slice()).unwrap();
        assert_eq!(
            back,
            vec![NumberedRecord {
                line: 1,
                record: start_ok()
            }]
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_that_line() {
        let mut buffer = Vec::new();
        write_record(&mut buffer, &start_ok()).unwrap();
        buffer.extend_from_slice(b"\n");
        buffer.extend_from_slice(
            br#"{"process":1,"index":1,"type":"maybe","f":{"name":"raft_status"},"time_ns":1}"#,
        );
        let error = read_history(buffer.as_slice()).unwrap_err();
        assert!(
            matches!(error, JsonlError::BadLine { line: 3, .. }),
            "{error}"
        );
        assert!(error.to_string().starts_with("history line 3:"), "{error}");
    }
}
