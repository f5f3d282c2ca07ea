//! keymanager's end-to-end suite: ONE test binary, one module per area. Every test drives real
//! components — the `keymanager` binary, the TSB emulator over real HTTP/TLS — started on port 0.

mod dev_command;
mod support;
