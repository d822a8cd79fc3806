//! The election port, as Apache ZooKeeper's `QuorumCnxManager`:
//!
//! * A connecting server first sends the handshake
//!   ([`InitialMessage`]: protocol version, its sid, its election address).
//! * One connection per pair survives, the one opened by the higher sid: an
//!   acceptor closes a connection from a lower sid and connects back; a
//!   lower-sid initiator sends its handshake, closes, and waits for the
//!   higher sid to connect back.
//! * Notifications are framed by a 4-byte big-endian length (at most
//!   [`MAX_ELECTION_MESSAGE`]).
//! * Each peer has a send queue of capacity one (ZooKeeper's
//!   `SEND_CAPACITY`): a newer notification replaces one not yet sent, so an
//!   unreachable peer gets only the latest vote once it is back. Connections
//!   are made on demand (something to send, or a lower sid knocked) and
//!   retried with exponential backoff; on a new connection with nothing
//!   queued the last notification sent is sent again.
//!
//! Received notifications, `Connected` and `Unreachable` (a connection
//! broke, or a connect failed, once per outage: the election then waits for
//! nobody on that side) go to the node task as [`Input`]s. Only sockets, framing and this rule live here; what to send
//! is the election core's business.

use super::Endpoint;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

use super::{Event, Tasks};
use crate::quorum::ServerId;
use crate::quorum::node::{Input, Message};
use crate::quorum::wire::{
    InitialMessage, MAX_ELECTION_MESSAGE, MAX_INITIAL_ADDRESS_LEN, Notification,
    election_connection_kept,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// A knock replaces a connection of ours only once it is this old.
const REPLACE_ON_KNOCK_AFTER: Duration = Duration::from_millis(1000);

/// What the node task and the acceptor share about one remote server.
pub(super) struct ElectionPeer {
    sid: ServerId,
    addr: Endpoint,
    /// The send queue, capacity one: only the latest notification.
    pending: Mutex<Option<Bytes>>,
    /// A lower sid knocked: connect even with nothing queued.
    connect_requested: Mutex<bool>,
    wake: Notify,
    /// Connections from this (higher) sid, handed over by the acceptor.
    inbound: mpsc::UnboundedSender<TcpStream>,
}

impl ElectionPeer {
    /// Queues a notification, replacing one not yet sent.
    pub(super) fn send(&self, n: &Notification) {
        *lock(&self.pending) = Some(Bytes::from(n.encode()));
        self.wake.notify_one();
    }

    fn request_connect(&self) {
        *lock(&self.connect_requested) = true;
        self.wake.notify_one();
    }

    fn take_connect_request(&self) -> bool {
        std::mem::take(&mut *lock(&self.connect_requested))
    }

    fn take_pending(&self) -> Option<Bytes> {
        lock(&self.pending).take()
    }

    fn wants_connection(&self) -> bool {
        lock(&self.pending).is_some() || std::mem::take(&mut *lock(&self.connect_requested))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the acceptor and one task per peer; returns the peers' send
/// queues keyed by sid.
pub(super) fn start(
    me: ServerId,
    my_addr: Endpoint,
    listener: TcpListener,
    peers: &BTreeMap<ServerId, Endpoint>,
    events: mpsc::UnboundedSender<Event>,
    tasks: &Tasks,
) -> BTreeMap<ServerId, Arc<ElectionPeer>> {
    let mut out = BTreeMap::new();
    for (&sid, addr) in peers {
        if sid == me {
            continue;
        }
        let peer = add_peer(me, &my_addr, sid, addr.clone(), &events, tasks);
        out.insert(sid, peer);
    }
    tasks.spawn(accept_loop(
        me,
        listener,
        out.clone(),
        events,
        tasks.clone(),
    ));
    out
}

/// Starts the task for one more peer (configured later by a reconfig, or
/// one that connected to us first).
pub(super) fn add_peer(
    me: ServerId,
    my_addr: &Endpoint,
    sid: ServerId,
    addr: Endpoint,
    events: &mpsc::UnboundedSender<Event>,
    tasks: &Tasks,
) -> Arc<ElectionPeer> {
    let (inbound, inbound_rx) = mpsc::unbounded_channel();
    let peer = Arc::new(ElectionPeer {
        sid,
        addr,
        pending: Mutex::new(None),
        connect_requested: Mutex::new(false),
        wake: Notify::new(),
        inbound,
    });
    tasks.spawn(peer_task(
        me,
        my_addr.clone(),
        peer.clone(),
        inbound_rx,
        events.clone(),
        tasks.clone(),
    ));
    peer
}

/// Hands a connection from `sid` to its peer task, or, when it is the
/// lower sid, closes it and connects back (the higher-sid rule).
pub(super) fn route(me: ServerId, peer: &ElectionPeer, stream: TcpStream) {
    if election_connection_kept(peer.sid as i64, me as i64) {
        let _ = peer.inbound.send(stream);
    } else {
        drop(stream);
        peer.request_connect();
    }
}

async fn accept_loop(
    me: ServerId,
    listener: TcpListener,
    peers: BTreeMap<ServerId, Arc<ElectionPeer>>,
    events: mpsc::UnboundedSender<Event>,
    tasks: Tasks,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(server = me, error = %e, "election port accept failed");
                tokio::time::sleep(MIN_BACKOFF).await;
                continue;
            }
        };
        let peers = peers.clone();
        let events = events.clone();
        tasks.spawn(async move {
            let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_handshake(stream)).await
            {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => {
                    tracing::info!(server = me, error = %e, "election handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(server = me, "election handshake timed out");
                    return;
                }
            };
            let (stream, msg) = hello;
            let Ok(sid) = ServerId::try_from(msg.sid) else {
                return;
            };
            match peers.get(&sid) {
                Some(peer) => route(me, peer, stream),
                // Not configured here (yet): a server joining the ensemble,
                // or one a reconfig added. The node task decides.
                None if sid != me => {
                    let _ = events.send(Event::NewPeer {
                        sid,
                        addr: msg.addresses.first().cloned().unwrap_or_default(),
                        stream,
                    });
                }
                None => {}
            }
        });
    }
}

/// Reads the handshake as QuorumCnxManager does: one long (the sid alone
/// before 3.5), else version, sid, and a length-prefixed address.
async fn read_handshake(mut s: TcpStream) -> std::io::Result<(TcpStream, InitialMessage)> {
    let first = s.read_i64().await?;
    let mut buf = first.to_be_bytes().to_vec();
    if first < 0 {
        let sid = s.read_i64().await?;
        let len = s.read_i32().await?;
        if len <= 0 || len as usize > MAX_INITIAL_ADDRESS_LEN {
            return Err(invalid(format!("unreasonable address length {len}")));
        }
        let mut addr = vec![0; len as usize];
        s.read_exact(&mut addr).await?;
        buf.extend_from_slice(&sid.to_be_bytes());
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&addr);
    }
    let msg = InitialMessage::decode(&buf).map_err(|e| invalid(e.to_string()))?;
    Ok((s, msg))
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

async fn connect_and_hello(
    me: ServerId,
    my_addr: &Endpoint,
    to: &Endpoint,
) -> std::io::Result<TcpStream> {
    let mut s = tokio::time::timeout(CONNECT_TIMEOUT, to.connect())
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    s.set_nodelay(true)?;
    let hello = InitialMessage::new(me as i64, &my_addr.to_string()).encode();
    s.write_all(&hello).await?;
    Ok(s)
}

/// Owns everything about one peer: getting a connection by the higher-sid
/// rule, writing queued notifications, and replacing the connection when
/// it breaks or the peer connects again.
async fn peer_task(
    me: ServerId,
    my_addr: Endpoint,
    peer: Arc<ElectionPeer>,
    mut inbound: mpsc::UnboundedReceiver<TcpStream>,
    events: mpsc::UnboundedSender<Event>,
    tasks: Tasks,
) {
    let we_connect = election_connection_kept(me as i64, peer.sid as i64);
    let mut backoff = MIN_BACKOFF;
    let mut last_sent: Option<Bytes> = None;
    let mut next: Option<TcpStream> = None;
    // Whether the node was told the peer is unreachable since it was last
    // connected (its election then waits for nobody on that side).
    let mut told_unreachable = false;
    let tell_unreachable = |told: &mut bool| {
        if !*told {
            *told = true;
            let _ = events.send(Event::Input(Input::Unreachable(peer.sid)));
        }
    };
    loop {
        let stream = match next.take() {
            Some(s) => s,
            None => {
                // Wait for a reason to connect (or for the peer to connect).
                while !peer.wants_connection() {
                    tokio::select! {
                        _ = peer.wake.notified() => {}
                        s = inbound.recv() => match s {
                            Some(s) => { next = Some(latest(s, &mut inbound)); break; }
                            None => return,
                        }
                    }
                }
                if let Some(s) = next.take() {
                    s
                } else if let Ok(s) = inbound.try_recv() {
                    // The peer already connected back.
                    latest(s, &mut inbound)
                } else {
                    match connect_and_hello(me, &my_addr, &peer.addr).await {
                        Ok(s) if we_connect => s,
                        Ok(s) => {
                            // We are the lower sid: knock, close, and wait
                            // for the peer to connect back.
                            drop(s);
                            match tokio::time::timeout(
                                backoff.max(Duration::from_millis(200)),
                                inbound.recv(),
                            )
                            .await
                            {
                                Ok(Some(s)) => latest(s, &mut inbound),
                                Ok(None) => return,
                                Err(_) => {
                                    backoff = (backoff * 2).min(MAX_BACKOFF);
                                    continue;
                                }
                            }
                        }
                        Err(e) => {
                            tracing::debug!(server = me, peer = peer.sid, error = %e, "election connect failed");
                            tell_unreachable(&mut told_unreachable);
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                s = inbound.recv() => match s {
                                    Some(s) => next = Some(latest(s, &mut inbound)),
                                    None => return,
                                }
                            }
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            continue;
                        }
                    }
                }
            }
        };
        let _ = stream.set_nodelay(true);
        tracing::debug!(server = me, peer = peer.sid, "election connection up");
        let (r, mut w) = stream.into_split();
        let reader = tokio::spawn(read_loop(r, peer.sid, events.clone()));
        tasks.register(reader.abort_handle());
        let _ = events.send(Event::Input(Input::Connected(peer.sid)));
        told_unreachable = false;
        backoff = MIN_BACKOFF;
        let mut reader = reader;
        // ZooKeeper resends the last notification on a fresh connection when
        // nothing is queued, in case the previous one was lost with the old
        // connection.
        let mut resend = if lock(&peer.pending).is_none() {
            last_sent.clone()
        } else {
            None
        };
        let mut knocked = false;
        let connected_at = tokio::time::Instant::now();
        loop {
            // A knock on a brand-new connection stays pending: it is acted
            // on once the connection is older, or when it breaks.
            if we_connect
                && connected_at.elapsed() >= REPLACE_ON_KNOCK_AFTER
                && peer.take_connect_request()
            {
                // The lower sid connected to us, so it has no connection to
                // us (it restarted, or the socket broke on its side): ours is
                // probably half-open. Replace it. ZooKeeper keeps the old one
                // until a write fails; we replace it, but only when it is not
                // brand new, since a knock sent before our connection
                // reached the peer must not make us reconnect again (that
                // livelocks).
                knocked = true;
                break;
            }
            let to_write = resend.take().or_else(|| peer.take_pending());
            if let Some(b) = to_write {
                if write_frame(&mut w, &b).await.is_err() {
                    // Keep it for the next connection.
                    let mut p = lock(&peer.pending);
                    if p.is_none() {
                        *p = Some(b);
                    }
                    break;
                }
                tracing::trace!(server = me, peer = peer.sid, "notification written");
                last_sent = Some(b);
                continue;
            }
            tokio::select! {
                _ = peer.wake.notified() => {}
                _ = &mut reader => break,
                s = inbound.recv() => match s {
                    Some(s) => { next = Some(latest(s, &mut inbound)); break; }
                    None => { reader.abort(); return; }
                }
            }
        }
        reader.abort();
        drop(w);
        tracing::debug!(
            server = me,
            peer = peer.sid,
            knocked,
            replaced = next.is_some(),
            "election connection down"
        );
        if next.is_none() && !knocked {
            tell_unreachable(&mut told_unreachable);
        }
        if knocked {
            peer.request_connect();
        } else if next.is_none() && !*lock(&peer.connect_requested) {
            // Broken: retry only if there is something to say.
            tokio::time::sleep(MIN_BACKOFF).await;
        }
    }
}

/// The newest of the connections the peer made: older ones it has already
/// given up.
fn latest(mut s: TcpStream, inbound: &mut mpsc::UnboundedReceiver<TcpStream>) -> TcpStream {
    while let Ok(newer) = inbound.try_recv() {
        s = newer;
    }
    s
}

async fn write_frame(w: &mut OwnedWriteHalf, b: &[u8]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(4 + b.len());
    frame.extend_from_slice(&(b.len() as i32).to_be_bytes());
    frame.extend_from_slice(b);
    w.write_all(&frame).await
}

async fn read_loop(mut r: OwnedReadHalf, from: ServerId, events: mpsc::UnboundedSender<Event>) {
    loop {
        let len = match r.read_i32().await {
            Ok(l) => l,
            Err(_) => return,
        };
        if len <= 0 || len as usize > MAX_ELECTION_MESSAGE {
            tracing::warn!(peer = from, len, "bad election message length; closing");
            return;
        }
        let mut buf = vec![0; len as usize];
        if r.read_exact(&mut buf).await.is_err() {
            return;
        }
        match Notification::decode(&buf) {
            Ok(n) => {
                let input = Input::Message {
                    from,
                    msg: Message::Election(n),
                };
                if events.send(Event::Input(input)).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(peer = from, error = %e, "bad notification; closing");
                return;
            }
        }
    }
}
