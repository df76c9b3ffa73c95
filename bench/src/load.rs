//! The load loop and its report.

use crate::Options;
use crate::worker::{Completions, activity_poller, workflow_poller};
use perdura_api::pb::workflowservice::workflow_service_client::WorkflowServiceClient;
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::common::v1::{Payload, Payloads, WorkflowType};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tokio::sync::{Semaphore, oneshot};
use tonic::transport::Channel;

type Client = WorkflowServiceClient<Channel>;

/// `HOST:PORT` → `http://HOST:PORT`; an address with a scheme is kept as it is.
fn endpoint(addr: &str) -> String {
    let addr = addr.trim();
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// One client per address, in the order given.
async fn connect(addrs: &[String]) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::new();
    for addr in addrs.iter().filter(|a| !a.trim().is_empty()) {
        let endpoint = endpoint(addr);
        let channel = Channel::from_shared(endpoint.clone())?
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("connect to {endpoint}: {e}"))?;
        clients.push(WorkflowServiceClient::new(channel).max_decoding_message_size(64 << 20));
    }
    anyhow::ensure!(!clients.is_empty(), "no --addr given");
    Ok(clients)
}

pub async fn run(options: Options) -> anyhow::Result<String> {
    let clients = connect(&options.addr).await?;
    // The i-th start and the i-th poller pair use address i mod N.
    let pick = |i: usize| clients[i % clients.len()].clone();
    let queue = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let done: Completions = Arc::default();
    let mut pollers = Vec::new();
    for i in 0..options.pollers {
        pollers.push(tokio::spawn(workflow_poller(
            pick(i),
            options.namespace.clone(),
            queue.clone(),
            Arc::clone(&done),
        )));
        pollers.push(tokio::spawn(activity_poller(
            pick(i),
            options.namespace.clone(),
            queue.clone(),
        )));
    }
    let limit = Arc::new(Semaphore::new(options.concurrency));
    let began = Instant::now();
    let mut runs = Vec::new();
    for i in 0..options.workflows {
        let permit = Arc::clone(&limit).acquire_owned().await?;
        let mut client = pick(i);
        let (namespace, queue, done) =
            (options.namespace.clone(), queue.clone(), Arc::clone(&done));
        runs.push(tokio::spawn(async move {
            let workflow_id = format!("{queue}-{i}");
            let (sender, receiver) = oneshot::channel();
            done.lock()
                .expect("completions lock")
                .insert(workflow_id.clone(), sender);
            let start = Instant::now();
            let request = ws::StartWorkflowExecutionRequest {
                namespace,
                workflow_id,
                workflow_type: Some(WorkflowType {
                    name: "bench".into(),
                }),
                task_queue: Some(TaskQueue {
                    name: queue,
                    ..Default::default()
                }),
                input: Some(Payloads {
                    payloads: vec![Payload {
                        data: b"\"x\"".to_vec(),
                        ..Default::default()
                    }],
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            };
            let started = client.start_workflow_execution(request).await.is_ok();
            let completed = started
                && tokio::time::timeout(Duration::from_secs(120), receiver)
                    .await
                    .is_ok_and(|r| r.is_ok());
            drop(permit);
            completed.then(|| start.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0usize;
    for run in runs {
        match run.await? {
            Some(latency) => latencies.push(latency),
            None => failed += 1,
        }
    }
    let elapsed = began.elapsed();
    for poller in pollers {
        poller.abort();
    }
    Ok(report(
        &options,
        clients.len(),
        &mut latencies,
        failed,
        elapsed,
    ))
}

fn report(
    options: &Options,
    nodes: usize,
    latencies: &mut [Duration],
    failed: usize,
    elapsed: Duration,
) -> String {
    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    format!(
        "nodes={} workflows={} concurrency={} completed={} failed={} elapsed_s={:.2} workflows_per_s={:.1} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        nodes,
        options.workflows,
        options.concurrency,
        latencies.len(),
        failed,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(1.0),
    )
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn endpoint_adds_http_only_without_a_scheme() {
        assert_eq!(endpoint("127.0.0.1:7233"), "http://127.0.0.1:7233");
        assert_eq!(endpoint(" http://h:1 "), "http://h:1");
        assert_eq!(endpoint("https://h:1"), "https://h:1");
    }
}
