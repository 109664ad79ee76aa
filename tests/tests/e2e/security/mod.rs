//! Issue 26's trust boundaries, end to end: the per-client table's bound and
//! quota usage through eviction (`client_table`), CONNECTs to the server
//! itself (`loops`), refused sources that hold no slot (`refusals`), and the
//! operator interfaces' own bounds (`ops_limits`).

mod client_table;
mod loops;
mod ops_limits;
mod refusals;
