//! STREAM senders for end-to-end tests: one thread per connection, each paying
//! packet after packet over ILP-over-HTTP, while the test inflicts a fault.

use crate::dataplane::HttpClient;
use crate::stream_client::StreamClient;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The largest packet a sender sends.
pub const AMOUNT_MAX: u64 = 100;

/// What one sender paid: its connection and the amounts it was fulfilled.
#[derive(Debug)]
pub struct Paid {
    pub destination: String,
    pub fulfilled: u64,
    /// Requests that got no HTTP answer (riptide was down).
    pub unanswered: u32,
    pub codes: BTreeMap<String, u32>,
}

/// Where and how the senders pay: riptide's packet port, the peer's token, and
/// one STREAM connection's credentials per sender.
pub struct Payers {
    pub connector: SocketAddr,
    pub token: String,
    pub connections: Vec<(String, Vec<u8>)>,
}

/// Pays from one thread per connection for `length`, while `fault` runs on this
/// thread. A request that gets no HTTP answer (riptide down) is counted and the
/// sender goes on with the next packet.
pub fn pay_while(payers: Payers, length: Duration, fault: impl FnOnce()) -> Vec<Paid> {
    let senders: Vec<_> = payers
        .connections
        .into_iter()
        .enumerate()
        .map(|(thread, (destination, secret))| {
            let (connector, token) = (payers.connector, payers.token.clone());
            std::thread::spawn(move || {
                let mut client = StreamClient::new(&destination, &secret);
                let mut paid = Paid {
                    destination: destination.clone(),
                    fulfilled: 0,
                    unanswered: 0,
                    codes: BTreeMap::new(),
                };
                let started = Instant::now();
                let mut i = thread as u64;
                while started.elapsed() < length {
                    i += 1;
                    let amount = 1 + (i * 37) % AMOUNT_MAX;
                    let prepare = client.prepare(amount, 0, false);
                    let response = HttpClient::new(connector).post_packet(&token, &prepare);
                    let Ok(response) = response else {
                        paid.unanswered += 1;
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    assert_eq!(response.status, 200, "an ILP reply");
                    match client.read_reply(&response.body).code {
                        None => paid.fulfilled += amount,
                        Some(code) => *paid.codes.entry(format!("{code:?}")).or_default() += 1,
                    }
                }
                paid
            })
        })
        .collect();
    fault();
    senders
        .into_iter()
        .map(|s| s.join().expect("sender thread"))
        .collect()
}
