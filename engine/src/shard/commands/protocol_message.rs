//! COMMAND_TYPE_PROTOCOL_MESSAGE: applies the protocol message (an update's acceptance or
//! response) the command points to, where the command stands.

use crate::shard::commands::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use crate::shard::updates::UpdateMessage;
use temporalio_protos::temporal::api::{
    command::v1::ProtocolMessageCommandAttributes, enums::v1::WorkflowTaskFailedCause,
};

pub(crate) fn apply(
    draft: &mut Draft,
    attributes: &ProtocolMessageCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let Some(message) = ctx.messages.iter().find(|m| m.id == attributes.message_id) else {
        return Err(CommandRejection::new(
            WorkflowTaskFailedCause::BadUpdateWorkflowExecutionMessage,
            format!(
                "ProtocolMessageCommand references message {} which is not in the completion.",
                attributes.message_id
            ),
        ));
    };
    match UpdateMessage::decode(message)? {
        Some(body) => draft.apply_update_message(message, body),
        None => Err(CommandRejection::new(
            WorkflowTaskFailedCause::BadUpdateWorkflowExecutionMessage,
            format!("Protocol message {} is of an unknown protocol.", message.id),
        )),
    }
}
