//! Approver management (§9): HSM-generated approver keys with a self-signed certificate,
//! one-time codes, onboarding (encrypted key bundle), status, deletion.
//!
//! Onboarding returns AES-256-GCM (128-bit tag, key = SHA-256 of the transport password,
//! 96-bit random IV) over a **PEM bundle** (PKCS#8 `PRIVATE KEY` followed by the `CERTIFICATE`),
//! not a PKCS#12: no well-kept PKCS#12 writer is in the dependency set.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::crypto::{self, KeySpec, SubjectAttributes};
use crate::error::TsbError;
use crate::model::{ApproverRecord, Dirty, RequestKind, RequestRecord, RequestStatus};
use crate::policy::ResolvedRule;
use crate::server::Ctx;
use crate::storage::aead;
use crate::wire::{self, JsonOut, Password, parse_body, required_str};

fn one_time_code() -> Result<String, TsbError> {
    let bytes = aead::random(8)?;
    let mut n = 0u64;
    for b in bytes {
        n = (n << 8) | u64::from(b);
    }
    Ok(format!("{:06}", n % 1_000_000))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateReq {
    approver_name: Option<String>,
    algorithm: Option<String>,
    key_size: Option<u32>,
    backup_password: Option<Password>,
    validity: Option<u32>,
}

pub(crate) async fn create(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: CreateReq = parse_body(ctx.body)?;
    let name = required_str(req.approver_name, "approverName")?;
    if name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(TsbError::validation("invalid approverName"));
    }
    let algorithm = req.algorithm.unwrap_or_else(|| "RSA".into());
    if !algorithm.eq_ignore_ascii_case("RSA") {
        return Err(TsbError::new(601, "approver keys must be RSA"));
    }
    let key_size = req.key_size.unwrap_or(3072);
    if ![2048, 3072, 4096].contains(&key_size) {
        return Err(TsbError::new(
            603,
            "approver key size must be 2048, 3072 or 4096",
        ));
    }
    let backup = req
        .backup_password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| TsbError::missing("backupPassword"))?;
    let validity = req.validity.unwrap_or(365).clamp(1, 36_500);
    {
        let st = ctx.part.state.lock().await;
        if st.approvers.contains_key(&name) {
            return Err(TsbError::new(
                632,
                format!("approver '{name}' already exists"),
            ));
        }
    }
    let cn = name.clone();
    let (material, cert_pem) = tokio::task::spawn_blocking(move || -> Result<_, TsbError> {
        let material = crypto::generate(&KeySpec {
            algorithm: "RSA",
            key_size: Some(key_size),
            curve_oid: None,
            algorithm_oid: None,
        })?;
        let subject = SubjectAttributes {
            common_name: cn,
            country: None,
            state_or_province_name: None,
            locality: None,
            organization_name: None,
            organization_unit_name: None,
            organization_identifier: None,
            email: None,
            title: None,
            surname: None,
            given_name: None,
            initials: None,
            pseudonym: None,
            generation_qualifier: None,
        };
        let cert = crypto::self_signed_certificate(
            &material,
            "SHA256_WITH_RSA",
            &subject,
            validity,
            &["DIGITAL_SIGNATURE".to_string()],
            &[],
            false,
        )?;
        Ok((material, cert))
    })
    .await
    .map_err(|e| TsbError::new(701, format!("approver key generation failed: {e}")))??;
    let cert_der = wire::der_from_b64_or_pem(&cert_pem, "certificate")?;
    let code = one_time_code()?;
    let backup_password = aead::hash_password(backup.as_str())?;
    let mut st = ctx.part.state.lock().await;
    if st.approvers.contains_key(&name) {
        return Err(TsbError::new(
            632,
            format!("approver '{name}' already exists"),
        ));
    }
    st.approvers.insert(
        name.clone(),
        ApproverRecord {
            name: name.clone(),
            material,
            certificate: wire::b64_encode(&cert_der),
            one_time_code: Some(code.clone()),
            onboarded: false,
            backup_password,
        },
    );
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::Approver(name.clone())],
        )
        .await
    {
        st.approvers.remove(&name);
        return Err(e);
    }
    Ok(JsonOut::ok(json!({ "oneTimeCode": code })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnboardReq {
    approver_name: Option<String>,
    one_time_code: Option<Password>,
    transport_password: Option<Password>,
}

pub(crate) async fn onboard(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: OnboardReq = parse_body(ctx.body)?;
    let name = required_str(req.approver_name, "approverName")?;
    let code = req
        .one_time_code
        .filter(|p| !p.is_empty())
        .ok_or_else(|| TsbError::missing("oneTimeCode"))?;
    let transport = req
        .transport_password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| TsbError::missing("transportPassword"))?;
    let tp_len = transport.as_str().chars().count();
    if tp_len != 16 && tp_len != 32 {
        return Err(TsbError::validation(
            "transportPassword must have 16 or 32 characters",
        ));
    }
    let mut st = ctx.part.state.lock().await;
    let ap = st
        .approvers
        .get_mut(&name)
        .ok_or_else(|| TsbError::new(654, format!("approver '{name}' does not exist")))?;
    let matches = ap.one_time_code.as_deref().is_some_and(|c| {
        aws_lc_rs::constant_time::verify_slices_are_equal(c.as_bytes(), code.as_str().as_bytes())
            .is_ok()
    });
    if !matches {
        return Err(TsbError::new(412, "invalid one-time code"));
    }
    let exported = ap.material.export_plain();
    let private = exported
        .private_key
        .ok_or_else(|| TsbError::new(701, "approver key has no private part"))?;
    let cert_der = wire::b64_decode(&ap.certificate, "certificate")?;
    let bundle = zeroize::Zeroizing::new(format!(
        "{}{}",
        wire::pem_encode("PRIVATE KEY", &private),
        wire::pem_encode("CERTIFICATE", &cert_der)
    ));
    let key = zeroize::Zeroizing::new(aead::sha256(transport.as_str().as_bytes()));
    let (iv, ct) = aead::seal(&key, bundle.as_bytes())?;
    let old_code = ap.one_time_code.take();
    ap.onboarded = true;
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::Approver(name.clone())],
        )
        .await
    {
        if let Some(ap) = st.approvers.get_mut(&name) {
            ap.one_time_code = old_code;
            ap.onboarded = false;
        }
        return Err(e);
    }
    Ok(JsonOut::ok(json!({
        "encryptedPayload": wire::b64_encode(&ct),
        "initializationVector": wire::b64_encode(&iv),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameReq {
    approver_name: Option<String>,
    new_backup_password: Option<Password>,
}

/// renewOneTimeCode (`restore = false`) and restoreFromBackup (`restore = true`): a new one-time
/// code; the approver is pending again until onboarded.
pub(crate) async fn renew_code(ctx: &Ctx<'_>, restore: bool) -> Result<JsonOut, TsbError> {
    let req: NameReq = parse_body(ctx.body)?;
    let name = required_str(req.approver_name, "approverName")?;
    let code = one_time_code()?;
    let mut st = ctx.part.state.lock().await;
    let ap = st
        .approvers
        .get_mut(&name)
        .ok_or_else(|| TsbError::new(654, format!("approver '{name}' does not exist")))?;
    if !restore && ap.onboarded {
        return Err(TsbError::forbidden_for_key(
            "approver is already onboarded; use restoreFromBackup",
        ));
    }
    ap.one_time_code = Some(code.clone());
    ap.onboarded = false;
    st.flush(
        &ctx.shared.persistence,
        &ctx.part.name,
        &[Dirty::Approver(name)],
    )
    .await?;
    Ok(JsonOut::ok(json!({ "oneTimeCode": code })))
}

/// restoreFromBackup/forgotPassword: replaces the backup password and issues a new one-time
/// code through a request (executed at once: the emulator's backup key has no SKA policy).
pub(crate) async fn forgot_password(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: NameReq = parse_body(ctx.body)?;
    let name = required_str(req.approver_name, "approverName")?;
    let new_pw = req
        .new_backup_password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| TsbError::missing("newBackupPassword"))?;
    let code = one_time_code()?;
    let hashed = aead::hash_password(new_pw.as_str())?;
    let mut st = ctx.part.state.lock().await;
    let ap = st
        .approvers
        .get_mut(&name)
        .ok_or_else(|| TsbError::new(654, format!("approver '{name}' does not exist")))?;
    ap.backup_password = hashed;
    ap.one_time_code = Some(code.clone());
    ap.onboarded = false;
    let id = uuid::Uuid::new_v4().to_string();
    let now = ctx.shared.clock.now_unix();
    let seq = st.next_seq;
    st.next_seq += 1;
    st.requests.insert(
        id.clone(),
        RequestRecord {
            id: id.clone(),
            seq,
            kind: RequestKind::Unwrap,
            key_name: format!("approver:{name}"),
            created: now,
            rule: ResolvedRule { tokens: None },
            params: Value::Null,
            status: RequestStatus::Executed,
            approved: Vec::new(),
            rejected: Vec::new(),
            tasks: Vec::new(),
            execution_time: Some(now),
            result: Some(code),
            meta_data: None,
            meta_data_signature: None,
            executing: false,
        },
    );
    st.flush(
        &ctx.shared.persistence,
        &ctx.part.name,
        &[Dirty::Approver(name), Dirty::Request(id.clone())],
    )
    .await?;
    Ok(JsonOut::created(json!({ "unwrapRequestId": id })))
}

pub(crate) async fn status(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let st = ctx.part.state.lock().await;
    let entry = |a: &ApproverRecord| json!({ "approverName": a.name, "approverCertificate": a.certificate });
    let onboarded: Vec<Value> = st
        .approvers
        .values()
        .filter(|a| a.onboarded)
        .map(entry)
        .collect();
    let pending: Vec<Value> = st
        .approvers
        .values()
        .filter(|a| !a.onboarded)
        .map(entry)
        .collect();
    Ok(JsonOut::ok(
        json!({ "onboarded": onboarded, "pending": pending }),
    ))
}

pub(crate) async fn delete(ctx: &Ctx<'_>, name: &str) -> Result<JsonOut, TsbError> {
    let mut st = ctx.part.state.lock().await;
    let removed = st
        .approvers
        .remove(name)
        .ok_or_else(|| TsbError::new(654, format!("approver '{name}' does not exist")))?;
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::Approver(name.to_owned())],
        )
        .await
    {
        st.approvers.insert(name.to_owned(), removed);
        return Err(e);
    }
    Ok(JsonOut::ok(json!({})))
}
