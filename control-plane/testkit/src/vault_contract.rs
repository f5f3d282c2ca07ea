//! The contract every `SecretVault` backend must pass, run by each backend's own tests against a
//! real counterpart (hsm: the TSB emulator; azure and gcp: protocol-level fakes driven through the
//! official SDKs). One suite, so that the backends cannot drift apart in behaviour.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, ensure};
use futures_util::future::join_all;
use km_core::{SecretName, SecretValue, SecretVault};

/// Runs the whole contract against `vault`. Secret names start with `prefix` and a per-run
/// counter, so several runs can share one vault. Fails with the first broken promise.
pub async fn run(vault: &dyn SecretVault, prefix: &str) -> anyhow::Result<()> {
    let names = Names::new(prefix)?;

    vault.check().await.context("check() on a healthy vault")?;

    let absent = names.next()?;
    ensure!(
        vault.get(&absent).await?.is_none(),
        "get() of a secret never written must be None"
    );

    let first = names.next()?;
    vault.put(&first, &value(b"api-key-one")).await?;
    expect_value(vault, &first, b"api-key-one").await?;

    vault.put(&first, &value(b"api-key-two")).await?;
    expect_value(vault, &first, b"api-key-two").await?;

    let binary: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    let binary_name = names.next()?;
    vault.put(&binary_name, &value(&binary)).await?;
    expect_value(vault, &binary_name, &binary).await?;

    let largest: Vec<u8> = (0..SecretValue::MAX_LEN)
        .map(|i| b"0123456789abcdef"[i % 16])
        .collect();
    let largest_name = names.next()?;
    vault.put(&largest_name, &value(&largest)).await?;
    expect_value(vault, &largest_name, &largest).await?;

    // Names are independent.
    expect_value(vault, &first, b"api-key-two").await?;

    vault.delete(&first).await?;
    ensure!(
        vault.get(&first).await?.is_none(),
        "get() after delete() must be None"
    );
    vault
        .delete(&first)
        .await
        .context("delete() of an absent secret must succeed")?;
    vault
        .delete(&names.next()?)
        .await
        .context("delete() of a never-written secret must succeed")?;

    // A deleted name can be used again at once (soft-delete backends must purge).
    vault.put(&first, &value(b"api-key-three")).await?;
    expect_value(vault, &first, b"api-key-three").await?;

    // Concurrent writers on different names all land.
    let concurrent: Vec<SecretName> = (0..8).map(|_| names.next()).collect::<Result<_, _>>()?;
    let writes = concurrent
        .iter()
        .enumerate()
        .map(|(index, name)| async move {
            vault
                .put(name, &value(format!("secret-{index}").as_bytes()))
                .await
        });
    for result in join_all(writes).await {
        result?;
    }
    for (index, name) in concurrent.iter().enumerate() {
        expect_value(vault, name, format!("secret-{index}").as_bytes()).await?;
    }

    for name in [first, binary_name, largest_name]
        .into_iter()
        .chain(concurrent)
    {
        vault.delete(&name).await?;
        ensure!(vault.get(&name).await?.is_none(), "{name} still readable");
    }
    Ok(())
}

fn value(bytes: &[u8]) -> SecretValue {
    SecretValue::new(bytes.to_vec())
}

async fn expect_value(
    vault: &dyn SecretVault,
    name: &SecretName,
    expected: &[u8],
) -> anyhow::Result<()> {
    let found = vault
        .get(name)
        .await?
        .with_context(|| format!("{name} was written but get() found nothing"))?;
    ensure!(
        found.expose_secret() == expected,
        "{name}: get() returned {} bytes that differ from the {} bytes written",
        found.len(),
        expected.len()
    );
    Ok(())
}

/// Unique secret names for one run: `<prefix>-<pid>-<run>-<n>`.
struct Names {
    base: String,
    next: AtomicU64,
}

impl Names {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let base = format!("{prefix}-{}-{run}", std::process::id());
        SecretName::new(format!("{base}-0")).context("the prefix makes invalid secret names")?;
        Ok(Self {
            base,
            next: AtomicU64::new(0),
        })
    }

    fn next(&self) -> anyhow::Result<SecretName> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(SecretName::new(format!("{}-{n}", self.base))?)
    }
}
