//! One file per RPC family. Each adds `rpc_*` methods to [`crate::Frontend`].

pub(crate) mod activity_by_id;
pub(crate) mod cancel;
pub(crate) mod describe;
pub(crate) mod history;
pub(crate) mod multi_op;
pub(crate) mod namespace;
pub(crate) mod poll;
pub(crate) mod query;
pub(crate) mod respond;
pub(crate) mod signal;
pub(crate) mod start;
pub(crate) mod system;
pub(crate) mod time;
pub(crate) mod update;
pub(crate) mod worker;
