//! The gRPC workload of [`crate::workload`] as the harness's [`Workload`]: starter and worker in
//! one, over the members' Temporal endpoints (followed through [`Targets`] as the nemesis
//! replaces members), recording into the run's shared history, main phase until the run's
//! duration is over, then a drain of polls so started workflows can finish.

use super::workload::{Workload, WorkloadContext, WorkloadError, WorkloadFuture};
use crate::workload::nodes::NodeAddr;
use crate::workload::{ProcessConfig, run_processes};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct GrpcWorkload {
    /// Logical client processes.
    pub concurrency: u64,
    /// Polls only after the run's duration, so started workflows finish.
    pub drain: Duration,
}

impl Default for GrpcWorkload {
    fn default() -> Self {
        GrpcWorkload {
            concurrency: 6,
            drain: Duration::from_secs(8),
        }
    }
}

impl Workload for GrpcWorkload {
    fn name(&self) -> &'static str {
        "grpc"
    }

    fn run(&self, context: WorkloadContext) -> WorkloadFuture {
        let config = ProcessConfig {
            seed: context.seed,
            max_ops: None,
            concurrency: self.concurrency,
            drain: self.drain,
        };
        Box::pin(async move {
            let nodes: Vec<NodeAddr> = context
                .targets
                .get()
                .into_iter()
                .map(|(id, addr)| NodeAddr { id, addr })
                .collect();
            run_processes(
                &nodes,
                Some(context.targets.clone()),
                &config,
                context.recorder.clone(),
                context.stop.clone(),
            )
            .await
            .map_err(|e| WorkloadError::Task(e.to_string()))
        })
    }
}
