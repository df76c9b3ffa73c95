//! Peer traffic counters: messages and bytes sent per (group, message kind).
//!
//! Every outgoing peer call is counted twice: in the process-wide `metrics` registry
//! (`perdura_peer_messages_total{group,kind}`, `perdura_peer_bytes_total{group,kind}`, scraped on
//! `/metrics`) and in this node-local table, which tests and `docs/design` measurements read
//! without a metrics exporter. Bytes are request plus reply envelope sizes.

use super::proto::MessageKind;
use perdura_engine::GroupId;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Messages and bytes of one (group, kind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub messages: u64,
    pub bytes: u64,
}

/// A copy of the counters, by group and kind label (`heartbeat`, `append`, `vote`, …).
pub type TrafficTable = BTreeMap<(GroupId, &'static str), Traffic>;

#[derive(Default)]
pub(crate) struct PeerStats {
    table: Mutex<TrafficTable>,
}

impl PeerStats {
    pub fn record(&self, group: GroupId, kind: MessageKind, bytes: usize) {
        let bytes = bytes as u64;
        let label = kind.label();
        let group_label = group.0.to_string();
        metrics::counter!("perdura_peer_messages_total", "group" => group_label.clone(), "kind" => label)
            .increment(1);
        metrics::counter!("perdura_peer_bytes_total", "group" => group_label, "kind" => label)
            .increment(bytes);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let entry = table.entry((group, label)).or_default();
        entry.messages += 1;
        entry.bytes += bytes;
    }

    pub fn snapshot(&self) -> TrafficTable {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
