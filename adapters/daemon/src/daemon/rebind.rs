//! What a reload asks of the listeners: the server installs a [`Rebind`]
//! when it starts serving, and each reload calls it with the new settings
//! before anything else changes. It binds the listeners the new settings add
//! and hands them, with those to close, to the server; a listener that
//! cannot bind fails the reload as a whole (the old configuration stays).

use crate::config::settings::Settings;
use std::sync::Mutex;

/// Binds the listeners new settings add and hands the change to the server:
/// `Ok` with a note for the reload's "restart needed" line when some change
/// cannot apply, or why the reload fails.
pub(crate) type Rebind = Box<dyn FnMut(&Settings) -> Result<Option<&'static str>, String> + Send>;

/// The server's [`Rebind`], if it serves; its lock also keeps reloads one at
/// a time.
#[derive(Default)]
pub(crate) struct RebindSlot(pub(crate) Mutex<Option<Rebind>>);

impl std::fmt::Debug for RebindSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RebindSlot")
    }
}
