//! UpsertWorkflowSearchAttributes → UpsertWorkflowSearchAttributes{search_attributes}; the
//! attributes are merged into the run's search attributes (a null or empty value removes the
//! key, as in Temporal) and returned by DescribeWorkflowExecution. Listing by them is not
//! implemented.
//!
//! Validation is minimal: every value must say its type (`metadata["type"]`, which the SDKs'
//! typed search-attribute APIs set) or use a predefined name. Unlike Temporal, custom names
//! need no registration (OperatorService.AddSearchAttributes is not implemented).

use super::{CommandContext, CommandRejection};
use crate::shard::draft::Draft;
use std::collections::HashMap;
use temporalio_protos::temporal::api::{
    command::v1::UpsertWorkflowSearchAttributesCommandAttributes,
    common::v1::{Payload, SearchAttributes},
    enums::v1::WorkflowTaskFailedCause as Cause,
    history::v1::{UpsertWorkflowSearchAttributesEventAttributes, history_event::Attributes},
};

/// Search attributes a Temporal server knows without registration: the predefined ones
/// (`TemporalChangeVersion` is upserted by `patched()`). Custom attributes need not be
/// registered here (there is no registry yet) but must carry their type.
const KNOWN_SEARCH_ATTRIBUTES: &[&str] = &[
    "TemporalChangeVersion",
    "BinaryChecksums",
    "BuildIds",
    "BatcherNamespace",
    "BatcherUser",
    "TemporalScheduledStartTime",
    "TemporalScheduledById",
    "TemporalSchedulePaused",
    "TemporalNamespaceDivision",
    "TemporalPauseInfo",
    "TemporalReportedProblems",
    "TemporalWorkerDeploymentVersion",
    "TemporalWorkflowVersioningBehavior",
    "TemporalWorkerDeployment",
    "TemporalUsedWorkerDeploymentVersions",
];

pub(super) fn apply(
    draft: &mut Draft,
    command: &UpsertWorkflowSearchAttributesCommandAttributes,
    ctx: &CommandContext,
) -> Result<(), CommandRejection> {
    let Some(upserted) = command
        .search_attributes
        .as_ref()
        .filter(|sa| !sa.indexed_fields.is_empty())
    else {
        return Err(CommandRejection::new(
            Cause::BadSearchAttributes,
            "SearchAttributes are not set on UpsertWorkflowSearchAttributesCommand.",
        ));
    };
    validate(upserted)?;
    let current = draft
        .ms
        .search_attributes
        .get_or_insert_with(SearchAttributes::default);
    merge(&mut current.indexed_fields, &upserted.indexed_fields);
    if current.indexed_fields.is_empty() {
        draft.ms.search_attributes = None;
    }
    draft.append(Attributes::UpsertWorkflowSearchAttributesEventAttributes(
        UpsertWorkflowSearchAttributesEventAttributes {
            workflow_task_completed_event_id: ctx.completed_event_id,
            search_attributes: Some(upserted.clone()),
        },
    ));
    Ok(())
}

fn validate(attributes: &SearchAttributes) -> Result<(), CommandRejection> {
    // Sorted, so that the reported attribute does not depend on hash order.
    let mut names: Vec<&String> = attributes.indexed_fields.keys().collect();
    names.sort();
    for name in names {
        let typed = attributes.indexed_fields[name]
            .metadata
            .contains_key("type");
        if !typed && !KNOWN_SEARCH_ATTRIBUTES.contains(&name.as_str()) {
            return Err(CommandRejection::new(
                Cause::BadSearchAttributes,
                format!(
                    "BadSearchAttributes: search attribute {name} is not defined and its value carries no type metadata."
                ),
            ));
        }
    }
    Ok(())
}

/// Temporal's merge: each upserted key replaces the stored value; a nil value (no data, `null`
/// or `[]`) removes the key.
pub(super) fn merge(stored: &mut HashMap<String, Payload>, upserted: &HashMap<String, Payload>) {
    for (name, value) in upserted {
        if is_nil(value) {
            stored.remove(name);
        } else {
            stored.insert(name.clone(), value.clone());
        }
    }
}

fn is_nil(payload: &Payload) -> bool {
    matches!(payload.data.as_slice(), b"" | b"null" | b"[]")
}
