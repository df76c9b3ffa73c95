//! Conversions between protobuf durations/timestamps and the engine's milliseconds.

use prost_wkt_types::{Duration, Timestamp};

/// Upper bound of any duration the engine computes with (about 100 years), so that adding a
/// duration to a time never overflows.
pub(crate) const MAX_DURATION_MS: i64 = 100 * 365 * 24 * 3_600_000;

/// The latest time the engine's clock reaches: 9999-12-31T23:59:59.999Z, the last valid
/// protobuf `Timestamp`. Command times past it are clamped, so `clock + MAX_DURATION_MS`
/// sums never overflow.
pub(crate) const MAX_CLOCK_MS: i64 = 253_402_300_799_999;

/// Milliseconds of an optional protobuf duration: `None` ⇒ 0, negative ⇒ `Err`, capped at
/// [`MAX_DURATION_MS`]. Sub-millisecond remainders are rounded up so a positive duration never
/// becomes 0.
pub(crate) fn duration_ms(duration: Option<&Duration>) -> Result<i64, ()> {
    let Some(d) = duration else { return Ok(0) };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(());
    }
    let whole = d.seconds.saturating_mul(1_000);
    let part = i64::from(d.nanos).div_euclid(1_000_000) + i64::from(d.nanos % 1_000_000 != 0);
    Ok(whole.saturating_add(part).min(MAX_DURATION_MS))
}

/// A protobuf duration of `ms` milliseconds.
pub(crate) fn duration(ms: i64) -> Duration {
    Duration {
        seconds: ms.div_euclid(1_000),
        nanos: (ms.rem_euclid(1_000) * 1_000_000) as i32,
    }
}

/// `Some(duration)` when `ms > 0`: the engine leaves unset (infinite) timeouts out of events.
pub(crate) fn duration_opt(ms: i64) -> Option<Duration> {
    (ms > 0).then(|| duration(ms))
}

/// A protobuf timestamp `ms` milliseconds after the Unix epoch.
pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1_000),
        nanos: (ms.rem_euclid(1_000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_and_reject_negatives() {
        assert_eq!(duration_ms(None), Ok(0));
        assert_eq!(duration_ms(Some(&duration(2_500))), Ok(2_500));
        assert_eq!(
            duration_ms(Some(&Duration {
                seconds: 0,
                nanos: 1
            })),
            Ok(1)
        );
        assert_eq!(
            duration_ms(Some(&Duration {
                seconds: -1,
                nanos: 0
            })),
            Err(())
        );
        assert_eq!(
            duration_ms(Some(&Duration {
                seconds: i64::MAX,
                nanos: 0
            })),
            Ok(MAX_DURATION_MS)
        );
        assert_eq!(
            timestamp(1_500),
            Timestamp {
                seconds: 1,
                nanos: 500_000_000
            }
        );
        assert_eq!(duration_opt(0), None);
    }
}
