//! Unit tests that need no TSB: wire-format snapshots against the reference's exact JSON names,
//! error parsing, API-key rollover, URL building, approver signing, and the request path
//! against a minimal in-process HTTP responder.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::client::{KeyRing, endpoint_url};
use crate::endpoints::request_id_from;
use crate::serde_helpers::Envelope;
use crate::*;

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

// ---------- wire format ----------

#[test]
fn sign_request_envelope_exact_json() {
    let mut req = SignRequest::new("k1", "SHA256_WITH_ECDSA", b"hello".to_vec());
    req.key_password = Some(SecretString::from("sec"));
    let body = Envelope {
        name: "signRequest",
        inner: &req,
    };
    assert_eq!(
        to_json(&body),
        r#"{"signRequest":{"payload":"aGVsbG8=","signKeyName":"k1","keyPassword":["s","e","c"],"signatureAlgorithm":"SHA256_WITH_ECDSA"}}"#
    );
}

#[test]
fn create_key_plain_sends_explicit_null_policy_and_char_array_password() {
    let mut req = CreateKeyRequest::new(
        "aes1",
        "AES",
        KeyAttributes {
            decrypt: Some(true),
            encrypt: Some(true),
            extractable: Some(false),
            ..Default::default()
        },
    );
    req.key_size = Some(256);
    req.password = Some(SecretString::from("pw"));
    assert_eq!(
        to_json(&req),
        r#"{"label":"aes1","algorithm":"AES","keySize":256,"password":["p","w"],"attributes":{"encrypt":true,"decrypt":true,"extractable":false},"policy":null}"#
    );
}

#[test]
fn create_key_with_empty_ska_policy_differs_from_null() {
    let mut req = CreateKeyRequest::new(
        "ec1",
        "EC",
        KeyAttributes {
            sign: Some(true),
            ..Default::default()
        },
    );
    req.curve_oid = Some("1.2.840.10045.3.1.7".into());
    req.policy = Some(Policy::empty_ska());
    let v: Value = serde_json::to_value(&req).unwrap();
    assert_eq!(
        v["policy"],
        json!({"ruleUse": null, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null,
               "keyStatus": {"blocked": false}})
    );
    assert_eq!(v["curveOid"], "1.2.840.10045.3.1.7");
    assert!(v.get("password").is_none());
    // and the plain key really says null, not absent
    let plain = CreateKeyRequest::new("p", "AES", KeyAttributes::default());
    let v: Value = serde_json::to_value(&plain).unwrap();
    assert_eq!(v.get("policy"), Some(&Value::Null));
    assert_eq!(v["attributes"], json!({}));
}

#[test]
fn simplified_policy_shape() {
    let p = Policy::simplified(
        vec![Approval::public_key(Some("alice".into()), &[1, 2, 3])],
        1,
        60,
        120,
    );
    let v = serde_json::to_value(&p).unwrap();
    let rule = json!({"tokens": [{"name": "main", "timelock": 60, "timeout": 120, "groups": [
        {"name": "main", "quorum": 1, "approvals": [{"type": "public_key", "name": "alice", "value": "AQID"}]}
    ]}]});
    assert_eq!(v["ruleUse"], rule);
    assert_eq!(v["ruleBlock"], rule);
    assert_eq!(v["ruleUnblock"], rule);
    assert_eq!(v["ruleModify"], rule);
    assert_eq!(v["keyStatus"], json!({"blocked": false}));
    let back: Policy = serde_json::from_value(v).unwrap();
    assert_eq!(back, p);
    assert_eq!(
        to_json(&Approval::onboarded("bob@example.com")),
        r#"{"type":"onboarded_approver_certificate","name":"bob@example.com"}"#
    );
}

#[test]
fn password_deserialises_from_char_array_and_string() {
    let a: KeyLabelRequest =
        serde_json::from_str(r#"{"label":"k","password":["a","b","ü"]}"#).unwrap();
    assert_eq!(a.password.unwrap().expose_secret(), "abü");
    let b: KeyLabelRequest = serde_json::from_str(r#"{"label":"k","password":"xyz"}"#).unwrap();
    assert_eq!(b.password.unwrap().expose_secret(), "xyz");
    let c: KeyLabelRequest = serde_json::from_str(r#"{"label":"k","password":null}"#).unwrap();
    assert!(c.password.is_none());
    let d: KeyLabelRequest = serde_json::from_str(r#"{"label":"k"}"#).unwrap();
    assert!(d.password.is_none());
    assert!(serde_json::from_str::<KeyLabelRequest>(r#"{"label":"k","password":["ab"]}"#).is_err());
}

#[test]
fn change_password_wire_names() {
    let req = ChangePasswordRequest {
        label: "k".into(),
        password: None,
        new_password: SecretString::from("n1"),
    };
    assert_eq!(
        to_json(&req),
        r#"{"label":"k","password":null,"newPassword":["n","1"]}"#
    );
}

#[test]
fn key_descriptor_parses_reference_shape() {
    let body = json!({
        "xml": "<att/>", "xmlSignature": "c2ln", "attestationKeyName": "attestation-key",
        "json": {
            "label": "ec1", "id": null, "uuid": "5c1b", "algorithm": "EC", "algorithmOid": "1.2.840.10045.2.1",
            "curveOid": "1.2.840.10045.3.1.7", "keySize": 256, "keyUsageCount": 3,
            "createTime": "2026-01-02T03:04:05Z", "attestTime": "2026-01-02T03:04:06Z",
            "publicKey": "AQID", "addressTruncated": null, "derivedAttributes": null,
            "attributes": {"decrypt": false, "sign": true, "ekaSign": false, "alwaysSensitive": true,
                           "neverExtractable": true, "sensitive": true, "destroyable": true},
            "policy": {"ruleUse": null, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null,
                       "keyStatus": {"blocked": true}}
        }
    });
    let d: KeyDescriptor = serde_json::from_value(body).unwrap();
    assert_eq!(d.attestation_key_name.as_deref(), Some("attestation-key"));
    assert_eq!(d.xml_signature.as_deref(), Some("c2ln"));
    assert_eq!(d.json.label, "ec1");
    assert_eq!(d.json.public_key.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(d.json.attributes.sign, Some(true));
    assert_eq!(d.json.attributes.always_sensitive, Some(true));
    assert_eq!(d.json.attributes.eka_sign, Some(false));
    assert_eq!(d.json.attributes.wrap, None);
    assert!(d.json.is_ska());
    assert!(d.json.is_blocked());
    assert_eq!(d.json.created_at().unwrap().unix_timestamp(), 1_767_323_045);

    let plain: KeyDescriptor =
        serde_json::from_value(json!({"json": {"label": "p", "policy": null, "attributes": {}}}))
            .unwrap();
    assert!(!plain.json.is_ska());
    assert!(plain.xml.is_none());
}

#[test]
fn block_unblock_modify_envelopes() {
    assert_eq!(
        to_json(&Envelope {
            name: "blockRequest",
            inner: &BlockRequest::new("k")
        }),
        r#"{"blockRequest":{"blockKeyName":"k"}}"#
    );
    assert_eq!(
        to_json(&Envelope {
            name: "unblockRequest",
            inner: &UnblockRequest::new("k")
        }),
        r#"{"unblockRequest":{"unblockKeyName":"k"}}"#
    );
    let m = ModifyRequest::new("k", Policy::empty_ska());
    assert_eq!(
        to_json(&Envelope {
            name: "modifyRequest",
            inner: &m
        }),
        r#"{"modifyRequest":{"modifyKeyName":"k","policy":{"ruleUse":null,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}}}"#
    );
}

#[test]
fn crypto_request_names() {
    let mut enc = EncryptRequest::new("aes", "AES_GCM", b"abc".to_vec());
    enc.tag_length = Some(128);
    enc.additional_authentication_data = Some(b"ad".to_vec());
    assert_eq!(
        to_json(&Envelope {
            name: "encryptRequest",
            inner: &enc
        }),
        r#"{"encryptRequest":{"payload":"YWJj","encryptKeyName":"aes","cipherAlgorithm":"AES_GCM","tagLength":128,"additionalAuthenticationData":"YWQ="}}"#
    );
    let r: EncryptResponse = serde_json::from_value(json!({
        "encryptedPayload": "AAE=", "encryptedPayloadWithoutMessageAuthenticationCode": null,
        "initializationVector": "AgM=", "messageAuthenticationCode": null
    }))
    .unwrap();
    assert_eq!(r.encrypted_payload, vec![0, 1]);
    assert_eq!(r.initialization_vector, Some(vec![2, 3]));
    assert_eq!(r.message_authentication_code, None);

    let mut dec = DecryptRequest::new("aes", "AES_GCM", vec![9]);
    dec.initialization_vector = Some(vec![2, 3]);
    let v = serde_json::to_value(Envelope {
        name: "decryptRequest",
        inner: &dec,
    })
    .unwrap();
    assert_eq!(
        v,
        json!({"decryptRequest": {"encryptedPayload": "CQ==", "decryptKeyName": "aes",
            "cipherAlgorithm": "AES_GCM", "initializationVector": "AgM="}})
    );

    let verify = VerifyRequest {
        sign_key_name: "k".into(),
        master_key_password: None,
        signature_algorithm: "EDDSA".into(),
        payload: vec![1],
        signature: vec![2],
    };
    assert_eq!(
        to_json(&Envelope {
            name: "verifySignatureRequest",
            inner: &verify
        }),
        r#"{"verifySignatureRequest":{"signKeyName":"k","signatureAlgorithm":"EDDSA","payload":"AQ==","signature":"Ag=="}}"#
    );
    let hv = VerifyHmacRequest {
        key_name: "h".into(),
        payload: vec![1],
        signature: vec![2],
    };
    assert_eq!(
        to_json(&Envelope {
            name: "verifyHmacRequest",
            inner: &hv
        }),
        r#"{"verifyHmacRequest":{"keyName":"h","payload":"AQ==","signature":"Ag=="}}"#
    );
    let h = HmacRequest {
        key_name: "h".into(),
        payload: vec![1],
    };
    assert_eq!(
        to_json(&Envelope {
            name: "hmacRequest",
            inner: &h
        }),
        r#"{"hmacRequest":{"keyName":"h","payload":"AQ=="}}"#
    );

    let wrap = WrapKeyRequest {
        key_to_be_wrapped: "a".into(),
        key_to_be_wrapped_password: None,
        wrap_key_name: "w".into(),
        wrap_key_password: Some(SecretString::from("x")),
        wrap_method: "AES_WRAP_PAD".into(),
    };
    assert_eq!(
        to_json(&Envelope {
            name: "wrapKeyRequest",
            inner: &wrap
        }),
        r#"{"wrapKeyRequest":{"keyToBeWrapped":"a","wrapKeyName":"w","wrapKeyPassword":["x"],"wrapMethod":"AES_WRAP_PAD"}}"#
    );
    let unwrap = UnwrapKeyRequest {
        wrapped_key: vec![1],
        label: "new".into(),
        unwrap_key_name: "w".into(),
        unwrap_key_password: None,
        wrap_method: "AES_WRAP_PAD".into(),
        attributes: KeyAttributes {
            decrypt: Some(true),
            ..Default::default()
        },
        policy: None,
        meta_data: None,
        meta_data_signature: None,
        signed_approvals: None,
    };
    assert_eq!(
        to_json(&Envelope {
            name: "unwrapKeyRequest",
            inner: &unwrap
        }),
        r#"{"unwrapKeyRequest":{"wrappedKey":"AQ==","label":"new","unwrapKeyName":"w","wrapMethod":"AES_WRAP_PAD","attributes":{"decrypt":true},"policy":null}}"#
    );
}

#[test]
fn certificate_request_names() {
    let csr = CsrRequest {
        sign_key_name: "k".into(),
        key_password: None,
        signature_algorithm: "SHA256_WITH_RSA".into(),
        validity: Some(365),
        standard_certificate_attributes: StandardCertificateAttributes {
            common_name: "cn".into(),
            organization_unit_name: Some("ou".into()),
            ..Default::default()
        },
        key_usage: Some(vec![KeyUsage::DigitalSignature, KeyUsage::CrlSign]),
        extended_key_usage: Some(vec![
            ExtendedKeyUsage::OcspSigning,
            ExtendedKeyUsage::ClientAuth,
        ]),
        meta_data: None,
        meta_data_signature: None,
    };
    assert_eq!(
        to_json(&csr),
        r#"{"signKeyName":"k","signatureAlgorithm":"SHA256_WITH_RSA","validity":365,"standardCertificateAttributes":{"commonName":"cn","organizationUnitName":"ou"},"keyUsage":["DIGITAL_SIGNATURE","CRL_SIGN"],"extendedKeyUsage":["OCSP_SIGNING","CLIENT_AUTH"]}"#
    );
    let v = serde_json::to_value(Envelope {
        name: "csrSignRequest",
        inner: &csr,
    })
    .unwrap();
    assert_eq!(v["csrSignRequest"]["signKeyName"], "k");
    let r: CsrResponse =
        serde_json::from_value(json!({"label": "k", "certificateSigningRequest": "-----BEGIN"}))
            .unwrap();
    assert_eq!(r.certificate_signing_request, "-----BEGIN");
    let ss = SelfSignCertificateRequest {
        sign_key_name: "k".into(),
        key_password: None,
        signature_algorithm: "SHA256_WITH_ECDSA".into(),
        validity: Some(30),
        common_name: "cn".into(),
        key_usage: None,
        extended_key_usage: None,
        certificate_authority: Some(true),
        meta_data: None,
        meta_data_signature: None,
    };
    assert_eq!(
        to_json(&ss),
        r#"{"signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA","validity":30,"commonName":"cn","certificateAuthority":true}"#
    );
    let imp = ImportCertificateRequest {
        label: "k".into(),
        certificate: vec![0x30, 0x82],
    };
    assert_eq!(to_json(&imp), r#"{"label":"k","certificate":"MII="}"#);
}

#[test]
fn request_status_and_filter() {
    let s: RequestStatus = serde_json::from_value(json!({
        "id": "r1", "status": "EXECUTED", "executionTime": "2026-01-01T00:00:00Z",
        "approvedBy": ["AQID"], "notYetApprovedBy": [], "rejectedBy": [], "result": "AAE="
    }))
    .unwrap();
    assert_eq!(s.status, RequestState::Executed);
    assert!(s.status.is_final());
    assert_eq!(s.result_bytes().unwrap().unwrap(), vec![0, 1]);
    assert!(s.executed_at().is_some());
    let p: RequestStatus = serde_json::from_value(
        json!({"id": "r2", "status": "PENDING", "executionTime": null, "result": null}),
    )
    .unwrap();
    assert!(!p.status.is_final());
    assert!(!RequestState::Approved.is_final());
    assert!(p.approved_by.is_empty());
    let u: RequestStatus =
        serde_json::from_value(json!({"id": "r3", "status": "SOMETHING_NEW"})).unwrap();
    assert_eq!(u.status, RequestState::Unknown);

    let f = RequestFilter {
        status: Some(vec![RequestState::Pending, RequestState::Cancelled]),
        key_name: Some("k".into()),
    };
    assert_eq!(
        to_json(&f),
        r#"{"status":["PENDING","CANCELLED"],"keyName":"k"}"#
    );
    assert_eq!(to_json(&RequestFilter::default()), "{}");
}

#[test]
fn async_request_ids_are_read_from_named_fields() {
    let v = json!({"signRequestId": "abc"});
    assert_eq!(request_id_from(&v, "signRequestId").unwrap(), "abc");
    assert!(matches!(
        request_id_from(&v, "blockKeyRequestId"),
        Err(TsbError::Decode(_))
    ));
}

#[test]
fn approval_wire_types() {
    let tasks: crate::types::approvals::TaskList = serde_json::from_value(json!({"tasks": [{
        "id": "t1", "requestId": "r1", "type": "SIGN", "keyName": "k", "detailLevel": "level1",
        "approvalToBeSigned": "AQID", "metaData": null, "metaDataSignature": null
    }]}))
    .unwrap();
    let t = &tasks.tasks[0];
    assert_eq!(t.task_type, Some(TaskType::Sign));
    assert_eq!(t.approval_to_be_signed, vec![1, 2, 3]);
    assert_eq!(t.request_id.as_deref(), Some("r1"));

    let approval = ApprovalRequest {
        id: "t1".into(),
        approval_to_be_signed: vec![1, 2, 3],
        signature: vec![4],
        approval_digest_algorithm: "SHA-256".into(),
        approver_public_key: Some(vec![5]),
        approver_certificate: None,
    };
    assert_eq!(
        to_json(&approval),
        r#"{"id":"t1","approvalToBeSigned":"AQID","signature":"BA==","approvalDigestAlgorithm":"SHA-256","approverPublicKey":"BQ=="}"#
    );
    let fetch = FilteredApprovalTaskRequest {
        timestamp: "2026-01-01T00:00:00Z".into(),
        timestamp_signature: vec![1],
        approver_public_key: None,
        approver_certificate: Some(vec![2]),
        timestamp_digest_algorithm: "SHA-384".into(),
        id: None,
        request_id: Some("r1".into()),
        detail_level: None,
        paging: Some(Paging {
            page_number: 0,
            page_size: 10,
            sort_order: Some("CREATION_DATE_ASC".into()),
        }),
    };
    assert_eq!(
        to_json(&fetch),
        r#"{"timestamp":"2026-01-01T00:00:00Z","timestampSignature":"AQ==","approverCertificate":"Ag==","timestampDigestAlgorithm":"SHA-384","requestId":"r1","paging":{"pageNumber":0,"pageSize":10,"sortOrder":"CREATION_DATE_ASC"}}"#
    );
    assert_eq!(
        TaskKind::default().path_segment(),
        "filteredAllApprovalTask"
    );
    assert_eq!(
        TaskKind::UnwrapKey.path_segment(),
        "filteredUnwrapKeyApprovalTask"
    );
}

#[test]
fn approver_management_wire_types() {
    let c = CreateApproverRequest {
        approver_name: "a@x".into(),
        algorithm: "RSA".into(),
        key_size: 3072,
        backup_password: SecretString::from("bp"),
        validity: Some(365),
    };
    assert_eq!(
        to_json(&c),
        r#"{"approverName":"a@x","algorithm":"RSA","keySize":3072,"backupPassword":["b","p"],"validity":365}"#
    );
    let o = OnboardApproverRequest {
        approver_name: "a@x".into(),
        one_time_code: SecretString::from("41"),
        transport_password: SecretString::from("0123456789abcdef"),
    };
    assert_eq!(
        to_json(&o),
        r#"{"approverName":"a@x","oneTimeCode":["4","1"],"transportPassword":"0123456789abcdef"}"#
    );
    let st: OnboardingStatus = serde_json::from_value(json!({
        "onboarded": [{"approverName": "a", "approverCertificate": "MII="}], "pending": [{"approverName": "b"}]
    }))
    .unwrap();
    assert_eq!(
        st.onboarded[0].approver_certificate.as_deref(),
        Some("MII=")
    );
    assert_eq!(st.pending[0].approver_name, "b");
}

#[test]
fn onboarding_payload_decrypts_with_transport_password() {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use aws_lc_rs::digest::{SHA256, digest};
    let password = SecretString::from("0123456789abcdef");
    let key = digest(&SHA256, b"0123456789abcdef");
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.as_ref()).unwrap());
    let iv = [7u8; 12];
    let mut data = b"-----BEGIN PRIVATE KEY-----".to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut data)
        .unwrap();
    let resp: OnboardApproverResponse = serde_json::from_value(json!({
        "encryptedPayload": crate::serde_helpers::encode(&data),
        "initializationVector": crate::serde_helpers::encode(&iv),
    }))
    .unwrap();
    assert_eq!(
        resp.decrypt(&password).unwrap().as_slice(),
        b"-----BEGIN PRIVATE KEY-----"
    );
    assert!(matches!(
        resp.decrypt(&SecretString::from("wrong-password!!")),
        Err(TsbError::Crypto(_))
    ));
}

#[test]
fn data_object_wire_types() {
    let c = CreateDataObjectRequest {
        label: "kms.user.alice".into(),
        value: b"{}".to_vec(),
        flags: DataObjectFlags::default(),
    };
    assert_eq!(
        to_json(&c),
        r#"{"label":"kms.user.alice","value":"e30=","modifiable":true,"destroyable":true,"private":true}"#
    );
    let r = crate::types::data_objects::ReplaceDataObjectRequest { value: b"x" };
    assert_eq!(to_json(&r), r#"{"value":"eA=="}"#);
    let d: DataObject = serde_json::from_value(json!({"label": "a", "value": "eA==", "modifiable": false, "destroyable": true, "private": true})).unwrap();
    assert_eq!(d.value, b"x");
    assert!(!d.modifiable);
    let d2: DataObject = serde_json::from_value(json!({"label": "a", "value": "eA=="})).unwrap();
    assert!(d2.modifiable && d2.destroyable && d2.private);
}

#[test]
fn service_info_names() {
    let v: VersionInfo =
        serde_json::from_str(r#"{"Version":"2.2.0-keymanager-emulator-0.1.0"}"#).unwrap();
    assert_eq!(v.version, "2.2.0-keymanager-emulator-0.1.0");
    assert_eq!(
        to_json(&v),
        r#"{"Version":"2.2.0-keymanager-emulator-0.1.0"}"#
    );
    let l: LicenseInfo =
        serde_json::from_str(r#"{"clientFlags":["REST_API","TSB_ENGINE"]}"#).unwrap();
    assert!(l.has("TSB_ENGINE") && !l.has("KEY_AUTH"));
    let s: KeystoreStatistics = serde_json::from_value(json!({
        "privateKeys": 1, "publicKeys": 2, "secretKeys": 3, "certificates": 4, "dataObjects": 5,
        "invalidatedKeys": 6, "usedSize": 7, "maxSize": 8, "remainingObjects": 9
    }))
    .unwrap();
    assert_eq!(
        (s.private_keys, s.data_objects, s.remaining_objects),
        (1, 5, 9)
    );
}

#[test]
fn base64_tolerates_line_wrapping_and_rejects_garbage() {
    let d: DataObject =
        serde_json::from_value(json!({"label": "a", "value": "AQID\nBAU="})).unwrap();
    assert_eq!(d.value, vec![1, 2, 3, 4, 5]);
    assert!(serde_json::from_value::<DataObject>(json!({"label": "a", "value": "!!"})).is_err());
}

#[test]
fn import_plain_key_hides_material_in_debug_and_encodes_it_on_the_wire() {
    let req = ImportPlainKeyRequest {
        label: "imp".into(),
        algorithm: "AES".into(),
        private_key: None,
        public_key: None,
        secret_key: Some(secrecy::SecretSlice::from(vec![0xAB; 4])),
        certificate: None,
        curve_oid: None,
        attributes: KeyAttributes {
            decrypt: Some(true),
            ..Default::default()
        },
        policy: None,
    };
    assert_eq!(
        to_json(&req),
        r#"{"label":"imp","algorithm":"AES","secretKey":"q6urqw==","attributes":{"decrypt":true},"policy":null}"#
    );
    assert!(!format!("{req:?}").contains("171"));
}

// ---------- errors ----------

#[test]
fn error_body_json_is_parsed() {
    let e = TsbError::from_response(
        404,
        br#"{"errorCode":650,"reason":"res.error.key.not.existent","message":"key k not found"}"#,
    );
    assert_eq!(e.tsb_code(), Some(650));
    assert_eq!(e.http_status(), Some(404));
    assert_eq!(e.reason(), Some("res.error.key.not.existent"));
    assert!(e.is_not_found());
    assert!(!e.is_already_existing());
    let text = e.to_string();
    assert!(
        text.contains("650") && text.contains("key k not found"),
        "{text}"
    );

    let e = TsbError::from_response(
        400,
        br#"{"errorCode":615,"reason":"res.error.data.object.already.existing","message":"x"}"#,
    );
    assert!(e.is_already_existing());
    assert!(!e.is_not_found());
    let e = TsbError::from_response(500, br#"{"errorCode":653,"reason":"r","message":"m"}"#);
    assert!(
        e.is_not_found(),
        "not-existent codes count regardless of status"
    );
    let e = TsbError::from_response(
        401,
        br#"{"errorCode":631,"reason":"res.error.invalid.api.key","message":"m"}"#,
    );
    assert!(e.is_unauthorized());
}

#[test]
fn error_body_fallbacks() {
    let e = TsbError::from_response(502, b"<html>Bad Gateway</html>");
    match &e {
        TsbError::Api {
            status,
            error_code,
            reason,
            message,
        } => {
            assert_eq!(*status, 502);
            assert_eq!(*error_code, None);
            assert_eq!(*reason, None);
            assert_eq!(message, "<html>Bad Gateway</html>");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.is_unavailable());
    assert_eq!(e.tsb_code(), None);
    let e = TsbError::from_response(500, b"");
    assert!(e.to_string().contains("empty body"));
    let big = vec![b'x'; 5000];
    let TsbError::Api { message, .. } = TsbError::from_response(500, &big) else {
        panic!()
    };
    assert!(message.chars().count() <= 513);
    // JSON but not an error object → raw text
    let TsbError::Api {
        message,
        error_code,
        ..
    } = TsbError::from_response(400, b"[1,2]")
    else {
        panic!()
    };
    assert_eq!(error_code, None);
    assert_eq!(message, "[1,2]");
}

#[test]
fn decode_errors_do_not_echo_values() {
    let r: Result<DataObject, _> =
        crate::client::decode_json(br#"{"label": 5, "value": "c2VjcmV0LXBsYWludGV4dA=="}"#);
    let text = r.unwrap_err().to_string();
    assert!(!text.contains("c2VjcmV0"), "{text}");
    let r: Result<DataObject, _> = crate::client::decode_json(br#"{"label": "a"}"#);
    assert!(r.unwrap_err().to_string().contains("missing field `value`"));
    let empty: Value = crate::client::decode_json(b"").unwrap();
    assert_eq!(empty, Value::Null);
}

// ---------- API-key rollover ----------

fn ring(n: usize) -> KeyRing {
    KeyRing::new(
        (0..n)
            .map(|i| SecretString::from(format!("key-{i}")))
            .collect(),
    )
}

#[test]
fn keyring_empty_sends_no_key() {
    let r = ring(0);
    assert_eq!(r.start(), None);
    assert_eq!(r.advance(0, 1), None);
}

#[test]
fn keyring_advances_until_exhausted() {
    let r = ring(3);
    assert_eq!(r.start(), Some(0));
    assert_eq!(r.key(0).unwrap().expose_secret(), "key-0");
    assert_eq!(r.advance(0, 1), Some(1));
    assert_eq!(r.current_index(), 1, "shared index moved");
    assert_eq!(r.advance(1, 2), Some(2));
    assert_eq!(r.advance(2, 3), None, "all three tried");
    assert_eq!(r.current_index(), 2);
    // a later call starts from the last good guess and wraps around
    assert_eq!(r.start(), Some(2));
    assert_eq!(r.advance(2, 1), Some(0));
    r.accepted(0);
    assert_eq!(r.start(), Some(0));
}

#[test]
fn keyring_concurrent_failures_advance_once() {
    let r = ring(3);
    // two in-flight calls both used key 0 and both got 631
    assert_eq!(r.advance(0, 1), Some(1));
    assert_eq!(r.advance(0, 1), Some(1));
    assert_eq!(r.current_index(), 1, "second failure must not skip key 1");
}

#[test]
fn single_key_ring_gives_up_after_one_try() {
    let r = ring(1);
    assert_eq!(r.start(), Some(0));
    assert_eq!(r.advance(0, 1), None);
}

// ---------- URLs, builder, Debug ----------

#[test]
fn endpoint_urls_keep_prefix_and_encode_names() {
    let base = url::Url::parse("http://127.0.0.1:9000/partitions/acme").unwrap();
    assert_eq!(
        endpoint_url(&base, &["key"]).unwrap().as_str(),
        "http://127.0.0.1:9000/partitions/acme/v1/key"
    );
    let base_slash = url::Url::parse("http://127.0.0.1:9000/partitions/acme/").unwrap();
    assert_eq!(
        endpoint_url(&base_slash, &["dataObject", "kms.user/a b?"])
            .unwrap()
            .as_str(),
        "http://127.0.0.1:9000/partitions/acme/v1/dataObject/kms.user%2Fa%20b%3F"
    );
    let root = url::Url::parse("https://tsb.example").unwrap();
    assert_eq!(
        endpoint_url(&root, &["versionInfo"]).unwrap().as_str(),
        "https://tsb.example/v1/versionInfo"
    );
    assert!(matches!(
        endpoint_url(&root, &["key", ""]),
        Err(TsbError::InvalidInput(_))
    ));
}

#[test]
fn builder_rejects_bad_config() {
    assert!(matches!(
        TsbClient::builder("not a url").build(),
        Err(TsbError::Config(_))
    ));
    assert!(matches!(
        TsbClient::builder("ftp://x").build(),
        Err(TsbError::Config(_))
    ));
    assert!(matches!(
        TsbClient::builder("http://x").https_only(true).build(),
        Err(TsbError::Config(_))
    ));
    assert!(matches!(
        TsbClient::builder("https://x")
            .root_ca_pem(b"not pem")
            .build(),
        Err(TsbError::Config(_))
    ));
    assert!(matches!(
        TsbClient::builder("https://x")
            .client_identity_pem(b"nope", b"nope")
            .build(),
        Err(TsbError::Config(_))
    ));
    assert!(matches!(
        TsbClient::builder("https://x")
            .api_keys(ApiKeys::all(vec![SecretString::from("bad\nkey")]))
            .build(),
        Err(TsbError::Config(_))
    ));
    let ok = TsbClient::builder("http://127.0.0.1:1/partitions/p?x=1")
        .build()
        .unwrap();
    assert_eq!(ok.base_url().as_str(), "http://127.0.0.1:1/partitions/p");
}

#[test]
fn debug_output_never_contains_secrets() {
    let keys = ApiKeys {
        key_management: vec![SecretString::from("SUPERSECRETKEY")],
        ..Default::default()
    };
    let builder = TsbClient::builder("http://127.0.0.1:1")
        .api_keys(keys.clone())
        .bearer_token(SecretString::from("SUPERSECRETJWT"))
        .client_identity_pem(b"cert", b"SUPERSECRETPEM");
    let text = format!("{builder:?} {keys:?}");
    assert!(!text.contains("SUPERSECRET"), "{text}");
    let client = TsbClient::builder("http://127.0.0.1:1")
        .api_keys(keys)
        .bearer_token(SecretString::from("SUPERSECRETJWT"))
        .build()
        .unwrap();
    let text = format!("{client:?}");
    assert!(!text.contains("SUPERSECRET"), "{text}");
    let mut req = CreateKeyRequest::new("k", "AES", KeyAttributes::default());
    req.password = Some(SecretString::from("SUPERSECRETPW"));
    assert!(!format!("{req:?}").contains("SUPERSECRET"));
}

// ---------- approver keys ----------

fn verify(
    alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
    spki: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> bool {
    aws_lc_rs::signature::UnparsedPublicKey::new(alg, spki)
        .verify(msg, sig)
        .is_ok()
}

fn ec_pkcs8(alg: &'static aws_lc_rs::signature::EcdsaSigningAlgorithm) -> Vec<u8> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
        .unwrap()
        .as_ref()
        .to_vec()
}

#[test]
fn approver_key_p256_round_trip() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING};
    let key = ApproverKey::from_pkcs8_der(&ec_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING)).unwrap();
    assert_eq!(key.key_type(), ApproverKeyType::EcP256);
    assert_eq!(key.digest_algorithm(), "SHA-256");
    let spki = key.public_key_spki_der().to_vec();
    assert_eq!(spki[0], 0x30, "SPKI is a DER SEQUENCE");
    let challenge = b"approval-challenge-bytes";
    let sig = key.sign_approval(challenge).unwrap();
    assert!(verify(&ECDSA_P256_SHA256_ASN1, &spki, challenge, &sig));
    assert!(!verify(&ECDSA_P256_SHA256_ASN1, &spki, b"other", &sig));

    let now = time::macros::datetime!(2026-11-28 22:54:06.789 +01:00);
    let (ts, ts_sig) = key.sign_timestamp(now).unwrap();
    assert_eq!(ts, "2026-11-28T21:54:06Z");
    assert!(verify(
        &ECDSA_P256_SHA256_ASN1,
        &spki,
        ts.as_bytes(),
        &ts_sig
    ));
    assert_eq!(key.identity_fields(), (Some(spki.clone()), None));
    let with_cert = key.with_certificate_der(vec![0x30, 0x00]);
    assert_eq!(with_cert.identity_fields(), (None, Some(vec![0x30, 0x00])));
    assert!(!format!("{with_cert:?}").contains("Signer"));
}

#[test]
fn approver_key_p384_uses_sha384() {
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_ASN1_SIGNING};
    let key = ApproverKey::from_pkcs8_der(&ec_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING)).unwrap();
    assert_eq!(key.key_type(), ApproverKeyType::EcP384);
    assert_eq!(key.digest_algorithm(), "SHA-384");
    let sig = key.sign_approval(b"m").unwrap();
    assert!(verify(
        &ECDSA_P384_SHA384_ASN1,
        key.public_key_spki_der(),
        b"m",
        &sig
    ));
}

#[test]
fn approver_key_ed25519_round_trip() {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let key = ApproverKey::from_pkcs8_der(der.as_ref()).unwrap();
    assert_eq!(key.key_type(), ApproverKeyType::Ed25519);
    let sig = key.sign_approval(b"m").unwrap();
    assert_eq!(sig.len(), 64);
    assert!(verify(
        &aws_lc_rs::signature::ED25519,
        key.public_key_spki_der(),
        b"m",
        &sig
    ));
    // v1 encoding too
    let v1 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(&rng).unwrap();
    assert_eq!(
        ApproverKey::from_pkcs8_der(v1.as_ref()).unwrap().key_type(),
        ApproverKeyType::Ed25519
    );
}

#[test]
fn approver_key_rsa_pkcs1v15_sha256_round_trip() {
    use aws_lc_rs::encoding::AsDer;
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = kp.as_der().unwrap();
    let key = ApproverKey::from_pkcs8_der(der.as_ref()).unwrap();
    assert_eq!(key.key_type(), ApproverKeyType::Rsa);
    assert_eq!(key.digest_algorithm(), "SHA-256");
    let (ts, sig) = key.sign_timestamp(time::OffsetDateTime::now_utc()).unwrap();
    assert_eq!(sig.len(), 256);
    assert!(verify(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        key.public_key_spki_der(),
        ts.as_bytes(),
        &sig
    ));
    // deterministic scheme: same input, same signature (PKCS#1 v1.5, not PSS)
    assert_eq!(key.sign(ts.as_bytes()).unwrap(), sig);
}

#[test]
fn approver_key_from_pem_and_garbage() {
    use aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let der = ec_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        crate::serde_helpers::encode(&der)
    );
    let key = ApproverKey::from_pkcs8_pem(pem.as_bytes()).unwrap();
    assert_eq!(key.key_type(), ApproverKeyType::EcP256);
    assert!(matches!(
        ApproverKey::from_pkcs8_der(b"garbage"),
        Err(TsbError::Crypto(_))
    ));
    assert!(matches!(
        ApproverKey::from_pkcs8_pem(b"garbage"),
        Err(TsbError::Crypto(_))
    ));
}

// ---------- request path against a minimal in-process HTTP responder ----------

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    api_key: Option<String>,
    authorization: Option<String>,
    body: String,
}

/// Serves canned answers: `respond(seen, call_no) -> (status, body)`. Records every request.
async fn serve<F>(respond: F) -> (String, Arc<std::sync::Mutex<Vec<Seen>>>)
where
    F: Fn(&Seen, usize) -> (u16, String) + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let counter = Arc::new(AtomicUsize::new(0));
    let respond = Arc::new(respond);
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            let counter = counter.clone();
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // read one request (headers + content-length body)
                    let header_end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                    };
                    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or("").split(' ');
                    let method = first.next().unwrap_or("").to_owned();
                    let path = first.next().unwrap_or("").to_owned();
                    let mut api_key = None;
                    let mut authorization = None;
                    let mut len = 0usize;
                    for l in lines {
                        if let Some((k, v)) = l.split_once(':') {
                            let v = v.trim().to_owned();
                            match k.to_ascii_lowercase().as_str() {
                                "x-api-key" => api_key = Some(v),
                                "authorization" => authorization = Some(v),
                                "content-length" => len = v.parse().unwrap_or(0),
                                _ => {}
                            }
                        }
                    }
                    while buf.len() < header_end + len {
                        let mut chunk = [0u8; 4096];
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body =
                        String::from_utf8_lossy(&buf[header_end..header_end + len]).to_string();
                    buf.drain(..header_end + len);
                    let s = Seen {
                        method,
                        path,
                        api_key,
                        authorization,
                        body,
                    };
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let (status, resp_body) = respond(&s, n);
                    seen.lock().unwrap().push(s);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{resp_body}",
                        resp_body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/partitions/acme"), seen)
}

const INVALID_KEY: &str =
    r#"{"errorCode":631,"reason":"res.error.invalid.api.key","message":"invalid api key"}"#;

#[tokio::test]
async fn api_key_rollover_over_http() {
    let (url, seen) = serve(|s, _| match s.api_key.as_deref() {
        Some("km-new") => (200, r#"["k1","k2"]"#.to_owned()),
        _ => (401, INVALID_KEY.to_owned()),
    })
    .await;
    let client = TsbClient::builder(url)
        .api_keys(ApiKeys {
            key_management: vec![SecretString::from("km-old"), SecretString::from("km-new")],
            service: vec![SecretString::from("svc")],
            ..Default::default()
        })
        .bearer_token(SecretString::from("jwt-token"))
        .build()
        .unwrap();
    assert_eq!(client.list_keys().await.unwrap(), vec!["k1", "k2"]);
    assert_eq!(client.api_key_index(KeyGroup::KeyManagement), 1);
    // a clone shares the rollover state: it starts with the good key
    let clone = client.clone();
    assert_eq!(clone.list_keys().await.unwrap().len(), 2);
    {
        let seen = seen.lock().unwrap();
        let keys: Vec<_> = seen.iter().map(|s| s.api_key.clone().unwrap()).collect();
        assert_eq!(keys, vec!["km-old", "km-new", "km-new"]);
        assert!(
            seen.iter()
                .all(|s| s.path == "/partitions/acme/v1/key" && s.method == "GET")
        );
        assert!(
            seen.iter()
                .all(|s| s.authorization.as_deref() == Some("Bearer jwt-token"))
        );
    }
    // service group has only a rejected key: exhausted → the 631 error surfaces
    let err = client.version_info().await.unwrap_err();
    assert_eq!(err.tsb_code(), Some(631));
    assert_eq!(err.http_status(), Some(401));
    assert!(!err.to_string().contains("svc"));
    assert_eq!(
        seen.lock().unwrap().last().unwrap().api_key.as_deref(),
        Some("svc")
    );
}

#[tokio::test]
async fn posts_are_wrapped_and_errors_typed_over_http() {
    let (url, seen) = serve(|s, _| match s.path.as_str() {
        "/partitions/acme/v1/synchronousSign" => (200, r#"{"signature":"AQID"}"#.to_owned()),
        "/partitions/acme/v1/sign" => (201, r#"{"signRequestId":"req-1"}"#.to_owned()),
        "/partitions/acme/v1/dataObject" => {
            (400, r#"{"errorCode":615,"reason":"res.error.data.object.already.existing","message":"exists"}"#.to_owned())
        }
        "/partitions/acme/v1/dataObject/missing" => {
            (404, r#"{"errorCode":653,"reason":"res.error.data.object.not.existent","message":"no"}"#.to_owned())
        }
        "/partitions/acme/v1/request/req-1" => {
            (200, r#"{"id":"req-1","status":"EXECUTED","approvedBy":[],"notYetApprovedBy":[],"rejectedBy":[],"result":"AQID"}"#.to_owned())
        }
        _ => (500, "boom".to_owned()),
    })
    .await;
    let client = TsbClient::builder(url)
        .api_keys(ApiKeys::all(vec![SecretString::from("k")]))
        .build()
        .unwrap();
    let req = SignRequest::new("key", "EDDSA", b"hi".to_vec());
    assert_eq!(client.sign(&req).await.unwrap(), vec![1, 2, 3]);
    assert_eq!(client.sign_async(&req).await.unwrap(), "req-1");
    let err = client
        .create_data_object("x", b"v", DataObjectFlags::default())
        .await
        .unwrap_err();
    assert!(err.is_already_existing());
    let err = client.get_data_object("missing").await.unwrap_err();
    assert!(err.is_not_found());
    let done = client
        .wait_for_request(
            "req-1",
            std::time::Duration::from_millis(10),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(done.status, RequestState::Executed);
    let err = client.delete_key("k").await.unwrap_err();
    assert_eq!(err.http_status(), Some(500));
    assert_eq!(err.tsb_code(), None);

    let seen = seen.lock().unwrap();
    let sign: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        sign,
        json!({"signRequest": {"payload": "aGk=", "signKeyName": "key", "signatureAlgorithm": "EDDSA"}})
    );
    assert_eq!(seen[0].method, "POST");
    let create: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(create["label"], "x");
    assert_eq!(create["value"], "dg==");
    assert_eq!(seen.last().unwrap().method, "DELETE");
    assert_eq!(seen.last().unwrap().path, "/partitions/acme/v1/key/k");
}

#[tokio::test]
async fn gets_retry_on_503_but_posts_do_not() {
    let (url, seen) = serve(|s, n| {
        if s.method == "GET" && n == 0 {
            (503, "unavailable".to_owned())
        } else if s.method == "GET" {
            (200, r#"{"Version":"2.2.0"}"#.to_owned())
        } else {
            (503, "unavailable".to_owned())
        }
    })
    .await;
    let client = TsbClient::builder(url)
        .retry_backoff(std::time::Duration::from_millis(1))
        .build()
        .unwrap();
    assert_eq!(client.version_info().await.unwrap().version, "2.2.0");
    let err = client.block("k").await.unwrap_err();
    assert_eq!(err.http_status(), Some(503));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "2 GETs (one retry) + 1 POST (no retry)");
    assert!(
        seen.iter().all(|s| s.api_key.is_none()),
        "no keys configured → no header"
    );
}

#[tokio::test]
async fn wait_for_request_times_out_with_last_status() {
    let (url, _seen) = serve(|_, _| {
        (200, r#"{"id":"r","status":"PENDING","approvedBy":[],"notYetApprovedBy":["AQ=="],"rejectedBy":[]}"#.to_owned())
    })
    .await;
    let client = TsbClient::builder(url).build().unwrap();
    let err = client
        .wait_for_request(
            "r",
            std::time::Duration::from_millis(5),
            std::time::Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    match err {
        TsbError::WaitTimeout { id, last_status } => {
            assert_eq!(id, "r");
            assert_eq!(last_status, "PENDING");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn approver_flow_signs_what_it_sends() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING};
    let (url, seen) = serve(|s, _| match s.path.as_str() {
        "/partitions/acme/v1/filteredSignApprovalTask" => (
            200,
            r#"{"tasks":[{"id":"t1","requestId":"r1","type":"SIGN","keyName":"k","detailLevel":"level1","approvalToBeSigned":"Y2hhbGxlbmdl"}]}"#.to_owned(),
        ),
        "/partitions/acme/v1/approval" => (200, "{}".to_owned()),
        "/partitions/acme/v1/task" => (200, String::new()),
        _ => (404, "{}".to_owned()),
    })
    .await;
    let client = TsbClient::builder(url)
        .api_keys(ApiKeys {
            approver: vec![SecretString::from("appr")],
            ..Default::default()
        })
        .build()
        .unwrap();
    let key = ApproverKey::from_pkcs8_der(&ec_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING)).unwrap();
    let filter = ApprovalTaskFilter {
        kind: TaskKind::Sign,
        ..Default::default()
    };
    let tasks = client.fetch_approval_tasks(&key, &filter).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].approval_to_be_signed, b"challenge");
    client.approve(&key, &tasks[0]).await.unwrap();
    client.reject(&key, "t1").await.unwrap();

    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|s| s.api_key.as_deref() == Some("appr")));
    let spki = key.public_key_spki_der();
    let fetch: Value = serde_json::from_str(&seen[0].body).unwrap();
    let ts = fetch["timestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z'));
    let parsed =
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).unwrap();
    let age = time::OffsetDateTime::now_utc() - parsed;
    assert!(
        age >= time::Duration::seconds(0) && age < time::Duration::seconds(60),
        "{age}"
    );
    let ts_sig =
        crate::serde_helpers::decode(fetch["timestampSignature"].as_str().unwrap()).unwrap();
    assert!(verify(
        &ECDSA_P256_SHA256_ASN1,
        spki,
        ts.as_bytes(),
        &ts_sig
    ));
    assert_eq!(
        fetch["approverPublicKey"],
        crate::serde_helpers::encode(spki)
    );
    assert_eq!(fetch["timestampDigestAlgorithm"], "SHA-256");

    let approval: Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(approval["id"], "t1");
    assert_eq!(approval["approvalToBeSigned"], "Y2hhbGxlbmdl");
    let sig = crate::serde_helpers::decode(approval["signature"].as_str().unwrap()).unwrap();
    assert!(verify(&ECDSA_P256_SHA256_ASN1, spki, b"challenge", &sig));

    assert_eq!(seen[2].method, "DELETE");
    let reject: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(reject["id"], "t1");
    let rsig =
        crate::serde_helpers::decode(reject["timestampSignature"].as_str().unwrap()).unwrap();
    assert!(verify(
        &ECDSA_P256_SHA256_ASN1,
        spki,
        reject["timestamp"].as_str().unwrap().as_bytes(),
        &rsig
    ));
}

#[tokio::test]
async fn connect_errors_are_typed() {
    // bind then drop to get a port that refuses connections
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = TsbClient::builder(format!("http://127.0.0.1:{port}"))
        .retry_backoff(std::time::Duration::from_millis(1))
        .build()
        .unwrap();
    let err = client.keystore_statistics().await.unwrap_err();
    assert!(matches!(err, TsbError::Connect(_)), "{err:?}");
    assert!(err.is_unavailable());
}

// ---------- TLS: private CA + mutual TLS against an in-process rustls server ----------

mod tls {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Pki {
        ca_pem: String,
        server_chain: Vec<CertificateDer<'static>>,
        server_key: PrivateKeyDer<'static>,
        client_cert_pem: String,
        client_key_pem: String,
        ca_der: CertificateDer<'static>,
    }

    fn pki() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "km-tsb test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "tsb");
        server_params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "keymanager");
        client_params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

        Pki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_chain: vec![server_cert.der().clone()],
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    /// A TLS server requiring a client certificate from the test CA; answers every request with
    /// a versionInfo body. Returns the base URL and a counter of completed requests.
    async fn serve_mtls(p: &Pki) -> (String, Arc<AtomicUsize>) {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(p.ca_der.clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(p.server_chain.clone(), p.server_key.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let served2 = served.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let served = served2.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(sock).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let has_client_cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty());
                    let body = format!(r#"{{"Version":"mtls-{has_client_cert}"}}"#);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    if tls.write_all(resp.as_bytes()).await.is_ok() {
                        let _ = tls.shutdown().await;
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        (format!("https://127.0.0.1:{}", addr.port()), served)
    }

    #[tokio::test]
    async fn mutual_tls_with_private_ca() {
        let p = pki();
        let (url, served) = serve_mtls(&p).await;

        let client = TsbClient::builder(url.clone())
            .root_ca_pem(p.ca_pem.as_bytes())
            .client_identity_pem(p.client_cert_pem.as_bytes(), p.client_key_pem.as_bytes())
            .api_keys(ApiKeys::all(vec![SecretString::from("k")]))
            .build()
            .unwrap();
        assert_eq!(client.version_info().await.unwrap().version, "mtls-true");
        assert_eq!(served.load(Ordering::SeqCst), 1);

        // without a client certificate the server refuses the handshake
        let no_identity = TsbClient::builder(url.clone())
            .root_ca_pem(p.ca_pem.as_bytes())
            .get_retries(0)
            .build()
            .unwrap();
        let err = no_identity.version_info().await.unwrap_err();
        assert!(matches!(err, TsbError::Tls(_)), "{err:?}");
        assert!(err.is_unavailable());

        // without the private CA the server certificate is not trusted: a TLS error
        let no_ca = TsbClient::builder(url)
            .client_identity_pem(p.client_cert_pem.as_bytes(), p.client_key_pem.as_bytes())
            .get_retries(0)
            .build()
            .unwrap();
        let err = no_ca.version_info().await.unwrap_err();
        assert!(matches!(err, TsbError::Tls(_)), "{err:?}");
        assert_eq!(
            served.load(Ordering::SeqCst),
            1,
            "only the fully authenticated call was served"
        );
    }
}

#[test]
fn explicit_nulls_decode_as_empty() {
    let s: RequestStatus = serde_json::from_value(json!({
        "id": "r", "status": "PENDING", "approvedBy": null, "notYetApprovedBy": null, "rejectedBy": null
    }))
    .unwrap();
    assert!(s.approved_by.is_empty() && s.rejected_by.is_empty());
    let p: Policy = serde_json::from_value(json!({
        "ruleUse": {"tokens": [{"name": "t", "timelock": null, "timeout": null, "groups": null}]},
        "keyStatus": {"blocked": null}
    }))
    .unwrap();
    let token = &p.rule_use.as_ref().unwrap().tokens[0];
    assert_eq!(
        (token.timelock, token.timeout, token.groups.is_none()),
        (0, 0, true)
    );
    assert!(!p.is_blocked());
    let st: KeystoreStatistics =
        serde_json::from_value(json!({"privateKeys": null, "usedSize": 10})).unwrap();
    assert_eq!((st.private_keys, st.used_size), (0, 10));
    let info: KeyInfo = serde_json::from_value(json!({"label": "k", "attributes": null})).unwrap();
    assert_eq!(info.attributes, KeyAttributes::default());
    let l: LicenseInfo = serde_json::from_value(json!({"clientFlags": null})).unwrap();
    assert!(l.client_flags.is_empty());
}
