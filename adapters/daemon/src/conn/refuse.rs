//! Turning away a client refused at accept (its source can pass no rule, or
//! it is over a per-client cap): a 91 at once, then a short linger
//! (`[timeouts] refused`) so that the client reads it. A lingering refusal
//! holds none of `max_connections`.

use crate::runtime::{poll_io, recv, send, shutdown_write, Direction, Runtime};
use socks4_proto::{Reply, ReplyCode};
use std::future::{poll_fn, Future};
use std::os::fd::AsFd;
use std::pin::pin;
use std::task::Poll;

/// What a refused client may still send before it is closed.
const REFUSAL_DRAIN: usize = 64 * 1024;

/// Refuses a connection its client may not open: reply 91 at once, without
/// waiting for the request; then half-close, and read and drop what the
/// client still sends until it closes, for at most `linger` (closing with its request unread would reset the
/// connection, and a reset can destroy the reply before the client reads it).
pub(crate) async fn refuse<R: Runtime>(rt: R, client: R::Stream, linger: std::time::Duration) {
    let reply = Reply::with_code(ReplyCode::Rejected).to_bytes();
    let mut timer = pin!(rt.sleep_until(rt.now() + linger));
    let mut sent = 0;
    let mut drained = 0;
    poll_fn(|cx| {
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        while sent < reply.len() {
            match poll_io(&client, Direction::Write, cx, &mut |fd| {
                send(fd, &reply[sent..])
            }) {
                Poll::Ready(Ok(n)) => sent += n,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
            if sent == reply.len() {
                let _ = shutdown_write(client.as_fd());
            }
        }
        loop {
            let mut buf = [0u8; 1024];
            match poll_io(&client, Direction::Read, cx, &mut |fd| recv(fd, &mut buf)) {
                Poll::Ready(Ok(n)) if n > 0 && drained < REFUSAL_DRAIN => drained += n,
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}
