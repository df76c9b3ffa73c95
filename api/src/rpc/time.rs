//! Conversions between engine milliseconds and protobuf well-known types.

use prost_wkt_types::{Duration, Timestamp};

pub(crate) fn timestamp(ms: i64) -> Option<Timestamp> {
    (ms > 0).then(|| Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

pub(crate) fn duration(ms: i64) -> Option<Duration> {
    (ms > 0).then(|| Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

pub(crate) fn duration_ms(d: Option<&Duration>) -> i64 {
    d.map_or(0, |d| {
        d.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(d.nanos) / 1_000_000)
    })
}

/// A duration that is always present: zero means "not set", as the real server sends it (the
/// TypeScript SDK rejects an absent activity timeout).
pub(crate) fn duration_or_zero(ms: i64) -> Option<Duration> {
    duration(ms).or(Some(Duration {
        seconds: 0,
        nanos: 0,
    }))
}
