//! Updates inside a run: admission, delivery to the worker as protocol messages on a workflow
//! task, the worker's acceptance, rejection and response, and what closing the run does to
//! updates in flight (TEMPORAL-WIRE.md, Tier 3 "Update delivery").
//!
//! * Admitted updates ride on the next workflow task that starts: its poll response carries one
//!   message `<update id>/request` per update, sequenced after the event before its
//!   WorkflowTaskStarted. They are then *sent* to that task.
//! * The completion's messages accept (WorkflowExecutionUpdateAccepted), complete
//!   (WorkflowExecutionUpdateCompleted) or reject (no event) them; accept and complete are
//!   written where their COMMAND_TYPE_PROTOCOL_MESSAGE command stands. An update sent to the
//!   task but not answered is rejected by the server.
//! * When the run closes, updates not yet accepted are aborted (the client gets NotFound), and
//!   accepted ones complete with a server failure.

use crate::shard::command::UpdateStatus;
use crate::shard::commands::CommandRejection;
use crate::shard::draft::Draft;
use crate::shard::mutable_state::{MutableState, UpdatePhase, UpdateState};
use prost::Message as _;
use temporalio_protos::temporal::api::{
    enums::v1::{UpdateWorkflowExecutionLifecycleStage as Stage, WorkflowTaskFailedCause},
    failure::v1::{ApplicationFailureInfo, Failure, failure::FailureInfo},
    history::v1::{
        WorkflowExecutionUpdateAcceptedEventAttributes,
        WorkflowExecutionUpdateCompletedEventAttributes, history_event::Attributes,
    },
    protocol::v1::{Message, message::SequencingId},
    update::v1::{Acceptance, Meta, Outcome, Rejection, Request, Response, outcome},
};

const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// At most this many updates of one run may be in flight (the real server's default).
pub(crate) const MAX_IN_FLIGHT_UPDATES: usize = 10;
/// At most this many updates per run in total (the real server's default).
pub(crate) const MAX_TOTAL_UPDATES: usize = 2000;

/// A worker's protocol message about an update.
pub(crate) enum UpdateMessage {
    Acceptance(Acceptance),
    Rejection(Rejection),
    Response(Response),
}

impl UpdateMessage {
    /// Decodes a message body; `Ok(None)` for bodies of other protocols (ignored).
    pub(crate) fn decode(message: &Message) -> Result<Option<UpdateMessage>, CommandRejection> {
        let Some(body) = &message.body else {
            return Err(bad_message(format!(
                "Protocol message {} has no body.",
                message.id
            )));
        };
        let type_name = body
            .type_url
            .strip_prefix(TYPE_URL_PREFIX)
            .unwrap_or(&body.type_url);
        let bytes = body.value.as_slice();
        let undecodable =
            |_| bad_message(format!("Protocol message {} does not decode.", message.id));
        Ok(Some(match type_name {
            "temporal.api.update.v1.Acceptance" => {
                UpdateMessage::Acceptance(Acceptance::decode(bytes).map_err(undecodable)?)
            }
            "temporal.api.update.v1.Rejection" => {
                UpdateMessage::Rejection(Rejection::decode(bytes).map_err(undecodable)?)
            }
            "temporal.api.update.v1.Response" => {
                UpdateMessage::Response(Response::decode(bytes).map_err(undecodable)?)
            }
            _ => return Ok(None),
        }))
    }

    /// Whether applying it writes an event.
    pub(crate) fn writes_event(&self) -> bool {
        !matches!(self, UpdateMessage::Rejection(_))
    }
}

fn bad_message(message: String) -> CommandRejection {
    CommandRejection::new(
        WorkflowTaskFailedCause::BadUpdateWorkflowExecutionMessage,
        message,
    )
}

fn server_failure(message: &str, failure_type: &str) -> Outcome {
    Outcome {
        value: Some(outcome::Value::Failure(Failure {
            message: message.into(),
            source: "Server".into(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: failure_type.into(),
                    non_retryable: true,
                    ..Default::default()
                },
            )),
            ..Default::default()
        })),
    }
}

/// The requests of the updates sent to the task that started with `started_event_id`, in
/// admission order: the poll response's `messages`.
pub(crate) fn request_messages(ms: &MutableState, started_event_id: i64) -> Vec<Message> {
    let mut sent: Vec<(&String, &UpdateState)> = ms
        .updates
        .iter()
        .filter(|(_, u)| u.phase == UpdatePhase::Sent { started_event_id })
        .collect();
    sent.sort_by_key(|(_, u)| u.seq);
    sent.into_iter()
        .map(|(update_id, update)| Message {
            id: format!("{update_id}/request"),
            protocol_instance_id: update_id.clone(),
            sequencing_id: Some(SequencingId::EventId(started_event_id - 1)),
            body: Some(prost_wkt_types::Any {
                type_url: format!("{TYPE_URL_PREFIX}temporal.api.update.v1.Request"),
                value: crate::canonical::encode(&update.request.clone().unwrap_or_default()),
            }),
        })
        .collect()
}

/// Where the update stands, if the run knows it.
pub fn update_status(ms: &MutableState, update_id: &str) -> Option<UpdateStatus> {
    let update = ms.updates.get(update_id)?;
    let (stage, outcome, aborted) = match &update.phase {
        UpdatePhase::Admitted | UpdatePhase::Sent { .. } => (Stage::Admitted, None, false),
        UpdatePhase::Accepted { .. } => (Stage::Accepted, None, false),
        UpdatePhase::Completed { outcome, .. } => (Stage::Completed, Some(outcome.clone()), false),
        UpdatePhase::Aborted => (Stage::Completed, None, true),
    };
    Some(UpdateStatus {
        run_id: ms.key.run_id.clone(),
        stage: stage as i32,
        outcome,
        aborted,
    })
}

impl Draft {
    /// Admits a new update; it waits for a workflow task.
    pub fn admit_update(&mut self, update_id: String, request: Request) {
        let seq = self.ms.updates.len() as u64;
        self.ms.updates.insert(
            update_id,
            UpdateState {
                seq,
                phase: UpdatePhase::Admitted,
                request: Some(request),
            },
        );
    }

    pub fn has_admitted_updates(&self) -> bool {
        self.ms
            .updates
            .values()
            .any(|u| u.phase == UpdatePhase::Admitted)
    }

    /// The task that started with `started_event_id` carries every update not yet accepted or
    /// rejected (again, for those a failed attempt carried).
    pub fn send_updates(&mut self, started_event_id: i64) {
        for update in self.ms.updates.values_mut() {
            if matches!(
                update.phase,
                UpdatePhase::Admitted | UpdatePhase::Sent { .. }
            ) {
                update.phase = UpdatePhase::Sent { started_event_id };
            }
        }
    }

    /// Applies one worker message. Acceptances and responses write their event (at the
    /// position of their command, `completed_event_id` being the task's WorkflowTaskCompleted).
    pub(crate) fn apply_update_message(
        &mut self,
        message: &Message,
        body: UpdateMessage,
    ) -> Result<(), CommandRejection> {
        let update_id = message.protocol_instance_id.clone();
        match body {
            UpdateMessage::Acceptance(acceptance) => self.accept_update(update_id, acceptance),
            UpdateMessage::Rejection(rejection) => self.reject_update(&update_id, rejection),
            UpdateMessage::Response(response) => self.complete_update(update_id, response),
        }
    }

    fn accept_update(
        &mut self,
        update_id: String,
        acceptance: Acceptance,
    ) -> Result<(), CommandRejection> {
        let stored = match self.ms.updates.get(&update_id) {
            Some(u) if matches!(u.phase, UpdatePhase::Admitted | UpdatePhase::Sent { .. }) => {
                u.request.clone()
            }
            // An update the server lost track of is resurrected from the acceptance.
            None if acceptance.accepted_request.is_some() => None,
            _ => {
                return Err(bad_message(format!(
                    "Update {update_id} cannot be accepted: it is not waiting for acceptance."
                )));
            }
        };
        let attributes = WorkflowExecutionUpdateAcceptedEventAttributes {
            protocol_instance_id: update_id.clone(),
            accepted_request_message_id: acceptance.accepted_request_message_id,
            accepted_request_sequencing_event_id: acceptance.accepted_request_sequencing_event_id,
            accepted_request: stored.or(acceptance.accepted_request),
        };
        let accepted_event_id = self.append(
            Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(attributes),
        );
        let seq = self.ms.updates.len() as u64;
        let update = self.ms.updates.entry(update_id).or_insert(UpdateState {
            seq,
            phase: UpdatePhase::Admitted,
            request: None,
        });
        update.phase = UpdatePhase::Accepted { accepted_event_id };
        update.request = None;
        Ok(())
    }

    fn reject_update(
        &mut self,
        update_id: &str,
        rejection: Rejection,
    ) -> Result<(), CommandRejection> {
        let Some(update) = self
            .ms
            .updates
            .get_mut(update_id)
            .filter(|u| matches!(u.phase, UpdatePhase::Admitted | UpdatePhase::Sent { .. }))
        else {
            // A rejection of an update the server does not wait for changes nothing.
            return Ok(());
        };
        update.phase = UpdatePhase::Completed {
            accepted_event_id: 0,
            outcome: Outcome {
                value: Some(outcome::Value::Failure(
                    rejection.failure.unwrap_or_default(),
                )),
            },
        };
        update.request = None;
        Ok(())
    }

    fn complete_update(
        &mut self,
        update_id: String,
        response: Response,
    ) -> Result<(), CommandRejection> {
        let Some(UpdatePhase::Accepted { accepted_event_id }) =
            self.ms.updates.get(&update_id).map(|u| u.phase.clone())
        else {
            return Err(bad_message(format!(
                "Update {update_id} cannot be completed: it was not accepted."
            )));
        };
        let outcome = response.outcome.unwrap_or_default();
        let meta = response.meta.unwrap_or_else(|| Meta {
            update_id: update_id.clone(),
            identity: String::new(),
        });
        self.append(Attributes::WorkflowExecutionUpdateCompletedEventAttributes(
            WorkflowExecutionUpdateCompletedEventAttributes {
                meta: Some(meta),
                accepted_event_id,
                outcome: Some(outcome.clone()),
            },
        ));
        if let Some(update) = self.ms.updates.get_mut(&update_id) {
            update.phase = UpdatePhase::Completed {
                accepted_event_id,
                outcome,
            };
        }
        Ok(())
    }

    /// Rejects every update sent to the task that started with `started_event_id` that its
    /// completion neither accepted nor rejected.
    pub fn reject_unprocessed_updates(&mut self, started_event_id: i64) {
        let outcome = server_failure(
            "Workflow Update is rejected because it wasn't processed by worker. Probably, Workflow Update is not supported by the worker.",
            "UnprocessedUpdate",
        );
        for update in self.ms.updates.values_mut() {
            if update.phase == (UpdatePhase::Sent { started_event_id }) {
                update.phase = UpdatePhase::Completed {
                    accepted_event_id: 0,
                    outcome: outcome.clone(),
                };
                update.request = None;
            }
        }
    }

    /// The run closed: updates not yet accepted are aborted, accepted ones fail.
    pub fn abort_updates(&mut self) {
        let failed = server_failure(
            "Workflow Update failed because the Workflow completed before the Update completed.",
            "AcceptedUpdateCompletedWorkflow",
        );
        for update in self.ms.updates.values_mut() {
            match update.phase {
                UpdatePhase::Admitted | UpdatePhase::Sent { .. } => {
                    update.phase = UpdatePhase::Aborted;
                }
                UpdatePhase::Accepted { accepted_event_id } => {
                    update.phase = UpdatePhase::Completed {
                        accepted_event_id,
                        outcome: failed.clone(),
                    };
                }
                UpdatePhase::Completed { .. } | UpdatePhase::Aborted => continue,
            }
            update.request = None;
        }
    }
}
