//! Key management: create, list, attributes, delete, change password, plain import/export.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    check_password, descriptor, get_key, get_key_mut, snapshot, validate_key_label, validate_policy,
};
use crate::crypto::{self, KeyMaterial, KeySpec, PlainImport};
use crate::error::TsbError;
use crate::model::{AttributesIn, Dirty, KeyRecord, PartitionState, RequestStatus};
use crate::policy::Policy;
use crate::server::Ctx;
use crate::storage::aead;
use crate::wire::{self, JsonOut, Password, parse_body, required, required_str};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateKeyReq {
    label: Option<String>,
    id: Option<String>,
    algorithm: Option<String>,
    key_size: Option<u32>,
    curve_oid: Option<String>,
    password: Option<Password>,
    algorithm_oid: Option<String>,
    address_format: Option<Value>,
    attributes: Option<AttributesIn>,
    policy: Option<Value>,
}

/// Parses `policy`: absent or null = plain key.
pub(crate) fn parse_policy(v: Option<Value>) -> Result<Option<Policy>, TsbError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| TsbError::invalid_json(format!("invalid policy: {e}"))),
        Some(_) => Err(TsbError::invalid_json("policy must be an object or null")),
    }
}

/// Attribute-combination rules (606) shared by create, import and unwrap.
pub(crate) fn check_attribute_combination(
    algorithm: &str,
    attrs: &crate::model::Attributes,
    policy: Option<&Policy>,
    public_only: bool,
) -> Result<(), TsbError> {
    if !(public_only || attrs.decrypt || attrs.sign || attrs.unwrap) {
        return Err(TsbError::new(
            606,
            "at least one of decrypt, sign or unwrap must be true",
        ));
    }
    if attrs.extractable && policy.is_some() {
        return Err(TsbError::new(
            606,
            "extractable keys must be created with policy null",
        ));
    }
    if attrs.bip32 && !(algorithm.eq_ignore_ascii_case("EC") && attrs.derive) {
        return Err(TsbError::new(606, "bip32 requires an EC key with derive"));
    }
    if attrs.slip10
        && !((algorithm.eq_ignore_ascii_case("EC") || algorithm.eq_ignore_ascii_case("ED"))
            && attrs.derive)
    {
        return Err(TsbError::new(
            606,
            "slip10 requires an EC or ED key with derive",
        ));
    }
    if let Some(p) = policy
        && p.blocked()
        && p.rule_unblock.is_none()
    {
        return Err(TsbError::new(
            606,
            "a key blocked at creation needs a ruleUnblock",
        ));
    }
    Ok(())
}

pub(crate) fn hash_password(p: Option<&Password>) -> Result<Option<(String, String)>, TsbError> {
    match p.filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => aead::hash_password(p.as_str()).map(Some),
    }
}

pub(crate) fn new_record(
    shared: &crate::server::Shared,
    label: String,
    id: Option<String>,
    material: KeyMaterial,
    attributes: crate::model::Attributes,
    policy: Option<Policy>,
    password: Option<(String, String)>,
) -> KeyRecord {
    let mut policy = policy;
    if let Some(p) = policy.as_mut() {
        // keyStatus is always present on SKA keys.
        let blocked = p.blocked();
        p.key_status = Some(crate::policy::KeyStatus { blocked });
    }
    KeyRecord {
        label,
        id,
        uuid: uuid::Uuid::new_v4().to_string(),
        material: Arc::new(material),
        attributes,
        policy,
        password,
        create_time: shared.clock.now_unix(),
        key_usage_count: crate::model::UsageCount::default(),
        certificate_pem: None,
        address_format: None,
    }
}

pub(crate) async fn create(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: CreateKeyReq = parse_body(ctx.body)?;
    let label = required_str(req.label, "label")?;
    validate_key_label(&label)?;
    let algorithm = required_str(req.algorithm, "algorithm")?;
    let attrs = required(req.attributes, "attributes")?.to_attributes();
    let policy = parse_policy(req.policy)?;
    check_attribute_combination(&algorithm, &attrs, policy.as_ref(), false)?;
    if req.address_format.as_ref().is_some_and(|v| !v.is_null()) && policy.is_none() {
        return Err(TsbError::new(
            630,
            "addressFormat is only allowed for SKA keys",
        ));
    }
    {
        let st = ctx.part.state.lock().await;
        if st.keys.contains_key(&label) {
            return Err(TsbError::new(608, format!("key '{label}' already exists")));
        }
        if let Some(p) = &policy {
            validate_policy(&st, p)?;
        }
    }
    let password = hash_password(req.password.as_ref())?;
    let (alg, size, curve, alg_oid) = (
        algorithm.clone(),
        req.key_size,
        req.curve_oid.clone(),
        req.algorithm_oid.clone(),
    );
    let material = tokio::task::spawn_blocking(move || {
        crypto::generate(&KeySpec {
            algorithm: &alg,
            key_size: size,
            curve_oid: curve.as_deref(),
            algorithm_oid: alg_oid.as_deref(),
        })
    })
    .await
    .map_err(|e| TsbError::new(701, format!("key generation failed: {e}")))??;

    let mut rec = new_record(
        ctx.shared,
        label.clone(),
        req.id,
        material,
        attrs,
        policy,
        password,
    );
    rec.address_format = req.address_format.filter(|v| !v.is_null());
    let body = descriptor(ctx.shared, &rec);

    let mut st = ctx.part.state.lock().await;
    // Re-checked: another request may have created the label during key generation.
    if st.keys.contains_key(&label) {
        return Err(TsbError::new(608, format!("key '{label}' already exists")));
    }
    st.keys.insert(label.clone(), Arc::new(rec));
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::Key(label.clone())],
        )
        .await
    {
        st.keys.remove(&label);
        return Err(e);
    }
    tracing::info!(partition = %ctx.part.name, key = %label, "key created");
    Ok(JsonOut::created(body))
}

pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let st = ctx.part.state.lock().await;
    let labels: Vec<Value> = st.keys.keys().map(|k| Value::String(k.clone())).collect();
    Ok(JsonOut::ok(Value::Array(labels)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelPassword {
    label: Option<String>,
    password: Option<Password>,
    new_password: Option<Password>,
}

pub(crate) async fn attributes(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: LabelPassword = parse_body(ctx.body)?;
    let label = required_str(req.label, "label")?;
    let key = {
        let st = ctx.part.state.lock().await;
        let key = snapshot(&st, &label)?;
        check_password(&key, req.password.as_ref(), true)?;
        key
    };
    // The descriptor is signed by the attestation key: done without the lock.
    Ok(JsonOut::ok(descriptor(ctx.shared, &key)))
}

pub(crate) async fn attributes_deprecated(ctx: &Ctx<'_>, name: &str) -> Result<JsonOut, TsbError> {
    let key = snapshot(&*ctx.part.state.lock().await, name)?;
    Ok(JsonOut::ok(descriptor(ctx.shared, &key)))
}

/// Removes a key, cancelling its open requests (tasks deleted).
pub(crate) fn remove_key(st: &mut PartitionState, name: &str) -> Result<Vec<Dirty>, TsbError> {
    let key = get_key(st, name)?;
    if !key.attributes.destroyable {
        return Err(TsbError::forbidden_for_key(format!(
            "key '{name}' is not destroyable"
        )));
    }
    let mut dirty = vec![Dirty::Key(name.to_owned())];
    for r in st.requests.values_mut() {
        // A request already executing is linearised before the deletion and finishes.
        if r.key_name == name && r.status.is_open() && !r.executing {
            r.status = RequestStatus::Cancelled;
            r.tasks.clear();
            r.params = Value::Null;
            dirty.push(Dirty::Request(r.id.clone()));
        }
    }
    st.keys.remove(name);
    Ok(dirty)
}

/// `password_check`: `None` for `DELETE /v1/key/{name}` (no password on the wire),
/// `Some(pw)` for `POST /v1/key/deleteKey`.
pub(crate) async fn delete(
    ctx: &Ctx<'_>,
    name: &str,
    password_check: Option<Option<&Password>>,
) -> Result<JsonOut, TsbError> {
    let mut st = ctx.part.state.lock().await;
    if let Some(pw) = password_check {
        check_password(get_key(&st, name)?, pw, true)?;
    }
    let dirty = remove_key(&mut st, name)?;
    st.flush(&ctx.shared.persistence, &ctx.part.name, &dirty)
        .await?;
    tracing::info!(partition = %ctx.part.name, key = %name, "key deleted");
    Ok(JsonOut::ok(json!({})))
}

pub(crate) async fn delete_with_password(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: LabelPassword = parse_body(ctx.body)?;
    let label = required_str(req.label, "label")?;
    delete(ctx, &label, Some(req.password.as_ref())).await
}

pub(crate) async fn change_password(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: LabelPassword = parse_body(ctx.body)?;
    let label = required_str(req.label, "label")?;
    let new_hash = hash_password(req.new_password.as_ref())?;
    let mut st = ctx.part.state.lock().await;
    let key = get_key_mut(&mut st, &label)?;
    check_password(key, req.password.as_ref(), true)?;
    let old = std::mem::replace(&mut key.password, new_hash);
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::Key(label.clone())],
        )
        .await
    {
        if let Ok(k) = get_key_mut(&mut st, &label) {
            k.password = old;
        }
        return Err(e);
    }
    Ok(JsonOut::ok(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportReq {
    label: Option<String>,
    id: Option<String>,
    algorithm: Option<String>,
    private_key: Option<String>,
    public_key: Option<String>,
    secret_key: Option<String>,
    certificate: Option<String>,
    curve_oid: Option<String>,
    attributes: Option<AttributesIn>,
    policy: Option<Value>,
    password: Option<Password>,
}

pub(crate) async fn import_plain(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: ImportReq = parse_body(ctx.body)?;
    let label = required_str(req.label, "label")?;
    validate_key_label(&label)?;
    let algorithm = required_str(req.algorithm, "algorithm")?;
    let dec = |v: &Option<String>, f: &str| -> Result<Option<Vec<u8>>, TsbError> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| wire::der_from_b64_or_pem(s, f))
            .transpose()
    };
    let private_key = dec(&req.private_key, "privateKey")?;
    let public_key = dec(&req.public_key, "publicKey")?;
    let secret_key = dec(&req.secret_key, "secretKey")?;
    let certificate = dec(&req.certificate, "certificate")?;
    if private_key.is_none()
        && public_key.is_none()
        && secret_key.is_none()
        && certificate.is_none()
    {
        return Err(TsbError::missing(
            "privateKey, publicKey, secretKey or certificate",
        ));
    }
    let public_only = private_key.is_none() && secret_key.is_none();
    let attrs = req.attributes.unwrap_or_default().to_attributes();
    let policy = parse_policy(req.policy)?;
    check_attribute_combination(&algorithm, &attrs, policy.as_ref(), public_only)?;
    let cert_pem = certificate
        .as_ref()
        .map(|d| wire::pem_encode("CERTIFICATE", d));
    let material = crypto::import_plain(&PlainImport {
        algorithm: algorithm.clone(),
        curve_oid: req.curve_oid.clone(),
        private_key: private_key.map(zeroize::Zeroizing::new),
        public_key,
        secret_key: secret_key.map(zeroize::Zeroizing::new),
        certificate,
    })?;
    let password = hash_password(req.password.as_ref())?;
    let policy_to_check = policy.clone();
    let mut rec = new_record(
        ctx.shared,
        label.clone(),
        req.id,
        material,
        attrs,
        policy,
        password,
    );
    rec.certificate_pem = cert_pem;
    let body = descriptor(ctx.shared, &rec);
    let mut st = ctx.part.state.lock().await;
    if let Some(p) = &policy_to_check {
        validate_policy(&st, p)?;
    }
    if let Some(existing) = st.keys.get(&label) {
        // Re-importing a public key or certificate overwrites; a private key never does.
        if !public_only || existing.material.has_private() || !existing.attributes.destroyable {
            return Err(TsbError::new(608, format!("key '{label}' already exists")));
        }
    }
    let previous = st.keys.insert(label.clone(), Arc::new(rec));
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::Key(label.clone())],
        )
        .await
    {
        match previous {
            Some(p) => st.keys.insert(label, p),
            None => st.keys.remove(&label),
        };
        return Err(e);
    }
    Ok(JsonOut::created(body))
}

pub(crate) async fn export_plain(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: LabelPassword = parse_body(ctx.body)?;
    let label = required_str(req.label, "label")?;
    let key = {
        let st = ctx.part.state.lock().await;
        let key = snapshot(&st, &label)?;
        check_password(&key, req.password.as_ref(), true)?;
        if key.policy.is_some() {
            return Err(TsbError::forbidden_for_key("SKA keys cannot be exported"));
        }
        if !key.attributes.extractable {
            return Err(TsbError::forbidden_for_key("key is not extractable"));
        }
        if key.attributes.sensitive {
            return Err(TsbError::forbidden_for_key("key is sensitive"));
        }
        key
    };
    let ex = key.material.export_plain();
    Ok(JsonOut::ok(json!({
        "label": key.label,
        "algorithm": key.material.algorithm(),
        "privateKey": ex.private_key.as_ref().map(|k| wire::b64_encode(k)),
        "publicKey": ex.public_key.as_ref().map(|k| wire::b64_encode(k)),
        "secretKey": ex.secret_key.as_ref().map(|k| wire::b64_encode(k)),
    })))
}
