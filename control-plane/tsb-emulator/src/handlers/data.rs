//! Data objects (create-if-absent, read, update, delete, list) and service information
//! (versionInfo, licenseInfo, keystore statistics), per wire-decisions.md.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::TsbError;
use crate::model::{DataObjectRecord, Dirty};
use crate::server::Ctx;
use crate::wire::{self, JsonOut, parse_body, required_str};

/// Largest data-object value (decoded).
const MAX_VALUE: usize = 1024 * 1024;
/// Object capacity reported by the statistics endpoint.
const MAX_OBJECTS: u64 = 1_000_000;
const MAX_SIZE: u64 = 16 * 1024 * 1024 * 1024;

fn validate_label(label: &str) -> Result<(), TsbError> {
    let ok = !label.is_empty()
        && label.len() <= 256
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '/' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TsbError::new(
            610,
            "data object labels are 1-256 characters of [A-Za-z0-9._:@/-]",
        ))
    }
}

fn validate_value(value: &str) -> Result<(), TsbError> {
    let decoded = wire::b64_decode(value, "value")
        .map_err(|_| TsbError::new(616, "value is not valid base64"))?;
    if decoded.len() > MAX_VALUE {
        return Err(TsbError::new(616, "value larger than 1 MiB"));
    }
    Ok(())
}

fn not_found(label: &str) -> TsbError {
    TsbError::new(653, format!("data object '{label}' does not exist"))
}

#[derive(Deserialize)]
struct CreateReq {
    label: Option<String>,
    value: Option<String>,
    modifiable: Option<bool>,
    destroyable: Option<bool>,
    private: Option<bool>,
}

pub(crate) async fn create(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: CreateReq = parse_body(ctx.body)?;
    let label = required_str(req.label, "label")?;
    validate_label(&label)?;
    let value = req.value.ok_or_else(|| TsbError::missing("value"))?;
    validate_value(&value)?;
    let mut st = ctx.part.state.lock().await;
    if st.data_objects.contains_key(&label) {
        return Err(TsbError::new(
            615,
            format!("data object '{label}' already exists"),
        ));
    }
    st.data_objects.insert(
        label.clone(),
        DataObjectRecord {
            label: label.clone(),
            value,
            modifiable: req.modifiable.unwrap_or(true),
            destroyable: req.destroyable.unwrap_or(true),
            private: req.private.unwrap_or(true),
        },
    );
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::DataObject(label.clone())],
        )
        .await
    {
        st.data_objects.remove(&label);
        return Err(e);
    }
    Ok(JsonOut::created(json!({ "label": label })))
}

pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let st = ctx.part.state.lock().await;
    Ok(JsonOut::ok(Value::Array(
        st.data_objects
            .keys()
            .map(|k| Value::String(k.clone()))
            .collect(),
    )))
}

pub(crate) async fn get(ctx: &Ctx<'_>, label: &str) -> Result<JsonOut, TsbError> {
    let st = ctx.part.state.lock().await;
    let o = st.data_objects.get(label).ok_or_else(|| not_found(label))?;
    Ok(JsonOut::ok(json!({
        "label": o.label,
        "value": o.value,
        "modifiable": o.modifiable,
        "destroyable": o.destroyable,
        "private": o.private,
    })))
}

#[derive(Deserialize)]
struct UpdateReq {
    value: Option<String>,
}

pub(crate) async fn update(ctx: &Ctx<'_>, label: &str) -> Result<JsonOut, TsbError> {
    let req: UpdateReq = parse_body(ctx.body)?;
    let value = req.value.ok_or_else(|| TsbError::missing("value"))?;
    validate_value(&value)?;
    let mut st = ctx.part.state.lock().await;
    let o = st
        .data_objects
        .get_mut(label)
        .ok_or_else(|| not_found(label))?;
    if !o.modifiable {
        return Err(TsbError::forbidden_for_key(format!(
            "data object '{label}' is not modifiable"
        )));
    }
    let old = std::mem::replace(&mut o.value, value);
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::DataObject(label.to_owned())],
        )
        .await
    {
        if let Some(o) = st.data_objects.get_mut(label) {
            o.value = old;
        }
        return Err(e);
    }
    Ok(JsonOut::ok(json!({ "label": label })))
}

pub(crate) async fn delete(ctx: &Ctx<'_>, label: &str) -> Result<JsonOut, TsbError> {
    let mut st = ctx.part.state.lock().await;
    let o = st.data_objects.get(label).ok_or_else(|| not_found(label))?;
    if !o.destroyable {
        return Err(TsbError::forbidden_for_key(format!(
            "data object '{label}' is not destroyable"
        )));
    }
    let removed = st.data_objects.remove(label);
    if let Err(e) = st
        .flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::DataObject(label.to_owned())],
        )
        .await
    {
        if let Some(r) = removed {
            st.data_objects.insert(label.to_owned(), r);
        }
        return Err(e);
    }
    Ok(JsonOut::ok(json!({})))
}

pub(crate) fn version_info() -> Result<JsonOut, TsbError> {
    Ok(JsonOut::ok(json!({
        "Version": format!("2.2.0-keymanager-emulator-{}", env!("CARGO_PKG_VERSION")),
    })))
}

pub(crate) fn license_info() -> Result<JsonOut, TsbError> {
    Ok(JsonOut::ok(json!({
        "clientFlags": ["REST_API", "TSB_ENGINE", "KEY_AUTH", "PERSISTENT_EXTERNAL_OBJ", "KEY_STORE_SIZE"],
    })))
}

pub(crate) async fn statistics(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let st = ctx.part.state.lock().await;
    let (mut private, mut public, mut secret, mut certs) = (0u64, 0u64, 0u64, 0u64);
    // Key invalidation (a Securosys partition-policy feature) is not emulated, so no key is
    // ever invalidated. SKA-blocked keys are not invalidated: blocking is reversible.
    let invalidated = 0u64;
    let mut used: u64 = 0;
    for k in st.keys.values() {
        let has_public = k.material.public_key_der().is_some();
        if has_public {
            public += 1;
            if k.material.has_private() {
                private += 1;
            }
        } else {
            secret += 1;
        }
        if k.certificate_pem.is_some() {
            certs += 1;
        }
        used += 2048;
    }
    for o in st.data_objects.values() {
        used += (o.value.len() as u64 * 3 / 4) + o.label.len() as u64;
    }
    let objects = private + public + secret + certs + st.data_objects.len() as u64;
    Ok(JsonOut::ok(json!({
        "privateKeys": private,
        "publicKeys": public,
        "secretKeys": secret,
        "certificates": certs,
        "dataObjects": st.data_objects.len(),
        "invalidatedKeys": invalidated,
        "usedSize": used,
        "maxSize": MAX_SIZE,
        "remainingObjects": MAX_OBJECTS.saturating_sub(objects),
    })))
}
