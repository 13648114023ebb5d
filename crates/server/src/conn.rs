//! The HTTP listener's defences against clients that hold connections open: a cap on open
//! connections (at the cap, the connection that has gone longest without a response is closed to
//! make room, so idle or slow clients cannot lock out `/healthz` or exhaust file descriptors) and
//! a request timeout (a connection must receive a response within `request_timeout` of opening
//! or of its previous response, or deliver `PROGRESS_BYTES` of request in that time; this
//! bounds both reading a request's headers and idle keep-alive connections, while a large
//! upload that keeps sending is not cut off).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// Request bytes that count as progress like a response: an upload streaming for longer than
/// the request timeout stays open while it delivers this much per timeout (a client trickling
/// headers a few bytes at a time does not).
const PROGRESS_BYTES: u64 = 1 << 20;

/// Limits of the HTTP listener.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time a connection has to get its next response (headers read, handled, answered).
    pub request_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What the listener knows of one open connection.
#[derive(Debug)]
struct ConnState {
    /// Start of the current wait for a response: when the connection opened or last wrote.
    waiting_since_ms: AtomicU64,
    evicted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl ConnState {
    fn evict(&self) {
        self.evicted.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().expect("waker lock").take() {
            waker.wake();
        }
    }
}

#[derive(Debug)]
struct Table {
    /// The listener's clock origin; connection times are milliseconds since it.
    epoch: Instant,
    next_id: u64,
    open: HashMap<u64, Arc<ConnState>>,
}

impl Table {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// A TCP listener that enforces `ConnLimits` (an `axum::serve::Listener`).
#[derive(Debug)]
pub struct GuardedListener {
    inner: TcpListener,
    limits: ConnLimits,
    table: Arc<Mutex<Table>>,
}

impl GuardedListener {
    /// Wraps `inner`.
    pub fn new(inner: TcpListener, limits: ConnLimits) -> Self {
        GuardedListener {
            inner,
            limits,
            table: Arc::new(Mutex::new(Table {
                epoch: Instant::now(),
                next_id: 0,
                open: HashMap::new(),
            })),
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.table.lock().expect("table lock").open.len()
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, address) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before accept: back off briefly.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let mut table = self.table.lock().expect("table lock");
            if table.open.len() >= self.limits.max_connections.max(1) {
                // Room for the newcomer: close the connection waiting longest for a response.
                let oldest = table
                    .open
                    .iter()
                    .filter(|(_, state)| !state.evicted.load(Ordering::SeqCst))
                    .min_by_key(|(_, state)| state.waiting_since_ms.load(Ordering::SeqCst))
                    .map(|(&id, state)| (id, state.clone()));
                if let Some((id, state)) = oldest {
                    state.evict();
                    table.open.remove(&id);
                }
            }
            let id = table.next_id;
            table.next_id += 1;
            let state = Arc::new(ConnState {
                waiting_since_ms: AtomicU64::new(table.now_ms()),
                evicted: AtomicBool::new(false),
                waker: Mutex::new(None),
            });
            table.open.insert(id, state.clone());
            let io = GuardedStream {
                inner: stream,
                id,
                state,
                table: self.table.clone(),
                timeout: self.limits.request_timeout,
                timer: Box::pin(tokio::time::sleep(self.limits.request_timeout)),
                read_since_mark: 0,
            };
            return (io, address);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection under the listener's limits: reads end (EOF) and writes fail once it is evicted
/// or its request timeout has passed.
#[derive(Debug)]
pub struct GuardedStream {
    inner: TcpStream,
    id: u64,
    state: Arc<ConnState>,
    table: Arc<Mutex<Table>>,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    /// Request bytes read since the last response or progress mark.
    read_since_mark: u64,
}

impl GuardedStream {
    /// True when the connection must close; otherwise arranges to be woken when it must.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.state.evicted.load(Ordering::SeqCst) {
            return true;
        }
        *self.state.waker.lock().expect("waker lock") = Some(cx.waker().clone());
        let (epoch, since_ms) = {
            let table = self.table.lock().expect("table lock");
            (
                table.epoch,
                self.state.waiting_since_ms.load(Ordering::SeqCst),
            )
        };
        let deadline = epoch + Duration::from_millis(since_ms) + self.timeout;
        self.timer.as_mut().reset(deadline);
        self.timer.as_mut().poll(cx).is_ready() || self.state.evicted.load(Ordering::SeqCst)
    }

    fn mark_response(&mut self) {
        self.read_since_mark = 0;
        let now_ms = self.table.lock().expect("table lock").now_ms();
        self.state.waiting_since_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            // End of stream: hyper closes the connection.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            self.read_since_mark += (buf.filled().len() - before) as u64;
            if self.read_since_mark >= PROGRESS_BYTES {
                self.mark_response();
            }
        }
        read
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        match written {
            Poll::Ready(Ok(n)) if n > 0 => self.mark_response(),
            Poll::Pending if self.expired(cx) => {
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
            _ => {}
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.mark_response();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        if let Ok(mut table) = self.table.lock() {
            table.open.remove(&self.id);
        }
    }
}
