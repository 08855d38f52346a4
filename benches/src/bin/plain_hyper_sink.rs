//! The floor for a sink: a plain hyper 1 server on tokio (one worker thread per
//! core, as a hyper user would start it) that reads each request's body and
//! answers 200 with the same small body, doing no ILP work at all. `benches/wrk.sh`
//! drives it with wrk beside `riptide-loadgen sink`, so that the CPU a request
//! costs the bundled sink is judged against what HTTP alone costs.
//!
//! Usage: plain_hyper_sink 127.0.0.1:PORT

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

/// What every request gets: the size of a small ILP Fulfill.
const ANSWER: &[u8] = &[0x0d; 45];

async fn answer(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // The body is read whole, as a sink must read a Prepare.
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(ANSWER)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

fn main() {
    let Some(address) = std::env::args()
        .nth(1)
        .and_then(|text| text.parse::<SocketAddr>().ok())
    else {
        eprintln!("usage: plain_hyper_sink HOST:PORT");
        std::process::exit(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("plain_hyper_sink: {error}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("plain_hyper_sink: {address}: {error}");
                std::process::exit(1);
            }
        };
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    });
}
