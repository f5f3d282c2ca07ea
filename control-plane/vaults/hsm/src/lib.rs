//! km-vault-hsm — keeps partition credentials as sealed data objects on the management partition (placeholder, being built).
