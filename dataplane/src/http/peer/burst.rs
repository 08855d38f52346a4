//! Bursts: Prepares to one peer that become ready in the same turn of the shard's
//! executor leave together, back to back in one send on one connection (HTTP/1.1
//! pipelining), when the peer's `outgoing_pipeline_max` is above 1.
//!
//! Why: on loopback and in a VM, each TCP send costs more than all of riptide's own
//! work on a packet (the sender runs the receiver's network stack and wakes its
//! thread). A burst pays that once for up to `outgoing_pipeline_max` Prepares, and
//! the peer reads them in one receive.
//!
//! How: the Prepare that opens a burst spawns one task for it. The task yields once,
//! so that every other packet task already runnable in this turn can join, then
//! closes the burst, writes it, and reads the replies, which HTTP/1.1 returns in
//! order, handing each to its packet as it arrives. The task owns the connection, so
//! a packet that stops waiting (its expiry) only gives up its own reply: the others,
//! already sent and perhaps fulfilled, still get theirs. The task waits as long as
//! the longest wait among its packets, then fails what is left. Head-of-line waiting
//! stays within one burst: a burst takes no request once written, and its connection
//! goes back to the pool only with every reply in.

use super::pool::{read_reply, PeerCallError, Pool};
use crate::clock::within;
use crate::limits::PIPELINE_MAX;
use riptide_proto::connector::snapshot::PeerEndpoint;
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

pub(super) struct Burst {
    state: RefCell<State>,
}

struct State {
    /// The requests, back to back, while the burst gathers; empty once written.
    requests: Vec<u8>,
    gathering: bool,
    /// The most requests this burst takes: its endpoint's `pipeline_max`.
    capacity: usize,
    /// One per request, in request order.
    slots: Vec<Slot>,
    /// Replies read so far: every slot before this index is answered.
    answered: usize,
    /// The longest any of its packets waits for a reply: past it, nobody will.
    wait_max: Duration,
}

enum Slot {
    Waiting(Option<Waker>),
    Answered(Result<Vec<u8>, PeerCallError>),
    /// Its packet took the answer.
    Taken,
}

impl Burst {
    /// A burst gathering from its first request.
    pub fn open(endpoint: &PeerEndpoint, prepare: &[u8], wait: Duration) -> Burst {
        let capacity = endpoint.pipeline_max.clamp(1, PIPELINE_MAX);
        let burst = Burst {
            state: RefCell::new(State {
                requests: Vec::with_capacity(4096),
                gathering: true,
                capacity,
                slots: Vec::with_capacity(capacity),
                answered: 0,
                wait_max: Duration::ZERO,
            }),
        };
        let index = burst.join(endpoint, prepare, wait);
        assert_eq!(index, 0);
        burst
    }

    /// Appends a request whose packet waits `wait` at most; returns its index.
    pub fn join(&self, endpoint: &PeerEndpoint, prepare: &[u8], wait: Duration) -> usize {
        let mut state = self.state.borrow_mut();
        assert!(state.gathering, "a written burst takes no more requests");
        assert!(state.slots.len() < state.capacity);
        riptide_proto::http1::write_packet_request(
            &mut state.requests,
            &endpoint.path,
            &endpoint.authority,
            &endpoint.authorization,
            prepare,
        );
        state.wait_max = state.wait_max.max(wait);
        state.slots.push(Slot::Waiting(None));
        state.slots.len() - 1
    }

    pub fn is_full(&self) -> bool {
        let state = self.state.borrow();
        state.slots.len() >= state.capacity
    }

    /// Waits for the answer to request `index`. Dropping this future gives up only
    /// that answer.
    pub async fn reply(&self, index: usize) -> Result<Vec<u8>, PeerCallError> {
        std::future::poll_fn(|cx| {
            let mut state = self.state.borrow_mut();
            match &mut state.slots[index] {
                Slot::Waiting(waker) => {
                    if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *waker = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
                slot => match std::mem::replace(slot, Slot::Taken) {
                    Slot::Answered(result) => Poll::Ready(result),
                    // Each packet awaits its own slot once, to its end.
                    _ => unreachable!("a burst's answer is taken once"),
                },
            }
        })
        .await
    }

    /// Stops gathering and returns the bytes to write.
    fn close(&self) -> Vec<u8> {
        let mut state = self.state.borrow_mut();
        state.gathering = false;
        std::mem::take(&mut state.requests)
    }

    pub fn len(&self) -> usize {
        self.state.borrow().slots.len()
    }

    fn all_answered(&self) -> bool {
        let state = self.state.borrow();
        state.answered == state.slots.len()
    }

    /// Answers the first request not answered yet.
    fn answer(&self, result: Result<Vec<u8>, PeerCallError>) {
        let waiting = {
            let mut state = self.state.borrow_mut();
            let index = state.answered;
            state.answered += 1;
            std::mem::replace(&mut state.slots[index], Slot::Answered(result))
        };
        if let Slot::Waiting(Some(waker)) = waiting {
            waker.wake();
        }
    }

    /// Answers every request not answered yet with `error`.
    fn fail_unanswered(&self, error: PeerCallError) {
        let shared = Rc::new(error);
        let mut wakers = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            let first = state.answered;
            for slot in &mut state.slots[first..] {
                let failed = Slot::Answered(Err(PeerCallError::Shared(Rc::clone(&shared))));
                if let Slot::Waiting(Some(waker)) = std::mem::replace(slot, failed) {
                    wakers.push(waker);
                }
            }
            state.answered = state.slots.len();
        }
        for waker in wakers {
            waker.wake();
        }
    }
}

/// The burst still taking Prepares, by endpoint key and sender, on one shard.
/// One sender's packets never share a burst with another's: a slow packet holds
/// back the replies behind it in its burst (HTTP/1.1 answers in order), and that
/// should cost only its own sender.
#[derive(Default)]
pub(super) struct Gathering {
    bursts: RefCell<HashMap<String, FxHashMap<u128, Rc<Burst>>>>,
}

impl Gathering {
    pub(super) fn insert(&self, authority: &str, sender: u128, burst: &Rc<Burst>) {
        let mut gathering = self.bursts.borrow_mut();
        let by_sender = match gathering.get_mut(authority) {
            Some(by_sender) => by_sender,
            None => gathering.entry(authority.to_owned()).or_default(),
        };
        by_sender.insert(sender, Rc::clone(burst));
    }

    pub(super) fn join(
        &self,
        endpoint: &PeerEndpoint,
        sender: u128,
        prepare: &[u8],
        wait: Duration,
    ) -> Option<(Rc<Burst>, usize)> {
        let mut gathering = self.bursts.borrow_mut();
        let by_sender = gathering.get_mut(&endpoint.key)?;
        let burst = Rc::clone(by_sender.get(&sender)?);
        // Peers on one host and port share bursts; each keeps to its own limit, and
        // one whose limit is reached opens the next burst.
        if burst.len() >= endpoint.pipeline_max {
            return None;
        }
        let index = burst.join(endpoint, prepare, wait);
        if burst.is_full() {
            by_sender.remove(&sender);
        }
        Some((burst, index))
    }

    /// Takes `burst` out of the gathering map, unless it left already (it filled up).
    pub(super) fn stop(&self, (authority, sender): (&str, u128), burst: &Rc<Burst>) {
        let mut gathering = self.bursts.borrow_mut();
        let Some(by_sender) = gathering.get_mut(authority) else {
            return;
        };
        if by_sender
            .get(&sender)
            .is_some_and(|current| Rc::ptr_eq(current, burst))
        {
            by_sender.remove(&sender);
        }
        // The map of an endpoint goes with its last burst: the senders seen stay few.
        if by_sender.is_empty() {
            gathering.remove(authority);
        }
    }
}

/// The task of one burst: lets the packets of this turn join, writes them in one
/// send, and hands out the replies in order; within the longest wait of its packets.
pub(super) async fn drive(
    burst: Rc<Burst>,
    pool: Rc<Pool>,
    gathering: Rc<Gathering>,
    (endpoint, sender): (PeerEndpoint, u128),
) {
    futures_lite::future::yield_now().await;
    gathering.stop((&endpoint.key, sender), &burst);
    let requests = burst.close();
    let wait_max = burst.state.borrow().wait_max;
    let exchange = exchange(&burst, &pool, &endpoint, &requests);
    if within(wait_max, exchange).await.is_none() {
        burst.fail_unanswered(PeerCallError::BurstExpired);
    }
}

/// Writes the burst and reads every reply; pools the connection if it may carry more.
async fn exchange(burst: &Burst, pool: &Pool, endpoint: &PeerEndpoint, requests: &[u8]) {
    let mut connection = match pool.checkout(endpoint).await {
        Ok(connection) => connection,
        Err(error) => return burst.fail_unanswered(error),
    };
    pool.count_send(burst.len());
    if let Err(error) = connection.write_all(requests).await {
        return burst.fail_unanswered(PeerCallError::Request(error));
    }
    // Bounded by the burst's size: each turn answers one request, or all of them.
    while !burst.all_answered() {
        match read_reply(&mut connection).await {
            Ok((status, body, keep_alive)) => {
                burst.answer(match status {
                    200 => Ok(body),
                    _ => Err(PeerCallError::Status(status)),
                });
                if !keep_alive {
                    // The peer reads nothing after this reply: the rest were never
                    // processed, and a POST is not sent again.
                    return burst.fail_unanswered(PeerCallError::ClosedInBurst);
                }
            }
            Err(error) => return burst.fail_unanswered(error),
        }
    }
    pool.checkin(&endpoint.key, connection);
}

#[cfg(test)]
mod tests {
    use super::super::{PeerCallError, PeerClient};

    /// A client of IP addresses only, with the web's roots for TLS.
    fn test_client() -> Rc<PeerClient> {
        Rc::new(PeerClient::new(
            1_024,
            crate::resolver::Resolver::addresses_only(),
            Rc::new(crate::http::transport::TlsClients::new(&[])),
        ))
    }
    use riptide_proto::connector::snapshot::{parse_endpoint, PeerEndpoint};
    use std::io::Write;
    use std::net::TcpListener;
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// What the test server answers to request `index` (0-based, per connection) with
    /// body `body`: the whole HTTP response.
    type Answer = fn(usize, &[u8]) -> Vec<u8>;

    fn response(status: u16, extra_header: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status} X\r\n{extra_header}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    fn echo(_: usize, body: &[u8]) -> Vec<u8> {
        response(200, "", body)
    }

    /// A blocking HTTP/1.1 server that answers each request as soon as it is read and
    /// records how many requests each connection carried.
    fn start_server(answer: Answer, delay: Duration) -> (String, Arc<Mutex<Vec<usize>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let counts = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&counts);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16).flatten() {
                let slot = {
                    let mut counts = recorded.lock().expect("lock");
                    counts.push(0);
                    counts.len() - 1
                };
                let recorded = Arc::clone(&recorded);
                std::thread::spawn(move || serve(stream, slot, &recorded, answer, delay));
            }
        });
        (address, counts)
    }

    fn serve(
        stream: std::net::TcpStream,
        slot: usize,
        counts: &Mutex<Vec<usize>>,
        answer: Answer,
        delay: Duration,
    ) {
        let mut stream = stream;
        let mut buffer = Vec::new();
        for index in 0..1000 {
            let Some(request) = read_request(&mut stream, &mut buffer) else {
                return;
            };
            counts.lock().expect("lock")[slot] += 1;
            std::thread::sleep(delay);
            if stream.write_all(&answer(index, &request.body)).is_err() {
                return;
            }
        }
    }

    /// The next request on `stream`, framed by the packet path's own codec.
    fn read_request(
        stream: &mut std::net::TcpStream,
        buffer: &mut Vec<u8>,
    ) -> Option<riptide_proto::http1::Message> {
        riptide_proto::http1::read_message(stream, buffer, 1 << 20)
            .ok()
            .flatten()
    }

    fn endpoint(address: &str, pipeline_max: usize) -> PeerEndpoint {
        PeerEndpoint {
            pipeline_max,
            ..parse_endpoint(&format!("http://{address}/ilp"), "token").expect("endpoint")
        }
    }

    /// Sends `count` distinct bodies from as many tasks, all runnable in the same
    /// turn, each waiting at most `wait`; returns each task's result.
    async fn send_together(
        client: &Rc<PeerClient>,
        endpoint: &PeerEndpoint,
        count: u8,
        wait: Duration,
    ) -> Vec<Option<Result<Vec<u8>, PeerCallError>>> {
        send_waiting(client, endpoint, &vec![wait; usize::from(count)], wait).await
    }

    /// Sends one distinct body per entry of `waits`, from as many tasks all runnable
    /// in the same turn. Task `i` tells the client it waits `waits[i]`, and gives up
    /// itself after that or `caller_wait`, whichever is longer.
    async fn send_waiting(
        client: &Rc<PeerClient>,
        endpoint: &PeerEndpoint,
        waits: &[Duration],
        caller_wait: Duration,
    ) -> Vec<Option<Result<Vec<u8>, PeerCallError>>> {
        let tasks: Vec<_> = (0u8..)
            .zip(waits.iter().copied())
            .map(|(seed, wait)| {
                let (client, endpoint) = (Rc::clone(client), endpoint.clone());
                glommio::spawn_local(async move {
                    let body = vec![seed; 40 + usize::from(seed)];
                    let call = async { Some(client.send(&endpoint, (&body, 0), wait).await) };
                    let deadline = async {
                        glommio::timer::sleep(wait.max(caller_wait)).await;
                        None
                    };
                    futures_lite::future::or(call, deadline).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await);
        }
        results
    }

    /// `count` Prepares in one burst to a server answering with `answer`.
    fn one_burst(answer: Answer, count: u8) -> Vec<Option<Result<Vec<u8>, PeerCallError>>> {
        let (address, _) = start_server(answer, Duration::ZERO);
        let client = test_client();
        let endpoint = endpoint(&address, 8);
        let wait = Duration::from_secs(10);
        on_executor(send_together(&client, &endpoint, count, wait))
    }

    /// Runs `test` on a glommio executor of its own (sockets belong to one).
    fn on_executor<T>(test: impl std::future::Future<Output = T>) -> T {
        glommio::LocalExecutorBuilder::default()
            .make()
            .expect("executor")
            .run(test)
    }

    #[test]
    fn prepares_ready_together_share_a_send_and_get_their_own_replies() {
        let (address, counts) = start_server(echo, Duration::ZERO);
        let client = test_client();
        let endpoint = endpoint(&address, 4);
        let wait = Duration::from_secs(10);
        let (results, first_counts, again) = on_executor(async {
            let results = send_together(&client, &endpoint, 10, wait).await;
            let first_counts = counts.lock().expect("lock").clone();
            // The connections went back to the pool: the next burst reuses one.
            let again = send_together(&client, &endpoint, 3, wait).await;
            (results, first_counts, again)
        });
        for (seed, result) in results.into_iter().enumerate() {
            let body = result.expect("in time").expect("a reply");
            assert_eq!(body, vec![seed as u8; 40 + seed], "packet {seed}");
        }
        assert!(again.iter().all(|r| matches!(r, Some(Ok(_)))));
        let mut per_connection = first_counts;
        per_connection.sort_unstable();
        assert_eq!(per_connection, vec![2, 4, 4], "bursts of at most 4");
        let after = counts.lock().expect("lock").clone();
        assert_eq!(after.len(), 3, "no new connection for the last burst");
        assert_eq!(after.iter().sum::<usize>(), 13);
    }

    #[test]
    fn peers_on_one_address_share_bursts_each_within_its_own_limit() {
        let (address, counts) = start_server(echo, Duration::ZERO);
        let client = test_client();
        let (wide, narrow) = (endpoint(&address, 8), endpoint(&address, 2));
        let wait = Duration::from_secs(10);
        let results = on_executor(async {
            // All four are runnable in the same turn: the narrow peer's first Prepare
            // finds a burst of 2 already, its own limit, and opens the next one.
            let together = [&wide, &wide, &narrow, &narrow].map(|endpoint| {
                let (client, endpoint) = (Rc::clone(&client), endpoint.clone());
                glommio::spawn_local(async move { client.send(&endpoint, (b"p", 0), wait).await })
            });
            let mut results = Vec::new();
            for task in together {
                results.push(task.await);
            }
            results
        });
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(*counts.lock().expect("lock"), vec![2, 2]);
    }

    #[test]
    fn without_pipelining_each_prepare_has_its_own_connection() {
        let (address, counts) = start_server(echo, Duration::ZERO);
        let client = test_client();
        let endpoint = endpoint(&address, 1);
        let results = on_executor(send_together(
            &client,
            &endpoint,
            3,
            Duration::from_secs(10),
        ));
        assert!(results.iter().all(|r| matches!(r, Some(Ok(_)))));
        assert_eq!(*counts.lock().expect("lock"), vec![1, 1, 1]);
    }

    #[test]
    fn a_refused_request_fails_alone() {
        fn refuse_second(index: usize, body: &[u8]) -> Vec<u8> {
            match index {
                1 => response(500, "", b"no"),
                _ => response(200, "", body),
            }
        }
        let results = one_burst(refuse_second, 3);
        assert!(matches!(results[0], Some(Ok(_))));
        assert!(matches!(results[1], Some(Err(PeerCallError::Status(500)))));
        assert_eq!(results[2].as_ref().map(|r| r.is_ok()), Some(true));
    }

    #[test]
    fn a_peer_that_closes_mid_burst_fails_the_rest() {
        fn close_after_second(index: usize, body: &[u8]) -> Vec<u8> {
            match index {
                1 => response(200, "Connection: close\r\n", body),
                _ => response(200, "", body),
            }
        }
        let results = one_burst(close_after_second, 4);
        assert!(matches!(results[0], Some(Ok(_))));
        assert!(matches!(results[1], Some(Ok(_))));
        for result in &results[2..] {
            match result {
                Some(Err(PeerCallError::Shared(error))) => {
                    assert!(matches!(**error, PeerCallError::ClosedInBurst))
                }
                other => panic!("expected ClosedInBurst, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_packet_that_stops_waiting_gives_up_only_its_own_reply() {
        // Each reply takes 300 ms: the first packet stops waiting before its own.
        let (address, _) = start_server(echo, Duration::from_millis(300));
        let client = test_client();
        let endpoint = endpoint(&address, 8);
        let (first, others) = (Duration::from_millis(100), Duration::from_secs(10));
        let waits = [first, others, others];
        let results = on_executor(send_waiting(&client, &endpoint, &waits, Duration::ZERO));
        assert!(results[0].is_none(), "the first packet stopped waiting");
        for (seed, result) in results.iter().enumerate().skip(1) {
            match result {
                Some(Ok(body)) => assert_eq!(*body, vec![seed as u8; 40 + seed]),
                other => panic!("packet {seed}: expected its reply, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_burst_gives_up_after_the_longest_wait_of_its_packets() {
        let (address, _) = start_server(echo, Duration::from_secs(5));
        let client = test_client();
        let endpoint = endpoint(&address, 8);
        // The callers' own deadlines are far; the wait they told the client is not.
        let (wait, caller_wait) = (Duration::from_millis(300), Duration::from_secs(20));
        let results = on_executor(send_waiting(&client, &endpoint, &[wait; 2], caller_wait));
        for result in results {
            match result {
                Some(Err(PeerCallError::Shared(error))) => {
                    assert!(matches!(*error, PeerCallError::BurstExpired), "{error}")
                }
                other => panic!("expected the burst to expire, got {other:?}"),
            }
        }
    }
}
