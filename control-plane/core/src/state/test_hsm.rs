//! An in-memory [`Hsm`] for unit tests of the state store and of services built on it (the
//! scheduler's lease, ...): data objects in a map, "sealing" by keeping the plaintext and AAD in a
//! table behind an opaque handle — no cryptography is imitated here. It can misbehave on demand
//! (lost writes, lost answers). Key operations are refused. The real emulator is exercised by the
//! e2e suite.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::{DataObjectName, Hsm, HsmError, KeystoreStatistics, SealedBlob, ServiceInfo};

#[derive(Default)]
pub(crate) struct FakeHsm {
    pub(crate) objects: Mutex<HashMap<String, Vec<u8>>>,
    pub(crate) sealed: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    pub(crate) reads: AtomicUsize,
    /// Record writes (not lock objects) to acknowledge without storing.
    pub(crate) lose_writes: AtomicUsize,
    /// Record writes to fail with a transport error *after* storing (answer lost).
    pub(crate) fail_after_storing: AtomicUsize,
    pub(crate) seal_keys: AtomicUsize,
}

impl FakeHsm {
    pub(crate) fn raw(&self, name: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(name).cloned()
    }

    pub(crate) fn put_raw(&self, name: &str, value: &[u8]) {
        self.objects
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_vec());
    }

    fn take(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Writes like the TSB: a create fails if the object exists and a replace if it does not,
    /// checked and applied atomically (several replicas may race on one object).
    fn store(&self, name: &DataObjectName, value: &[u8], create: bool) -> Result<(), HsmError> {
        let record = !name.as_str().starts_with("kms.lock.");
        {
            let mut objects = self.objects.lock().unwrap();
            match (create, objects.contains_key(name.as_str())) {
                (true, true) => return Err(HsmError::AlreadyExists(name.to_string())),
                (false, false) => return Err(HsmError::NotFound(name.to_string())),
                _ => {}
            }
            if record && Self::take(&self.lose_writes) {
                return Ok(());
            }
            objects.insert(name.to_string(), value.to_vec());
        }
        if record && Self::take(&self.fail_after_storing) {
            return Err(HsmError::Unavailable("connection reset".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Hsm for FakeHsm {
    async fn service_info(&self) -> Result<ServiceInfo, HsmError> {
        Ok(ServiceInfo {
            version: "fake".into(),
            licenses: vec![],
        })
    }
    async fn keystore_statistics(&self) -> Result<KeystoreStatistics, HsmError> {
        Ok(KeystoreStatistics::default())
    }
    async fn create_data_object(
        &self,
        name: &DataObjectName,
        value: &[u8],
    ) -> Result<(), HsmError> {
        self.store(name, value, true)
    }
    async fn read_data_object(&self, name: &DataObjectName) -> Result<Option<Vec<u8>>, HsmError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.raw(name.as_str()))
    }
    async fn replace_data_object(
        &self,
        name: &DataObjectName,
        value: &[u8],
    ) -> Result<(), HsmError> {
        self.store(name, value, false)
    }
    async fn delete_data_object(&self, name: &DataObjectName) -> Result<(), HsmError> {
        match self.objects.lock().unwrap().remove(name.as_str()) {
            Some(_) => Ok(()),
            None => Err(HsmError::NotFound(name.to_string())),
        }
    }
    async fn list_data_objects(&self) -> Result<Vec<DataObjectName>, HsmError> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .keys()
            .map(|k| DataObjectName::new(k.clone()).unwrap())
            .collect())
    }
    async fn ensure_seal_key(&self, _label: &str) -> Result<(), HsmError> {
        self.seal_keys.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn seal(
        &self,
        _label: &str,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<SealedBlob, HsmError> {
        let mut sealed = self.sealed.lock().unwrap();
        sealed.push((plaintext.to_vec(), aad.to_vec()));
        let handle = (sealed.len() - 1) as u64;
        Ok(SealedBlob {
            ciphertext: handle.to_be_bytes().to_vec(),
            iv: vec![0; 12],
        })
    }
    async fn unseal(
        &self,
        _label: &str,
        blob: &SealedBlob,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let handle = u64::from_be_bytes(blob.ciphertext.as_slice().try_into().unwrap());
        let sealed = self.sealed.lock().unwrap();
        match sealed.get(handle as usize) {
            Some((plaintext, bound)) if bound == aad => Ok(Zeroizing::new(plaintext.clone())),
            _ => Err(HsmError::Integrity("tag mismatch".into())),
        }
    }

    async fn list_keys(&self) -> Result<Vec<String>, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn key_info(&self, _: &str) -> Result<Option<crate::HsmKeyInfo>, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn create_key(&self, _: &crate::NewHsmKey) -> Result<crate::HsmKeyInfo, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn block_key(&self, _: &str) -> Result<crate::HsmChange, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn unblock_key(&self, _: &str) -> Result<crate::HsmChange, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn modify_policy(
        &self,
        _: &str,
        _: &km_domain::SkaPolicy,
    ) -> Result<crate::HsmChange, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn request_status(&self, _: &str) -> Result<crate::HsmRequest, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn cancel_request(&self, _: &str) -> Result<(), HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn delete_key(&self, _: &str) -> Result<(), HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn key_public_key(&self, _: &str) -> Result<Option<Vec<u8>>, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
}
