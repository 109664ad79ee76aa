//! What the deployment kit leans on (issue 31): `readiness` (`/ready`,
//! `/live` and the `health` subcommand that probes them) and `dist` (the
//! Grafana dashboard and the alert rules name metrics a running server
//! exports).

mod dist;
mod readiness;
