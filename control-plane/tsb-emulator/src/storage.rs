//! Persistence of the emulator state: one encrypted file per object under
//! `<dir>/<partition>/<kind>/<hex(sha256(name))>`.
//!
//! Every write is temp file + fsync + rename + fsync of the directory and completes before the
//! HTTP response is sent, so an acknowledged write survives `kill -9`. Files are AES-256-GCM
//! encrypted with a random 256-bit state key kept in `<dir>/state.key` (mode 0600) or in the file
//! named by `TSB_EMULATOR_STATE_KEY_FILE`. This protects *copies* of the data directory (backups,
//! a leaked archive) when the key file is kept elsewhere; it does not protect against a local
//! root user, who can read the key file. The associated data binds each file to its
//! partition/kind/name so files cannot be swapped undetected.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::config::Storage;
use crate::error::{EmulatorError, TsbError};

/// Environment variable naming the state key file (default `<dir>/state.key`).
pub const STATE_KEY_ENV: &str = "TSB_EMULATOR_STATE_KEY_FILE";

const MAGIC: &[u8; 6] = b"TSBE1\n";
const TMP_MARKER: &str = ".tmp-";

/// Kinds of persisted objects; each gets its own sub-directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Key,
    DataObject,
    Request,
    Approver,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Key => "keys",
            Kind::DataObject => "data-objects",
            Kind::Request => "requests",
            Kind::Approver => "approvers",
        }
    }
    pub(crate) const ALL: [Kind; 4] = [Kind::Key, Kind::DataObject, Kind::Request, Kind::Approver];
}

/// Either nothing (ephemeral) or an encrypted directory.
#[derive(Clone)]
pub(crate) struct Persistence {
    dir: Option<Arc<DirStore>>,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.dir {
            None => f.write_str("Persistence::Ephemeral"),
            Some(d) => write!(f, "Persistence::Directory({})", d.root.display()),
        }
    }
}

struct DirStore {
    root: PathBuf,
    key: LessSafeKey,
    /// Exclusive lock on `<dir>/.lock` for the lifetime of the store (released by the OS on a
    /// crash), so two emulators never share one state directory.
    _lock: File,
}

impl Persistence {
    pub(crate) fn open(storage: &Storage, partitions: &[String]) -> Result<Self, EmulatorError> {
        match storage {
            Storage::Ephemeral => Ok(Self { dir: None }),
            Storage::Directory(root) => {
                create_private_dir(root)?;
                let key_path = std::env::var_os(STATE_KEY_ENV)
                    .map(PathBuf::from)
                    .unwrap_or_else(|| root.join("state.key"));
                let lock_path = root.join(".lock");
                let lock = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .map_err(|e| {
                        EmulatorError::Storage(format!("cannot open {}: {e}", lock_path.display()))
                    })?;
                lock.try_lock().map_err(|_| {
                    EmulatorError::Storage(format!(
                        "state directory {} is in use by another emulator",
                        root.display()
                    ))
                })?;
                let key_bytes = load_or_create_key(&key_path)?;
                let unbound = UnboundKey::new(&AES_256_GCM, &key_bytes)
                    .map_err(|_| EmulatorError::Storage("invalid state key".into()))?;
                let store = DirStore {
                    root: root.clone(),
                    key: LessSafeKey::new(unbound),
                    _lock: lock,
                };
                for p in partitions {
                    for kind in Kind::ALL {
                        let d = root.join(p).join(kind.dir());
                        create_private_dir(&d)?;
                    }
                    fsync_dir(&root.join(p)).map_err(EmulatorError::Storage)?;
                }
                fsync_dir(root).map_err(EmulatorError::Storage)?;
                Ok(Self {
                    dir: Some(Arc::new(store)),
                })
            }
        }
    }

    /// Writes (or replaces) one object durably. Returns only after the rename and the directory
    /// fsync are done.
    pub(crate) async fn put(
        &self,
        partition: &str,
        kind: Kind,
        name: &str,
        plaintext: Zeroizing<Vec<u8>>,
    ) -> Result<(), TsbError> {
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        let partition = partition.to_owned();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || dir.write(&partition, kind, &name, &plaintext))
            .await
            .map_err(|e| TsbError::io(format!("storage task failed: {e}")))?
            .map_err(TsbError::io)
    }

    /// Removes one object durably (missing file is fine).
    pub(crate) async fn delete(
        &self,
        partition: &str,
        kind: Kind,
        name: &str,
    ) -> Result<(), TsbError> {
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        let partition = partition.to_owned();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || dir.remove(&partition, kind, &name))
            .await
            .map_err(|e| TsbError::io(format!("storage task failed: {e}")))?
            .map_err(TsbError::io)
    }

    /// Reads and decrypts every object of one kind (start-up). Leftover temp files from a crash
    /// are removed; an undecryptable file is a start-up error, never silently dropped.
    pub(crate) fn load_all(
        &self,
        partition: &str,
        kind: Kind,
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, EmulatorError> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        dir.load_all(partition, kind)
    }
}

impl DirStore {
    fn path_for(&self, partition: &str, kind: Kind, name: &str) -> (PathBuf, String) {
        let file = hex::encode(digest::digest(&digest::SHA256, name.as_bytes()).as_ref());
        (self.root.join(partition).join(kind.dir()), file)
    }

    fn aad(partition: &str, kind: Kind, file: &str) -> Vec<u8> {
        format!("{partition}/{}/{file}", kind.dir()).into_bytes()
    }

    fn write(
        &self,
        partition: &str,
        kind: Kind,
        name: &str,
        plaintext: &[u8],
    ) -> Result<(), String> {
        let (dir, file) = self.path_for(partition, kind, name);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce_bytes)
            .map_err(|_| "random nonce generation failed".to_string())?;
        let mut buf = Zeroizing::new(plaintext.to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(Self::aad(partition, kind, &file)),
                &mut *buf,
            )
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);

        let tmp = dir.join(format!(
            "{file}{TMP_MARKER}{}",
            uuid::Uuid::new_v4().simple()
        ));
        let target = dir.join(&file);
        let res = (|| -> std::io::Result<()> {
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &target)?;
            Ok(())
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(format!("write of {} failed: {e}", target.display()));
        }
        fsync_dir(&dir)
    }

    fn remove(&self, partition: &str, kind: Kind, name: &str) -> Result<(), String> {
        let (dir, file) = self.path_for(partition, kind, name);
        match fs::remove_file(dir.join(&file)) {
            Ok(()) => fsync_dir(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("delete failed: {e}")),
        }
    }

    fn load_all(
        &self,
        partition: &str,
        kind: Kind,
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, EmulatorError> {
        let dir = self.root.join(partition).join(kind.dir());
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(EmulatorError::Storage(format!(
                    "cannot list {}: {e}",
                    dir.display()
                )));
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| EmulatorError::Storage(e.to_string()))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.contains(TMP_MARKER) {
                // A write that never reached its rename: it was never acknowledged.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            if file.len() != 64 || !file.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let data = fs::read(entry.path()).map_err(|e| {
                EmulatorError::Storage(format!("cannot read {}: {e}", entry.path().display()))
            })?;
            let corrupt =
                || EmulatorError::Storage(format!("corrupt state file {}", entry.path().display()));
            if data.len() < MAGIC.len() + NONCE_LEN + 16 || &data[..MAGIC.len()] != MAGIC {
                return Err(corrupt());
            }
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&data[MAGIC.len()..MAGIC.len() + NONCE_LEN]);
            let mut buf = Zeroizing::new(data[MAGIC.len() + NONCE_LEN..].to_vec());
            let plain_len = self
                .key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(Self::aad(partition, kind, &file)),
                    &mut buf,
                )
                .map_err(|_| {
                    EmulatorError::Storage(format!(
                        "cannot decrypt {} (wrong state key or corrupt file)",
                        entry.path().display()
                    ))
                })?
                .len();
            buf.truncate(plain_len);
            out.push(buf);
        }
        Ok(out)
    }
}

/// Creates a directory (and parents) readable by the owner only.
fn create_private_dir(d: &Path) -> Result<(), EmulatorError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(d)
        .map_err(|e| EmulatorError::Storage(format!("cannot create {}: {e}", d.display())))
}

fn fsync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("fsync of {} failed: {e}", dir.display()))
}

fn load_or_create_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, EmulatorError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let key = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
                EmulatorError::Storage(format!("state key {} is not hex", path.display()))
            })?);
            if key.len() != 32 {
                return Err(EmulatorError::Storage(format!(
                    "state key {} must hold 32 bytes (64 hex digits)",
                    path.display()
                )));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Zeroizing::new(vec![0u8; 32]);
            SystemRandom::new()
                .fill(&mut key)
                .map_err(|_| EmulatorError::Storage("random generation failed".into()))?;
            let hexed = Zeroizing::new(hex::encode(&*key));
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(|e| {
                EmulatorError::Storage(format!("cannot create state key {}: {e}", path.display()))
            })?;
            f.write_all(hexed.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| EmulatorError::Storage(format!("cannot write state key: {e}")))?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(parent).map_err(EmulatorError::Storage)?;
            }
            Ok(key)
        }
        Err(e) => Err(EmulatorError::Storage(format!(
            "cannot read state key {}: {e}",
            path.display()
        ))),
    }
}

/// Small AEAD/hash helpers for the server's own (non-HSM) secrets: approver onboarding transport
/// encryption and key-password hashes.
pub(crate) mod aead {
    use super::*;

    /// AES-256-GCM with a random 96-bit IV; returns (iv, ciphertext||tag).
    pub(crate) fn seal(key: &[u8; 32], plaintext: &[u8]) -> Result<(Vec<u8>, Vec<u8>), TsbError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, key).map_err(|_| TsbError::new(701, "bad key"))?;
        let k = LessSafeKey::new(unbound);
        let mut iv = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut iv)
            .map_err(|_| TsbError::new(701, "random generation failed"))?;
        let mut buf = plaintext.to_vec();
        k.seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut buf)
            .map_err(|_| TsbError::new(701, "encryption failed"))?;
        Ok((iv.to_vec(), buf))
    }

    pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
        let d = digest::digest(&digest::SHA256, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    pub(crate) fn random(len: usize) -> Result<Vec<u8>, TsbError> {
        let mut v = vec![0u8; len];
        SystemRandom::new()
            .fill(&mut v)
            .map_err(|_| TsbError::new(701, "random generation failed"))?;
        Ok(v)
    }

    /// Salted SHA-256 of a key password (hex salt, hex hash).
    pub(crate) fn hash_password(pw: &str) -> Result<(String, String), TsbError> {
        let salt = random(16)?;
        let mut input = salt.clone();
        input.extend_from_slice(pw.as_bytes());
        let h = sha256(&input);
        input.fill(0);
        Ok((hex::encode(salt), hex::encode(h)))
    }

    pub(crate) fn check_password(pw: &str, salt_hex: &str, hash_hex: &str) -> bool {
        let (Ok(salt), Ok(expected)) = (hex::decode(salt_hex), hex::decode(hash_hex)) else {
            return false;
        };
        let mut input = salt;
        input.extend_from_slice(pw.as_bytes());
        let h = sha256(&input);
        input.fill(0);
        aws_lc_rs::constant_time::verify_slices_are_equal(&h, &expected).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn roundtrip_and_tmp_skip() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::Directory(dir.path().to_path_buf());
        let p = Persistence::open(&storage, &["p1".to_string()]).unwrap();
        p.put(
            "p1",
            Kind::DataObject,
            "a",
            Zeroizing::new(b"hello".to_vec()),
        )
        .await
        .unwrap();
        p.put(
            "p1",
            Kind::DataObject,
            "b",
            Zeroizing::new(b"world".to_vec()),
        )
        .await
        .unwrap();
        p.delete("p1", Kind::DataObject, "b").await.unwrap();
        // A leftover temp file from a crash is skipped and removed.
        let d = dir.path().join("p1").join("data-objects");
        fs::write(d.join(format!("abc{TMP_MARKER}x")), b"junk").unwrap();
        // The directory is locked while `p` is alive.
        assert!(Persistence::open(&storage, &["p1".to_string()]).is_err());
        drop(p);
        let p2 = Persistence::open(&storage, &["p1".to_string()]).unwrap();
        let all = p2.load_all("p1", Kind::DataObject).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(&all[0][..], b"hello");
        assert!(!d.join(format!("abc{TMP_MARKER}x")).exists());
        // Plaintext is not on disk.
        for e in fs::read_dir(&d).unwrap() {
            let bytes = fs::read(e.unwrap().path()).unwrap();
            assert!(!bytes.windows(5).any(|w| w == b"hello"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("state.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn password_hash() {
        let (s, h) = aead::hash_password("pw").unwrap();
        assert!(aead::check_password("pw", &s, &h));
        assert!(!aead::check_password("pW", &s, &h));
    }
}
