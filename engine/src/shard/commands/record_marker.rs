//! RecordMarker → MarkerRecorded, verbatim (patches and local-activity results live here).

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use temporalio_protos::temporal::api::{
    command::v1::RecordMarkerCommandAttributes,
    enums::v1::WorkflowTaskFailedCause,
    history::v1::{MarkerRecordedEventAttributes, history_event::Attributes},
};

pub(super) fn apply(
    draft: &mut Draft,
    command: &RecordMarkerCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    if command.marker_name.is_empty() {
        return Err(CommandRejection::new(
            WorkflowTaskFailedCause::BadRecordMarkerAttributes,
            "MarkerName is not set on RecordMarker command.",
        ));
    }
    let attributes = MarkerRecordedEventAttributes {
        marker_name: command.marker_name.clone(),
        details: command.details.clone(),
        workflow_task_completed_event_id: ctx.completed_event_id,
        header: command.header.clone(),
        failure: command.failure.clone(),
    };
    draft.append(Attributes::MarkerRecordedEventAttributes(attributes));
    Ok(())
}
