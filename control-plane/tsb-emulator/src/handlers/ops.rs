//! Key operations, synchronous and asynchronous: sign, decrypt, unwrap, block, unblock, modify,
//! encrypt, verify, hmac, wrap, random. The same `execute` runs a synchronous call and an
//! approved asynchronous request, so both paths enforce identical rules.
//!
//! Concurrency: checks run under the partition lock on the live state; the crypto then runs on
//! `Arc` snapshots with the lock released ([`Job`]), and whatever it changes (a new key, a stored
//! certificate) is applied under the lock again and persisted before the answer. Usage counts
//! are atomic and need no lock.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::keys::{check_attribute_combination, hash_password, new_record, parse_policy};
use super::{
    certs, check_password, descriptor, ensure_usable, get_key, get_key_mut, governing_rule,
    require_no_approval, run_crypto, snapshot, validate_key_label, validate_policy, workflow,
};
use crate::crypto::{KeySpec, SignatureType};
use crate::error::TsbError;
use crate::model::{AttributesIn, Dirty, KeyRecord, Partition, PartitionState, RequestKind};
use crate::policy::{Action, Policy};
use crate::server::{Ctx, Shared};
use crate::wire::{
    self, JsonOut, Password, b64_decode, b64_encode, parse_json, parse_wrapped, required_str,
    unwrap_wrapper,
};

/// Result of running an operation.
pub(crate) struct OpOut {
    pub status: u16,
    /// Synchronous response body.
    pub body: Value,
    /// `result` of an executed request.
    pub result: String,
    pub dirty: Vec<Dirty>,
}

impl OpOut {
    pub(crate) fn checked() -> Self {
        Self {
            status: 200,
            body: Value::Null,
            result: String::new(),
            dirty: Vec::new(),
        }
    }
    pub(crate) fn ok(body: Value, result: String) -> Self {
        Self {
            status: 200,
            body,
            result,
            dirty: Vec::new(),
        }
    }
}

/// State changes of a computed operation, made under the partition lock.
pub(crate) type Apply =
    Box<dyn FnOnce(&Shared, &mut PartitionState) -> Result<OpOut, TsbError> + Send>;

/// What the crypto of a [`Job`] produced.
pub(crate) enum Computed {
    /// Nothing left to change in the partition (usage counts are atomic).
    Ready(OpOut),
    /// Changes to make under the lock (a new key, a stored certificate).
    Apply(Apply),
}

type Work = Box<dyn FnOnce() -> Result<Computed, TsbError> + Send>;

/// The expensive part of an operation, taken out of the partition lock: it only sees snapshots
/// (`Arc<KeyRecord>`) taken while the checks ran under the lock.
pub(crate) struct Job {
    fast: bool,
    work: Work,
}

impl Job {
    pub(crate) fn new(
        fast: bool,
        work: impl FnOnce() -> Result<Computed, TsbError> + Send + 'static,
    ) -> Self {
        Self {
            fast,
            work: Box::new(work),
        }
    }

    /// Runs the crypto (inline when fast, else on the blocking pool); no lock is held.
    pub(crate) async fn run(self) -> Result<Computed, TsbError> {
        run_crypto(self.fast, self.work).await
    }
}

/// What `execute` decided.
pub(crate) enum Step {
    /// Done under the lock: checks only (`dry`), or a cheap state change (block, unblock,
    /// modify) that must stay atomic with its checks.
    Done(OpOut),
    /// Crypto to run outside the lock, then (maybe) changes to apply.
    Compute(Job),
}

/// Runs a job without the lock and applies its changes (re-taking the lock briefly) durably.
pub(crate) async fn run_job(
    shared: &Shared,
    part: &Partition,
    job: Job,
) -> Result<OpOut, TsbError> {
    match job.run().await? {
        Computed::Ready(out) => Ok(out),
        Computed::Apply(apply) => {
            let mut st = part.state.lock().await;
            let out = apply(shared, &mut st)?;
            st.flush(&shared.persistence, &part.name, &out.dirty)
                .await?;
            Ok(out)
        }
    }
}

impl RequestKind {
    pub(crate) fn wrapper(self) -> &'static str {
        match self {
            RequestKind::Sign => "signRequest",
            RequestKind::Decrypt => "decryptRequest",
            RequestKind::Unwrap => "unwrapKeyRequest",
            RequestKind::Block => "blockRequest",
            RequestKind::Unblock => "unblockRequest",
            RequestKind::Modify => "modifyRequest",
            RequestKind::Csr => "csrSignRequest",
            RequestKind::SelfSign => "selfSignCertificateRequest",
            RequestKind::SignCertificate => "signCertificateRequest",
        }
    }
    pub(crate) fn key_field(self) -> &'static str {
        match self {
            RequestKind::Sign
            | RequestKind::Csr
            | RequestKind::SelfSign
            | RequestKind::SignCertificate => "signKeyName",
            RequestKind::Decrypt => "decryptKeyName",
            RequestKind::Unwrap => "unwrapKeyName",
            RequestKind::Block => "blockKeyName",
            RequestKind::Unblock => "unblockKeyName",
            RequestKind::Modify => "modifyKeyName",
        }
    }
    pub(crate) fn id_field(self) -> &'static str {
        match self {
            RequestKind::Sign
            | RequestKind::Csr
            | RequestKind::SelfSign
            | RequestKind::SignCertificate => "signRequestId",
            RequestKind::Decrypt => "decryptRequestId",
            RequestKind::Unwrap => "unwrapRequestId",
            RequestKind::Block => "blockKeyRequestId",
            RequestKind::Unblock => "unblockKeyRequestId",
            RequestKind::Modify => "modifyKeyRequestId",
        }
    }
    pub(crate) fn action(self) -> Action {
        match self {
            RequestKind::Block => Action::Block,
            RequestKind::Unblock => Action::Unblock,
            RequestKind::Modify => Action::Modify,
            _ => Action::Use,
        }
    }
}

/// Checks an operation against the partition state (`dry`), or checks it and plans it: cheap
/// state changes are made at once, crypto is returned as a [`Job`] working on snapshots.
/// Policy/approval checks are the caller's job.
pub(crate) fn execute(
    shared: &Arc<Shared>,
    st: &mut PartitionState,
    kind: RequestKind,
    params: Value,
    dry: bool,
) -> Result<Step, TsbError> {
    match kind {
        RequestKind::Sign => op_sign(st, wire::from_value(params)?, dry),
        RequestKind::Decrypt => op_decrypt(st, wire::from_value(params)?, dry),
        RequestKind::Unwrap => op_unwrap(shared, st, wire::from_value(params)?, dry),
        RequestKind::Block => op_block(st, &wire::from_value(params)?, true, dry).map(Step::Done),
        RequestKind::Unblock => {
            op_block(st, &wire::from_value(params)?, false, dry).map(Step::Done)
        }
        RequestKind::Modify => op_modify(st, &wire::from_value(params)?, dry).map(Step::Done),
        RequestKind::Csr => certs::op_csr(st, wire::from_value(params)?, dry),
        RequestKind::SelfSign => certs::op_selfsign(st, wire::from_value(params)?, dry),
        RequestKind::SignCertificate => certs::op_sign_csr(st, wire::from_value(params)?, dry),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignReq {
    payload: Option<String>,
    sign_key_name: Option<String>,
    key_password: Option<Password>,
    signature_algorithm: Option<String>,
    signature_type: Option<String>,
}

fn op_sign(st: &mut PartitionState, p: SignReq, dry: bool) -> Result<Step, TsbError> {
    let name = required_str(p.sign_key_name.clone(), "signKeyName")?;
    let payload = b64_decode(&required_str(p.payload.clone(), "payload")?, "payload")?;
    let alg = required_str(p.signature_algorithm.clone(), "signatureAlgorithm")?;
    let sig_type = SignatureType::parse(p.signature_type.as_deref())?;
    let key = snapshot(st, &name)?;
    check_password(&key, p.key_password.as_ref(), true)?;
    ensure_usable(&key, Some(("sign", key.attributes.sign)))?;
    if dry {
        return Ok(Step::Done(OpOut::checked()));
    }
    Ok(Step::Compute(Job::new(key.material.is_fast(), move || {
        let sig = b64_encode(&key.material.sign(&alg, &payload, sig_type)?);
        key.key_usage_count.bump();
        Ok(Computed::Ready(OpOut::ok(json!({ "signature": sig }), sig)))
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DecryptReq {
    encrypted_payload: Option<String>,
    decrypt_key_name: Option<String>,
    key_password: Option<Password>,
    cipher_algorithm: Option<String>,
    initialization_vector: Option<String>,
    tag_length: Option<u32>,
    additional_authentication_data: Option<String>,
}

fn opt_b64(v: &Option<String>, field: &str) -> Result<Option<Vec<u8>>, TsbError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| b64_decode(s, field))
        .transpose()
}

fn op_decrypt(st: &mut PartitionState, p: DecryptReq, dry: bool) -> Result<Step, TsbError> {
    let name = required_str(p.decrypt_key_name.clone(), "decryptKeyName")?;
    let ct = b64_decode(
        &required_str(p.encrypted_payload.clone(), "encryptedPayload")?,
        "encryptedPayload",
    )?;
    let alg = required_str(p.cipher_algorithm.clone(), "cipherAlgorithm")?;
    let iv = opt_b64(&p.initialization_vector, "initializationVector")?;
    let aad = opt_b64(
        &p.additional_authentication_data,
        "additionalAuthenticationData",
    )?;
    let key = snapshot(st, &name)?;
    check_password(&key, p.key_password.as_ref(), true)?;
    ensure_usable(&key, Some(("decrypt", key.attributes.decrypt)))?;
    if dry {
        return Ok(Step::Done(OpOut::checked()));
    }
    let tag_len = p.tag_length.filter(|t| *t != 0);
    Ok(Step::Compute(Job::new(key.material.is_fast(), move || {
        let plain = key
            .material
            .decrypt(&alg, &ct, iv.as_deref(), tag_len, aad.as_deref())?;
        let out = b64_encode(&plain);
        key.key_usage_count.bump();
        Ok(Computed::Ready(OpOut::ok(json!({ "payload": out }), out)))
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnwrapReq {
    wrapped_key: Option<String>,
    label: Option<String>,
    id: Option<String>,
    unwrap_key_name: Option<String>,
    unwrap_key_password: Option<Password>,
    wrap_method: Option<String>,
    attributes: Option<AttributesIn>,
    policy: Option<Value>,
    algorithm: Option<String>,
    key_size: Option<u32>,
    curve_oid: Option<String>,
    password: Option<Password>,
}

/// Key type an unwrap produces when the request does not say: the wrap method's suffix.
fn algorithm_for_wrap_method(method: &str) -> &'static str {
    let m = method.to_ascii_uppercase();
    if m.ends_with("_DSA") {
        "DSA"
    } else if m.ends_with("_EC") {
        "EC"
    } else if m.ends_with("_ED") {
        "ED"
    } else if m.ends_with("_RSA") {
        "RSA"
    } else if m.ends_with("_BLS") {
        "BLS"
    } else {
        "AES"
    }
}

fn op_unwrap(
    shared: &Arc<Shared>,
    st: &mut PartitionState,
    p: UnwrapReq,
    dry: bool,
) -> Result<Step, TsbError> {
    let name = required_str(p.unwrap_key_name.clone(), "unwrapKeyName")?;
    let wrapped = b64_decode(
        &required_str(p.wrapped_key.clone(), "wrappedKey")?,
        "wrappedKey",
    )?;
    let label = required_str(p.label.clone(), "label")?;
    validate_key_label(&label)?;
    let method = required_str(p.wrap_method.clone(), "wrapMethod")?;
    let attrs = p.attributes.clone().unwrap_or_default().to_attributes();
    let policy = parse_policy(p.policy.clone())?;
    let algorithm = p
        .algorithm
        .clone()
        .unwrap_or_else(|| algorithm_for_wrap_method(&method).to_owned());
    check_attribute_combination(&algorithm, &attrs, policy.as_ref(), false)?;
    if let Some(pol) = &policy {
        validate_policy(st, pol)?;
    }
    let key = snapshot(st, &name)?;
    check_password(&key, p.unwrap_key_password.as_ref(), true)?;
    ensure_usable(&key, Some(("unwrap", key.attributes.unwrap)))?;
    if st.keys.contains_key(&label) {
        return Err(TsbError::new(608, format!("key '{label}' already exists")));
    }
    if dry {
        return Ok(Step::Done(OpOut::checked()));
    }
    let shared = shared.clone();
    Ok(Step::Compute(Job::new(key.material.is_fast(), move || {
        let material = key.material.unwrap(
            &method,
            &wrapped,
            &KeySpec {
                algorithm: &algorithm,
                key_size: p.key_size,
                curve_oid: p.curve_oid.as_deref(),
                algorithm_oid: None,
            },
        )?;
        let password = hash_password(p.password.as_ref())?;
        let rec = new_record(
            &shared,
            label.clone(),
            p.id.clone(),
            material,
            attrs,
            policy,
            password,
        );
        let body = descriptor(&shared, &rec);
        Ok(Computed::Apply(Box::new(move |_shared, st| {
            // A racer may have taken the label while the key was being unwrapped.
            if st.keys.contains_key(&label) {
                return Err(TsbError::new(608, format!("key '{label}' already exists")));
            }
            key.key_usage_count.bump();
            st.keys.insert(label.clone(), Arc::new(rec));
            Ok(OpOut {
                status: 201,
                body,
                result: "true".into(),
                dirty: vec![Dirty::Key(label)],
            })
        })))
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlockReq {
    block_key_name: Option<String>,
    unblock_key_name: Option<String>,
    key_password: Option<Password>,
}

fn op_block(
    st: &mut PartitionState,
    p: &BlockReq,
    block: bool,
    dry: bool,
) -> Result<OpOut, TsbError> {
    let name = if block {
        required_str(p.block_key_name.clone(), "blockKeyName")?
    } else {
        required_str(p.unblock_key_name.clone(), "unblockKeyName")?
    };
    let key = get_key(st, &name)?;
    check_password(key, p.key_password.as_ref(), true)?;
    if key.policy.is_none() {
        return Err(TsbError::forbidden_for_key(format!(
            "key '{name}' has no SKA policy (policy null); it cannot be blocked or unblocked"
        )));
    }
    if dry {
        return Ok(OpOut::checked());
    }
    let key = get_key_mut(st, &name)?;
    if let Some(pol) = key.policy.as_mut() {
        pol.key_status = Some(crate::policy::KeyStatus { blocked: block });
    }
    Ok(OpOut {
        status: 200,
        body: json!({}),
        result: "true".into(),
        dirty: vec![Dirty::Key(name)],
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModifyReq {
    modify_key_name: Option<String>,
    key_password: Option<Password>,
    policy: Option<Value>,
    attributes: Option<AttributesIn>,
}

fn op_modify(st: &mut PartitionState, p: &ModifyReq, dry: bool) -> Result<OpOut, TsbError> {
    let name = required_str(p.modify_key_name.clone(), "modifyKeyName")?;
    let new_policy: Option<Policy> = parse_policy(p.policy.clone())?;
    if new_policy.is_none() && p.attributes.is_none() {
        return Err(TsbError::missing("policy"));
    }
    if let Some(pol) = &new_policy {
        validate_policy(st, pol)?;
    }
    let key = get_key(st, &name)?;
    check_password(key, p.key_password.as_ref(), true)?;
    if new_policy.is_some() && key.policy.is_none() {
        return Err(TsbError::forbidden_for_key(format!(
            "key '{name}' was created with policy null and can never become an SKA key"
        )));
    }
    let new_attrs = match &p.attributes {
        Some(a) => Some(a.apply_stricter(&key.attributes)?),
        None => None,
    };
    if dry {
        return Ok(OpOut::checked());
    }
    let key = get_key_mut(st, &name)?;
    if let Some(mut pol) = new_policy {
        // The blocked state is changed by block/unblock only.
        pol.key_status = Some(crate::policy::KeyStatus {
            blocked: key.blocked(),
        });
        key.policy = Some(pol);
    }
    if let Some(a) = new_attrs {
        key.attributes = a;
    }
    Ok(OpOut {
        status: 200,
        body: json!({}),
        result: "true".into(),
        dirty: vec![Dirty::Key(name)],
    })
}

async fn run_sync(ctx: &Ctx<'_>, kind: RequestKind) -> Result<JsonOut, TsbError> {
    let inner = unwrap_wrapper(parse_json(ctx.body)?, kind.wrapper())?;
    run_sync_inner(ctx, kind, inner).await
}

/// A synchronous operation: checks and approvals under the lock, crypto outside it, effects
/// under the lock again, persisted before the answer.
async fn run_sync_inner(
    ctx: &Ctx<'_>,
    kind: RequestKind,
    inner: Value,
) -> Result<JsonOut, TsbError> {
    let key_name = inner
        .get(kind.key_field())
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TsbError::missing(kind.key_field()))?
        .to_owned();
    let job = {
        let mut st = ctx.part.state.lock().await;
        // Input validation and key checks first, approvals second.
        execute(ctx.shared, &mut st, kind, inner.clone(), true)?;
        let key = get_key(&st, &key_name)?;
        require_no_approval(&st, key, kind.action())?;
        match execute(ctx.shared, &mut st, kind, inner, false)? {
            Step::Done(out) => {
                st.flush(&ctx.shared.persistence, &ctx.part.name, &out.dirty)
                    .await?;
                return Ok(JsonOut {
                    status: out.status,
                    body: out.body,
                });
            }
            Step::Compute(job) => job,
        }
    };
    let out = run_job(ctx.shared, ctx.part, job).await?;
    Ok(JsonOut {
        status: out.status,
        body: out.body,
    })
}

pub(crate) async fn sync_sign(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    run_sync(ctx, RequestKind::Sign).await
}
pub(crate) async fn sync_decrypt(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    run_sync(ctx, RequestKind::Decrypt).await
}
pub(crate) async fn sync_unwrap(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    run_sync(ctx, RequestKind::Unwrap).await
}
pub(crate) async fn sync_block(ctx: &Ctx<'_>, block: bool) -> Result<JsonOut, TsbError> {
    run_sync(
        ctx,
        if block {
            RequestKind::Block
        } else {
            RequestKind::Unblock
        },
    )
    .await
}
pub(crate) async fn sync_modify(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    run_sync(ctx, RequestKind::Modify).await
}
pub(crate) async fn sync_cert(
    ctx: &Ctx<'_>,
    kind: RequestKind,
    inner: Value,
) -> Result<JsonOut, TsbError> {
    run_sync_inner(ctx, kind, inner).await
}

/// Asynchronous submission: creates a request (201 + `{"<x>RequestId": uuid}`) with one approval
/// task per approver; executes at once when the governing rule needs no approval.
pub(crate) async fn async_op(ctx: &Ctx<'_>, kind: RequestKind) -> Result<JsonOut, TsbError> {
    let inner = unwrap_wrapper(parse_json(ctx.body)?, kind.wrapper())?;
    let key_name = inner
        .get(kind.key_field())
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TsbError::missing(kind.key_field()))?
        .to_owned();
    let meta = inner
        .get("metaData")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let meta_sig = inner
        .get("metaDataSignature")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(m) = &meta {
        b64_decode(m, "metaData")?;
    }
    let (id, executions) = {
        let mut st = ctx.part.state.lock().await;
        execute(ctx.shared, &mut st, kind, inner.clone(), true)?;
        let key = get_key(&st, &key_name)?;
        let rule = governing_rule(&st, key, kind.action())?;
        if rule.never_fulfillable() {
            return Err(TsbError::forbidden_for_key(format!(
                "the policy rule of key '{key_name}' for this action can never be fulfilled"
            )));
        }
        let (id, changes) = workflow::create_request(
            ctx.shared, &mut st, kind, key_name, inner, rule, meta, meta_sig,
        );
        st.flush(&ctx.shared.persistence, &ctx.part.name, &changes.dirty)
            .await?;
        (id, changes.executions)
    };
    // A rule that needs no approval executes at once (before the answer, as before).
    workflow::drive(ctx.shared, ctx.part, executions).await?;
    tracing::info!(partition = %ctx.part.name, request = %id, kind = ?kind, "request created");
    Ok(JsonOut::created(json!({ kind.id_field(): id })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptReq {
    payload: Option<String>,
    encrypt_key_name: Option<String>,
    key_password: Option<Password>,
    cipher_algorithm: Option<String>,
    tag_length: Option<u32>,
    additional_authentication_data: Option<String>,
}

/// Public-key operations work on blocked keys and need no password; secret-key ones do not.
fn check_public_or_secret(
    key: &KeyRecord,
    pw: Option<&Password>,
    attribute: Option<(&str, bool)>,
) -> Result<(), TsbError> {
    let asymmetric = key.material.public_key_der().is_some();
    check_password(key, pw, !asymmetric)?;
    if !asymmetric {
        ensure_usable(key, attribute)?;
    }
    Ok(())
}

pub(crate) async fn encrypt(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let p: EncryptReq = parse_wrapped(ctx.body, "encryptRequest")?;
    let name = required_str(p.encrypt_key_name, "encryptKeyName")?;
    let payload = b64_decode(&required_str(p.payload, "payload")?, "payload")?;
    let alg = required_str(p.cipher_algorithm, "cipherAlgorithm")?;
    let aad = opt_b64(
        &p.additional_authentication_data,
        "additionalAuthenticationData",
    )?;
    let key = {
        let st = ctx.part.state.lock().await;
        let key = snapshot(&st, &name)?;
        check_public_or_secret(&key, p.key_password.as_ref(), None)?;
        key
    };
    let tag_len = p.tag_length.filter(|t| *t != 0);
    let e = run_crypto(key.material.is_fast(), move || {
        Ok(key
            .material
            .encrypt(&alg, &payload, tag_len, aad.as_deref())?)
    })
    .await?;
    Ok(JsonOut::ok(json!({
        "encryptedPayload": b64_encode(&e.encrypted_payload),
        "encryptedPayloadWithoutMessageAuthenticationCode": b64_encode(&e.without_mac),
        "initializationVector": e.iv.as_deref().map(b64_encode),
        "messageAuthenticationCode": e.mac.as_deref().map(b64_encode),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyReq {
    sign_key_name: Option<String>,
    key_name: Option<String>,
    master_key_password: Option<Password>,
    key_password: Option<Password>,
    signature_algorithm: Option<String>,
    payload: Option<String>,
    signature: Option<String>,
}

pub(crate) async fn verify(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let v = parse_json(ctx.body)?;
    let is_hmac = v.get("verifyHmacRequest").is_some_and(Value::is_object);
    let p: VerifyReq = if is_hmac {
        wire::from_value(unwrap_wrapper(v, "verifyHmacRequest")?)?
    } else {
        wire::from_value(unwrap_wrapper(v, "verifySignatureRequest")?)?
    };
    let payload = b64_decode(&required_str(p.payload, "payload")?, "payload")?;
    let signature = b64_decode(&required_str(p.signature, "signature")?, "signature")?;
    let pw = p.master_key_password.or(p.key_password);
    let valid = if is_hmac {
        let key = {
            let st = ctx.part.state.lock().await;
            let name = required_str(p.key_name.or(p.sign_key_name), "keyName")?;
            let key = snapshot(&st, &name)?;
            check_password(&key, pw.as_ref(), false)?;
            ensure_usable(&key, None)?;
            key
        };
        run_crypto(key.material.is_fast(), move || {
            Ok(key.material.verify_hmac(&payload, &signature)?)
        })
        .await?
    } else {
        let (key, alg) = {
            let st = ctx.part.state.lock().await;
            let name = required_str(p.sign_key_name.or(p.key_name), "signKeyName")?;
            let alg = required_str(p.signature_algorithm, "signatureAlgorithm")?;
            let key = snapshot(&st, &name)?;
            check_public_or_secret(&key, pw.as_ref(), None)?;
            (key, alg)
        };
        run_crypto(key.material.is_fast(), move || {
            Ok(key.material.verify(&alg, &payload, &signature)?)
        })
        .await?
    };
    Ok(JsonOut::ok(json!({ "signatureValid": valid })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HmacReq {
    key_name: Option<String>,
    payload: Option<String>,
    key_password: Option<Password>,
}

pub(crate) async fn hmac(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let p: HmacReq = parse_wrapped(ctx.body, "hmacRequest")?;
    let name = required_str(p.key_name, "keyName")?;
    let payload = b64_decode(&required_str(p.payload, "payload")?, "payload")?;
    let key = {
        let st = ctx.part.state.lock().await;
        let key = snapshot(&st, &name)?;
        check_password(&key, p.key_password.as_ref(), true)?;
        ensure_usable(&key, Some(("sign", key.attributes.sign)))?;
        require_no_approval(&st, &key, Action::Use)?;
        key
    };
    let mac = run_crypto(key.material.is_fast(), move || {
        let mac = key.material.hmac(&payload)?;
        key.key_usage_count.bump();
        Ok(mac)
    })
    .await?;
    Ok(JsonOut::ok(json!({ "keyedHash": b64_encode(&mac) })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WrapReq {
    key_to_be_wrapped: Option<String>,
    key_to_be_wrapped_password: Option<Password>,
    wrap_key_name: Option<String>,
    wrap_key_password: Option<Password>,
    wrap_method: Option<String>,
}

pub(crate) async fn wrap(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let p: WrapReq = parse_wrapped(ctx.body, "wrapKeyRequest")?;
    let target = required_str(p.key_to_be_wrapped, "keyToBeWrapped")?;
    let wrapper = required_str(p.wrap_key_name, "wrapKeyName")?;
    let method = required_str(p.wrap_method, "wrapMethod")?;
    let (wk, tk) = {
        let st = ctx.part.state.lock().await;
        let wk = snapshot(&st, &wrapper)?;
        check_public_or_secret(&wk, p.wrap_key_password.as_ref(), None)?;
        let tk = snapshot(&st, &target)?;
        check_password(&tk, p.key_to_be_wrapped_password.as_ref(), true)?;
        ensure_usable(&tk, Some(("extractable", tk.attributes.extractable)))?;
        (wk, tk)
    };
    let fast = wk.material.is_fast() && tk.material.is_fast();
    let wrapped = run_crypto(fast, move || Ok(wk.material.wrap(&method, &tk.material)?)).await?;
    Ok(JsonOut::ok(json!({ "wrappedKey": b64_encode(&wrapped) })))
}

/// `GET /v1/generateRandom/{length}` (1..=65536 bytes).
pub(crate) fn random(len: &str) -> Result<JsonOut, TsbError> {
    let n: usize = len
        .parse()
        .map_err(|_| TsbError::new(619, "length must be a positive integer"))?;
    if !(1..=65_536).contains(&n) {
        return Err(TsbError::new(619, "length must be between 1 and 65536"));
    }
    let bytes = crate::crypto::random_bytes(n)?;
    Ok(JsonOut::ok(json!({ "random": b64_encode(&bytes) })))
}
