//! [`HostPort`]: a `HOST:PORT` address as an operator writes it in a flag, an environment
//! variable or the config file.
//!
//! Invariants: the host is an IP literal (IPv6 in brackets) or a syntactically valid DNS name, and
//! the port is 1..=65535. Nothing here resolves names: a DNS name may only exist later (a
//! Kubernetes pod's name appears when the pod is scheduled), so resolution happens when the
//! address is bound or dialled.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// A validated `HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort(String);

/// Why a string is not a `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("empty address; expected HOST:PORT")]
    Empty,
    #[error("{0:?} has a URL scheme; expected HOST:PORT without one")]
    Scheme(String),
    #[error("{0:?} has no port; expected HOST:PORT")]
    MissingPort(String),
    #[error("{0:?} has an invalid port; expected a number from 1 to 65535")]
    BadPort(String),
    #[error("{0:?} has an invalid host; expected an IP address ([..] around IPv6) or a DNS name")]
    BadHost(String),
}

impl HostPort {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host part, brackets of an IPv6 literal included.
    pub fn host(&self) -> &str {
        self.0
            .rsplit_once(':')
            .map_or(self.0.as_str(), |(host, _)| host)
    }

    /// Whether the host means every interface (`0.0.0.0`, `[::]`).
    pub fn is_wildcard(&self) -> bool {
        self.0
            .parse::<SocketAddr>()
            .is_ok_and(|socket| socket.ip().is_unspecified())
    }

    /// The port (validated at parse time).
    pub fn port(&self) -> u16 {
        self.0
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .expect("a HostPort always ends in a valid port")
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for HostPort {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<HostPort, AddressError> {
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if text.contains("://") {
            return Err(AddressError::Scheme(text.to_string()));
        }
        if let Ok(socket) = text.parse::<SocketAddr>() {
            return match socket.port() {
                0 => Err(AddressError::BadPort(text.to_string())),
                _ => Ok(HostPort(text.to_string())),
            };
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(AddressError::MissingPort(text.to_string()));
        };
        match port.parse::<u16>() {
            Ok(1..) => {}
            _ => return Err(AddressError::BadPort(text.to_string())),
        }
        if !is_dns_name(host) {
            return Err(AddressError::BadHost(text.to_string()));
        }
        Ok(HostPort(text.to_string()))
    }
}

/// RFC 1123 host name: dot-separated labels of 1–63 letters, digits and hyphens, not starting or
/// ending with a hyphen, at most 253 characters, one optional trailing dot. All-numeric names
/// are rejected: they are mistyped IPv4 addresses (`999.1.1.1`), not names.
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    host.split('.').all(label_ok) && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ip_literals_and_dns_names() {
        for good in [
            "127.0.0.1:7233",
            "0.0.0.0:7234",
            "[::1]:7233",
            "[::]:9090",
            "localhost:7233",
            "perdura-0.perdura-peer.default.svc.cluster.local:7234",
            "node-1.example.com.:1",
            "perdura-1:65535",
        ] {
            let parsed: HostPort = good.parse().unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(parsed.as_str(), good);
        }
        assert_eq!("[::1]:7233".parse::<HostPort>().expect("v6").port(), 7233);
        assert_eq!("a.b:42".parse::<HostPort>().expect("name").port(), 42);
        assert_eq!(
            "[::1]:7233".parse::<HostPort>().expect("v6").host(),
            "[::1]"
        );
        assert!("[::]:1".parse::<HostPort>().expect("v6").is_wildcard());
        assert!("0.0.0.0:1".parse::<HostPort>().expect("v4").is_wildcard());
        assert!(
            !"localhost:1"
                .parse::<HostPort>()
                .expect("name")
                .is_wildcard()
        );
    }

    #[test]
    fn rejects_malformed_addresses_with_the_reason() {
        type Expected = fn(&AddressError) -> bool;
        let cases: [(&str, Expected); 12] = [
            ("", |e| matches!(e, AddressError::Empty)),
            ("http://a:1", |e| matches!(e, AddressError::Scheme(_))),
            ("localhost", |e| matches!(e, AddressError::MissingPort(_))),
            ("localhost:", |e| matches!(e, AddressError::BadPort(_))),
            ("localhost:0", |e| matches!(e, AddressError::BadPort(_))),
            ("127.0.0.1:0", |e| matches!(e, AddressError::BadPort(_))),
            ("localhost:70000", |e| matches!(e, AddressError::BadPort(_))),
            ("localhost:http", |e| matches!(e, AddressError::BadPort(_))),
            (":7233", |e| matches!(e, AddressError::BadHost(_))),
            ("999.1.1.1:7233", |e| matches!(e, AddressError::BadHost(_))),
            ("::1:7233", |e| matches!(e, AddressError::BadHost(_))),
            ("bad_host name:1", |e| matches!(e, AddressError::BadHost(_))),
        ];
        for (text, expected) in cases {
            let error = text.parse::<HostPort>().expect_err(text);
            assert!(expected(&error), "{text:?} gave {error:?}");
        }
        assert!("-lead.example:1".parse::<HostPort>().is_err());
        assert!(
            format!("{}", "x:0".parse::<HostPort>().expect_err("port 0")).contains("1 to 65535")
        );
    }
}
