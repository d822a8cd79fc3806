//! One client connection: a reader that frames requests for the core, and a
//! writer that sends replies only once what they show is durable.

use super::core::{CoreMsg, Stats};
use crate::processor::fourlw;
use crate::tree::watch::ConnId;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// What the core asks a connection's writer to do.
pub enum Out {
    /// Send once the transaction log is durable up to `tag`.
    Frame { tag: i64, frame: Vec<u8> },
    /// Close after everything before it, once durable up to `tag`.
    Close { tag: i64 },
}

pub struct Ctx {
    pub conn: ConnId,
    pub addr: SocketAddr,
    pub core: mpsc::UnboundedSender<CoreMsg>,
    pub durable: watch::Receiver<i64>,
    pub stats: Arc<Stats>,
    pub max_buffer: usize,
}

/// Bytes of client requests read at once (bigger requests are read
/// straight into their own buffer).
const READ_BUFFER: usize = 4096;

/// When each unanswered request arrived, and its type (for per-op latency).
/// Requests a connection may have unanswered before we stop reading it.
const MAX_OUTSTANDING: usize = 1000;

type Arrivals = Arc<Mutex<VecDeque<(Instant, i32)>>>;

/// Reads one length-prefixed frame; None on EOF, error or a bad length.
async fn read_frame(rd: &mut BufReader<OwnedReadHalf>, len: i32, ctx: &Ctx) -> Option<Vec<u8>> {
    if len < 0 || len as usize > ctx.max_buffer {
        tracing::warn!(addr = %ctx.addr, len, max = ctx.max_buffer, "packet length out of range (jute.maxbuffer); closing connection");
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    rd.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

/// The request type in a request frame's header (xid, type, ...).
fn op_of(frame: &[u8]) -> i32 {
    frame
        .get(4..8)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

fn arrived(arrivals: &Arrivals, stats: &Stats, op: i32) {
    arrivals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back((Instant::now(), op));
    stats.outstanding.fetch_add(1, Ordering::Relaxed);
}

pub async fn run(stream: TcpStream, ctx: Ctx) {
    let (rd, mut wr) = stream.into_split();
    // One recv call per request instead of two (length, then body), and
    // pipelined requests in one.
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let Ok(len) = rd.read_i32().await else { return };
    if let Some(word) = fourlw::word_of(len) {
        let (tx, rx) = oneshot::channel();
        if ctx
            .core
            .send(CoreMsg::FourLetter { word, reply: tx })
            .is_ok()
            && let Ok(text) = rx.await
        {
            let _ = wr.write_all(text.as_bytes()).await;
            let _ = wr.shutdown().await;
        }
        return;
    }
    let Some(first) = read_frame(&mut rd, len, &ctx).await else {
        return;
    };
    let arrivals: Arrivals = Arc::default();
    arrived(
        &arrivals,
        &ctx.stats,
        crate::proto::OpCode::CreateSession as i32,
    );
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (closed_tx, mut closed_rx) = oneshot::channel::<()>();
    let answered = Arc::new(Notify::new());
    let writer = tokio::spawn(write_loop(
        wr,
        out_rx,
        ctx.durable.clone(),
        ctx.stats.clone(),
        arrivals.clone(),
        answered.clone(),
        closed_tx,
    ));
    let connect = CoreMsg::Connect {
        conn: ctx.conn,
        addr: ctx.addr.to_string(),
        frame: first,
        out: out_tx,
    };
    if ctx.core.send(connect).is_ok() {
        'read: loop {
            // Backpressure: a client with too many unanswered requests is
            // not read from until replies catch up (ZooKeeper throttles
            // the same way), so a flood cannot queue without bound.
            while arrivals.lock().map(|a| a.len()).unwrap_or(0) >= MAX_OUTSTANDING {
                tokio::select! {
                    _ = answered.notified() => {}
                    _ = &mut closed_rx => break 'read,
                }
            }
            let len = tokio::select! {
                r = rd.read_i32() => match r { Ok(n) => n, Err(_) => break },
                _ = &mut closed_rx => break,
            };
            let frame = tokio::select! {
                f = read_frame(&mut rd, len, &ctx) => match f { Some(f) => f, None => break },
                _ = &mut closed_rx => break,
            };
            arrived(&arrivals, &ctx.stats, op_of(&frame));
            if ctx
                .core
                .send(CoreMsg::Request {
                    conn: ctx.conn,
                    frame,
                })
                .is_err()
            {
                break;
            }
        }
    }
    // The core drops our writer's channel when it hears this, ending it.
    let _ = ctx.core.send(CoreMsg::Disconnected { conn: ctx.conn });
    let unanswered = arrivals.lock().map(|a| a.len()).unwrap_or(0) as i64;
    ctx.stats
        .outstanding
        .fetch_sub(unanswered, Ordering::Relaxed);
    let _ = writer.await;
}

async fn write_loop(
    wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    mut durable: watch::Receiver<i64>,
    stats: Arc<Stats>,
    arrivals: Arrivals,
    answered: Arc<Notify>,
    closed: oneshot::Sender<()>,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    'outer: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            let tag = match &item {
                Out::Frame { tag, .. } | Out::Close { tag } => *tag,
            };
            if *durable.borrow() < tag {
                // Push out what is ready before waiting on the disk.
                if w.flush().await.is_err() {
                    break 'outer;
                }
                if durable.wait_for(|z| *z >= tag).await.is_err() {
                    break 'outer;
                }
            }
            match item {
                Out::Frame { frame, .. } => {
                    // Replies (not notifications) answer the oldest request.
                    let is_notification = frame.len() >= 8 && frame[4..8] == (-1i32).to_be_bytes();
                    if !is_notification
                        && let Some((t, op)) = arrivals.lock().ok().and_then(|mut a| a.pop_front())
                    {
                        stats.record_op(op, t.elapsed());
                        stats.outstanding.fetch_sub(1, Ordering::Relaxed);
                        answered.notify_one();
                    }
                    if w.write_all(&frame).await.is_err() {
                        break 'outer;
                    }
                }
                Out::Close { .. } => break 'outer,
            }
            next = rx.try_recv().ok();
        }
        if w.flush().await.is_err() {
            break;
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
    let _ = closed.send(());
}
