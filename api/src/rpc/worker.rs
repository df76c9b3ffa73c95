//! ShutdownWorker: drops the stickiness of every run bound to the worker's sticky queue, so their
//! next workflow tasks go to the normal queue at once instead of after the sticky
//! schedule-to-start timeout. The runs may live in any group, so the command goes to each.

use crate::frontend::Frontend;
use crate::validate;
use perdura_engine::ShardCommandKind;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;

impl Frontend {
    pub(crate) async fn rpc_shutdown_worker(
        &self,
        request: ws::ShutdownWorkerRequest,
    ) -> Result<ws::ShutdownWorkerResponse, Status> {
        self.namespace(&request.namespace).await?;
        validate::optional_id("StickyTaskQueue", &request.sticky_task_queue)?;
        if request.sticky_task_queue.is_empty() {
            return Ok(ws::ShutdownWorkerResponse::default());
        }
        for group in self.raft.shard_groups() {
            let kind = ShardCommandKind::ShutdownWorker {
                namespace: request.namespace.clone(),
                sticky_task_queue: request.sticky_task_queue.clone(),
            };
            self.propose(group, kind).await?;
        }
        Ok(ws::ShutdownWorkerResponse::default())
    }
}
