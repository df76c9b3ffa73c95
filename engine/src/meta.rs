//! The meta group's state: namespaces and the slot map. Replicated through group 0.

use crate::error::EngineError;
use crate::slots::SlotMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A registered namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub name: String,
    /// Stable UUID, chosen by the proposer (the engine has no randomness).
    pub id: String,
    pub description: String,
    pub owner_email: String,
    /// How long closed workflows are kept, in milliseconds.
    pub retention_ms: i64,
    pub registered_at_ms: i64,
}

/// Commands of the meta group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Written once when the cluster is created: the slot map and the `default` namespace.
    /// Idempotent: a second bootstrap changes nothing.
    Bootstrap {
        cluster_id: String,
        slot_map: SlotMap,
        default_namespace: NamespaceRecord,
    },
    RegisterNamespace(NamespaceRecord),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaReply {
    Bootstrapped { already: bool },
    NamespaceRegistered,
}

/// State of the meta group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    pub cluster_id: Option<String>,
    pub slot_map: Option<SlotMap>,
    pub namespaces: BTreeMap<String, NamespaceRecord>,
}

impl MetaState {
    pub fn apply(&mut self, command: MetaCommand) -> Result<MetaReply, EngineError> {
        match command {
            MetaCommand::Bootstrap {
                cluster_id,
                slot_map,
                default_namespace,
            } => {
                if self.cluster_id.is_some() {
                    return Ok(MetaReply::Bootstrapped { already: true });
                }
                self.cluster_id = Some(cluster_id);
                self.slot_map = Some(slot_map);
                self.namespaces
                    .insert(default_namespace.name.clone(), default_namespace);
                Ok(MetaReply::Bootstrapped { already: false })
            }
            MetaCommand::RegisterNamespace(record) => {
                if record.name.is_empty() {
                    return Err(EngineError::InvalidArgument(
                        "Namespace name is empty.".into(),
                    ));
                }
                if self.namespaces.contains_key(&record.name) {
                    return Err(EngineError::NamespaceAlreadyExists(record.name));
                }
                self.namespaces.insert(record.name.clone(), record);
                Ok(MetaReply::NamespaceRegistered)
            }
        }
    }

    pub fn namespace(&self, name: &str) -> Option<&NamespaceRecord> {
        self.namespaces.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str) -> NamespaceRecord {
        NamespaceRecord {
            name: name.into(),
            id: format!("id-{name}"),
            description: String::new(),
            owner_email: String::new(),
            retention_ms: 86_400_000,
            registered_at_ms: 1,
        }
    }

    #[test]
    fn bootstrap_is_idempotent_and_register_rejects_duplicates() {
        let mut state = MetaState::default();
        let boot = MetaCommand::Bootstrap {
            cluster_id: "c".into(),
            slot_map: SlotMap::even(4),
            default_namespace: ns("default"),
        };
        assert_eq!(
            state.apply(boot.clone()),
            Ok(MetaReply::Bootstrapped { already: false })
        );
        assert_eq!(
            state.apply(boot),
            Ok(MetaReply::Bootstrapped { already: true })
        );
        assert!(
            state
                .apply(MetaCommand::RegisterNamespace(ns("other")))
                .is_ok()
        );
        assert_eq!(
            state.apply(MetaCommand::RegisterNamespace(ns("other"))),
            Err(EngineError::NamespaceAlreadyExists("other".into()))
        );
        assert_eq!(state.namespaces.len(), 2);
    }
}
