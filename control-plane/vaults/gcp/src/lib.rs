//! km-vault-gcp — keeps partition credentials as Google Cloud Secret Manager secrets (placeholder, being built).
