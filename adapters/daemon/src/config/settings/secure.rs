//! The refusals that keep a server from being open by accident:
//! [`Settings::check_secure`] (a listener or the metrics outside loopback that
//! nobody may use) and the public listeners `--check` warns about.

use super::{err, ConfigError, Settings};
use socks4_acl::Netmask;

impl Settings {
    /// The listeners' addresses outside loopback, as text.
    pub(crate) fn public_listeners(&self) -> Vec<String> {
        self.listeners
            .iter()
            .map(|l| l.addr)
            .filter(|a| !a.ip().is_loopback())
            .map(|a| a.to_string())
            .collect()
    }

    /// Refuses a listener outside loopback when the policy serves loopback
    /// clients only: every client that can reach such a listener would be
    /// refused, which is never what was meant, and a careless edit could later
    /// open it to all. Serving a network must be a deliberate rule that names a
    /// client net outside loopback.
    pub fn check_secure(&self) -> Result<(), ConfigError> {
        let public = self.public_listeners();
        if let Some(addr) = self.metrics_listen {
            let outside = self.metrics_allow.iter().any(|n| match n {
                Netmask::Any => true,
                Netmask::Net(net) => !socks4_acl::loopback().iter().any(|l| match l {
                    Netmask::Net(l) => l.contains(net),
                    Netmask::Any => false,
                }),
            });
            if !addr.ip().is_loopback() && !outside {
                return Err(err(format!(
                    "refusing to serve metrics on {addr} (not loopback): only loopback may scrape them; \
                     say who else may with `--metrics-allow NET` (config: metrics_allow)"
                )));
            }
        }
        self.check_listeners(&public)
    }

    /// [`check_secure`](Self::check_secure)'s refusal for listeners at
    /// `public` (addresses outside loopback, as text), whatever bound them:
    /// also for the sockets systemd passes by socket activation, whose
    /// addresses are known only once they are inherited.
    pub fn check_listeners(&self, public: &[String]) -> Result<(), ConfigError> {
        if !public.is_empty() && self.server.policy.only_loopback_clients() {
            return Err(err(format!(
                "refusing to listen on {} (not loopback): no access rule passes a client from outside \
                 loopback, so nobody who can reach that address could use the proxy; say who may, \
                 e.g. `--allow 192.168.1.0/24`, or `rules = \"pass from 192.168.1.0/24 to any\"` under \
                 [access] in the config file (`pass from any to any` makes an open proxy: only do \
                 that deliberately)",
                public.join(", ")
            )));
        }
        Ok(())
    }
}
