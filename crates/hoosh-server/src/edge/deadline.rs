//! The request body timeout: a body must arrive whole by a deadline set when
//! its head arrived. A per-chunk idle timer would let a client drip a byte
//! just under it forever; this one is absolute.
//!
//! Expiry is a body error, [`BodyTimedOut`]; the extractors look for it in
//! their rejection's source chain ([`timed_out`]) and answer 408.

use std::error::Error;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn Error + Send + Sync>;

/// The body did not arrive by its deadline.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl Error for BodyTimedOut {}

/// Whether `e`, or anything it wraps, is a [`BodyTimedOut`].
pub fn timed_out(e: &(dyn Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        cur = e.source();
    }
    false
}

pub struct DeadlineBody<B> {
    body: B,
    deadline: Instant,
    /// Armed the first time the body is not ready: a body that came with
    /// its head (most do) never allocates a timer.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> DeadlineBody<B> {
    pub fn new(body: B, deadline: Instant) -> Self {
        DeadlineBody { body, deadline, timer: None }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A body that sends a byte every 100 ms, forever.
    struct Drip(Pin<Box<Sleep>>);

    impl Body for Drip {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            std::task::ready!(self.0.as_mut().poll(cx));
            let next = Instant::now() + Duration::from_millis(100);
            self.0.as_mut().reset(next);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    /// Each chunk comes well inside any idle timer; the whole body still
    /// has to be in by the deadline.
    #[tokio::test(start_paused = true)]
    async fn a_dripping_body_is_cut_at_the_deadline() {
        use http_body_util::BodyExt;
        let started = Instant::now();
        let drip = Drip(Box::pin(tokio::time::sleep(Duration::from_millis(100))));
        let body = DeadlineBody::new(drip, started + Duration::from_secs(3));
        let err = body.collect().await.expect_err("the drip never ends; the deadline must");
        assert!(timed_out(&*err), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_in_time_is_untouched() {
        use http_body_util::BodyExt;
        let body = DeadlineBody::new(axum::body::Body::from("hello"), Instant::now() + Duration::from_secs(1));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    }
}
