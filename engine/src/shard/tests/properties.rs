//! UpsertWorkflowSearchAttributes and ModifyWorkflowProperties.

use super::*;
use temporalio_protos::temporal::api::{
    command::v1::{
        ModifyWorkflowPropertiesCommandAttributes, UpsertWorkflowSearchAttributesCommandAttributes,
    },
    common::v1::{Memo, SearchAttributes},
    enums::v1::WorkflowTaskFailedCause,
};

fn payload(data: &str, typed: bool) -> Payload {
    let mut payload = Payload {
        data: data.as_bytes().to_vec(),
        ..Default::default()
    };
    payload
        .metadata
        .insert("encoding".into(), b"json/plain".to_vec());
    if typed {
        payload.metadata.insert("type".into(), b"Keyword".to_vec());
    }
    payload
}

pub(crate) fn upsert(fields: &[(&str, Payload)]) -> Command {
    let attributes = UpsertWorkflowSearchAttributesCommandAttributes {
        search_attributes: Some(SearchAttributes {
            indexed_fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }),
    };
    Command {
        command_type: CommandType::UpsertWorkflowSearchAttributes as i32,
        attributes: Some(
            command::Attributes::UpsertWorkflowSearchAttributesCommandAttributes(attributes),
        ),
        ..Default::default()
    }
}

pub(crate) fn modify_memo(fields: &[(&str, Payload)]) -> Command {
    let attributes = ModifyWorkflowPropertiesCommandAttributes {
        upserted_memo: Some(Memo {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }),
    };
    Command {
        command_type: CommandType::ModifyWorkflowProperties as i32,
        attributes: Some(
            command::Attributes::ModifyWorkflowPropertiesCommandAttributes(attributes),
        ),
        ..Default::default()
    }
}

#[test]
fn upserts_merge_into_the_run_and_write_one_event_each() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(
        &k,
        vec![
            upsert(&[
                ("TemporalChangeVersion", payload("[\"patch-1\"]", false)),
                ("OrderStatus", payload("\"new\"", true)),
            ]),
            modify_memo(&[("note", payload("\"first\"", false))]),
        ],
    );
    assert_eq!(
        h.event_types(&k)[3..],
        [
            EventType::WorkflowTaskCompleted,
            EventType::UpsertWorkflowSearchAttributes,
            EventType::WorkflowPropertiesModified
        ]
    );
    let Attributes::UpsertWorkflowSearchAttributesEventAttributes(u) = attrs(h.event(&k, 5)) else {
        panic!()
    };
    assert_eq!(u.workflow_task_completed_event_id, 4);
    assert_eq!(
        u.search_attributes.as_ref().unwrap().indexed_fields.len(),
        2
    );
    // A later upsert replaces one key and removes another (null value).
    h.apply(ShardCommandKind::SignalWorkflow {
        request:
            temporalio_protos::temporal::api::workflowservice::v1::SignalWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: Some(
                    temporalio_protos::temporal::api::common::v1::WorkflowExecution {
                        workflow_id: "wf".into(),
                        run_id: String::new(),
                    },
                ),
                signal_name: "next".into(),
                ..Default::default()
            },
    });
    h.run_workflow_task(
        &k,
        vec![
            upsert(&[
                ("OrderStatus", payload("\"shipped\"", true)),
                ("TemporalChangeVersion", payload("null", false)),
            ]),
            modify_memo(&[("note", payload("\"second\"", false))]),
        ],
    );
    let ms = h.state.execution(&k).unwrap();
    let sa = &ms.search_attributes.as_ref().unwrap().indexed_fields;
    assert_eq!(sa.len(), 1);
    assert_eq!(sa["OrderStatus"].data, b"\"shipped\"");
    let memo = &ms.memo.as_ref().unwrap().fields;
    assert_eq!(memo["note"].data, b"\"second\"");
}

#[test]
fn an_untyped_unknown_search_attribute_fails_the_task() {
    let mut h = Harness::new();
    let k = h.start("wf");
    let info = h.poll_workflow_task(&k);
    let applied = h.complete_workflow_task(
        &info.token,
        vec![upsert(&[("Mystery", payload("\"x\"", false))])],
    );
    assert!(matches!(
        applied.reply,
        Some(Err(EngineError::InvalidArgument(ref m))) if m.contains("Mystery")
    ));
    let Attributes::WorkflowTaskFailedEventAttributes(f) = attrs(h.event(&k, 4)) else {
        panic!()
    };
    assert_eq!(f.cause, WorkflowTaskFailedCause::BadSearchAttributes as i32);
    assert!(h.state.execution(&k).unwrap().search_attributes.is_none());
}
