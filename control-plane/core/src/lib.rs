//! km-core — keymanager's use cases and the ports they need.
//!
//! Owns: the ports (traits) through which the control plane reaches the outside world — today the
//! [`Hsm`] port (one instance per HSM partition) and the [`Clock`] — and the services built on them:
//! [`Installation`] (first-start provisioning of the management partition) and [`Readiness`].
//! Later: the sealed state store over HSM data objects, caches, and every other use case.
//!
//! Must not depend on: HTTP servers or clients, the TSB SDK, WASM runtimes or cloud SDKs. Adapters
//! (km-hsm-tsb, km-vault-*, ...) implement the ports; only the `keymanager` binary wires them.

mod clock;
mod hsm;
mod installation;
mod readiness;

pub use clock::{Clock, SystemClock, Timestamp};
pub use hsm::{DataObjectName, Hsm, HsmError, KeystoreStatistics, ServiceInfo};
pub use installation::{Installation, InstallationError, InstallationRecord};
pub use readiness::{Readiness, ReadinessReport};
