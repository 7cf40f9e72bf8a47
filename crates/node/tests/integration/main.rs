//! ehr-node's tests (the rest of the node is tested end to end from crates/records and
//! bin/secure-ehr).

mod ledger;
mod recovery;
