//! The write timeout: a connection whose client stops reading is closed.
//!
//! [`WriteStall`] wraps the socket. When a write cannot go ahead (the
//! kernel's send buffer is full because the client does not read), a timer
//! starts; it is cleared only when hyper has handed the socket everything it
//! had queued (its `poll_flush`). A client that reads nothing, or reads a
//! drip too slow to ever drain the queue, gets an I/O error after `limit`:
//! hyper closes the connection, drops the response body, and a stream on it
//! is cut — its upstream call closed and the request settled, like any
//! client that leaves.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pub struct WriteStall<T> {
    io: T,
    limit: Duration,
    /// Running while hyper has data the socket would not take.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteStall<T> {
    pub fn new(io: T, limit: Duration) -> Self {
        WriteStall { io, limit, stalled: None }
    }

    /// The write is pending: start the timer, or fail if it has run out.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, format!("client did not read for {limit:?}"))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStall<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStall<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.pending(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.pending(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    /// hyper flushes once its own queue is written out: the client kept up.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                this.stalled = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.pending(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.pending(cx),
            ready => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A peer that never reads: writes fill the pipe, then fail after the limit.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_reads_fails_the_write_after_the_limit() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut io = WriteStall::new(near, Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        let err = loop {
            if let Err(e) = io.write_all(&[0u8; 4096]).await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    /// A peer that keeps up never trips the timer, however long it runs.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_keeps_reading_is_never_cut() {
        use tokio::io::AsyncReadExt;
        let (near, mut far) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut sink = vec![0u8; 4096];
            let mut total = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match far.read(&mut sink).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        let mut io = WriteStall::new(near, Duration::from_secs(5));
        for _ in 0..30 {
            io.write_all(&[1u8; 512]).await.unwrap();
            io.flush().await.unwrap();
        }
        drop(io);
        assert_eq!(reader.await.unwrap(), 30 * 512);
    }

    /// A drip reader that takes a little now and then but never lets the
    /// queue drain is cut too: progress alone does not reset the timer.
    #[tokio::test(start_paused = true)]
    async fn a_drip_reader_that_never_drains_is_cut() {
        use tokio::io::AsyncReadExt;
        let (near, mut far) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let mut byte = [0u8; 1];
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if far.read(&mut byte).await.unwrap_or(0) == 0 {
                    return;
                }
            }
        });
        let mut io = WriteStall::new(near, Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        let err = io.write_all(&[2u8; 10_000]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
