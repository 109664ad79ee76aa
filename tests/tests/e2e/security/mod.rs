//! Issue 26's trust boundaries, end to end: the per-client table's bound and
//! quota usage through eviction (`client_table`), CONNECTs to the server
//! itself (`loops`), refused sources that hold no slot (`refusals`), the
//! operator interfaces' own bounds (`ops_limits`), and the administrator's
//! files and commands (`operator_files`: durations, parents' passwords,
//! symbolic links, reloads never half applied).

mod client_table;
mod loops;
mod operator_files;
mod ops_limits;
mod refusals;
