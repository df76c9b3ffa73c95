//! [`InitialCluster`]: the node IDs and peer addresses a new cluster bootstraps with
//! (`1=HOST:PORT,2=HOST:PORT,3=HOST:PORT`, or a TOML table `{ 1 = "HOST:PORT", … }`).
//!
//! Invariants: at least one member; node IDs are 1 or more and unique; peer addresses are valid
//! [`HostPort`]s and unique (two nodes cannot share one peer listener).

use super::host_port::{AddressError, HostPort};
use super::key::parse_node_id;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Node ID → peer address, ordered by node ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialCluster(BTreeMap<u64, HostPort>);

/// Why an initial-cluster list is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitialClusterError {
    #[error("no members; expected ID=HOST:PORT,ID=HOST:PORT,…")]
    Empty,
    #[error("entry {0:?} is not ID=HOST:PORT")]
    NotAnAssignment(String),
    #[error("entry {0:?}: the node ID must be a whole number of 1 or more")]
    BadNodeId(String),
    #[error("node ID {0} is listed twice")]
    DuplicateNodeId(u64),
    #[error("entry {entry:?}: {source}")]
    BadAddress {
        entry: String,
        #[source]
        source: AddressError,
    },
    #[error("peer address {0} is listed for two nodes")]
    DuplicateAddress(HostPort),
}

impl InitialCluster {
    /// Builds the list from `(node ID text, address text)` pairs, as found in either syntax.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<InitialCluster, InitialClusterError> {
        let mut members = BTreeMap::new();
        for (id_text, address_text) in pairs {
            let entry = || format!("{id_text}={address_text}");
            let id = parse_node_id(id_text).map_err(|_| InitialClusterError::BadNodeId(entry()))?;
            let address = address_text.trim().parse::<HostPort>().map_err(|source| {
                InitialClusterError::BadAddress {
                    entry: entry(),
                    source,
                }
            })?;
            if members.values().any(|known| known == &address) {
                return Err(InitialClusterError::DuplicateAddress(address));
            }
            if members.insert(id, address).is_some() {
                return Err(InitialClusterError::DuplicateNodeId(id));
            }
        }
        if members.is_empty() {
            return Err(InitialClusterError::Empty);
        }
        Ok(InitialCluster(members))
    }

    pub fn members(&self) -> &BTreeMap<u64, HostPort> {
        &self.0
    }

    pub fn peer_of(&self, node_id: u64) -> Option<&HostPort> {
        self.0.get(&node_id)
    }
}

impl FromStr for InitialCluster {
    type Err = InitialClusterError;

    fn from_str(text: &str) -> Result<InitialCluster, InitialClusterError> {
        if text.trim().is_empty() {
            return Err(InitialClusterError::Empty);
        }
        let pairs = text
            .split(',')
            .map(|entry| {
                entry
                    .split_once('=')
                    .ok_or_else(|| InitialClusterError::NotAnAssignment(entry.trim().to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        InitialCluster::from_pairs(pairs)
    }
}

/// The command-line form, `1=HOST:PORT,2=HOST:PORT`.
impl fmt::Display for InitialCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (id, address)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}={address}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flag_form_in_id_order() {
        let cluster: InitialCluster = "3=c.example:7234, 1=127.0.0.1:7234,2=[::1]:7234"
            .parse()
            .expect("parse");
        let ids: Vec<u64> = cluster.members().keys().copied().collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(
            cluster.peer_of(3).map(HostPort::as_str),
            Some("c.example:7234")
        );
        assert_eq!(cluster.peer_of(4), None);
        assert_eq!(
            cluster.to_string(),
            "1=127.0.0.1:7234,2=[::1]:7234,3=c.example:7234"
        );
        let single: InitialCluster = "7=n7:1".parse().expect("one member");
        assert_eq!(single.members().len(), 1);
    }

    #[test]
    fn malformed_lists_say_what_is_wrong() {
        let check = |text: &str, expected: fn(&InitialClusterError) -> bool| {
            let error = text.parse::<InitialCluster>().expect_err(text);
            assert!(expected(&error), "{text:?} gave {error:?}");
        };
        check("", |e| matches!(e, InitialClusterError::Empty));
        check(
            "1=a:1,2",
            |e| matches!(e, InitialClusterError::NotAnAssignment(s) if s == "2"),
        );
        check("1=a:1,", |e| {
            matches!(e, InitialClusterError::NotAnAssignment(_))
        });
        check("0=a:1", |e| matches!(e, InitialClusterError::BadNodeId(_)));
        check("x=a:1", |e| matches!(e, InitialClusterError::BadNodeId(_)));
        check("-1=a:1", |e| matches!(e, InitialClusterError::BadNodeId(_)));
        check("1=a:1,1=b:1", |e| {
            matches!(e, InitialClusterError::DuplicateNodeId(1))
        });
        check("1=a:1,2=a:1", |e| {
            matches!(e, InitialClusterError::DuplicateAddress(_))
        });
        check("1=a", |e| {
            matches!(e, InitialClusterError::BadAddress { .. })
        });
        let message = "1=a:1,2=b:99999"
            .parse::<InitialCluster>()
            .expect_err("bad port")
            .to_string();
        assert!(
            message.contains("2=b:99999") && message.contains("port"),
            "{message}"
        );
    }
}
