//! [`QueryAnswer`]: a worker's answer to a query, as it travels back to the query's origin.

use serde::{Deserialize, Serialize};
use temporalio_protos::temporal::api::{
    common::v1::Payloads, enums::v1::QueryResultType, failure::v1::Failure,
    query::v1::WorkflowQueryResult,
};

/// A worker's answer to a query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QueryAnswer {
    Answered(#[serde(with = "perdura_engine::codec::proto_opt")] Option<Payloads>),
    Failed {
        message: String,
        #[serde(with = "boxed_failure")]
        failure: Option<Box<Failure>>,
    },
}

impl QueryAnswer {
    /// The answer carried by a `query_results` entry of a workflow task completion.
    pub fn of_result(result: &WorkflowQueryResult) -> QueryAnswer {
        if result.result_type == QueryResultType::Failed as i32 {
            QueryAnswer::Failed {
                message: result.error_message.clone(),
                failure: result.failure.clone().map(Box::new),
            }
        } else {
            QueryAnswer::Answered(result.answer.clone())
        }
    }
}

/// A boxed optional failure as its protobuf encoding (the variant stays small).
mod boxed_failure {
    use perdura_engine::codec::proto_opt;
    use serde::{Deserializer, Serializer};
    use temporalio_protos::temporal::api::failure::v1::Failure;

    pub fn serialize<S: Serializer>(
        failure: &Option<Box<Failure>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        proto_opt::serialize(&failure.as_deref().cloned(), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<Failure>>, D::Error> {
        proto_opt::deserialize::<Failure, D>(d).map(|f| f.map(Box::new))
    }
}
