//! `send` and `stream` to a plain-HTTP target, event-driven: every connection is a
//! task on a tokio runtime with a worker per core (`--threads`), so that the
//! loader's cost does not grow with its connections and it keeps up with wrk on the
//! same cores. Same loop, same measures as the thread-per-connection path in
//! [`crate::send`] (which TLS targets still take): closed or open loop, latency
//! from when a packet was due, a warm-up not recorded.

use crate::limits::{BODY_SIZE_MAX, CONNECT_TIMEOUT, READ_SIZE, REPLY_TIMEOUT};
use crate::report::Report;
use crate::send::{merge_into, next_prepare, record, Pace, Payload, SendOptions};
use crate::stream::StreamSender;
use riptide_proto::http1::{take_message, write_packet_request};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the connections share.
pub struct Shared {
    pub report: Arc<Mutex<Report>>,
    pub stop: Arc<AtomicBool>,
    pub sent: Arc<AtomicU64>,
    pub started: Instant,
    pub measure_from: Instant,
}

/// Starts every connection on a runtime of `threads` workers (0: one per core);
/// the caller waits out the window, sets `stop`, then drops the runtime's handle
/// by joining the returned thread.
pub fn spawn(
    options: Arc<SendOptions>,
    shared: &Shared,
    threads: usize,
) -> Result<std::thread::JoinHandle<()>, String> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_io().enable_time();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    let runtime = builder.build().map_err(|e| format!("tokio runtime: {e}"))?;
    let tasks: Vec<_> = (0..options.connections)
        .map(|connection| {
            let options = Arc::clone(&options);
            let (report, stop, sent) = (
                Arc::clone(&shared.report),
                Arc::clone(&shared.stop),
                Arc::clone(&shared.sent),
            );
            let (started, measure_from) = (shared.started, shared.measure_from);
            runtime.spawn(async move {
                let local =
                    connection_loop(&options, connection, &stop, &sent, started, measure_from)
                        .await;
                merge_into(&report, &local);
            })
        })
        .collect();
    Ok(std::thread::spawn(move || {
        runtime.block_on(async {
            for task in tasks {
                let _ = task.await;
            }
        });
    }))
}

async fn connection_loop(
    options: &SendOptions,
    connection: u32,
    stop: &AtomicBool,
    sent: &AtomicU64,
    started: Instant,
    measure_from: Instant,
) -> Report {
    let mut local = Report::new();
    let mut stream = match &options.payload {
        Payload::Stream { spsp, path } => match connect_stream(*spsp, path).await {
            Ok(sender) => Some(sender),
            Err(error) => {
                local.record_error(&error);
                return local;
            }
        },
        Payload::Sink { .. } => None,
    };
    let mut client = AsyncClient::new(options);
    let mut pace = Pace::new(options, connection, started);
    while !stop.load(Ordering::Relaxed) {
        let (wait, sequence, amount) = pace.next_packet(Instant::now());
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        let prepare = next_prepare(stream.as_mut(), &options.payload, sequence, amount);
        let result = client.send(&prepare).await;
        let latency_us = pace.due().elapsed().as_micros() as u64;
        sent.fetch_add(1, Ordering::Relaxed);
        if pace.due() >= measure_from {
            record(&mut local, result, amount, latency_us);
        }
    }
    local
}

/// The SPSP query of a STREAM connection, off the runtime's workers: it is the
/// blocking client's, and runs once per connection before the load.
async fn connect_stream(spsp: std::net::SocketAddr, path: &str) -> Result<StreamSender, String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || StreamSender::connect(spsp, &path))
        .await
        .map_err(|e| format!("SPSP query: {e}"))?
}

/// One keep-alive connection that POSTs ILP packets, reconnecting after an error.
struct AsyncClient {
    address: std::net::SocketAddr,
    path: String,
    host: String,
    authorization: String,
    connection: Option<TcpStream>,
    buffer: Vec<u8>,
    request: Vec<u8>,
    chunk: Vec<u8>,
}

impl AsyncClient {
    fn new(options: &SendOptions) -> AsyncClient {
        AsyncClient {
            address: options.target,
            path: options.path.clone(),
            host: options.target.to_string(),
            authorization: format!("Bearer {}", options.token),
            connection: None,
            buffer: Vec::with_capacity(READ_SIZE),
            request: Vec::with_capacity(512),
            chunk: vec![0; READ_SIZE],
        }
    }

    async fn send(&mut self, packet: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let result = self.exchange(packet).await;
        if result.is_err() {
            self.connection = None;
            self.buffer.clear();
        }
        result
    }

    async fn exchange(&mut self, packet: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        if self.connection.is_none() {
            let connect = TcpStream::connect(self.address);
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            stream.set_nodelay(true)?;
            self.connection = Some(stream);
        }
        let stream = self
            .connection
            .as_mut()
            .ok_or_else(|| std::io::Error::other("not connected"))?;
        self.request.clear();
        write_packet_request(
            &mut self.request,
            &self.path,
            &self.host,
            &self.authorization,
            packet,
        );
        stream.write_all(&self.request).await?;
        loop {
            if let Some(reply) = take_message(&mut self.buffer, BODY_SIZE_MAX, false)
                .map_err(std::io::Error::other)?
            {
                return Ok((reply.status().unwrap_or(0), reply.body));
            }
            let read = tokio::time::timeout(REPLY_TIMEOUT, stream.read(&mut self.chunk))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            if read == 0 {
                // A reply framed by the connection's end is whole now.
                let reply = take_message(&mut self.buffer, BODY_SIZE_MAX, true)
                    .map_err(std::io::Error::other)?
                    .ok_or_else(|| std::io::Error::other("connection closed"))?;
                self.connection = None;
                return Ok((reply.status().unwrap_or(0), reply.body));
            }
            self.buffer.extend_from_slice(&self.chunk[..read]);
        }
    }
}
