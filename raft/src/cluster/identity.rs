//! The node's identity in its data dir: which node id the dir belongs to and, once known, which
//! cluster.
//!
//! The file `DATA_DIR/identity` is written with the node id on the first cluster start (before any
//! group opens) and gains the cluster id once the meta group's bootstrap is applied locally. A
//! later start refuses a data dir of another node id, and the cluster id is what every peer
//! message carries (see [`crate::peer`]). Format: `key = value` lines, `#` comments; written to a
//! temporary file, fsynced and renamed, so a crash leaves the old or the new file.

use crate::error::RaftError;
use std::io::Write;
use std::path::{Path, PathBuf};

const FILE: &str = "identity";

/// The contents of the identity file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    pub node_id: u64,
    pub cluster_id: Option<String>,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

fn corrupt(file: &Path, detail: impl std::fmt::Display) -> RaftError {
    RaftError::Identity(format!("{}: {detail}", file.display()))
}

/// Reads the identity file; `None` if the data dir has none yet.
pub fn read(data_dir: &Path) -> Result<Option<NodeIdentity>, RaftError> {
    let file = path(data_dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut node_id = None;
    let mut cluster_id = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(corrupt(&file, format!("not `key = value`: {line:?}")));
        };
        let value = value.trim();
        match key.trim() {
            "node_id" => {
                node_id = Some(value.parse::<u64>().map_err(|e| corrupt(&file, e))?);
            }
            "cluster_id" if !value.is_empty() => cluster_id = Some(value.to_string()),
            "cluster_id" => {}
            other => return Err(corrupt(&file, format!("unknown key {other:?}"))),
        }
    }
    let node_id = node_id.ok_or_else(|| corrupt(&file, "no node_id"))?;
    Ok(Some(NodeIdentity {
        node_id,
        cluster_id,
    }))
}

/// Writes the identity file atomically (temporary file, fsync, rename, fsync of the dir).
pub fn write(data_dir: &Path, identity: &NodeIdentity) -> Result<(), RaftError> {
    let file = path(data_dir);
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    let mut text = String::from(
        "# Perdura node identity. A node refuses a data dir of another node id or cluster.\n",
    );
    text.push_str(&format!("node_id = {}\n", identity.node_id));
    if let Some(cluster_id) = &identity.cluster_id {
        text.push_str(&format!("cluster_id = {cluster_id}\n"));
    }
    {
        let mut out = std::fs::File::create(&tmp)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, &file)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(())
}

/// Checks the data dir against `node_id` and returns its identity, creating the file on a first
/// start. A dir that belongs to another node id is refused.
pub fn claim(data_dir: &Path, node_id: u64) -> Result<NodeIdentity, RaftError> {
    match read(data_dir)? {
        Some(identity) if identity.node_id != node_id => Err(RaftError::Identity(format!(
            "the data dir {} belongs to node {}, not node {node_id}; use that node id or another \
             data dir",
            data_dir.display(),
            identity.node_id
        ))),
        Some(identity) => Ok(identity),
        None => {
            let identity = NodeIdentity {
                node_id,
                cluster_id: None,
            };
            write(data_dir, &identity)?;
            Ok(identity)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_creates_then_accepts_the_same_node_and_refuses_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = claim(dir.path(), 2).expect("first claim");
        assert_eq!(first.cluster_id, None);
        write(
            dir.path(),
            &NodeIdentity {
                node_id: 2,
                cluster_id: Some("c-1".into()),
            },
        )
        .expect("write");
        let again = claim(dir.path(), 2).expect("same node");
        assert_eq!(again.cluster_id.as_deref(), Some("c-1"));
        let err = claim(dir.path(), 3).expect_err("another node");
        assert!(err.to_string().contains("belongs to node 2"), "{err}");
    }
}
