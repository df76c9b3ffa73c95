//! Parses `temporal server start-dev` arguments, keeping the ones Perdura supports and skipping
//! the rest (with their values), so SDK test environments can launch Perdura unchanged.

use crate::cli::ServeOptions;
use anyhow::{Context, bail};

/// Dev-server flags that take no value.
const BOOLEAN_FLAGS: [&str; 4] = [
    "--headless",
    "--ui-public-path-disable",
    "--sqlite-pragma-disable",
    "--help",
];

pub fn parse(args: &[String]) -> anyhow::Result<ServeOptions> {
    let mut options = ServeOptions {
        data_dir: None,
        ip: "127.0.0.1".parse().expect("literal address"),
        port: 7233,
        groups: 4,
        namespaces: Vec::new(),
        log_level: "warn".into(),
        metrics_addr: None,
    };
    let mut i = 0;
    while i < args.len() {
        let (flag, inline) = match args[i].split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (args[i].clone(), None),
        };
        if !flag.starts_with('-') {
            bail!("unexpected argument {flag:?} to `server start-dev`");
        }
        let takes_value = !BOOLEAN_FLAGS.contains(&flag.as_str());
        let value = match (&inline, takes_value) {
            (Some(v), _) => Some(v.clone()),
            (None, true) if args.get(i + 1).is_some_and(|next| !next.starts_with("--")) => {
                i += 1;
                Some(args[i].clone())
            }
            _ => None,
        };
        i += 1;
        let required = || {
            value
                .clone()
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--port" | "-p" => options.port = required()?.parse().context("--port")?,
            "--ip" => options.ip = required()?.parse().context("--ip")?,
            "--namespace" | "-n" => options.namespaces.push(required()?),
            "--db-filename" | "-f" => options.data_dir = Some(required()?.into()),
            "--log-level" => options.log_level = required()?,
            "--groups" => options.groups = required()?.parse().context("--groups")?,
            // Everything else the dev server knows (--dynamic-config-value, --log-format,
            // --ui-port, --search-attribute, --http-port, --headless …) is accepted and ignored.
            _ => {}
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn sdk_test_environment_command_line() {
        // The argv Python's WorkflowEnvironment.start_local passes (TEMPORAL-WIRE.md §4).
        let options = parse(&args(
            "--port 41234 --namespace default --ip 127.0.0.1 --log-format pretty --log-level warn \
             --dynamic-config-value frontend.enableServerVersionCheck=false \
             --dynamic-config-value frontend.enableUpdateWorkflowExecution=true --headless \
             --search-attribute Foo=Keyword --db-filename /tmp/x",
        ))
        .expect("parse");
        assert_eq!(options.port, 41234);
        assert_eq!(options.namespaces, vec!["default".to_string()]);
        assert_eq!(options.data_dir, Some("/tmp/x".into()));
        assert_eq!(options.log_level, "warn");
    }

    #[test]
    fn inline_values_and_errors() {
        let options = parse(&args("--port=9999 --headless --ui-port 8233")).expect("parse");
        assert_eq!(options.port, 9999);
        assert_eq!(options.data_dir, None);
        assert!(parse(&args("--port notanumber")).is_err());
        assert!(parse(&args("stray")).is_err());
    }
}
