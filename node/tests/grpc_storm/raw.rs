//! A gRPC client that sends arbitrary bytes as a request body (and takes any bytes back), to
//! hand the server's protobuf decoder what no generated client would.

use prost::bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Bytes in, bytes out.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut body = vec![0; src.remaining()];
        src.copy_to_slice(&mut body);
        Ok(Some(body))
    }
}

/// The WorkflowService methods the SDKs call, by their gRPC path.
pub const METHODS: &[&str] = &[
    "StartWorkflowExecution",
    "SignalWorkflowExecution",
    "SignalWithStartWorkflowExecution",
    "RespondWorkflowTaskCompleted",
    "RespondWorkflowTaskFailed",
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondActivityTaskCanceled",
    "RespondActivityTaskCompletedById",
    "RespondActivityTaskFailedById",
    "RecordActivityTaskHeartbeat",
    "RecordActivityTaskHeartbeatById",
    "GetWorkflowExecutionHistory",
    "DescribeWorkflowExecution",
    "TerminateWorkflowExecution",
    "RequestCancelWorkflowExecution",
    "QueryWorkflow",
    "RespondQueryTaskCompleted",
    "UpdateWorkflowExecution",
    "PollWorkflowExecutionUpdate",
    "ExecuteMultiOperation",
    "PollWorkflowTaskQueue",
    "PollActivityTaskQueue",
    "RegisterNamespace",
    "DescribeNamespace",
    "ListNamespaces",
    "ShutdownWorker",
    "GetSystemInfo",
];

/// Sends `body` as the request of `method` with a deadline of `timeout`.
pub async fn call(
    channel: Channel,
    method: &str,
    body: Vec<u8>,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
    let path: PathAndQuery = format!("/temporal.api.workflowservice.v1.WorkflowService/{method}")
        .parse()
        .expect("a valid path");
    let mut request = Request::new(body);
    request.set_timeout(timeout);
    grpc.unary(request, path, RawCodec)
        .await
        .map(|r| r.into_inner())
}
