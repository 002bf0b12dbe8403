//! Streaming traces as chunks: a spawned task pulls traces from the backend and feeds their
//! chunks into a small bounded channel, so the backend is read only as fast as the client takes
//! chunks, each trace's chunks go out consecutively, and everything stops as soon as the client
//! is gone. The v2 reader streams OTLP chunks through it, the v1 reader v1 chunks.

use futures::StreamExt as _;
use futures::stream::BoxStream;
use remote_storage_core::StoreResult;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{Instrument as _, debug};

use super::status::store_error_to_status;

/// Chunks buffered ahead of the client: enough to overlap encoding with sending, small enough
/// that a slow client holds back the backend instead of filling memory.
pub(crate) const STREAM_CHANNEL_CAPACITY: usize = 2;

/// Items of a streamed response.
pub(crate) type ChunkStream<T> = ReceiverStream<Result<T, Status>>;

/// Splits one trace into the messages of a stream, lazily (a huge trace is never held twice).
pub(crate) trait Chunker: Send + 'static {
    /// The trace as the backend streams it: a [`Trace`](remote_storage_core::Trace), or an [`EncodedTrace`] for reads that
    /// only send spans on.
    ///
    /// [`EncodedTrace`]: remote_storage_core::EncodedTrace
    type Trace: Send + 'static;
    /// One streamed message.
    type Chunk: Send + 'static;

    /// The chunks of `trace`: spans of that trace only, none empty.
    fn chunks<'a>(&self, trace: &'a Self::Trace) -> impl Iterator<Item = Self::Chunk> + Send + 'a;
}

/// Streams every trace of `traces`, each as `chunker`'s chunks. A backend error ends the stream
/// with its status.
pub(crate) fn stream_trace_chunks<C: Chunker>(
    mut traces: BoxStream<'static, StoreResult<C::Trace>>,
    chunker: C,
) -> ChunkStream<C::Chunk> {
    let (sender, receiver) = mpsc::channel(STREAM_CHANNEL_CAPACITY);
    let task = async move {
        loop {
            // Waiting on the backend also watches the client, so a hung-up client stops a
            // slow search at once.
            let next = tokio::select! {
                next = traces.next() => next,
                () = sender.closed() => return debug!("client went away; stream stopped"),
            };
            let trace = match next {
                None => return,
                Some(Ok(trace)) => trace,
                Some(Err(store_error)) => {
                    let _ = sender.send(Err(store_error_to_status(store_error))).await;
                    return;
                }
            };
            for chunk in chunker.chunks(&trace) {
                if sender.send(Ok(chunk)).await.is_err() {
                    return debug!("client went away; stream stopped");
                }
            }
        }
    };
    tokio::spawn(task.in_current_span());
    ReceiverStream::new(receiver)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::stream;
    use remote_storage_core::testing::{span, trace_of};
    use remote_storage_core::{StoreError, StoreResult, Trace, TraceStream};
    use tokio::sync::oneshot;
    use tonic::Code;

    use std::num::NonZeroUsize;

    use jaeger_remote_proto::encoded::EncodedTracesData;

    use super::*;
    use crate::grpc::chunking::ChunkBudget;
    use crate::grpc::trace_reader::OtlpChunker;

    /// Fires when dropped, i.e. when the producing task let go of the backend stream.
    struct DropSignal(Option<oneshot::Sender<()>>);

    impl Drop for DropSignal {
        fn drop(&mut self) {
            if let Some(sender) = self.0.take() {
                let _ = sender.send(());
            }
        }
    }

    fn budget() -> ChunkBudget {
        ChunkBudget {
            max_items: NonZeroUsize::new(2).unwrap(),
            max_bytes: NonZeroUsize::new(1 << 20).unwrap(),
        }
    }

    /// An endless backend stream holding `signal`.
    fn endless_traces(signal: DropSignal) -> TraceStream {
        stream::repeat_with(move || {
            let _held = &signal;
            Ok(trace_of(vec![span(1, 1, None, "svc", "op", 1, 2, false)]))
        })
        .boxed()
    }

    #[tokio::test]
    async fn the_producer_stops_when_the_client_goes_away() {
        let (sender, dropped) = oneshot::channel();
        let mut chunks = stream_trace_chunks(
            endless_traces(DropSignal(Some(sender))),
            OtlpChunker(budget()),
        );
        assert!(chunks.next().await.unwrap().is_ok());
        drop(chunks);
        tokio::time::timeout(Duration::from_secs(10), dropped)
            .await
            .expect("the producer task stopped")
            .unwrap();
    }

    #[tokio::test]
    async fn a_producer_waiting_on_the_backend_also_stops() {
        let (sender, dropped) = oneshot::channel();
        let signal = DropSignal(Some(sender));
        let silent: TraceStream = stream::pending::<StoreResult<Trace>>()
            .map(move |item| {
                let _held = &signal;
                item
            })
            .boxed();
        drop(stream_trace_chunks(silent, OtlpChunker(budget())));
        tokio::time::timeout(Duration::from_secs(10), dropped)
            .await
            .expect("the producer task stopped")
            .unwrap();
    }

    #[tokio::test]
    async fn traces_are_chunked_and_backend_errors_end_the_stream() {
        let three_spans = trace_of(vec![
            span(1, 1, None, "svc", "a", 1, 2, false),
            span(1, 2, None, "svc", "b", 1, 2, false),
            span(1, 3, None, "svc", "c", 1, 2, false),
        ]);
        let items: Vec<StoreResult<Trace>> = vec![
            Ok(three_spans),
            Err(StoreError::unavailable("backend gone", "connection reset")),
            Ok(trace_of(vec![span(
                2, 1, None, "svc", "never", 1, 2, false,
            )])),
        ];
        let received: Vec<Result<EncodedTracesData, Status>> =
            stream_trace_chunks(stream::iter(items).boxed(), OtlpChunker(budget()))
                .collect()
                .await;
        assert_eq!(
            received.len(),
            3,
            "two chunks, then the error, then nothing"
        );
        assert!(received[0].is_ok() && received[1].is_ok());
        let status = received[2].as_ref().unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
    }
}
