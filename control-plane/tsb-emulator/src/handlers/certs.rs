//! Certificates: CSR (with a self-signed certificate as side effect), self-signed (incl. CA),
//! issuing from a CSR with a CA key, import, get, delete.

use serde::Deserialize;
use serde_json::{Value, json};

use std::sync::Arc;

use super::ops::{self, Computed, Job, OpOut, Step};
use super::{check_password, ensure_usable, get_key, get_key_mut, same_key_mut, snapshot};
use crate::crypto::{self, SubjectAttributes};
use crate::error::TsbError;
use crate::model::{Dirty, KeyRecord, PartitionState, RequestKind};
use crate::server::{Ctx, Reply};
use crate::wire::{
    self, JsonOut, Password, parse_body, parse_json, required_str, unwrap_optional_wrapper,
};

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct StdAttrs {
    common_name: Option<String>,
    country: Option<String>,
    state_or_province_name: Option<String>,
    locality: Option<String>,
    organization_name: Option<String>,
    organization_unit_name: Option<String>,
    organization_identifier: Option<String>,
    email: Option<String>,
    title: Option<String>,
    surname: Option<String>,
    given_name: Option<String>,
    initials: Option<String>,
    pseudonym: Option<String>,
    generation_qualifier: Option<String>,
}

/// Body shared by the CSR, self-sign and sign-from-CSR endpoints.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CertReq {
    sign_key_name: Option<String>,
    key_password: Option<Password>,
    signature_algorithm: Option<String>,
    validity: Option<u32>,
    standard_certificate_attributes: Option<StdAttrs>,
    common_name: Option<String>,
    key_usage: Option<Vec<String>>,
    extended_key_usage: Option<Vec<String>>,
    certificate_authority: Option<bool>,
    certificate_signing_request: Option<String>,
}

fn subject(p: &CertReq) -> Result<SubjectAttributes, TsbError> {
    let a = p
        .standard_certificate_attributes
        .clone()
        .unwrap_or_default();
    let cn = a
        .common_name
        .clone()
        .or_else(|| p.common_name.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TsbError::missing("commonName"))?;
    Ok(SubjectAttributes {
        common_name: cn,
        country: a.country,
        state_or_province_name: a.state_or_province_name,
        locality: a.locality,
        organization_name: a.organization_name,
        organization_unit_name: a.organization_unit_name,
        organization_identifier: a.organization_identifier,
        email: a.email,
        title: a.title,
        surname: a.surname,
        given_name: a.given_name,
        initials: a.initials,
        pseudonym: a.pseudonym,
        generation_qualifier: a.generation_qualifier,
    })
}

fn validity(p: &CertReq) -> Result<u32, TsbError> {
    match p.validity {
        None => Ok(365),
        Some(0) => Err(TsbError::new(619, "validity must be at least one day")),
        Some(v) if v > 36_500 => Err(TsbError::new(619, "validity must be at most 36500 days")),
        Some(v) => Ok(v),
    }
}

/// Checks the signing key under the lock and returns (name, signature algorithm, snapshot).
fn checked_key(
    st: &PartitionState,
    p: &CertReq,
) -> Result<(String, String, Arc<KeyRecord>), TsbError> {
    let name = required_str(p.sign_key_name.clone(), "signKeyName")?;
    let alg = required_str(p.signature_algorithm.clone(), "signatureAlgorithm")?;
    let key = snapshot(st, &name)?;
    check_password(&key, p.key_password.as_ref(), true)?;
    ensure_usable(&key, Some(("sign", key.attributes.sign)))?;
    Ok((name, alg, key))
}

/// Certificate work always goes to the blocking pool (X.509 building plus a signature).
const CERT_WORK_IS_FAST: bool = false;

pub(crate) fn op_csr(st: &mut PartitionState, p: CertReq, dry: bool) -> Result<Step, TsbError> {
    let subj = subject(&p)?;
    let days = validity(&p)?;
    let (name, alg, key) = checked_key(st, &p)?;
    if dry {
        return Ok(Step::Done(OpOut::checked()));
    }
    Ok(Step::Compute(Job::new(CERT_WORK_IS_FAST, move || {
        let ku = p.key_usage.clone().unwrap_or_default();
        let eku = p.extended_key_usage.clone().unwrap_or_default();
        let csr = crypto::create_csr(&key.material, &alg, &subj, &ku, &eku)?;
        // A key without a certificate gets a self-signed one as a side effect.
        let cert = match key.certificate_pem {
            Some(_) => None,
            None => Some(crypto::self_signed_certificate(
                &key.material,
                &alg,
                &subj,
                days,
                &ku,
                &eku,
                false,
            )?),
        };
        Ok(Computed::Apply(Box::new(move |_shared, st| {
            let mut dirty = Vec::new();
            if let Some(cert) = cert
                && let Some(live) = same_key_mut(st, &key)
                && live.certificate_pem.is_none()
            {
                live.certificate_pem = Some(cert);
                dirty.push(Dirty::Key(name.clone()));
            }
            Ok(OpOut {
                status: 200,
                body: json!({ "label": name, "certificateSigningRequest": csr }),
                result: csr,
                dirty,
            })
        })))
    })))
}

pub(crate) fn op_selfsign(
    st: &mut PartitionState,
    p: CertReq,
    dry: bool,
) -> Result<Step, TsbError> {
    let subj = subject(&p)?;
    let days = validity(&p)?;
    let (name, alg, key) = checked_key(st, &p)?;
    if dry {
        return Ok(Step::Done(OpOut::checked()));
    }
    Ok(Step::Compute(Job::new(CERT_WORK_IS_FAST, move || {
        let ku = p.key_usage.clone().unwrap_or_default();
        let eku = p.extended_key_usage.clone().unwrap_or_default();
        let cert = crypto::self_signed_certificate(
            &key.material,
            &alg,
            &subj,
            days,
            &ku,
            &eku,
            p.certificate_authority.unwrap_or(false),
        )?;
        Ok(Computed::Apply(Box::new(move |_shared, st| {
            // Stored only on the key it was made for (not on a key re-created under the label
            // meanwhile; a key deleted meanwhile keeps nothing).
            let mut dirty = Vec::new();
            if let Some(live) = same_key_mut(st, &key) {
                live.certificate_pem = Some(cert.clone());
                dirty.push(Dirty::Key(name.clone()));
            }
            Ok(OpOut {
                status: 200,
                body: json!({ "label": name, "certificate": cert }),
                result: "true".into(),
                dirty,
            })
        })))
    })))
}

fn csr_pem(s: &str) -> Result<String, TsbError> {
    if s.contains("-----BEGIN") {
        Ok(s.to_owned())
    } else {
        let der = wire::b64_decode(s, "certificateSigningRequest").map_err(|_| {
            TsbError::new(
                628,
                "certificateSigningRequest is neither PEM nor base64 DER",
            )
        })?;
        Ok(wire::pem_encode("CERTIFICATE REQUEST", &der))
    }
}

pub(crate) fn op_sign_csr(
    st: &mut PartitionState,
    p: CertReq,
    dry: bool,
) -> Result<Step, TsbError> {
    let csr = csr_pem(&required_str(
        p.certificate_signing_request.clone(),
        "certificateSigningRequest",
    )?)?;
    let days = validity(&p)?;
    let (name, alg, key) = checked_key(st, &p)?;
    if dry {
        return Ok(Step::Done(OpOut::checked()));
    }
    Ok(Step::Compute(Job::new(CERT_WORK_IS_FAST, move || {
        let ku = p.key_usage.clone().unwrap_or_default();
        let eku = p.extended_key_usage.clone().unwrap_or_default();
        let cert = crypto::sign_csr(
            &key.material,
            key.certificate_pem.as_deref(),
            &alg,
            &csr,
            p.common_name.as_deref().filter(|s| !s.is_empty()),
            days,
            &ku,
            &eku,
            p.certificate_authority.unwrap_or(false),
        )?;
        Ok(Computed::Ready(OpOut {
            status: 200,
            body: json!({ "label": name, "certificate": cert }),
            result: cert,
            dirty: vec![],
        }))
    })))
}

fn inner(ctx: &Ctx<'_>, kind: RequestKind) -> Result<Value, TsbError> {
    let v = unwrap_optional_wrapper(parse_json(ctx.body)?, kind.wrapper());
    if !v.is_object() {
        return Err(TsbError::invalid_json("request body must be a JSON object"));
    }
    Ok(v)
}

pub(crate) async fn sync_csr(ctx: &Ctx<'_>, _download: bool) -> Result<JsonOut, TsbError> {
    ops::sync_cert(ctx, RequestKind::Csr, inner(ctx, RequestKind::Csr)?).await
}

pub(crate) async fn sync_csr_download(ctx: &Ctx<'_>) -> Result<Reply, TsbError> {
    let out = ops::sync_cert(ctx, RequestKind::Csr, inner(ctx, RequestKind::Csr)?).await?;
    let label = out
        .body
        .get("label")
        .and_then(Value::as_str)
        .unwrap_or("key")
        .to_owned();
    let csr = out
        .body
        .get("certificateSigningRequest")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    Ok(Reply::File {
        content_type: "application/pkcs10",
        filename: format!("{label}.csr"),
        body: csr,
    })
}

pub(crate) async fn sync_selfsign(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    ops::sync_cert(
        ctx,
        RequestKind::SelfSign,
        inner(ctx, RequestKind::SelfSign)?,
    )
    .await
}

pub(crate) async fn sync_sign_csr(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    ops::sync_cert(
        ctx,
        RequestKind::SignCertificate,
        inner(ctx, RequestKind::SignCertificate)?,
    )
    .await
}

#[derive(Deserialize)]
struct ImportCert {
    label: Option<String>,
    certificate: Option<String>,
}

pub(crate) async fn import_plain(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: ImportCert = parse_body(ctx.body)?;
    let label = required_str(req.label, "label")?;
    let der = wire::der_from_b64_or_pem(
        &required_str(req.certificate, "certificate")?,
        "certificate",
    )
    .map_err(|_| TsbError::new(626, "certificate is not valid base64 DER"))?;
    let cert_spki = crypto::certificate_public_key(&der)
        .map_err(|e| TsbError::new(626, format!("invalid certificate: {e}")))?;
    let mut st = ctx.part.state.lock().await;
    let key = get_key_mut(&mut st, &label)?;
    if let Some(pk) = key.material.public_key_der()
        && pk != cert_spki
    {
        return Err(TsbError::new(
            402,
            "certificate public key does not match the key",
        ));
    }
    let pem = wire::pem_encode("CERTIFICATE", &der);
    let old = key.certificate_pem.replace(pem.clone());
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::Key(label.clone())],
        )
        .await
    {
        if let Ok(k) = get_key_mut(&mut st, &label) {
            k.certificate_pem = old;
        }
        return Err(e);
    }
    Ok(JsonOut::ok(json!({ "label": label, "certificate": pem })))
}

pub(crate) async fn get(ctx: &Ctx<'_>, name: &str) -> Result<JsonOut, TsbError> {
    let st = ctx.part.state.lock().await;
    let key = get_key(&st, name)?;
    match &key.certificate_pem {
        Some(c) => Ok(JsonOut::ok(json!({ "label": name, "certificate": c }))),
        None => Err(TsbError::new(
            650,
            format!("key '{name}' has no certificate"),
        )),
    }
}

pub(crate) async fn delete(ctx: &Ctx<'_>, name: &str) -> Result<JsonOut, TsbError> {
    let mut st = ctx.part.state.lock().await;
    let key = get_key_mut(&mut st, name)?;
    if key.certificate_pem.take().is_none() {
        return Err(TsbError::new(
            650,
            format!("key '{name}' has no certificate"),
        ));
    }
    st.flush(
        &ctx.shared.persistence,
        &ctx.part.name,
        &[Dirty::Key(name.to_owned())],
    )
    .await?;
    Ok(JsonOut::ok(json!({})))
}
