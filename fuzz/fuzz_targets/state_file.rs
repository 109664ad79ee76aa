//! The state file (`--state-file`): arbitrary bytes restored into a client
//! table never panic; what is restored is never more than the records the
//! text has, and the table then holds at most that many usage records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_daemon::limits::client_table::{ClientLimits, ClientTable};
use socks4_daemon::restore_state;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let table = ClientTable::new(ClientLimits::caps(16, 4, 64));
    if let Ok(n) = restore_state(text, &table) {
        let records = text.matches("\"client\"").count();
        assert!(n <= records, "{n} restored from {records} records");
        assert!(table.usage().len() <= n);
    }
});
