//! The SKA workflow: requests, approval tasks, approvals, rejections, timelock/timeout handling
//! and execution of fulfilled requests.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::MutexGuard;

use super::canonical_spki;
use super::ops::{Computed, Job, OpOut, Step, execute};
use crate::crypto;
use crate::error::TsbError;
use crate::model::{
    Dirty, Partition, PartitionState, RequestKind, RequestRecord, RequestStatus, TaskRecord,
};
use crate::policy::{Evaluation, ResolvedRule};
use crate::server::{Ctx, Shared};
use crate::storage::aead;
use crate::wire::{self, JsonOut, b64_decode, b64_encode, parse_body, required_str};

/// Maximum age of an approver timestamp (`general.maxTimestampDiffApprovalClient`).
const MAX_TIMESTAMP_AGE_SECS: i64 = 600;

/// A fulfilled request whose operation (crypto) runs outside the partition lock; see [`drive`].
pub(crate) struct Execution {
    id: String,
    job: Job,
    /// Emulator time at which the request was found fulfilled (its `executionTime`).
    now: i64,
}

/// What a re-evaluation changed: records to persist, and executions to drive once the lock is
/// released.
#[derive(Default)]
pub(crate) struct Changes {
    pub dirty: Vec<Dirty>,
    pub executions: Vec<Execution>,
}

/// Creates a request with one task per approver and evaluates it at once (a rule that needs no
/// approval executes immediately).
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_request(
    shared: &Arc<Shared>,
    st: &mut PartitionState,
    kind: RequestKind,
    key_name: String,
    params: Value,
    rule: ResolvedRule,
    meta_data: Option<String>,
    meta_data_signature: Option<String>,
) -> (String, Changes) {
    let id = uuid::Uuid::new_v4().to_string();
    let now = shared.clock.now_unix();
    let payload_hash = {
        let canonical = serde_json::to_vec(&params).unwrap_or_default();
        hex::encode(aead::sha256(&canonical))
    };
    let tasks = rule
        .approvers()
        .into_iter()
        .map(|approver| {
            let task_id = uuid::Uuid::new_v4().to_string();
            // Opaque challenge binding request, task, key, operation and payload.
            let challenge = json!({
                "requestId": id,
                "taskId": task_id,
                "type": kind.task_type(),
                "keyName": key_name,
                "requestSha256": payload_hash,
                "timestamp": wire::iso8601(shared.clock.now()),
            });
            TaskRecord {
                id: task_id,
                approver,
                approval_to_be_signed: b64_encode(challenge.to_string().as_bytes()),
                created: now,
                last_fetched: None,
            }
        })
        .collect();
    let seq = st.next_seq;
    st.next_seq += 1;
    st.requests.insert(
        id.clone(),
        RequestRecord {
            id: id.clone(),
            seq,
            kind,
            key_name,
            created: now,
            rule,
            params,
            status: RequestStatus::Pending,
            approved: Vec::new(),
            rejected: Vec::new(),
            tasks,
            execution_time: None,
            result: None,
            meta_data,
            meta_data_signature,
            executing: false,
        },
    );
    let mut changes = Changes {
        dirty: vec![Dirty::Request(id.clone())],
        executions: Vec::new(),
    };
    refresh_request(shared, st, &id, now, &mut changes);
    (id, changes)
}

fn close(r: &mut RequestRecord, status: RequestStatus) {
    r.status = status;
    r.tasks.clear();
    r.params = Value::Null;
    r.executing = false;
}

/// Records the outcome of an executed request (EXECUTED with its result, or FAILED).
fn conclude(
    st: &mut PartitionState,
    id: &str,
    outcome: Result<OpOut, TsbError>,
    now: i64,
    dirty: &mut Vec<Dirty>,
) {
    let Some(r) = st.requests.get_mut(id) else {
        return;
    };
    match outcome {
        Ok(out) => {
            r.result = Some(out.result);
            close(r, RequestStatus::Executed);
            dirty.extend(out.dirty);
        }
        Err(e) => {
            r.result = Some(format!(
                "errorCode {} ({}): {}",
                e.code,
                crate::error::reason_suffix(e.code),
                e.message
            ));
            close(r, RequestStatus::Failed);
        }
    }
    r.execution_time = Some(now);
    tracing::info!(request = %id, status = r.status.as_str(), "request closed");
    dirty.push(Dirty::Request(id.to_owned()));
}

/// Re-evaluates one open request; executes it when fulfilled (cheap operations at once, crypto
/// as an [`Execution`] for [`drive`]). Records what changed in `changes`.
pub(crate) fn refresh_request(
    shared: &Arc<Shared>,
    st: &mut PartitionState,
    id: &str,
    now: i64,
    changes: &mut Changes,
) {
    let Some(r) = st.requests.get_mut(id) else {
        return;
    };
    if !r.status.is_open() || r.executing {
        return;
    }
    let eval = r.rule.evaluate(&r.approved, &r.rejected, now - r.created);
    match eval {
        Evaluation::Pending => {}
        Evaluation::WaitTimelock => {
            if r.status != RequestStatus::Approved {
                r.status = RequestStatus::Approved;
                r.tasks.clear();
                changes.dirty.push(Dirty::Request(id.to_owned()));
            }
        }
        Evaluation::Expired => {
            close(r, RequestStatus::Expired);
            changes.dirty.push(Dirty::Request(id.to_owned()));
        }
        Evaluation::Rejected => {
            close(r, RequestStatus::Rejected);
            changes.dirty.push(Dirty::Request(id.to_owned()));
        }
        Evaluation::Execute => {
            let kind = r.kind;
            // Cloned, not taken: until the outcome is recorded, the persisted request keeps
            // its parameters, so a crash meanwhile re-executes it after the restart.
            let params = r.params.clone();
            match execute(shared, st, kind, params, false) {
                Ok(Step::Compute(job)) => {
                    if let Some(r) = st.requests.get_mut(id) {
                        r.executing = true;
                        r.tasks.clear();
                    }
                    changes.executions.push(Execution {
                        id: id.to_owned(),
                        job,
                        now,
                    });
                }
                Ok(Step::Done(out)) => conclude(st, id, Ok(out), now, &mut changes.dirty),
                Err(e) => conclude(st, id, Err(e), now, &mut changes.dirty),
            }
        }
    }
}

/// Time-driven refresh of every open request (ticker, clock advance, reads).
pub(crate) fn refresh_all(shared: &Arc<Shared>, st: &mut PartitionState, now: i64) -> Changes {
    let ids: Vec<String> = st
        .requests
        .values()
        .filter(|r| {
            r.status.is_open()
                && !r.executing
                && (r.status == RequestStatus::Approved || r.rule.has_time_component())
        })
        .map(|r| r.id.clone())
        .collect();
    let mut changes = Changes::default();
    for id in ids {
        refresh_request(shared, st, &id, now, &mut changes);
    }
    changes
}

/// Runs the operations of fulfilled requests without the partition lock, then records their
/// outcomes durably. Runs in its own task so that a client hanging up cannot leave a request
/// marked as executing; returns once every outcome is persisted (or the first storage error).
pub(crate) async fn drive(
    shared: &Arc<Shared>,
    part: &Arc<Partition>,
    executions: Vec<Execution>,
) -> Result<(), TsbError> {
    if executions.is_empty() {
        return Ok(());
    }
    let shared = shared.clone();
    let part = part.clone();
    tokio::spawn(async move { drive_here(&shared, &part, executions).await })
        .await
        .map_err(|e| TsbError::new(701, format!("request execution aborted: {e}")))?
}

/// [`drive`] in the calling task (the ticker: aborting it at shutdown must not leave a task
/// holding the state behind).
pub(crate) async fn drive_here(
    shared: &Arc<Shared>,
    part: &Partition,
    executions: Vec<Execution>,
) -> Result<(), TsbError> {
    let mut first_error = None;
    for ex in executions {
        let computed = ex.job.run().await;
        let mut st = part.state.lock().await;
        let outcome = match computed {
            Ok(Computed::Ready(out)) => Ok(out),
            Ok(Computed::Apply(apply)) => apply(shared, &mut st),
            Err(e) => Err(e),
        };
        let mut dirty = Vec::new();
        conclude(&mut st, &ex.id, outcome, ex.now, &mut dirty);
        if let Err(e) = st.flush(&shared.persistence, &part.name, &dirty).await {
            tracing::error!(partition = %part.name, request = %ex.id, error = %e.message, "persisting a request outcome failed");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Locks the partition after bringing time-dependent requests up to date (executing what became
/// due, without holding the lock during the crypto).
async fn lock_refreshed<'a>(ctx: &'a Ctx<'_>) -> Result<MutexGuard<'a, PartitionState>, TsbError> {
    let executions = {
        let mut st = ctx.part.state.lock().await;
        let now = ctx.shared.clock.now_unix();
        let changes = refresh_all(ctx.shared, &mut st, now);
        st.flush(&ctx.shared.persistence, &ctx.part.name, &changes.dirty)
            .await?;
        if changes.executions.is_empty() {
            return Ok(st);
        }
        changes.executions
    };
    drive(ctx.shared, ctx.part, executions).await?;
    Ok(ctx.part.state.lock().await)
}

fn request_json(r: &RequestRecord) -> Value {
    let not_yet: Vec<String> = r
        .rule
        .approvers()
        .into_iter()
        .filter(|a| !r.approved.contains(a) && !r.rejected.contains(a))
        .collect();
    json!({
        "id": r.id,
        "status": r.status.as_str(),
        "executionTime": r.execution_time
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(wire::iso8601),
        "approvedBy": r.approved,
        "notYetApprovedBy": not_yet,
        "rejectedBy": r.rejected,
        "result": r.result,
    })
}

fn check_uuid(id: &str) -> Result<(), TsbError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| TsbError::new(609, format!("'{id}' is not a valid UUID")))
}

pub(crate) async fn get_request(ctx: &Ctx<'_>, id: &str) -> Result<JsonOut, TsbError> {
    check_uuid(id)?;
    let executions = {
        let mut st = ctx.part.state.lock().await;
        if !st.requests.contains_key(id) {
            return Err(TsbError::new(651, format!("request '{id}' does not exist")));
        }
        let now = ctx.shared.clock.now_unix();
        let mut changes = Changes::default();
        refresh_request(ctx.shared, &mut st, id, now, &mut changes);
        st.flush(&ctx.shared.persistence, &ctx.part.name, &changes.dirty)
            .await?;
        changes.executions
    };
    drive(ctx.shared, ctx.part, executions).await?;
    let st = ctx.part.state.lock().await;
    let r = st
        .requests
        .get(id)
        .ok_or_else(|| TsbError::new(651, format!("request '{id}' does not exist")))?;
    Ok(JsonOut::ok(request_json(r)))
}

pub(crate) async fn cancel_request(ctx: &Ctx<'_>, id: &str) -> Result<JsonOut, TsbError> {
    check_uuid(id)?;
    let mut st = ctx.part.state.lock().await;
    let r = st
        .requests
        .get_mut(id)
        .ok_or_else(|| TsbError::new(651, format!("request '{id}' does not exist")))?;
    // A request already executing is past the point of cancellation (like a closed one).
    if r.status.is_open() && !r.executing {
        close(r, RequestStatus::Cancelled);
        st.flush(
            &ctx.shared.persistence,
            &ctx.part.name,
            &[Dirty::Request(id.to_owned())],
        )
        .await?;
    }
    Ok(JsonOut::ok(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RequestFilter {
    status: Option<Vec<String>>,
    key_name: Option<String>,
}

pub(crate) async fn filtered_requests(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let f: RequestFilter = if ctx.body.iter().all(u8::is_ascii_whitespace) {
        RequestFilter::default()
    } else {
        parse_body(ctx.body)?
    };
    let statuses = f.status.unwrap_or_default();
    for s in &statuses {
        if ![
            "PENDING",
            "APPROVED",
            "EXECUTED",
            "FAILED",
            "EXPIRED",
            "REJECTED",
            "CANCELLED",
        ]
        .contains(&s.as_str())
        {
            return Err(TsbError::new(501, format!("unknown request status '{s}'")));
        }
    }
    let st = lock_refreshed(ctx).await?;
    let mut list: Vec<&RequestRecord> = st
        .requests
        .values()
        .filter(|r| statuses.is_empty() || statuses.iter().any(|s| s == r.status.as_str()))
        .filter(|r| f.key_name.as_deref().is_none_or(|k| k == r.key_name))
        .collect();
    list.sort_by_key(|r| r.seq);
    Ok(JsonOut::ok(
        json!({ "requests": list.into_iter().map(request_json).collect::<Vec<_>>() }),
    ))
}

/// Approver identification shared by task fetch, approval and rejection.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApproverAuth {
    timestamp: Option<String>,
    timestamp_signature: Option<String>,
    timestamp_digest_algorithm: Option<String>,
    approver_public_key: Option<String>,
    approver_certificate: Option<String>,
    timestamp_signing_certificate: Option<String>,
}

/// SPKI (canonical base64) of the approver named by `approverPublicKey`/`approverCertificate`.
fn approver_spki(public_key: Option<&str>, certificate: Option<&str>) -> Result<String, TsbError> {
    if let Some(pk) = public_key.filter(|s| !s.is_empty()) {
        return canonical_spki(pk);
    }
    if let Some(c) = certificate.filter(|s| !s.is_empty()) {
        let der = wire::der_from_b64_or_pem(c, "approverCertificate")?;
        let spki = crypto::certificate_public_key(&der)
            .map_err(|e| TsbError::new(402, format!("invalid approver certificate: {e}")))?;
        return Ok(b64_encode(&spki));
    }
    Err(TsbError::missing("approverPublicKey"))
}

/// Checks the timestamp window (real wall clock) and the proof-of-possession signature.
fn authenticate(a: &ApproverAuth) -> Result<String, TsbError> {
    if a.timestamp_signing_certificate
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        && a.approver_public_key.is_none()
        && a.approver_certificate.is_none()
    {
        return Err(TsbError::new(
            405,
            "no timestamp signer is allowed on this emulator",
        ));
    }
    let ts = required_str(a.timestamp.clone(), "timestamp")?;
    let sig = b64_decode(
        &required_str(a.timestamp_signature.clone(), "timestampSignature")?,
        "timestampSignature",
    )?;
    let when = wire::parse_iso8601(&ts).ok_or_else(|| {
        TsbError::validation("timestamp must be ISO-8601 (e.g. 2024-01-01T00:00:00Z)")
    })?;
    let now = time::OffsetDateTime::now_utc();
    let age = (now - when).whole_milliseconds();
    if age < 0 {
        return Err(TsbError::new(404, "timestamp lies in the future"));
    }
    if age > i128::from(MAX_TIMESTAMP_AGE_SECS) * 1000 {
        return Err(TsbError::new(404, "timestamp is too old"));
    }
    let spki = approver_spki(
        a.approver_public_key.as_deref(),
        a.approver_certificate.as_deref(),
    )?;
    let spki_der = b64_decode(&spki, "approverPublicKey")?;
    let digest = a
        .timestamp_digest_algorithm
        .clone()
        .unwrap_or_else(|| "SHA-256".into());
    if !crypto::verify_approver_signature(&spki_der, &digest, ts.as_bytes(), &sig)? {
        return Err(TsbError::new(403, "invalid timestamp signature"));
    }
    Ok(spki)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Paging {
    page_number: Option<usize>,
    page_size: Option<usize>,
    sort_order: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FetchTasks {
    #[serde(flatten)]
    auth: ApproverAuth,
    id: Option<String>,
    request_id: Option<String>,
    detail_level: Option<String>,
    paging: Option<Paging>,
}

pub(crate) async fn fetch_tasks(ctx: &Ctx<'_>, endpoint: &str) -> Result<JsonOut, TsbError> {
    let types: &[&str] = match endpoint {
        "filteredSignApprovalTask" => &["SIGN", "CERTIFICATE"],
        "filteredDecryptApprovalTask" => &["DECRYPT"],
        "filteredUnwrapKeyApprovalTask" => &["UNWRAP"],
        "filteredBlockKeyApprovalTask" => &["BLOCK"],
        "filteredUnblockKeyApprovalTask" => &["UNBLOCK"],
        "filteredModifyKeyApprovalTask" => &["MODIFY"],
        "filteredAllApprovalTask" => &[
            "SIGN",
            "CERTIFICATE",
            "DECRYPT",
            "UNWRAP",
            "BLOCK",
            "UNBLOCK",
            "MODIFY",
        ],
        _ => return Err(TsbError::route_not_found()),
    };
    let req: FetchTasks = parse_body(ctx.body)?;
    let spki = authenticate(&req.auth)?;
    let level = req.detail_level.clone().unwrap_or_else(|| "level1".into());
    let level_n: u32 = level
        .strip_prefix("level")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=5).contains(n))
        .ok_or_else(|| TsbError::new(501, format!("unknown detailLevel '{level}'")))?;
    let paging = req.paging.unwrap_or_default();
    let mut st = lock_refreshed(ctx).await?;
    let now = ctx.shared.clock.now_unix();
    let mut found: Vec<(i64, Option<i64>, Value, String, String)> = Vec::new();
    for r in st.requests.values_mut() {
        if r.status != RequestStatus::Pending || !types.contains(&r.kind.task_type()) {
            continue;
        }
        if req.request_id.as_deref().is_some_and(|x| x != r.id) {
            continue;
        }
        for t in r.tasks.iter_mut() {
            if t.approver != spki || req.id.as_deref().is_some_and(|x| x != t.id) {
                continue;
            }
            let mut task = json!({
                "id": t.id,
                "requestId": r.id,
                "type": r.kind.task_type(),
                "keyName": r.key_name,
                "detailLevel": level,
                "approvalToBeSigned": t.approval_to_be_signed,
            });
            if level_n >= 2 {
                task["metaData"] = json!(r.meta_data);
                task["metaDataSignature"] = json!(r.meta_data_signature);
            }
            found.push((t.created, t.last_fetched, task, r.id.clone(), t.id.clone()));
            t.last_fetched = Some(now);
        }
    }
    match paging.sort_order.as_deref() {
        None | Some("CREATION_DATE_ASC") => found.sort_by_key(|f| f.0),
        Some("CREATION_DATE_DESC") => found.sort_by_key(|f| std::cmp::Reverse(f.0)),
        Some("LAST_FETCHED_DATE_ASC") => found.sort_by_key(|f| f.1),
        Some("LAST_FETCHED_DATE_DESC") => found.sort_by_key(|f| std::cmp::Reverse(f.1)),
        Some(other) => return Err(TsbError::new(501, format!("unknown sortOrder '{other}'"))),
    }
    let tasks: Vec<Value> = match paging.page_size.filter(|s| *s > 0) {
        Some(size) => found
            .into_iter()
            .skip(paging.page_number.unwrap_or(0).saturating_mul(size))
            .take(size)
            .map(|f| f.2)
            .collect(),
        None => found.into_iter().map(|f| f.2).collect(),
    };
    Ok(JsonOut::ok(json!({ "tasks": tasks })))
}

fn find_task(st: &PartitionState, task_id: &str) -> Result<(String, TaskRecord), TsbError> {
    st.requests
        .values()
        .filter(|r| r.status == RequestStatus::Pending)
        .find_map(|r| {
            r.tasks
                .iter()
                .find(|t| t.id == task_id)
                .map(|t| (r.id.clone(), t.clone()))
        })
        .ok_or_else(|| TsbError::new(652, format!("task '{task_id}' does not exist")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalReq {
    id: Option<String>,
    approval_to_be_signed: Option<String>,
    signature: Option<String>,
    approval_digest_algorithm: Option<String>,
    approver_public_key: Option<String>,
    approver_certificate: Option<String>,
}

/// Records one approver's decision on a task (after the caller verified the approver).
#[allow(clippy::too_many_arguments)]
fn decide(
    shared: &Arc<Shared>,
    st: &mut PartitionState,
    task_id: &str,
    spki: &str,
    check: impl FnOnce(&TaskRecord) -> Result<(), TsbError>,
    approve: bool,
    now: i64,
    changes: &mut Changes,
) -> Result<String, TsbError> {
    let (request_id, task) = find_task(st, task_id)?;
    if task.approver != spki {
        return Err(TsbError::new(
            400,
            "this task belongs to a different approver",
        ));
    }
    check(&task)?;
    if let Some(r) = st.requests.get_mut(&request_id) {
        r.tasks.retain(|t| t.id != task_id);
        let list = if approve {
            &mut r.approved
        } else {
            &mut r.rejected
        };
        if !list.iter().any(|a| a == spki) {
            list.push(spki.to_owned());
        }
    }
    changes.dirty.push(Dirty::Request(request_id.clone()));
    refresh_request(shared, st, &request_id, now, changes);
    Ok(request_id)
}

pub(crate) async fn approve(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: ApprovalReq = parse_body(ctx.body)?;
    let task_id = required_str(req.id, "id")?;
    let to_be_signed = b64_decode(
        &required_str(req.approval_to_be_signed, "approvalToBeSigned")?,
        "approvalToBeSigned",
    )?;
    let signature = b64_decode(&required_str(req.signature, "signature")?, "signature")?;
    let spki = approver_spki(
        req.approver_public_key.as_deref(),
        req.approver_certificate.as_deref(),
    )?;
    let spki_der = b64_decode(&spki, "approverPublicKey")?;
    let digest = req
        .approval_digest_algorithm
        .unwrap_or_else(|| "SHA-256".into());
    // The approver's signature over what it sent is checked before taking the lock; the
    // outcome is reported where the check always was (after the task lookup and the check that
    // the task's challenge is what was signed).
    let signature_ok = {
        let to_be_signed = to_be_signed.clone();
        super::run_crypto(false, move || {
            Ok(crypto::verify_approver_signature(
                &spki_der,
                &digest,
                &to_be_signed,
                &signature,
            ))
        })
        .await?
    };
    let (res, executions) = {
        let mut st = ctx.part.state.lock().await;
        let now = ctx.shared.clock.now_unix();
        // Expire first: an approval after the timeout is not accepted.
        let mut changes = refresh_all(ctx.shared, &mut st, now);
        let check = |task: &TaskRecord| -> Result<(), TsbError> {
            if b64_decode(&task.approval_to_be_signed, "approvalToBeSigned")? != to_be_signed {
                return Err(TsbError::new(
                    612,
                    "approvalToBeSigned does not match the task",
                ));
            }
            if !signature_ok.map_err(TsbError::from)? {
                return Err(TsbError::new(403, "invalid approval signature"));
            }
            Ok(())
        };
        let res = decide(
            ctx.shared,
            &mut st,
            &task_id,
            &spki,
            check,
            true,
            now,
            &mut changes,
        );
        st.flush(&ctx.shared.persistence, &ctx.part.name, &changes.dirty)
            .await?;
        (res, changes.executions)
    };
    drive(ctx.shared, ctx.part, executions).await?;
    let request_id = res?;
    tracing::info!(partition = %ctx.part.name, request = %request_id, "approval accepted");
    Ok(JsonOut::ok(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RejectReq {
    id: Option<String>,
    #[serde(flatten)]
    auth: ApproverAuth,
}

pub(crate) async fn reject(ctx: &Ctx<'_>) -> Result<JsonOut, TsbError> {
    let req: RejectReq = parse_body(ctx.body)?;
    let task_id = required_str(req.id, "id")?;
    let spki = authenticate(&req.auth)?;
    let (res, executions) = {
        let mut st = ctx.part.state.lock().await;
        let now = ctx.shared.clock.now_unix();
        let mut changes = refresh_all(ctx.shared, &mut st, now);
        let res = decide(
            ctx.shared,
            &mut st,
            &task_id,
            &spki,
            |_| Ok(()),
            false,
            now,
            &mut changes,
        );
        st.flush(&ctx.shared.persistence, &ctx.part.name, &changes.dirty)
            .await?;
        (res, changes.executions)
    };
    drive(ctx.shared, ctx.part, executions).await?;
    let request_id = res?;
    tracing::info!(partition = %ctx.part.name, request = %request_id, "approval task rejected");
    Ok(JsonOut::ok(json!({})))
}
