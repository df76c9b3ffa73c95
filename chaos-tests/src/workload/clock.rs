//! The harness clock: the host's `CLOCK_MONOTONIC` in nanoseconds. Every chaos process (the
//! workload, the final read, the nemesis) reads the same clock, so their times compare; no
//! nemesis skews it (clock faults are injected into the servers only).

use crate::ids::HarnessNanos;

/// Now on the harness clock.
pub fn now() -> HarnessNanos {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    if rc != 0 {
        return HarnessNanos(0);
    }
    let secs = u64::try_from(time.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(time.tv_nsec).unwrap_or(0);
    HarnessNanos(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_harness_clock_never_goes_back() {
        let a = super::now();
        let b = super::now();
        assert!(a.0 > 0 && b >= a);
    }
}
