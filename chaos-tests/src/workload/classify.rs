//! How a gRPC error completes an operation (chaos-tests/README.md): a definite refusal by the
//! server is `fail` (it did not happen); a timeout, UNAVAILABLE, a lost connection or an internal
//! error after the request may have been sent is `info` (it may or may not have happened).

use crate::history::OpCompletion;
use tonic::Code;

/// Whether the server definitely did not perform the request.
pub fn is_definite_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::ResourceExhausted
            | Code::Unimplemented
            | Code::OutOfRange
    )
}

/// The completion of an operation that failed with `status`.
pub fn completion(status: &tonic::Status) -> OpCompletion {
    let why = format!("{:?}: {}", status.code(), status.message());
    if is_definite_refusal(status.code()) {
        OpCompletion::Fail(why)
    } else {
        OpCompletion::Info(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_fail_and_the_unknown_is_info() {
        let fail = completion(&tonic::Status::already_exists("started"));
        assert!(matches!(fail, OpCompletion::Fail(_)));
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Unknown,
            Code::Internal,
        ] {
            let status = tonic::Status::new(code, "x");
            assert!(
                matches!(completion(&status), OpCompletion::Info(_)),
                "{code:?}"
            );
        }
    }
}
