//! km-vault-azure — keeps partition credentials as Azure Key Vault secrets (placeholder, being built).
