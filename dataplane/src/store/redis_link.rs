//! The connection under the Redis receipt store: to one server, or to the nodes
//! of a Redis Cluster. On a cluster each command goes to the primary of its key's
//! slot, the commands for one node as one pipeline, so that a batch costs one
//! round trip per node (in turn; a batch of one pass rarely spans many). A command
//! a node did not run because the slot is elsewhere (MOVED) or moving (ASK), or
//! because a failover is under way (TRYAGAIN, CLUSTERDOWN), is sent again where
//! the cluster says, a bounded number of times. A node that cannot be reached
//! fails only its own commands.

use super::redis::{open_client, RedisTls};
use redis::{Cmd, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Times a command is sent again after a redirect or a failover in progress.
const REDIRECTS_MAX: u32 = 5;
/// Pause before sending again to a cluster that is failing over.
const FAILOVER_PAUSE: Duration = Duration::from_millis(100);
/// How long a node that could not be reached is left alone: a down host would
/// otherwise cost every batch a connect timeout until the failover.
const NODE_DOWN_PAUSE: Duration = Duration::from_millis(500);
/// Slots of a Redis Cluster.
const SLOT_COUNT: u16 = 16_384;

/// One command with the slot of its key (0 for a command without a key; a single
/// server ignores it), and whether it writes what [`Link::pipeline`]'s replica
/// wait covers.
pub struct Routed {
    pub command: Cmd,
    pub slot: u16,
    pub durable: bool,
}

impl Routed {
    pub fn new(command: Cmd, key: &str) -> Routed {
        Routed {
            command,
            slot: slot_of(key),
            durable: false,
        }
    }

    pub fn durable(mut self) -> Routed {
        self.durable = true;
        self
    }
}

/// What a batch got back: each command's value, `None` where its node could not
/// be reached; and for each command whether its node's replicas acknowledged the
/// node's durable writes (true without a wait).
pub struct Replies {
    pub values: Vec<Option<Value>>,
    pub replicated: Vec<bool>,
}

/// Replicas that must hold the durable writes, and how long to wait for them.
#[derive(Clone, Copy)]
pub struct ReplicaWait {
    pub replicas: u32,
    pub timeout: Duration,
}

pub enum Link {
    Single(redis::Connection),
    Cluster(ClusterLink),
}

impl Link {
    /// Connects to the server, or learns the cluster's slots from the first seed
    /// that answers. Every node connected to is given `scripts` first, so that
    /// the first commands of a batch find them (a batch whose scripts are missing
    /// is run again in part, after its other commands).
    pub fn connect(
        urls: &[String],
        cluster: bool,
        tls: &RedisTls,
        timeout: Duration,
        scripts: &[&'static str],
    ) -> redis::RedisResult<Link> {
        let options = NodeOptions {
            tls: tls.clone(),
            timeout,
            scripts: scripts.to_vec(),
        };
        if cluster {
            let mut link = ClusterLink {
                seeds: urls.to_vec(),
                options,
                slots: Vec::new(),
                nodes: HashMap::new(),
                down_until: HashMap::new(),
            };
            link.refresh_slots()?;
            return Ok(Link::Cluster(link));
        }
        let url = urls
            .first()
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Client, "no Redis URL")))?;
        Ok(Link::Single(options.connect(url)?))
    }

    /// Runs `commands`, one pipeline per node, and with `wait` waits on each node
    /// that took a durable write for its replicas. A server's error comes back as
    /// that command's value.
    pub fn pipeline(
        &mut self,
        commands: Vec<Routed>,
        wait: Option<ReplicaWait>,
    ) -> redis::RedisResult<Replies> {
        match self {
            Link::Single(connection) => {
                let count = commands.len();
                let wait = wait.filter(|_| commands.iter().any(|c| c.durable));
                // Moved into the pipeline: a single server never needs one again.
                let sent = commands.into_iter().map(|routed| (routed.command, false));
                let (values, replicated) = node_pipeline(connection, sent, count, wait)?;
                Ok(Replies {
                    values: values.into_iter().map(Some).collect(),
                    replicated: vec![replicated; count],
                })
            }
            Link::Cluster(link) => Ok(link.pipeline(&commands, wait)),
        }
    }
}

/// How to connect to a node, and what to load on it.
struct NodeOptions {
    tls: RedisTls,
    timeout: Duration,
    scripts: Vec<&'static str>,
}

impl NodeOptions {
    fn connect(&self, url: &str) -> redis::RedisResult<redis::Connection> {
        let mut connection =
            open_client(url, &self.tls)?.get_connection_with_timeout(self.timeout)?;
        connection.set_read_timeout(Some(self.timeout))?;
        connection.set_write_timeout(Some(self.timeout))?;
        for script in &self.scripts {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(*script)
                .query::<String>(&mut connection)?;
        }
        Ok(connection)
    }
}

/// A Redis Cluster: its slot map and a connection per node in use.
pub struct ClusterLink {
    seeds: Vec<String>,
    options: NodeOptions,
    /// (first slot, last slot, primary's URL), sorted.
    slots: Vec<(u16, u16, String)>,
    nodes: HashMap<String, redis::Connection>,
    /// Nodes that could not be reached, until when they are left alone.
    down_until: HashMap<String, Instant>,
}

/// What one round of a batch on a cluster leaves to do.
#[derive(Default)]
struct Round {
    /// Commands to send again, where the cluster said.
    again: Vec<usize>,
    /// The slot map must be read again.
    moved: bool,
    /// A failover or migration is under way: pause before the next round.
    later: bool,
}

impl ClusterLink {
    fn pipeline(&mut self, commands: &[Routed], wait: Option<ReplicaWait>) -> Replies {
        let mut replies = Replies {
            values: vec![None; commands.len()],
            replicated: vec![true; commands.len()],
        };
        // Where each command goes: by slot, or where an ASK sent it.
        let mut asked: HashMap<usize, String> = HashMap::new();
        let mut pending: Vec<usize> = (0..commands.len()).collect();
        for attempt in 0..=REDIRECTS_MAX {
            let mut round = Round::default();
            let by_node = self.route(commands, &pending, &asked, &mut round);
            for (node, indexes) in by_node {
                let node_wait = wait.filter(|_| indexes.iter().any(|&i| commands[i].durable));
                let sent = (commands, indexes.as_slice(), node_wait);
                self.run_round_on(&node, sent, &mut asked, &mut replies, &mut round);
            }
            if round.moved {
                if let Err(error) = self.refresh_slots() {
                    tracing::warn!(%error, "Redis Cluster slots unknown");
                }
            }
            if round.again.is_empty() || attempt == REDIRECTS_MAX {
                break;
            }
            if round.later {
                std::thread::sleep(FAILOVER_PAUSE);
            }
            pending = round.again;
        }
        replies
    }

    /// Groups `pending` commands by the node they go to. A command whose node is
    /// down or whose slot the map lacks is left unanswered.
    fn route(
        &mut self,
        commands: &[Routed],
        pending: &[usize],
        asked: &HashMap<usize, String>,
        round: &mut Round,
    ) -> HashMap<String, Vec<usize>> {
        let mut by_node: HashMap<String, Vec<usize>> = HashMap::new();
        for &index in pending {
            let node = asked
                .get(&index)
                .cloned()
                .or_else(|| self.primary_of(commands[index].slot));
            match node {
                Some(node) if self.is_down(&node) => {}
                Some(node) => by_node.entry(node).or_default().push(index),
                // A slot the map does not cover: read it again.
                None => round.moved = true,
            }
        }
        by_node
    }

    /// Sends `indexes` of `commands` to `node` and files what came back: values,
    /// redirects for the next round, or the node marked down.
    fn run_round_on(
        &mut self,
        node: &str,
        (commands, indexes, wait): (&[Routed], &[usize], Option<ReplicaWait>),
        asked: &mut HashMap<usize, String>,
        replies: &mut Replies,
        round: &mut Round,
    ) {
        let asking: Vec<usize> = indexes
            .iter()
            .copied()
            .filter(|index| asked.get(index).map(String::as_str) == Some(node))
            .collect();
        match self.run_on(node, commands, indexes, &asking, wait) {
            Ok((node_values, node_replicated)) => {
                for (&index, value) in indexes.iter().zip(node_values) {
                    replies.replicated[index] = node_replicated;
                    asked.remove(&index);
                    match redirect(&value) {
                        Some(Redirect::Moved) => round.moved = true,
                        Some(Redirect::Ask(to)) => {
                            asked.insert(index, self.node_url(&to));
                        }
                        Some(Redirect::Later) => round.later = true,
                        None => {}
                    }
                    if redirect(&value).is_some() {
                        round.again.push(index);
                    }
                    replies.values[index] = Some(value);
                }
            }
            Err(error) => {
                tracing::warn!(%node, %error, "Redis Cluster node unreachable");
                self.nodes.remove(node);
                self.down_until
                    .insert(node.to_owned(), Instant::now() + NODE_DOWN_PAUSE);
                round.moved = true;
                for &index in indexes {
                    replies.values[index] = None;
                }
            }
        }
    }

    /// One pipeline to `node`.
    fn run_on(
        &mut self,
        node: &str,
        commands: &[Routed],
        indexes: &[usize],
        asking: &[usize],
        wait: Option<ReplicaWait>,
    ) -> redis::RedisResult<(Vec<Value>, bool)> {
        let connection = self.connection(node)?;
        // Copies: a redirected command is sent again in the next round.
        let sent = indexes
            .iter()
            .map(|&index| (commands[index].command.clone(), asking.contains(&index)));
        node_pipeline(connection, sent, indexes.len(), wait)
    }

    /// The connection to `url`, made when there is none.
    fn connection(&mut self, url: &str) -> redis::RedisResult<&mut redis::Connection> {
        if !self.nodes.contains_key(url) {
            let connection = self.options.connect(url)?;
            self.nodes.insert(url.to_owned(), connection);
        }
        self.nodes
            .get_mut(url)
            .ok_or_else(|| (redis::ErrorKind::Client, "no connection").into())
    }

    /// Whether `node` failed a moment ago: its commands fail at once rather than
    /// each batch waiting for a connection that will not come.
    fn is_down(&mut self, node: &str) -> bool {
        match self.down_until.get(node) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                self.down_until.remove(node);
                false
            }
            None => false,
        }
    }

    /// The URL of the primary that holds `slot`, by the last slot map.
    fn primary_of(&self, slot: u16) -> Option<String> {
        let at = self.slots.partition_point(|(_, last, _)| *last < slot);
        self.slots
            .get(at)
            .filter(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, url)| url.clone())
    }

    /// Reads the slot map from a node already connected, else from the seeds.
    fn refresh_slots(&mut self) -> redis::RedisResult<()> {
        let mut last_error = None;
        let known: Vec<String> = self.nodes.keys().cloned().collect();
        for url in known.iter().chain(self.seeds.clone().iter()) {
            if self.is_down(url) {
                continue;
            }
            match self.read_slots(url) {
                Ok(slots) if !slots.is_empty() => {
                    self.slots = slots;
                    return Ok(());
                }
                Ok(_) => {}
                Err(error) => {
                    self.nodes.remove(url);
                    self.down_until
                        .insert(url.clone(), Instant::now() + NODE_DOWN_PAUSE);
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            (
                redis::ErrorKind::Client,
                "no Redis Cluster node knows the slots",
            )
                .into()
        }))
    }

    fn read_slots(&mut self, url: &str) -> redis::RedisResult<Vec<(u16, u16, String)>> {
        let connection = self.connection(url)?;
        let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query(connection)?;
        let mut slots: Vec<(u16, u16, String)> = ranges
            .iter()
            .filter_map(|range| {
                let Value::Array(items) = range else {
                    return None;
                };
                let first = integer(items.first()?)?;
                let last = integer(items.get(1)?)?;
                let Value::Array(primary) = items.get(2)? else {
                    return None;
                };
                // An empty or `?` endpoint is a node whose address is unknown.
                let host = text(primary.first()?).filter(|h| !h.is_empty() && h != "?")?;
                let port = integer(primary.get(1)?)?;
                Some((first, last, self.node_url(&format!("{host}:{port}"))))
            })
            .collect();
        slots.sort();
        Ok(slots)
    }

    /// A node's URL: the seeds' scheme and credentials, the node's address
    /// (`host:port` as Redis gives it; an IPv6 host is bracketed).
    fn node_url(&self, address: &str) -> String {
        let seed = self.seeds.first().map(String::as_str).unwrap_or("redis://");
        let (scheme, rest) = seed.split_once("://").unwrap_or(("redis", ""));
        let authority = rest.split('/').next().unwrap_or_default();
        let address = match address.rsplit_once(':') {
            Some((host, port)) if host.contains(':') && !host.starts_with('[') => {
                format!("[{host}]:{port}")
            }
            _ => address.to_owned(),
        };
        match authority.rsplit_once('@') {
            Some((credentials, _)) => format!("{scheme}://{credentials}@{address}/"),
            None => format!("{scheme}://{address}/"),
        }
    }
}

/// One node's pipeline: `count` commands, each with ASKING before it when its
/// flag says so, and WAIT at the end with `wait`. Returns each command's value and
/// whether the replicas acknowledged.
fn node_pipeline(
    connection: &mut redis::Connection,
    commands: impl Iterator<Item = (Cmd, bool)>,
    count: usize,
    wait: Option<ReplicaWait>,
) -> redis::RedisResult<(Vec<Value>, bool)> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for (command, asking) in commands {
        if asking {
            pipe.cmd("ASKING").ignore();
        }
        pipe.add_command(command);
    }
    if let Some(wait) = wait {
        let timeout_ms = u64::try_from(wait.timeout.as_millis()).unwrap_or(u64::MAX);
        pipe.cmd("WAIT").arg(wait.replicas).arg(timeout_ms.max(1));
    }
    let mut values: Vec<Value> = pipe.query(connection)?;
    let replicated = match wait {
        None => true,
        Some(wait) => match values.pop() {
            Some(Value::Int(acknowledged)) => acknowledged >= i64::from(wait.replicas),
            _ => false,
        },
    };
    if values.len() != count {
        return Err((
            redis::ErrorKind::Client,
            "pipeline answered too few replies",
        )
            .into());
    }
    Ok((values, replicated))
}

enum Redirect {
    Moved,
    Ask(String),
    /// A failover or a slot migration is under way: the same node, a bit later.
    Later,
}

fn redirect(value: &Value) -> Option<Redirect> {
    let Value::ServerError(error) = value else {
        return None;
    };
    match error.code() {
        "MOVED" => Some(Redirect::Moved),
        "ASK" => {
            let to = error.details()?.split_whitespace().nth(1)?;
            Some(Redirect::Ask(to.to_owned()))
        }
        "TRYAGAIN" | "CLUSTERDOWN" => Some(Redirect::Later),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<u16> {
    match value {
        Value::Int(number) => u16::try_from(*number).ok(),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// The Redis Cluster slot of `key`: CRC16 (XMODEM) of its hash tag (the text
/// between the first `{` and the next `}`, when not empty) or of the whole key.
pub fn slot_of(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &bytes[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16_xmodem(tagged.unwrap_or(bytes)) % SLOT_COUNT
}

/// CRC16 (XMODEM) of every byte value, so that a key's slot costs a lookup per
/// byte: every store command computes one.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
};

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &byte| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ byte)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // The specification's check value, and slots Redis's CLUSTER KEYSLOT gives.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3);
        assert_eq!(slot_of("foo"), 12_182);
        assert_eq!(slot_of("bar"), 5_061);
        assert_eq!(slot_of("{user1000}.following"), slot_of("user1000"));
        assert_eq!(slot_of("riptide:{shop}:received"), slot_of("shop"));
        // An empty tag is no tag: the whole key is hashed.
        assert_eq!(
            slot_of("foo{}{bar}"),
            crc16_xmodem(b"foo{}{bar}") % SLOT_COUNT
        );
        assert_eq!(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    }
}
