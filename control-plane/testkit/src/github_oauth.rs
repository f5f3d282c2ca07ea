//! Placeholder: protocol-level test double, being built.
