//! The environment layer: `PERDURA_NODE_ID`, `PERDURA_DATA_DIR`, … (one variable per [`Key`]).
//!
//! An empty variable counts as unset, so templates may leave one blank. Other `PERDURA_*`
//! variables are not ours to judge (test harnesses set some) and are ignored.

use super::ConfigError;
use super::key::Key;
use super::layer::ConfigLayer;
use std::ffi::OsString;

/// Reads the settings from `vars` (the process environment in production, a list in tests).
pub fn layer_from_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<ConfigLayer, ConfigError> {
    let mut layer = ConfigLayer::default();
    for (name, value) in vars {
        let Some(key) = Key::ALL
            .into_iter()
            .find(|key| name.to_str() == Some(key.env_var().as_str()))
        else {
            continue;
        };
        let origin = || format!("environment variable {}", key.env_var());
        let Some(text) = value.to_str() else {
            return Err(ConfigError::Invalid {
                origin: origin(),
                reason: "not valid UTF-8".into(),
            });
        };
        if text.is_empty() {
            continue;
        }
        layer
            .set_from_text(key, text)
            .map_err(|reason| ConfigError::Invalid {
                origin: origin(),
                reason,
            })?;
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value)))
            .collect()
    }

    #[test]
    fn reads_every_perdura_variable() {
        let layer = layer_from_env(vars(&[
            ("PERDURA_NODE_ID", "2"),
            ("PERDURA_DATA_DIR", "/data"),
            ("PERDURA_GRPC_ADDR", "0.0.0.0:7233"),
            ("PERDURA_PEER_ADDR", "0.0.0.0:7234"),
            ("PERDURA_INITIAL_CLUSTER", "1=a:7234,2=b:7234,3=c:7234"),
            ("PERDURA_GROUPS", "8"),
            ("PERDURA_METRICS_ADDR", "0.0.0.0:9090"),
            ("PERDURA_LOG_LEVEL", "debug"),
            ("PATH", "/usr/bin"),
            ("PERDURA_SERVER_CMD", "something else entirely"),
        ]))
        .expect("env");
        assert_eq!(layer.node_id, Some(2));
        assert_eq!(layer.data_dir, Some(PathBuf::from("/data")));
        assert_eq!(
            layer.grpc_addr.map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:7233")
        );
        assert_eq!(layer.peer_addr.map(|a| a.port()), Some(7234));
        assert_eq!(layer.initial_cluster.map(|c| c.members().len()), Some(3));
        assert_eq!(layer.groups, Some(8));
        assert_eq!(layer.metrics_addr.map(|a| a.port()), Some(9090));
        assert_eq!(layer.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn empty_is_unset_and_bad_values_name_the_variable() {
        let layer = layer_from_env(vars(&[("PERDURA_NODE_ID", "")])).expect("empty");
        assert_eq!(layer, ConfigLayer::default());
        let error = layer_from_env(vars(&[("PERDURA_GROUPS", "many")])).expect_err("bad");
        let message = error.to_string();
        assert!(
            message.contains("PERDURA_GROUPS") && message.contains("\"many\""),
            "{message}"
        );
        let error = layer_from_env(vars(&[("PERDURA_INITIAL_CLUSTER", "1=a:1;2=b:1")]))
            .expect_err("bad list");
        assert!(
            error.to_string().contains("PERDURA_INITIAL_CLUSTER"),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_values_are_rejected() {
        use std::os::unix::ffi::OsStringExt;
        let bad = vec![(
            OsString::from("PERDURA_DATA_DIR"),
            OsString::from_vec(vec![0x66, 0xff]),
        )];
        let error = layer_from_env(bad).expect_err("not utf-8");
        assert!(error.to_string().contains("UTF-8"), "{error}");
    }
}
