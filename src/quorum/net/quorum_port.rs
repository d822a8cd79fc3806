//! The quorum port: learner ↔ leader connections carrying `QuorumPacket`s.
//!
//! As in ZooKeeper, packets are jute records back to back on the stream
//! (type i32, zxid i64, data buffer, authinfo vector) with no outer length,
//! so the reader parses field by field. A learner connects to its leader's
//! quorum port and its first packet (FOLLOWERINFO / OBSERVERINFO) names it;
//! the acceptor hands the connection to the node task only then.
//!
//! After a SNAP packet the leader streams its snapshot (the replica's
//! serialized state, see [`super::Replica::snapshot`]) as one jute buffer
//! followed by the string `BenWasHere`, ZooKeeper's end-of-snapshot
//! signature. (ZooKeeper streams the serialized tree without a length
//! prefix; a mixed ensemble will need that form.)

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Event, Tasks};
use crate::jute::Record;
use crate::quorum::ServerId;
use crate::quorum::wire::{QuorumPacket, ZabMessage};

/// ZooKeeper's snapshot stream signature.
pub(super) const SNAPSHOT_SIGNATURE: &str = "BenWasHere";
/// Largest data buffer accepted in one packet.
const MAX_BUFFER: usize = 64 * 1024 * 1024;
/// Largest snapshot accepted after SNAP.
const MAX_SNAPSHOT: usize = i32::MAX as usize;
const MAX_AUTHINFO: i32 = 64;
const FIRST_PACKET_TIMEOUT: Duration = Duration::from_secs(5);

/// A quorum connection as the node task sees it: its id (to tell a stale
/// close from the current connection's) and the writer's queue.
pub(super) struct QuorumConn {
    pub id: u64,
    pub tx: mpsc::UnboundedSender<Bytes>,
    pub reader: Option<tokio::task::AbortHandle>,
}

impl Drop for QuorumConn {
    fn drop(&mut self) {
        if let Some(r) = &self.reader {
            r.abort();
        }
    }
}

async fn read_buffer<R: AsyncRead + Unpin>(r: &mut R, raw: &mut Vec<u8>) -> std::io::Result<()> {
    read_buffer_max(r, raw, MAX_BUFFER).await
}

async fn read_buffer_max<R: AsyncRead + Unpin>(
    r: &mut R,
    raw: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<()> {
    let len = r.read_i32().await?;
    raw.extend_from_slice(&len.to_be_bytes());
    if len < -1 || len as i64 > max as i64 {
        return Err(invalid(format!("bad buffer length {len}")));
    }
    if len > 0 {
        // Grows as bytes arrive: a lying length costs no big allocation.
        let got = (&mut *r).take(len as u64).read_to_end(raw).await?;
        if got < len as usize {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// Reads one `QuorumPacket` off the stream.
pub(super) async fn read_packet<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<ZabMessage> {
    let mut raw = Vec::with_capacity(64);
    let t = r.read_i32().await?;
    raw.extend_from_slice(&t.to_be_bytes());
    let zxid = r.read_i64().await?;
    raw.extend_from_slice(&zxid.to_be_bytes());
    read_buffer(r, &mut raw).await?;
    let n = r.read_i32().await?;
    raw.extend_from_slice(&n.to_be_bytes());
    if !(-1..=MAX_AUTHINFO).contains(&n) {
        return Err(invalid(format!("bad authinfo count {n}")));
    }
    for _ in 0..n.max(0) {
        read_buffer(r, &mut raw).await?; // scheme
        read_buffer(r, &mut raw).await?; // id
    }
    let p = QuorumPacket::decode(&raw).map_err(|e| invalid(e.to_string()))?;
    ZabMessage::from_packet(p).map_err(|e| invalid(e.to_string()))
}

/// Reads the snapshot that follows a SNAP packet: ZooKeeper's serialized
/// tree (sessions, ACL cache, nodes up to the `/` end marker), which has no
/// length prefix, so it is walked record by record; then `BenWasHere`.
/// Returns the tree's bytes as they came.
async fn read_snapshot<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Bytes> {
    let mut raw = Vec::new();
    let sessions = read_count(r, &mut raw, "session").await?;
    read_exact_into(r, &mut raw, sessions * 12).await?;
    let acls = read_count(r, &mut raw, "ACL cache").await?;
    for _ in 0..acls {
        read_exact_into(r, &mut raw, 8).await?;
        let list = r.read_i32().await?;
        raw.extend_from_slice(&list.to_be_bytes());
        for _ in 0..list.max(0) {
            read_exact_into(r, &mut raw, 4).await?; // perms
            read_buffer(r, &mut raw).await?; // scheme
            read_buffer(r, &mut raw).await?; // id
        }
    }
    loop {
        let at = raw.len();
        read_buffer(r, &mut raw).await?; // path
        if raw.get(at + 4..) == Some(b"/") {
            break;
        }
        read_buffer(r, &mut raw).await?; // data
        read_exact_into(r, &mut raw, 8 + STAT_PERSISTED_LEN).await?; // acl, stat
        if raw.len() > MAX_SNAPSHOT {
            return Err(invalid("snapshot too large".into()));
        }
    }
    let mut sig = Vec::new();
    read_buffer(r, &mut sig).await?;
    if sig.get(4..) != Some(SNAPSHOT_SIGNATURE.as_bytes()) {
        return Err(invalid("missing snapshot signature".into()));
    }
    Ok(Bytes::from(raw))
}

/// A `StatPersisted` record: czxid, mzxid, ctime, mtime (longs), version,
/// cversion, aversion (ints), ephemeralOwner, pzxid (longs).
const STAT_PERSISTED_LEN: usize = 4 * 8 + 3 * 4 + 2 * 8;

async fn read_count<R: AsyncRead + Unpin>(
    r: &mut R,
    raw: &mut Vec<u8>,
    what: &str,
) -> std::io::Result<usize> {
    let n = r.read_i32().await?;
    raw.extend_from_slice(&n.to_be_bytes());
    if !(0..=MAX_SNAPSHOT as i32 / 12).contains(&n) {
        return Err(invalid(format!("bad {what} count {n}")));
    }
    Ok(n as usize)
}

async fn read_exact_into<R: AsyncRead + Unpin>(
    r: &mut R,
    raw: &mut Vec<u8>,
    n: usize,
) -> std::io::Result<()> {
    // Grows as bytes arrive: a lying count costs no big allocation.
    let got = (&mut *r).take(n as u64).read_to_end(raw).await?;
    if got < n {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "snapshot cut short",
        ));
    }
    Ok(())
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// Bytes read from a peer at once.
const READ_BUFFER: usize = 64 * 1024;
/// Queued packets are gathered into writes of about this size.
const WRITE_BATCH: usize = 64 * 1024;

/// Reads packets until the connection ends, then reports the close.
async fn read_loop(
    r: OwnedReadHalf,
    conn: u64,
    peer: ServerId,
    events: mpsc::UnboundedSender<Event>,
) {
    // A packet is read field by field: unbuffered, that is five recv calls
    // for every PROPOSAL, ACK or COMMIT.
    let mut r = BufReader::with_capacity(READ_BUFFER, r);
    loop {
        let msg = match read_packet(&mut r).await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(peer, conn, error = %e, "quorum connection ended");
                break;
            }
        };
        let snapshot = if let ZabMessage::Snap { .. } = msg {
            match read_snapshot(&mut r).await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(peer, conn, error = %e, "bad snapshot");
                    break;
                }
            }
        } else {
            None
        };
        let ev = Event::Zab {
            conn,
            from: peer,
            msg,
            snapshot,
        };
        if events.send(ev).is_err() {
            return;
        }
    }
    let _ = events.send(Event::QuorumClosed { conn, peer });
}

async fn write_loop(mut w: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    // Everything queued goes out in one write: under load the leader queues
    // PROPOSALs and COMMITs faster than one send call per packet could
    // carry them (each one a trip through the TCP stack and a wake-up of
    // the reader).
    let mut batch: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(b) = next.take() {
            if batch.is_empty() && b.len() >= WRITE_BATCH {
                // A snapshot: no copy.
                if w.write_all(&b).await.is_err() {
                    return;
                }
            } else {
                batch.extend_from_slice(&b);
            }
            if batch.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
            if next.is_none() || batch.len() >= WRITE_BATCH {
                if !batch.is_empty() && w.write_all(&batch).await.is_err() {
                    return;
                }
                batch.clear();
            }
        }
        if batch.capacity() > 4 * WRITE_BATCH {
            batch = Vec::with_capacity(WRITE_BATCH);
        }
    }
    // The node task dropped the connection: close our side cleanly.
    let _ = w.shutdown().await;
}

/// Starts the reader and the writer of an established connection.
fn run(
    stream: TcpStream,
    conn: u64,
    peer: ServerId,
    rx: mpsc::UnboundedReceiver<Bytes>,
    events: mpsc::UnboundedSender<Event>,
    tasks: &Tasks,
) -> tokio::task::AbortHandle {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    tasks.spawn(write_loop(w, rx));
    tasks.spawn(read_loop(r, conn, peer, events))
}

/// The listener: each connection becomes known to the node task with its
/// first packet, which must name the learner.
pub(super) async fn accept_loop(
    me: ServerId,
    listener: TcpListener,
    events: mpsc::UnboundedSender<Event>,
    tasks: Tasks,
    next_conn: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(server = me, error = %e, "quorum port accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let events = events.clone();
        let tasks2 = tasks.clone();
        let next_conn = next_conn.clone();
        tasks.spawn(async move {
            let mut stream = stream;
            let first = tokio::time::timeout(FIRST_PACKET_TIMEOUT, read_packet(&mut stream)).await;
            let msg = match first {
                Ok(Ok(m)) => m,
                _ => return,
            };
            let sid = match &msg {
                ZabMessage::FollowerInfo { info, .. } | ZabMessage::ObserverInfo { info, .. } => {
                    info.server_id
                }
                other => {
                    tracing::info!(
                        server = me,
                        ?other,
                        "quorum connection did not start with LearnerInfo"
                    );
                    return;
                }
            };
            let Ok(peer) = ServerId::try_from(sid) else {
                return;
            };
            let id = next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (tx, rx) = mpsc::unbounded_channel();
            let reader = run(stream, id, peer, rx, events.clone(), &tasks2);
            let conn = QuorumConn {
                id,
                tx,
                reader: Some(reader),
            };
            let _ = events.send(Event::Accepted {
                conn,
                from: peer,
                msg,
            });
        });
    }
}

/// A learner's connection to its leader: packets queue in `rx` while it
/// connects; a failure to connect is reported as the connection's close.
pub(super) fn connect(
    to: super::Endpoint,
    conn: u64,
    peer: ServerId,
    rx: mpsc::UnboundedReceiver<Bytes>,
    connect_within: Duration,
    events: mpsc::UnboundedSender<Event>,
    tasks: &Tasks,
) {
    let tasks2 = tasks.clone();
    tasks.spawn(async move {
        let deadline = tokio::time::Instant::now() + connect_within;
        let stream = loop {
            match tokio::time::timeout_at(deadline, to.connect()).await {
                Ok(Ok(s)) => break Some(s),
                Ok(Err(e)) => {
                    tracing::debug!(peer, error = %e, "connect to leader failed");
                    if tokio::time::Instant::now() + Duration::from_millis(50) >= deadline {
                        break None;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(_) => break None,
            }
        };
        match stream {
            Some(s) => {
                let reader = run(s, conn, peer, rx, events.clone(), &tasks2);
                let _ = events.send(Event::Reader { conn, peer, reader });
            }
            None => {
                let _ = events.send(Event::QuorumClosed { conn, peer });
            }
        }
    });
}
