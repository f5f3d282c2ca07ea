//! Wire types of the TSB REST API, grouped by endpoint family. JSON names follow the reference
//! exactly; binary values are standard base64; passwords are `SecretString` in Rust and char
//! arrays on the wire.

pub mod approvals;
pub mod approver_management;
pub mod certificates;
pub mod crypto;
pub mod data_objects;
pub mod keys;
pub mod policy;
pub mod requests;
pub mod service;
