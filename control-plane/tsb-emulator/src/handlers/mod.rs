//! Routing of the TSB `/v1` endpoints and helpers shared by the handlers (key lookup, password
//! and attribute checks, SKA rule resolution, key descriptors).

pub(crate) mod approvers;
pub(crate) mod attestation;
pub(crate) mod certs;
pub(crate) mod data;
pub(crate) mod keys;
pub(crate) mod ops;
pub(crate) mod workflow;

use std::sync::Arc;

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::crypto::{self, SignatureType};
use crate::error::TsbError;
use crate::model::{KeyRecord, PartitionState};
use crate::policy::{Action, Policy, ResolvedGroup, ResolvedRule, ResolvedToken, Rule};
use crate::server::{Ctx, Reply, Shared};
use crate::storage::aead;
use crate::wire::{self, Password};

/// Dispatches one `/v1/...` call of a partition.
pub(crate) async fn dispatch(ctx: &Ctx<'_>) -> Result<Reply, TsbError> {
    let m = ctx.method.as_str();
    let rest = ctx.path.strip_prefix("/v1").unwrap_or("");
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    // Data object labels may contain '/', so they take the whole remainder.
    if let Some(label) = rest.strip_prefix("dataObject/") {
        let label = wire::percent_decode(label)?;
        return match m {
            "GET" => data::get(ctx, &label).await,
            "PUT" => data::update(ctx, &label).await,
            "DELETE" => data::delete(ctx, &label).await,
            _ => Err(method_not_allowed()),
        }
        .map(Reply::from);
    }
    let seg: Vec<&str> = rest.split('/').collect();
    let r = match (m, seg.as_slice()) {
        ("GET", ["versionInfo"]) => data::version_info(),
        ("GET", ["licenseInfo"]) => data::license_info(),
        ("GET", ["keystore", "statistics"]) => data::statistics(ctx).await,

        ("POST", ["dataObject"]) => data::create(ctx).await,
        ("GET", ["dataObject"]) => data::list(ctx).await,

        ("POST", ["key"]) => keys::create(ctx).await,
        ("GET", ["key"]) => keys::list(ctx).await,
        ("POST", ["key", "attributes"]) => keys::attributes(ctx).await,
        ("POST", ["key", "deleteKey"]) => keys::delete_with_password(ctx).await,
        ("POST", ["key", "changePassword"]) => keys::change_password(ctx).await,
        ("POST", ["key", "import", "plain"]) => keys::import_plain(ctx).await,
        ("POST", ["key", "export", "plain"]) => keys::export_plain(ctx).await,
        ("GET", ["key", name, "attributes"]) => {
            keys::attributes_deprecated(ctx, &wire::percent_decode(name)?).await
        }
        ("DELETE", ["key", name]) => keys::delete(ctx, &wire::percent_decode(name)?, None).await,
        ("POST", ["key", "keyAttestation"]) => return attestation::key_attestation(ctx).await,
        ("POST", ["key", "address"])
        | ("GET", ["key", _, "address"])
        | ("POST", ["importedKey"])
        | ("POST", ["derivedKey"])
        | ("POST", ["fileEncrypt"])
        | ("POST", ["synchronousFileDecrypt"])
        | ("POST", ["createRfcTimestamp"])
        | ("GET", ["hsm", "log", ..]) => Err(TsbError::not_implemented(ctx.path)),

        ("POST", ["synchronousSign"]) => ops::sync_sign(ctx).await,
        ("POST", ["sign"]) => ops::async_op(ctx, crate::model::RequestKind::Sign).await,
        ("POST", ["synchronousDecrypt"]) => ops::sync_decrypt(ctx).await,
        ("POST", ["decrypt"]) => ops::async_op(ctx, crate::model::RequestKind::Decrypt).await,
        ("POST", ["synchronousUnwrap"]) => ops::sync_unwrap(ctx).await,
        ("POST", ["unwrap"]) => ops::async_op(ctx, crate::model::RequestKind::Unwrap).await,
        ("POST", ["synchronousBlock"]) => ops::sync_block(ctx, true).await,
        ("POST", ["block"]) => ops::async_op(ctx, crate::model::RequestKind::Block).await,
        ("POST", ["synchronousUnblock"]) => ops::sync_block(ctx, false).await,
        ("POST", ["unblock"]) => ops::async_op(ctx, crate::model::RequestKind::Unblock).await,
        ("POST", ["synchronousModify"]) => ops::sync_modify(ctx).await,
        ("POST", ["modify"]) => ops::async_op(ctx, crate::model::RequestKind::Modify).await,
        ("POST", ["encrypt"]) => ops::encrypt(ctx).await,
        ("POST", ["verify"]) => ops::verify(ctx).await,
        ("POST", ["synchronousHmac"]) => ops::hmac(ctx).await,
        ("POST", ["wrap"]) => ops::wrap(ctx).await,
        ("GET", ["generateRandom", len]) => ops::random(len),

        ("POST", ["certificate", "synchronous", "request"]) => certs::sync_csr(ctx, false).await,
        ("POST", ["certificate", "synchronous", "request", "download"]) => {
            return certs::sync_csr_download(ctx).await;
        }
        ("POST", ["certificate", "synchronous", "selfsign"])
        | ("POST", ["certificate", "synchronous", "create", "selfSigned"]) => {
            certs::sync_selfsign(ctx).await
        }
        ("POST", ["certificate", "synchronous", "sign"]) => certs::sync_sign_csr(ctx).await,
        ("POST", ["certificate", "request"]) => {
            ops::async_op(ctx, crate::model::RequestKind::Csr).await
        }
        ("POST", ["certificate", "selfsign"]) => {
            ops::async_op(ctx, crate::model::RequestKind::SelfSign).await
        }
        ("POST", ["certificate", "sign"]) => {
            ops::async_op(ctx, crate::model::RequestKind::SignCertificate).await
        }
        ("POST", ["certificate", "import", "plain"]) => certs::import_plain(ctx).await,
        ("GET", ["certificate", name]) => certs::get(ctx, &wire::percent_decode(name)?).await,
        ("DELETE", ["certificate", name]) => certs::delete(ctx, &wire::percent_decode(name)?).await,

        ("GET", ["request", id]) => workflow::get_request(ctx, id).await,
        ("DELETE", ["request", id]) => workflow::cancel_request(ctx, id).await,
        ("POST", ["filteredRequests"]) => workflow::filtered_requests(ctx).await,
        ("POST", [name]) if name.starts_with("filtered") && name.ends_with("ApprovalTask") => {
            workflow::fetch_tasks(ctx, name).await
        }
        ("POST", ["approval"]) => workflow::approve(ctx).await,
        ("DELETE", ["task"]) => workflow::reject(ctx).await,

        ("POST", ["approverManagement", "create"]) => approvers::create(ctx).await,
        ("POST", ["approver", "onboard"]) => approvers::onboard(ctx).await,
        ("POST", ["approverManagement", "renewOneTimeCode"]) => {
            approvers::renew_code(ctx, false).await
        }
        ("POST", ["approverManagement", "restoreFromBackup"]) => {
            approvers::renew_code(ctx, true).await
        }
        ("POST", ["approverManagement", "restoreFromBackup", "forgotPassword"]) => {
            approvers::forgot_password(ctx).await
        }
        ("GET", ["approverManagement", "onboarding", "status"]) => approvers::status(ctx).await,
        ("DELETE", ["approverManagement", "delete", name]) => {
            approvers::delete(ctx, &wire::percent_decode(name)?).await
        }
        _ => {
            if known_path(&seg) {
                Err(method_not_allowed())
            } else {
                Err(TsbError::route_not_found())
            }
        }
    };
    r.map(Reply::from)
}

fn method_not_allowed() -> TsbError {
    TsbError::new(611, "method not allowed for this endpoint")
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

fn known_path(seg: &[&str]) -> bool {
    matches!(
        seg,
        ["versionInfo"]
            | ["licenseInfo"]
            | ["keystore", "statistics"]
            | ["key", ..]
            | ["dataObject"]
            | ["synchronousSign"
                | "sign"
                | "synchronousDecrypt"
                | "decrypt"
                | "synchronousUnwrap"
                | "unwrap"
                | "synchronousBlock"
                | "block"
                | "synchronousUnblock"
                | "unblock"
                | "synchronousModify"
                | "modify"
                | "encrypt"
                | "verify"
                | "synchronousHmac"
                | "wrap"
                | "approval"
                | "task"
                | "filteredRequests"]
            | ["generateRandom", _]
            | ["certificate", ..]
            | ["request", _]
            | ["approverManagement", ..]
            | ["approver", "onboard"]
    )
}

/// Key labels: 1-256 characters, no control characters, no '/' (reserved for derivation paths).
pub(crate) fn validate_key_label(label: &str) -> Result<(), TsbError> {
    if label.is_empty()
        || label.chars().count() > 256
        || label.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(TsbError::new(610, "invalid key name"));
    }
    Ok(())
}

pub(crate) fn get_key<'a>(st: &'a PartitionState, name: &str) -> Result<&'a KeyRecord, TsbError> {
    st.keys
        .get(name)
        .map(Arc::as_ref)
        .ok_or_else(|| TsbError::key_not_found(name))
}

/// A consistent snapshot of a key to work on after the partition lock is released.
pub(crate) fn snapshot(st: &PartitionState, name: &str) -> Result<Arc<KeyRecord>, TsbError> {
    st.keys
        .get(name)
        .cloned()
        .ok_or_else(|| TsbError::key_not_found(name))
}

/// Mutable access; copies the record first when an operation still holds a snapshot of it.
pub(crate) fn get_key_mut<'a>(
    st: &'a mut PartitionState,
    name: &str,
) -> Result<&'a mut KeyRecord, TsbError> {
    st.keys
        .get_mut(name)
        .map(Arc::make_mut)
        .ok_or_else(|| TsbError::key_not_found(name))
}

/// The live record of `name` if it is still the key that `snapshot` was taken from (not deleted,
/// nor deleted and re-created under the same label meanwhile).
pub(crate) fn same_key_mut<'a>(
    st: &'a mut PartitionState,
    snapshot: &KeyRecord,
) -> Option<&'a mut KeyRecord> {
    st.keys
        .get_mut(&snapshot.label)
        .filter(|k| k.uuid == snapshot.uuid)
        .map(Arc::make_mut)
}

/// Runs crypto that works on snapshots only: inline when it takes microseconds (`fast`), else on
/// the blocking pool so that RSA/DSA/PQC work never stalls the async workers.
pub(crate) async fn run_crypto<T: Send + 'static>(
    fast: bool,
    work: impl FnOnce() -> Result<T, TsbError> + Send + 'static,
) -> Result<T, TsbError> {
    if fast {
        work()
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| TsbError::new(701, format!("HSM operation aborted: {e}")))?
    }
}

/// Password check (620). `required = false` lets public-key operations omit the password, but a
/// wrong one is still refused.
pub(crate) fn check_password(
    key: &KeyRecord,
    supplied: Option<&Password>,
    required: bool,
) -> Result<(), TsbError> {
    let supplied = supplied.filter(|p| !p.is_empty());
    match (&key.password, supplied) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(TsbError::new(620, "key password mismatch")),
        (Some(_), None) if !required => Ok(()),
        (Some(_), None) => Err(TsbError::new(620, "key password mismatch")),
        (Some((salt, hash)), Some(p)) => {
            if aead::check_password(p.as_str(), salt, hash) {
                Ok(())
            } else {
                Err(TsbError::new(620, "key password mismatch"))
            }
        }
    }
}

/// Refuses use of a blocked key or a key lacking the attribute (701 KEY_FUNCTION_NOT_PERMITTED).
pub(crate) fn ensure_usable(
    key: &KeyRecord,
    attribute: Option<(&str, bool)>,
) -> Result<(), TsbError> {
    if key.blocked() {
        return Err(TsbError::key_function_not_permitted(&format!(
            "key '{}' is blocked",
            key.label
        )));
    }
    if let Some((name, allowed)) = attribute
        && !allowed
    {
        return Err(TsbError::key_function_not_permitted(&format!(
            "key '{}' does not have the '{name}' attribute",
            key.label
        )));
    }
    Ok(())
}

/// Canonical base64 of an SPKI given as base64 (so different whitespace compares equal).
pub(crate) fn canonical_spki(b64: &str) -> Result<String, TsbError> {
    let der = wire::der_from_b64_or_pem(b64, "publicKey")?;
    if der.is_empty() {
        return Err(TsbError::new(601, "empty approver public key"));
    }
    Ok(wire::b64_encode(&der))
}

/// Resolves every approval of a rule into approver SPKIs.
pub(crate) fn resolve_rule(
    st: &PartitionState,
    rule: Option<&Rule>,
) -> Result<ResolvedRule, TsbError> {
    let Some(rule) = rule else {
        return Ok(ResolvedRule { tokens: None });
    };
    let Some(tokens) = &rule.tokens else {
        return Ok(ResolvedRule { tokens: None });
    };
    let mut out = Vec::new();
    for t in tokens {
        let mut groups = Vec::new();
        for g in t.groups.iter().flatten() {
            let mut approvers = Vec::new();
            for a in g.approvals.iter().flatten() {
                let spki = match a.kind.as_deref() {
                    Some("public_key") => canonical_spki(a.value.as_deref().unwrap_or(""))?,
                    Some("certificate") => {
                        let der = wire::der_from_b64_or_pem(
                            a.value.as_deref().unwrap_or(""),
                            "certificate",
                        )?;
                        wire::b64_encode(&crypto::certificate_public_key(&der).map_err(|e| {
                            TsbError::new(402, format!("invalid approver certificate: {e}"))
                        })?)
                    }
                    Some("onboarded_approver_certificate") => {
                        let name = a.name.as_deref().unwrap_or("");
                        let ap = st.approvers.get(name).ok_or_else(|| {
                            TsbError::new(654, format!("approver '{name}' does not exist"))
                        })?;
                        let der = wire::b64_decode(&ap.certificate, "certificate")?;
                        wire::b64_encode(&crypto::certificate_public_key(&der)?)
                    }
                    other => {
                        return Err(TsbError::new(
                            501,
                            format!("unknown approval type {other:?}"),
                        ));
                    }
                };
                approvers.push(spki);
            }
            groups.push(ResolvedGroup {
                quorum: g.quorum.unwrap_or(0),
                approvers,
            });
        }
        out.push(ResolvedToken {
            timelock: t.timelock.unwrap_or(0),
            timeout: t.timeout.unwrap_or(0),
            groups,
        });
    }
    Ok(ResolvedRule { tokens: Some(out) })
}

/// The resolved governing rule of an action on a key (`policy:null` keys: always fulfilled).
pub(crate) fn governing_rule(
    st: &PartitionState,
    key: &KeyRecord,
    action: Action,
) -> Result<ResolvedRule, TsbError> {
    match &key.policy {
        None => Ok(ResolvedRule { tokens: None }),
        Some(p) => resolve_rule(st, p.rule(action)),
    }
}

/// Sync endpoints on SKA keys need a rule that is fulfilled without approvals (400/401 otherwise).
pub(crate) fn require_no_approval(
    st: &PartitionState,
    key: &KeyRecord,
    action: Action,
) -> Result<(), TsbError> {
    let rule = governing_rule(st, key, action)?;
    if rule.always_fulfilled_now() {
        Ok(())
    } else {
        Err(TsbError::new(
            401,
            format!(
                "key '{}' requires approvals for this operation; use the asynchronous endpoint",
                key.label
            ),
        ))
    }
}

/// Validates a full policy including approver resolution.
pub(crate) fn validate_policy(st: &PartitionState, p: &Policy) -> Result<(), TsbError> {
    p.validate()?;
    for rule in [&p.rule_use, &p.rule_block, &p.rule_unblock, &p.rule_modify] {
        resolve_rule(st, rule.as_ref())?;
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The name of the key that signs attestations (`attestationKeyName`, reference §11 default).
pub(crate) const ATTESTATION_KEY_NAME: &str = "attestation-key";
/// How the attestation key signs: ECDSA P-256 over SHA-256, DER signature.
pub(crate) const ATTESTATION_SIGNATURE_ALGORITHM: &str = "SHA256_WITH_ECDSA";

/// The attestation XML of `key` as of `now`: what the key descriptor's `xml` and the
/// `<label>.xml` of the key attestation zip carry.
pub(crate) fn attestation_xml(key: &KeyRecord, now: time::OffsetDateTime) -> String {
    let create_time = time::OffsetDateTime::from_unix_timestamp(key.create_time).unwrap_or(now);
    let public_key = key.material.public_key_der().map(|d| wire::b64_encode(&d));
    let attributes = serde_json::to_value(&key.attributes).unwrap_or(Value::Null);
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<keyAttestation>",
    );
    xml.push_str(&format!(
        "<label>{}</label><algorithm>{}</algorithm>",
        xml_escape(&key.label),
        xml_escape(key.material.algorithm())
    ));
    if let Some(s) = key.material.key_size() {
        xml.push_str(&format!("<keySize>{s}</keySize>"));
    }
    if let Some(c) = key.material.curve_oid() {
        xml.push_str(&format!("<curveOid>{}</curveOid>", xml_escape(c)));
    }
    xml.push_str(&format!(
        "<createTime>{}</createTime><attestTime>{}</attestTime>",
        wire::iso8601(create_time),
        wire::iso8601(now)
    ));
    if let Some(pk) = &public_key {
        xml.push_str(&format!("<publicKey>{pk}</publicKey>"));
    }
    xml.push_str("<attributes>");
    if let Value::Object(m) = &attributes {
        for (k, v) in m {
            xml.push_str(&format!("<{k}>{v}</{k}>"));
        }
    }
    xml.push_str(&format!(
        "</attributes><ska>{}</ska><blocked>{}</blocked></keyAttestation>",
        key.policy.is_some(),
        key.blocked()
    ));
    xml
}

/// The attestation key's DER signature of an attestation XML.
pub(crate) fn sign_attestation(shared: &Shared, xml: &str) -> Result<Vec<u8>, TsbError> {
    Ok(shared.attestation.sign(
        ATTESTATION_SIGNATURE_ALGORITHM,
        xml.as_bytes(),
        SignatureType::Der,
    )?)
}

/// The key descriptor of create/attributes (top-level `xml`, `xmlSignature`, `attestationKeyName`
/// always present, details under `json`).
pub(crate) fn descriptor(shared: &Shared, key: &KeyRecord) -> Value {
    let now = shared.clock.now();
    let create_time = time::OffsetDateTime::from_unix_timestamp(key.create_time).unwrap_or(now);
    let public_key = key.material.public_key_der().map(|d| wire::b64_encode(&d));
    let attributes = serde_json::to_value(&key.attributes).unwrap_or(Value::Null);
    let xml = attestation_xml(key, now);
    let xml_signature = sign_attestation(shared, &xml)
        .map(|s| wire::b64_encode(&s))
        .unwrap_or_default();
    json!({
        "xml": xml,
        "xmlSignature": xml_signature,
        "attestationKeyName": ATTESTATION_KEY_NAME,
        "json": {
            "label": key.label,
            "id": key.id,
            "uuid": key.uuid,
            "algorithm": key.material.algorithm(),
            "algorithmOid": key.material.algorithm_oid(),
            "curveOid": key.material.curve_oid(),
            "keySize": key.material.key_size(),
            "keyUsageCount": key.key_usage_count.get(),
            "createTime": wire::iso8601(create_time),
            "attestTime": wire::iso8601(now),
            "publicKey": public_key,
            "addressTruncated": null,
            "derivedAttributes": null,
            "attributes": attributes,
            "policy": key.policy.as_ref().map(Policy::to_json),
        }
    })
}
