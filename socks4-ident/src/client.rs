//! The querying side as a machine: send the query, read one bounded reply line.

use crate::query::Query;
use crate::reply::{parse_reply, ErrorCode, InvalidReply, Outcome, MAX_LINE_LEN};

/// One IDENT exchange, client side, without IO or timers.
///
/// Call order: [`IdentClient::new`]; connect to port 113 of the host to ask and
/// send what [`poll_transmit`](Self::poll_transmit) returns; feed every chunk read
/// to [`handle_input`](Self::handle_input) and the end of the stream to
/// [`handle_eof`](Self::handle_eof); after each call, [`poll_outcome`](Self::poll_outcome)
/// says whether the exchange is over. Then close the connection.
///
/// The machine holds at most [`MAX_LINE_LEN`] bytes. It has no deadline of its own:
/// the caller gives up when its timer fires (and a SOCKS server then treats identd
/// as unavailable). RFC 1413 asks a client to wait at least 30 seconds after a query
/// before giving up, to allow for network delays; a proxy whose client is waiting
/// for its reply may choose less.
///
/// ```
/// use socks4_ident::{IdentClient, Outcome, Query};
/// let mut c = IdentClient::new(Query::new(6193, 23));
/// assert_eq!(c.poll_transmit(), Some(&b"6193 , 23\r\n"[..]));
/// c.handle_input(b"6193 , 23 : USERID : UNIX :");
/// assert_eq!(c.poll_outcome(), None); // no end of line yet
/// c.handle_input(b" stjohns\r\n");
/// assert_eq!(c.poll_outcome().unwrap().user_id(), Some(&b"stjohns"[..]));
/// ```
#[derive(Debug, Clone)]
pub struct IdentClient {
    query: Query,
    query_line: Vec<u8>,
    transmitted: bool,
    line: Vec<u8>,
    outcome: Option<Outcome>,
    finished: bool,
}

impl IdentClient {
    /// An exchange asking about `query`'s port pair.
    pub fn new(query: Query) -> IdentClient {
        IdentClient {
            query,
            query_line: query.encode(),
            transmitted: false,
            line: Vec::new(),
            outcome: None,
            finished: false,
        }
    }

    /// The query this exchange asks.
    pub fn query(&self) -> Query {
        self.query
    }

    /// The query line to send, returned by the first call only. The caller must
    /// send all of it.
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        if self.transmitted {
            return None;
        }
        self.transmitted = true;
        Some(&self.query_line)
    }

    /// Takes bytes from the identd. Bytes after the first end of line are ignored,
    /// as is everything once an outcome is known.
    pub fn handle_input(&mut self, input: &[u8]) {
        if self.finished {
            return;
        }
        let room = MAX_LINE_LEN - self.line.len();
        let window = &input[..input.len().min(room)];
        match window.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.line.extend_from_slice(&window[..=end]);
                self.finish(parse_reply(&self.line, &self.query));
            }
            None => {
                self.line.extend_from_slice(window);
                if self.line.len() >= MAX_LINE_LEN {
                    self.finish(Outcome::Invalid(InvalidReply::TooLong));
                }
            }
        }
    }

    /// The identd closed the connection. Before an end of line, RFC 1413 gives this
    /// the meaning of `ERROR : UNKNOWN-ERROR`.
    pub fn handle_eof(&mut self) {
        if !self.finished {
            self.finish(Outcome::Error(ErrorCode::UnknownError));
        }
    }

    /// The outcome, once known; returned once.
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.outcome.take()
    }

    /// Whether the exchange is over (the outcome may already have been taken).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn finish(&mut self, outcome: Outcome) {
        self.finished = true;
        self.outcome = Some(outcome);
        self.line = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Query = Query {
        port_on_server: 6193,
        port_on_client: 23,
    };

    fn run(chunks: &[&[u8]], eof: bool) -> Option<Outcome> {
        let mut c = IdentClient::new(Q);
        assert!(c.poll_transmit().is_some());
        assert!(c.poll_transmit().is_none());
        for chunk in chunks {
            c.handle_input(chunk);
        }
        if eof {
            c.handle_eof();
        }
        c.poll_outcome()
    }

    #[test]
    fn every_two_and_three_way_split_gives_the_same_outcome() {
        let line: &[u8] = b"6193, 23 : USERID : UNIX , UTF-8 : stj: ohns \r\n";
        let whole = run(&[line], false);
        assert_eq!(
            whole.as_ref().and_then(Outcome::user_id),
            Some(&b"stj: ohns "[..])
        );
        for i in 0..=line.len() {
            assert_eq!(run(&[&line[..i], &line[i..]], false), whole, "split at {i}");
            for j in i..=line.len() {
                assert_eq!(
                    run(&[&line[..i], &line[i..j], &line[j..]], false),
                    whole,
                    "split at {i}, {j}"
                );
            }
        }
    }

    #[test]
    fn eof_before_end_of_line_is_unknown_error() {
        assert_eq!(
            run(&[], true),
            Some(Outcome::Error(ErrorCode::UnknownError))
        );
        assert_eq!(
            run(&[b"6193,23:USERID:UNIX:joe"], true),
            Some(Outcome::Error(ErrorCode::UnknownError))
        );
        assert_eq!(run(&[b"6193,23:USERID:UNIX:joe"], false), None);
    }

    #[test]
    fn bytes_after_the_line_and_eof_after_outcome_are_ignored() {
        let out = run(
            &[
                b"6193,23:USERID:UNIX:joe\r\n6193,23:USERID:UNIX:eve\r\n",
                b"junk",
            ],
            true,
        );
        assert_eq!(out.unwrap().user_id(), Some(&b"joe"[..]));
    }

    #[test]
    fn line_limit_is_enforced_without_end_of_line() {
        let mut c = IdentClient::new(Q);
        let blob = vec![b'a'; 400];
        c.handle_input(&blob);
        c.handle_input(&blob);
        assert_eq!(c.poll_outcome(), None);
        c.handle_input(&blob);
        assert_eq!(
            c.poll_outcome(),
            Some(Outcome::Invalid(InvalidReply::TooLong))
        );
        assert!(c.is_finished());
        // A line of exactly MAX_LINE_LEN bytes, end of line included, is fine.
        let mut line = b"6193,23:USERID:UNIX:".to_vec();
        line.resize(MAX_LINE_LEN - 2, b'u');
        line.extend_from_slice(b"\r\n");
        assert_eq!(
            run(&[&line], false).unwrap().user_id().map(<[u8]>::len),
            Some(MAX_LINE_LEN - 22)
        );
    }
}
