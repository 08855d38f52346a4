//! An HTTPS server for the end-to-end tests (rustls over std sockets, one thread a
//! connection, one request each): it answers with a given function and records the
//! requests, so that a test can stand in a TLS rates feed or webhook receiver.

use riptide_proto::http1::Message;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// Answers a request: status and JSON body.
pub type Answer = dyn Fn(&Message) -> (u16, Vec<u8>) + Send + Sync;

pub struct HttpsServer {
    pub address: SocketAddr,
    requests: Arc<Mutex<Vec<Message>>>,
}

impl HttpsServer {
    /// Serves TLS with the certificate and key (PEM) on a free loopback port.
    pub fn start(certificate_pem: &str, key_pem: &str, answer: Arc<Answer>) -> HttpsServer {
        let certificates: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .expect("server certificate");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, answer, log) =
                    (Arc::clone(&config), Arc::clone(&answer), Arc::clone(&log));
                std::thread::spawn(move || {
                    let Ok(connection) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(connection, stream);
                    let mut buffer = Vec::new();
                    let Ok(Some(request)) = read_message_over(&mut tls, &mut buffer) else {
                        return;
                    };
                    let (status, body) = answer(&request);
                    log.lock().expect("log").push(request);
                    let mut response = Vec::new();
                    riptide_proto::http1::write_response(
                        &mut response,
                        status,
                        "application/json",
                        &body,
                        Some("close"),
                    );
                    let _ = tls.write_all(&response);
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        HttpsServer { address, requests }
    }

    /// `https://localhost:<port><path>`: the certificate names localhost.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.address.port())
    }

    pub fn requests(&self) -> Vec<Message> {
        self.requests.lock().expect("log").clone()
    }
}

fn read_message_over(
    stream: &mut impl std::io::Read,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Message>> {
    riptide_proto::http1::read_message(stream, buffer, crate::limits::BODY_SIZE_MAX)
}
