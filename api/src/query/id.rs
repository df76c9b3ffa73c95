//! [`QueryId`]: names a query cluster-wide — the node that holds it and its number there.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A query's cluster-wide name. The origin is the node that received the QueryWorkflow call
/// and holds the client's waiting request; the number is unique on that node.
///
/// Workers see it twice: as the key of a query attached to a workflow task (its
/// [`fmt::Display`] form, `"<origin>:<number>"`, which the worker echoes in `query_results`)
/// and inside a direct query task's token (origin in `started_event_id`, number in
/// `scheduled_event_id`). Either way the answer names the node it must go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QueryId {
    pub origin: u64,
    pub number: i64,
}

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.origin, self.number)
    }
}

impl FromStr for QueryId {
    type Err = ();

    fn from_str(text: &str) -> Result<QueryId, ()> {
        let (origin, number) = text.split_once(':').ok_or(())?;
        Ok(QueryId {
            origin: origin.parse().map_err(|_| ())?,
            number: number.parse().map_err(|_| ())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attached_query_key_round_trips_and_rejects_garbage() {
        let id = QueryId {
            origin: 3,
            number: 1_700_000_000_000_123,
        };
        assert_eq!(id.to_string().parse::<QueryId>(), Ok(id));
        for bad in ["", "3", "x:1", "3:y", "3:1:2", "-1:5"] {
            assert!(bad.parse::<QueryId>().is_err(), "{bad}");
        }
    }
}
