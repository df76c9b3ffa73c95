//! The workload's two phases: *main* (every kind of operation) until told to stop, then *drain*
//! (polls only, so started workflows can finish) for a fixed time, then done.
//!
//! The stop comes from a `watch` channel: the harness flips it when the run's duration is over;
//! a stand-alone workload flips it from a timer. The drain starts when the first process sees the
//! stop (or runs out of operation budget) and lasts the same for every process.

use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Which operations a process may choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Everything.
    Main,
    /// Only polls: let running workflows finish, start nothing new.
    Drain,
}

pub struct Phases {
    stop: watch::Receiver<bool>,
    drain: Duration,
    drain_until: OnceLock<Instant>,
}

impl Phases {
    pub fn new(stop: watch::Receiver<bool>, drain: Duration) -> Phases {
        Phases {
            stop,
            drain,
            drain_until: OnceLock::new(),
        }
    }

    /// The phase a process is in now; `None` when the run is over. `has_budget`: the process
    /// may still start a main-phase operation.
    pub fn phase(&self, has_budget: bool) -> Option<Phase> {
        if has_budget && !*self.stop.borrow() && self.drain_until.get().is_none() {
            return Some(Phase::Main);
        }
        let until = *self.drain_until.get_or_init(|| Instant::now() + self.drain);
        (Instant::now() < until).then_some(Phase::Drain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_until_stopped_then_drain_for_its_time_then_over() {
        let (stop, rx) = watch::channel(false);
        let phases = Phases::new(rx, Duration::from_millis(200));
        assert_eq!(phases.phase(true), Some(Phase::Main));
        stop.send_replace(true);
        assert_eq!(phases.phase(true), Some(Phase::Drain));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(phases.phase(true), None);
    }

    #[test]
    fn an_exhausted_budget_drains_everyone() {
        let (_stop, rx) = watch::channel(false);
        let phases = Phases::new(rx, Duration::from_secs(60));
        assert_eq!(phases.phase(false), Some(Phase::Drain));
        assert_eq!(
            phases.phase(true),
            Some(Phase::Drain),
            "once draining, a process with budget does not go back to the main phase"
        );
    }
}
