//! Netmasks as people type them, and [`NetSet`]: a set of them that answers "does
//! any member contain this address?" in logarithmic time.
//!
//! The parts, by job:
//!
//! - [`Netmask`] (`netmask.rs`): one net as people type it, parsed and
//!   printed, and the [`loopback`] nets.
//! - `spelling.rs`: IPv6 spellings of IPv4 addresses ([`canonical`],
//!   [`canonical_net`], [`ipv4_equivalent`]), so that no spelling gets
//!   around an IPv4 rule.
//! - [`AddrClass`] (`class.rs`): loopback, private, link-local, unspecified,
//!   in both families.
//! - [`NetSet`] (`set.rs`): the set of netmasks, with exact membership.
//! - `ranges.rs`: the lookup structure behind a set: sorted disjoint ranges
//!   and a bucket index, searched in logarithmic time.

mod class;
mod netmask;
mod ranges;
mod set;
mod spelling;
#[cfg(test)]
mod tests;

pub use class::AddrClass;
pub use netmask::{loopback, Netmask, NetmaskError};
pub use set::NetSet;
pub use spelling::{canonical, canonical_net, ipv4_equivalent};
