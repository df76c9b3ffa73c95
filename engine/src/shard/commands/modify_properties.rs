//! ModifyWorkflowProperties → WorkflowPropertiesModified{upserted_memo}; the memo entries are
//! merged into the run's memo (a null value removes the key) and returned by Describe.

use super::upsert_search_attributes::merge;
use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use temporalio_protos::temporal::api::{
    command::v1::ModifyWorkflowPropertiesCommandAttributes,
    common::v1::Memo,
    enums::v1::WorkflowTaskFailedCause as Cause,
    history::v1::{WorkflowPropertiesModifiedEventAttributes, history_event::Attributes},
};

pub(super) fn apply(
    draft: &mut Draft,
    command: &ModifyWorkflowPropertiesCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let Some(upserted) = command.upserted_memo.as_ref() else {
        return Err(CommandRejection::new(
            Cause::BadModifyWorkflowPropertiesAttributes,
            "UpsertedMemo is not set on ModifyWorkflowPropertiesCommand.",
        ));
    };
    let memo = draft.ms.memo.get_or_insert_with(Memo::default);
    merge(&mut memo.fields, &upserted.fields);
    if memo.fields.is_empty() {
        draft.ms.memo = None;
    }
    draft.append(Attributes::WorkflowPropertiesModifiedEventAttributes(
        WorkflowPropertiesModifiedEventAttributes {
            workflow_task_completed_event_id: ctx.completed_event_id,
            upserted_memo: Some(upserted.clone()),
        },
    ));
    Ok(())
}
