//! Ordered access rules, first match wins, in the spirit of Dante's `sockd.conf`.
//!
//! A [`Rule`] matches on the client's source net and port, the destination net or
//! host name pattern and port, the command and the user id; its [`Action`] passes
//! or blocks (with a reply code). [`RuleSet::evaluate`] returns the first matching
//! rule's [`Verdict`], naming the rule; with no match it blocks
//! ([`RuleSet::default_action`], block unless set otherwise).
//!
//! The parts, by job:
//!
//! - [`Subject`] and [`Command`] (`subject.rs`): what a request looks like to
//!   access control.
//! - [`PortMatch`], [`HostPattern`], [`DestMatch`] (`condition.rs`): the
//!   conditions a rule puts on a port and a destination, and how each matches.
//! - [`Rule`] (`matching.rs`): one rule, and whether it matches a subject.
//! - [`Action`], [`Verdict`], [`Source`] (`verdict.rs`): what a decision says
//!   and what made it.
//! - [`RuleSet`] (`set.rs`): the ordered rules, first match wins.
//! - `shadowing.rs`: which rules an earlier one hides ([`RuleSet::shadowed`]).
//! - `display.rs`: how rules print, in the text format that parses back.

mod condition;
mod display;
mod matching;
mod set;
mod shadowing;
mod subject;
#[cfg(test)]
mod tests;
mod verdict;

pub use condition::{DestMatch, HostPattern, PortMatch};
pub use matching::Rule;
pub use set::RuleSet;
pub use subject::{Command, Subject};
pub use verdict::{Action, Source, Verdict, DEFAULT_BLOCK_REPLY};
