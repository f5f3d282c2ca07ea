//! Identity against the real TSB emulator: km-core's identity services → StateStore → km-hsm-tsb →
//! km-tsb → HTTP → km-tsb-emulator, with the real km-auth adapters (bcrypt at cost 4, totp-rs,
//! aws-lc-rs). Time is a `ManualClock` shared by the services and the store: lockouts, idle and
//! absolute session timeouts, TOTP steps and token expiry are driven by moving it, never by
//! sleeping. Several `Identity` instances over one emulator play replicas and restarts.

use std::sync::Arc;

use km_auth::{BcryptConfig, TotpRsProvider, identity_ports};
use km_core::identity::{
    ApiTokenService, AuthMethod, LoginOutcome, NewApiToken, NewSession, NewUser, PendingLogin,
    SecondFactor, SecondFactorState, SessionEnd, SetupStart, TotpSecret,
};
use km_core::{
    Clock, DataObjectName, Hsm, Identity, IdentityConfig, IdentityError, ManualClock,
    SecondFactorPolicy, SecretText, StateStore, StateStoreConfig,
};
use km_domain::{
    Action, Grant, Principal, PrincipalKind, Role, RoleBinding, TenantId, TenantScope, authorize,
};
use km_hsm_tsb::TsbHsm;
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;

const START: u64 = 1_700_000_000;
const ADMIN_PASSWORD: &str = "blue whale singing softly";
const ALICE_PASSWORD: &str = "orange kettle under the bridge";

/// One replica's identity services over the emulator (own TSB client, own store and cache).
fn replica(
    fixture: &EmulatorFixture,
    clock: &Arc<ManualClock>,
    name: &str,
    config: IdentityConfig,
) -> Identity {
    let hsm = Arc::new(TsbHsm::new(
        TsbClient::builder(fixture.base_url()).build().unwrap(),
    ));
    let store = StateStore::new(
        hsm,
        clock.clone(),
        StateStoreConfig {
            replica: name.to_owned(),
            ..StateStoreConfig::default()
        },
    );
    let ports = identity_ports(BcryptConfig {
        cost: 4,
        ..BcryptConfig::default()
    });
    Identity::new(store, clock.clone(), ports, config)
}

struct World {
    fixture: EmulatorFixture,
    clock: Arc<ManualClock>,
    id: Identity,
}

impl World {
    async fn new(config: IdentityConfig) -> Self {
        let fixture = EmulatorFixture::ephemeral().await.unwrap();
        let clock = Arc::new(ManualClock::new(START));
        let id = replica(&fixture, &clock, "r1", config);
        Self { fixture, clock, id }
    }

    /// A world with the first administrator `admin` set up and `alice` (user on `acme`).
    async fn with_users(config: IdentityConfig) -> Self {
        let world = Self::new(config).await;
        let SetupStart::TokenIssued(token) = world.id.setup.begin("r1").await.unwrap() else {
            panic!("a fresh installation issues a setup token");
        };
        world
            .id
            .setup
            .complete_setup(&token, "admin", &secret(ADMIN_PASSWORD), None)
            .await
            .unwrap();
        let admin = world.admin().await;
        let grant = authorize(&admin, Some(&acme()), Action::CreateUser).unwrap();
        world
            .id
            .users
            .create_user(
                &grant,
                &acme(),
                new_user("alice", ALICE_PASSWORD, Role::User),
            )
            .await
            .unwrap();
        world
    }

    fn replica(&self, name: &str, config: IdentityConfig) -> Identity {
        replica(&self.fixture, &self.clock, name, config)
    }

    async fn raw(&self, label: &str) -> Option<Vec<u8>> {
        let hsm = TsbHsm::new(TsbClient::builder(self.fixture.base_url()).build().unwrap());
        hsm.read_data_object(&DataObjectName::new(label).unwrap())
            .await
            .unwrap()
    }

    /// Every data object's bytes, concatenated (to prove a secret is stored nowhere).
    async fn everything_stored(&self) -> String {
        let client = TsbClient::builder(self.fixture.base_url()).build().unwrap();
        let mut all = String::new();
        for label in client.list_data_objects().await.unwrap() {
            all.push_str(&label);
            all.push('\n');
            if let Some(bytes) = self.raw(&label).await {
                all.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        all
    }

    async fn sign_in(&self, username: &str, password: &str) -> NewSession {
        match self
            .id
            .login
            .login_password(username, &secret(password))
            .await
            .unwrap()
        {
            LoginOutcome::SignedIn(session) => session,
            LoginOutcome::SecondFactorRequired(_) => {
                panic!("{username} should not need a second factor")
            }
        }
    }

    async fn pending(&self, username: &str, password: &str) -> PendingLogin {
        match self
            .id
            .login
            .login_password(username, &secret(password))
            .await
            .unwrap()
        {
            LoginOutcome::SecondFactorRequired(pending) => pending,
            LoginOutcome::SignedIn(_) => panic!("{username} should need a second factor"),
        }
    }

    async fn principal(&self, session: &NewSession) -> Principal {
        self.id
            .sessions
            .validate(&session.token)
            .await
            .unwrap()
            .principal
    }

    async fn admin(&self) -> Principal {
        let session = self.sign_in("admin", ADMIN_PASSWORD).await;
        self.principal(&session).await
    }

    /// Enrols TOTP for the user of `session`; returns the seed and the recovery codes.
    async fn enrol(&self, session: &NewSession) -> (TotpSecret, Vec<SecretText>) {
        let grant = authorize(&self.principal(session).await, None, Action::ManageOwnTotp).unwrap();
        let setup = self.id.totp.begin_enrolment(&grant).await.unwrap();
        let seed = TotpRsProvider::new()
            .secret_from_base32(setup.artifacts.secret_base32.expose_secret())
            .unwrap();
        let codes = self
            .id
            .totp
            .confirm_enrolment(&grant, &code(&seed, self.clock.now()), Some(&session.token))
            .await
            .unwrap();
        (seed, codes)
    }
}

fn secret(text: &str) -> SecretText {
    SecretText::from(text)
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn new_user(name: &str, password: &str, role: Role) -> NewUser {
    NewUser {
        username: name.to_owned(),
        display_name: None,
        password: secret(password),
        role,
        must_change_password: false,
    }
}

fn code(seed: &TotpSecret, at: u64) -> SecretText {
    TotpRsProvider::new().code_at(seed, at).unwrap()
}

fn grant(principal: &Principal, tenant: Option<&TenantId>, action: Action) -> Grant {
    authorize(principal, tenant, action).unwrap()
}

#[tokio::test]
async fn setup_needs_a_printed_token_and_happens_exactly_once() {
    let world = World::new(IdentityConfig::default()).await;
    assert!(!world.id.setup.is_complete().await.unwrap());
    // Two replicas start: each prints its own token and both are valid.
    let SetupStart::TokenIssued(first) = world.id.setup.begin("r1").await.unwrap() else {
        panic!("token expected");
    };
    let other = world.replica("r2", IdentityConfig::default());
    let SetupStart::TokenIssued(second) = other.setup.begin("r2").await.unwrap() else {
        panic!("token expected");
    };
    assert_ne!(first, second);

    // A stranger without the token cannot claim the instance.
    let stranger = world
        .id
        .setup
        .complete_setup(
            &secret("not-the-token"),
            "eve",
            &secret("eve was here first!"),
            None,
        )
        .await;
    assert!(
        matches!(stranger, Err(IdentityError::SetupTokenInvalid)),
        "{stranger:?}"
    );
    // A rejected password does not burn the token.
    let weak = world
        .id
        .setup
        .complete_setup(&first, "admin", &secret("password1234"), None)
        .await;
    assert!(
        matches!(weak, Err(IdentityError::PasswordRejected(_))),
        "{weak:?}"
    );

    let admin = world
        .id
        .setup
        .complete_setup(
            &first,
            "Admin",
            &secret(ADMIN_PASSWORD),
            Some("First Admin".into()),
        )
        .await
        .unwrap();
    assert_eq!(admin.username.as_str(), "admin");
    assert_eq!(admin.bindings, vec![RoleBinding::all_tenants(Role::Admin)]);
    assert!(world.id.setup.is_complete().await.unwrap());

    // Neither token works any more, and a restart issues none.
    for token in [&first, &second] {
        let again = other
            .setup
            .complete_setup(token, "eve", &secret("eve was here first!"), None)
            .await;
        assert!(
            matches!(again, Err(IdentityError::SetupAlreadyComplete)),
            "{again:?}"
        );
    }
    assert!(matches!(
        world.id.setup.begin("r3").await.unwrap(),
        SetupStart::AlreadyComplete
    ));
    // Only digests were ever stored.
    let stored = world.everything_stored().await;
    assert!(!stored.contains(first.expose_secret()) && !stored.contains(second.expose_secret()));
    assert!(!stored.contains(ADMIN_PASSWORD));

    let session = world.sign_in("admin", ADMIN_PASSWORD).await;
    let principal = world.principal(&session).await;
    assert!(principal.is_platform_operator());
}

#[tokio::test]
async fn two_concurrent_setups_with_the_token_create_one_administrator() {
    let world = World::new(IdentityConfig::default()).await;
    let SetupStart::TokenIssued(token) = world.id.setup.begin("r1").await.unwrap() else {
        panic!("token expected");
    };
    let a = world.id.clone();
    let b = world.replica("r2", IdentityConfig::default());
    let (ta, tb) = (token.clone(), token.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move {
            a.setup
                .complete_setup(&ta, "ann", &secret(ADMIN_PASSWORD), None)
                .await
        }),
        tokio::spawn(async move {
            b.setup
                .complete_setup(&tb, "bob", &secret(ADMIN_PASSWORD), None)
                .await
        }),
    );
    let results = [ra.unwrap(), rb.unwrap()];
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    for loser in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(
                loser,
                IdentityError::SetupInProgress | IdentityError::SetupAlreadyComplete
            ),
            "{loser:?}"
        );
    }
    let client = TsbClient::builder(world.fixture.base_url())
        .build()
        .unwrap();
    let users: Vec<String> = client
        .list_data_objects()
        .await
        .unwrap()
        .into_iter()
        .filter(|label| label.starts_with("kms.user."))
        .collect();
    assert_eq!(users.len(), 1, "{users:?}");
}

#[tokio::test]
async fn wrong_passwords_soft_lock_the_account_until_the_lock_period_ends() {
    let world = World::with_users(IdentityConfig::default()).await;
    let wrong = secret("not alices password at all");
    let unknown = world.id.login.login_password("mallory", &wrong).await;
    assert!(
        matches!(unknown, Err(IdentityError::InvalidCredentials)),
        "{unknown:?}"
    );

    for attempt in 1..=4 {
        let result = world.id.login.login_password("alice", &wrong).await;
        assert!(
            matches!(result, Err(IdentityError::InvalidCredentials)),
            "attempt {attempt}: {result:?}"
        );
    }
    let fifth = world
        .id
        .login
        .login_password("ALICE", &wrong)
        .await
        .unwrap_err();
    assert!(
        matches!(fifth, IdentityError::Locked { until, retry_after_secs: 900 } if until == START + 900),
        "{fifth:?}"
    );
    assert!(
        fifth.to_string().contains("try again in 15 minute(s)"),
        "{fifth}"
    );

    // Even the right password is refused while locked, without resetting anything.
    world.clock.advance(899);
    let locked = world
        .id
        .login
        .login_password("alice", &secret(ALICE_PASSWORD))
        .await
        .unwrap_err();
    assert!(
        matches!(
            locked,
            IdentityError::Locked {
                retry_after_secs: 1,
                ..
            }
        ),
        "{locked:?}"
    );
    assert_eq!(locked.code(), "account_locked");

    world.clock.advance(1);
    world.sign_in("alice", ALICE_PASSWORD).await;

    // Success reset the counter: four more failures do not lock.
    for _ in 0..4 {
        assert!(
            world
                .id
                .login
                .login_password("alice", &wrong)
                .await
                .is_err()
        );
    }
    world.sign_in("alice", ALICE_PASSWORD).await;

    // An administrator can lift a lock early.
    for _ in 0..5 {
        assert!(
            world
                .id
                .login
                .login_password("alice", &wrong)
                .await
                .is_err()
        );
    }
    let admin = world.admin().await;
    let account = world
        .id
        .users
        .get_user(
            &grant(&admin, Some(&acme()), Action::ReadUser),
            &acme(),
            "alice",
        )
        .await
        .unwrap();
    assert_eq!(account.locked_until, Some(world.clock.now() + 900));
    world
        .id
        .users
        .unlock(&grant(&admin, None, Action::UpdateUser), "alice")
        .await
        .unwrap();
    world.sign_in("alice", ALICE_PASSWORD).await;
}

#[tokio::test]
async fn totp_enrolment_and_sign_in_accept_each_code_once() {
    let world = World::with_users(IdentityConfig::default()).await;
    let session = world.sign_in("alice", ALICE_PASSWORD).await;
    assert_eq!(session.second_factor, SecondFactorState::NotEnrolled);

    let principal = world.principal(&session).await;
    let totp_grant = grant(&principal, None, Action::ManageOwnTotp);
    let setup = world.id.totp.begin_enrolment(&totp_grant).await.unwrap();
    assert!(
        setup
            .artifacts
            .qr_png_data_url
            .expose_secret()
            .starts_with("data:image/png;base64,")
    );
    assert!(
        setup
            .artifacts
            .otpauth_url
            .expose_secret()
            .starts_with("otpauth://totp/keymanager:alice?")
    );
    let seed = TotpRsProvider::new()
        .secret_from_base32(setup.artifacts.secret_base32.expose_secret())
        .unwrap();
    // A wrong first code does not enrol.
    let wrong = world
        .id
        .totp
        .confirm_enrolment(&totp_grant, &secret("000000"), None)
        .await;
    assert!(
        matches!(wrong, Err(IdentityError::SecondFactorInvalid))
            || code(&seed, START).expose_secret() == "000000"
    );
    let enrol_code = code(&seed, START);
    let recovery = world
        .id
        .totp
        .confirm_enrolment(&totp_grant, &enrol_code, Some(&session.token))
        .await
        .unwrap();
    assert_eq!(recovery.len(), 10);
    let again = world.id.totp.begin_enrolment(&totp_grant).await;
    assert!(
        matches!(again, Err(IdentityError::SecondFactorAlreadyEnrolled)),
        "{again:?}"
    );
    // The session that enrolled counts as verified.
    let valid = world.id.sessions.validate(&session.token).await.unwrap();
    assert_eq!(
        valid.second_factor,
        SecondFactorState::Verified { at: START }
    );

    // The seed is sealed on the HSM: the credential record is an opaque sealed body.
    let raw = world.raw("kms.credential.alice").await.unwrap();
    let envelope: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(envelope["sealed"], true);
    let stored = world.everything_stored().await;
    let base32 = setup.artifacts.secret_base32.expose_secret();
    assert!(
        !stored.contains(base32),
        "the TOTP seed is stored in the clear"
    );
    for code in &recovery {
        assert!(!stored.contains(code.expose_secret()));
    }

    // Password alone is not enough any more.
    let pending = world.pending("alice", ALICE_PASSWORD).await;
    // The code used for enrolment is spent.
    let replay = world
        .id
        .login
        .complete_second_factor(&pending.token, SecondFactor::Totp(enrol_code.clone()))
        .await;
    assert!(
        matches!(replay, Err(IdentityError::SecondFactorInvalid)),
        "{replay:?}"
    );

    world.clock.advance(30);
    let fresh = code(&seed, world.clock.now());
    let signed_in = world
        .id
        .login
        .complete_second_factor(&pending.token, SecondFactor::Totp(fresh.clone()))
        .await
        .unwrap();
    assert_eq!(
        signed_in.second_factor,
        SecondFactorState::Verified { at: START + 30 }
    );
    assert_eq!(
        world
            .id
            .sessions
            .validate(&signed_in.token)
            .await
            .unwrap()
            .method,
        AuthMethod::PasswordTotp
    );
    // The pending sign-in is single-use, and the same code is refused for another sign-in.
    let reuse = world
        .id
        .login
        .complete_second_factor(&pending.token, SecondFactor::Totp(fresh.clone()))
        .await;
    assert!(
        matches!(reuse, Err(IdentityError::LoginExpired)),
        "{reuse:?}"
    );
    let other = world.pending("alice", ALICE_PASSWORD).await;
    let reuse = world
        .id
        .login
        .complete_second_factor(&other.token, SecondFactor::Totp(fresh))
        .await;
    assert!(
        matches!(reuse, Err(IdentityError::SecondFactorInvalid)),
        "{reuse:?}"
    );
    // One step later a new code works (±1 step: the previous step's code is still accepted
    // once if it was not used; here the next one is).
    world.clock.advance(30);
    world
        .id
        .login
        .complete_second_factor(
            &other.token,
            SecondFactor::Totp(code(&seed, world.clock.now())),
        )
        .await
        .unwrap();
    // A pending sign-in expires.
    let late = world.pending("alice", ALICE_PASSWORD).await;
    world.clock.advance(301);
    let expired = world
        .id
        .login
        .complete_second_factor(
            &late.token,
            SecondFactor::Totp(code(&seed, world.clock.now())),
        )
        .await;
    assert!(
        matches!(expired, Err(IdentityError::LoginExpired)),
        "{expired:?}"
    );
}

#[tokio::test]
async fn the_same_code_submitted_concurrently_succeeds_exactly_once() {
    let world = World::with_users(IdentityConfig::default()).await;
    let session = world.sign_in("alice", ALICE_PASSWORD).await;
    let (seed, _) = world.enrol(&session).await;
    // Two replicas, each serving one of the two requests.
    let other = world.replica("r2", IdentityConfig::default());
    for round in 1..=3u64 {
        world.clock.advance(30);
        let p1 = world.pending("alice", ALICE_PASSWORD).await;
        let p2 = world.pending("alice", ALICE_PASSWORD).await;
        let same = code(&seed, world.clock.now());
        let (a, b) = (world.id.clone(), other.clone());
        let (c1, c2) = (same.clone(), same.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move {
                a.login
                    .complete_second_factor(&p1.token, SecondFactor::Totp(c1))
                    .await
            }),
            tokio::spawn(async move {
                b.login
                    .complete_second_factor(&p2.token, SecondFactor::Totp(c2))
                    .await
            }),
        );
        let results = [r1.unwrap(), r2.unwrap()];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {results:?}"
        );
        let failure = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(
            matches!(failure, IdentityError::SecondFactorInvalid),
            "round {round}: {failure:?}"
        );
    }
}

#[tokio::test]
async fn recovery_codes_work_once_each() {
    let world = World::with_users(IdentityConfig::default()).await;
    let session = world.sign_in("alice", ALICE_PASSWORD).await;
    let (_, codes) = world.enrol(&session).await;
    assert_eq!(codes.len(), 10);
    for code in &codes {
        let text = code.expose_secret();
        assert_eq!(text.len(), 11, "{text}");
        assert_eq!(text.chars().nth(5), Some('-'), "{text}");
    }
    let mut distinct: Vec<&str> = codes.iter().map(SecretText::expose_secret).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);

    let pending = world.pending("alice", ALICE_PASSWORD).await;
    // Typed in upper case without the dash: still accepted.
    let typed = secret(&codes[3].expose_secret().replace('-', "").to_uppercase());
    let signed_in = world
        .id
        .login
        .complete_second_factor(&pending.token, SecondFactor::RecoveryCode(typed))
        .await
        .unwrap();
    let valid = world.id.sessions.validate(&signed_in.token).await.unwrap();
    assert_eq!(valid.method, AuthMethod::PasswordRecoveryCode);

    let pending = world.pending("alice", ALICE_PASSWORD).await;
    let reused = world
        .id
        .login
        .complete_second_factor(&pending.token, SecondFactor::RecoveryCode(codes[3].clone()))
        .await;
    assert!(
        matches!(reused, Err(IdentityError::SecondFactorInvalid)),
        "{reused:?}"
    );
    world
        .id
        .login
        .complete_second_factor(&pending.token, SecondFactor::RecoveryCode(codes[4].clone()))
        .await
        .unwrap();
    let totp_grant = grant(&valid.principal, None, Action::ManageOwnTotp);
    assert_eq!(
        world
            .id
            .totp
            .recovery_codes_left(&totp_grant)
            .await
            .unwrap(),
        8
    );

    // Regenerating invalidates the old codes.
    let fresh = world
        .id
        .totp
        .regenerate_recovery_codes(&totp_grant, &secret(ALICE_PASSWORD))
        .await
        .unwrap();
    let pending = world.pending("alice", ALICE_PASSWORD).await;
    let old = world
        .id
        .login
        .complete_second_factor(&pending.token, SecondFactor::RecoveryCode(codes[5].clone()))
        .await;
    assert!(
        matches!(old, Err(IdentityError::SecondFactorInvalid)),
        "{old:?}"
    );
    world
        .id
        .login
        .complete_second_factor(&pending.token, SecondFactor::RecoveryCode(fresh[0].clone()))
        .await
        .unwrap();
}

#[tokio::test]
async fn sessions_end_when_idle_or_too_old_and_carry_a_csrf_token() {
    let config = IdentityConfig {
        reverify_secs: 3600,
        ..IdentityConfig::default()
    };
    let world = World::with_users(config.clone()).await;
    let session = world.sign_in("alice", ALICE_PASSWORD).await;
    assert_eq!(session.absolute_expires_at, START + 12 * 3600);

    // CSRF: derived from the cookie, the same on every replica, different per session.
    let csrf = world.id.sessions.csrf_token(&session.token);
    assert_eq!(csrf, session.csrf_token);
    let other_replica = world.replica("r2", config.clone());
    assert!(other_replica.sessions.verify_csrf(&session.token, &csrf));
    assert!(!world.id.sessions.verify_csrf(&session.token, "forged"));
    let second = world.sign_in("alice", ALICE_PASSWORD).await;
    assert!(!world.id.sessions.verify_csrf(&second.token, &csrf));

    // Valid on another replica; the cookie itself is stored nowhere.
    let seen = other_replica
        .sessions
        .validate(&session.token)
        .await
        .unwrap();
    assert_eq!(seen.principal.subject.as_str(), "alice");
    assert_eq!(seen.principal.kind, PrincipalKind::User);
    assert_eq!(
        seen.principal.bindings,
        vec![RoleBinding::tenant(acme(), Role::User)]
    );
    let stored = world.everything_stored().await;
    assert!(!stored.contains(session.token.expose_secret()));

    // Idle timeout (30 min): requests keep it alive, silence ends it.
    world.clock.advance(1799);
    world.id.sessions.validate(&session.token).await.unwrap();
    world.clock.advance(1799);
    let touched = world.id.sessions.validate(&session.token).await.unwrap();
    assert_eq!(touched.last_seen_at, START + 3598);
    world.clock.advance(1800);
    let idle = world.id.sessions.validate(&session.token).await;
    assert!(
        matches!(idle, Err(IdentityError::SessionInvalid(SessionEnd::Idle))),
        "{idle:?}"
    );

    // Absolute timeout (12 h) however active.
    let start = world.clock.now();
    let busy = world.sign_in("alice", ALICE_PASSWORD).await;
    while world.clock.now() + 1500 < start + 12 * 3600 {
        world.clock.advance(1500);
        world.id.sessions.validate(&busy.token).await.unwrap();
    }
    world.clock.set(start + 12 * 3600);
    let old = world.id.sessions.validate(&busy.token).await;
    assert!(
        matches!(old, Err(IdentityError::SessionInvalid(SessionEnd::Expired))),
        "{old:?}"
    );

    // Logout ends a session at once.
    let short = world.sign_in("alice", ALICE_PASSWORD).await;
    world.id.sessions.logout(&short.token).await.unwrap();
    let gone = world.id.sessions.validate(&short.token).await;
    assert!(
        matches!(
            gone,
            Err(IdentityError::SessionInvalid(SessionEnd::Unknown))
        ),
        "{gone:?}"
    );
    world.id.sessions.logout(&short.token).await.unwrap();

    // Second-factor re-verification is due after `reverify_secs`.
    let verified = world.sign_in("alice", ALICE_PASSWORD).await;
    let (seed, _) = world.enrol(&verified).await;
    for _ in 0..2 {
        world.clock.advance(1700);
        assert!(matches!(
            world
                .id
                .sessions
                .validate(&verified.token)
                .await
                .unwrap()
                .second_factor,
            SecondFactorState::Verified { .. }
        ));
    }
    world.clock.advance(300);
    let due = world.id.sessions.validate(&verified.token).await.unwrap();
    assert!(
        matches!(
            due.second_factor,
            SecondFactorState::ReverificationDue { .. }
        ),
        "{due:?}"
    );
    assert!(!due.second_factor.satisfied());
    let bad = world
        .id
        .sessions
        .reverify_second_factor(&verified.token, SecondFactor::Totp(secret("12345")))
        .await;
    assert!(
        matches!(bad, Err(IdentityError::SecondFactorInvalid)),
        "{bad:?}"
    );
    let renewed = world
        .id
        .sessions
        .reverify_second_factor(
            &verified.token,
            SecondFactor::Totp(code(&seed, world.clock.now())),
        )
        .await
        .unwrap();
    assert_eq!(
        renewed.second_factor,
        SecondFactorState::Verified {
            at: world.clock.now()
        }
    );

    // Expired and idle records are purged.
    world.clock.advance(13 * 3600);
    assert!(world.id.sessions.purge_expired().await.unwrap() >= 3);
    let client = TsbClient::builder(world.fixture.base_url())
        .build()
        .unwrap();
    let left: Vec<String> = client
        .list_data_objects()
        .await
        .unwrap()
        .into_iter()
        .filter(|label| label.starts_with("kms.session.") || label.starts_with("kms.login."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn mandatory_second_factor_sends_new_users_to_enrolment() {
    let config = IdentityConfig {
        second_factor: SecondFactorPolicy::Mandatory,
        ..IdentityConfig::default()
    };
    let world = World::with_users(config).await;
    let session = world.sign_in("alice", ALICE_PASSWORD).await;
    assert_eq!(session.second_factor, SecondFactorState::EnrolmentRequired);
    assert!(!session.second_factor.satisfied());
    world.enrol(&session).await;
    let valid = world.id.sessions.validate(&session.token).await.unwrap();
    assert!(valid.second_factor.satisfied(), "{valid:?}");
}

#[tokio::test]
async fn password_and_role_changes_end_sessions_on_every_replica() {
    let world = World::with_users(IdentityConfig::default()).await;
    let other = world.replica("r2", IdentityConfig::default());
    let laptop = world.sign_in("alice", ALICE_PASSWORD).await;
    let phone = world.sign_in("alice", ALICE_PASSWORD).await;
    other.sessions.validate(&phone.token).await.unwrap();

    // Changing one's password needs the current one, and follows the password rules.
    let alice = world.principal(&laptop).await;
    let change = grant(&alice, None, Action::ChangeOwnPassword);
    let wrong = world
        .id
        .users
        .change_own_password(
            &change,
            &secret("not my password at all"),
            &secret("new green meadow 42"),
        )
        .await;
    assert!(
        matches!(wrong, Err(IdentityError::InvalidCredentials)),
        "{wrong:?}"
    );
    let weak = world
        .id
        .users
        .change_own_password(&change, &secret(ALICE_PASSWORD), &secret("qwerty123456"))
        .await;
    assert!(
        matches!(weak, Err(IdentityError::PasswordRejected(_))),
        "{weak:?}"
    );
    world
        .id
        .users
        .change_own_password(
            &change,
            &secret(ALICE_PASSWORD),
            &secret("new green meadow 42"),
        )
        .await
        .unwrap();
    world.clock.advance(3); // past the other replica's read cache
    for (replica, token) in [(&world.id, &laptop.token), (&other, &phone.token)] {
        let ended = replica.sessions.validate(token).await;
        assert!(
            matches!(
                ended,
                Err(IdentityError::SessionInvalid(SessionEnd::Revoked))
            ),
            "{ended:?}"
        );
    }
    let old = world
        .id
        .login
        .login_password("alice", &secret(ALICE_PASSWORD))
        .await;
    assert!(
        matches!(old, Err(IdentityError::InvalidCredentials)),
        "{old:?}"
    );
    let session = world.sign_in("alice", "new green meadow 42").await;

    // A role change ends the sessions; the next sign-in carries the new role.
    let admin = world.admin().await;
    let updated = world
        .id
        .users
        .set_tenant_role(
            &grant(&admin, Some(&acme()), Action::ManageRoleBindings),
            &acme(),
            "alice",
            Some(Role::Readonly),
        )
        .await
        .unwrap();
    assert_eq!(
        updated.bindings,
        vec![RoleBinding::tenant(acme(), Role::Readonly)]
    );
    world.clock.advance(3);
    let ended = other.sessions.validate(&session.token).await;
    assert!(
        matches!(
            ended,
            Err(IdentityError::SessionInvalid(SessionEnd::Revoked))
        ),
        "{ended:?}"
    );
    let session = world.sign_in("alice", "new green meadow 42").await;
    let alice = world.principal(&session).await;
    assert!(authorize(&alice, Some(&acme()), Action::ListKeys).is_ok());
    assert!(authorize(&alice, Some(&acme()), Action::CreateKey).is_err());

    // An administrator's reset ends sessions too and forces a change at the next sign-in.
    world
        .id
        .users
        .reset_password(
            &grant(&admin, None, Action::ResetUserPassword),
            "alice",
            &secret("temporary reset phrase"),
            true,
        )
        .await
        .unwrap();
    let ended = world.id.sessions.validate(&session.token).await;
    assert!(
        matches!(
            ended,
            Err(IdentityError::SessionInvalid(SessionEnd::Revoked))
        ),
        "{ended:?}"
    );
    let after_reset = world.sign_in("alice", "temporary reset phrase").await;
    assert!(after_reset.must_change_password);

    // "Sign out everywhere" and disabling the account.
    let a = world.sign_in("alice", "temporary reset phrase").await;
    let b = world.sign_in("alice", "temporary reset phrase").await;
    world
        .id
        .sessions
        .sign_out_everywhere(&a.token)
        .await
        .unwrap();
    assert!(world.id.sessions.validate(&b.token).await.is_err());
    let c = world.sign_in("alice", "temporary reset phrase").await;
    world
        .id
        .users
        .set_disabled(&grant(&admin, None, Action::UpdateUser), "alice", true)
        .await
        .unwrap();
    assert!(world.id.sessions.validate(&c.token).await.is_err());
    let disabled = world
        .id
        .login
        .login_password("alice", &secret("temporary reset phrase"))
        .await;
    assert!(
        matches!(disabled, Err(IdentityError::AccountDisabled)),
        "{disabled:?}"
    );
}

#[tokio::test]
async fn user_administration_checks_grants_and_protects_the_last_admin() {
    let world = World::with_users(IdentityConfig::default()).await;
    let admin = world.admin().await;

    // A grant for another action or tenant is refused.
    let read = grant(&admin, None, Action::ReadOwnAccount);
    let mismatch = world.id.users.delete_user(&read, "alice").await;
    assert!(
        matches!(mismatch, Err(IdentityError::Grant(_))),
        "{mismatch:?}"
    );
    let globex = TenantId::parse("globex").unwrap();
    let other_tenant = grant(&admin, Some(&globex), Action::CreateUser);
    let mismatch = world
        .id
        .users
        .create_user(
            &other_tenant,
            &acme(),
            new_user("bob", "a very long phrase indeed", Role::User),
        )
        .await;
    assert!(
        matches!(mismatch, Err(IdentityError::Grant(_))),
        "{mismatch:?}"
    );

    let duplicate = world
        .id
        .users
        .create_user(
            &grant(&admin, Some(&acme()), Action::CreateUser),
            &acme(),
            new_user("Alice", "another long phrase here", Role::User),
        )
        .await;
    assert!(
        matches!(duplicate, Err(IdentityError::UserExists(_))),
        "{duplicate:?}"
    );

    let listed = world
        .id
        .users
        .list_users(&grant(&admin, Some(&acme()), Action::ListUsers), &acme())
        .await
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["admin", "alice"]);
    let globex_users = world
        .id
        .users
        .list_users(&grant(&admin, Some(&globex), Action::ListUsers), &globex)
        .await
        .unwrap();
    assert_eq!(
        globex_users.len(),
        1,
        "only the platform operator covers globex"
    );

    // The last platform administrator can neither be demoted, disabled nor delete itself.
    let demote = world
        .id
        .users
        .set_platform_role(
            &grant(&admin, None, Action::ManagePlatformBindings),
            "admin",
            Some(Role::User),
        )
        .await;
    assert!(
        matches!(demote, Err(IdentityError::LastPlatformAdmin)),
        "{demote:?}"
    );
    let delete_self = world
        .id
        .users
        .delete_user(&grant(&admin, None, Action::DeleteUser), "admin")
        .await;
    assert!(
        matches!(delete_self, Err(IdentityError::NotOnSelf(_))),
        "{delete_self:?}"
    );

    // Deleting a user removes its records and API tokens; its sessions end.
    let session = world.sign_in("alice", ALICE_PASSWORD).await;
    let alice = world.principal(&session).await;
    let token = world
        .id
        .api_tokens
        .create(
            &grant(&alice, None, Action::ManageOwnApiTokens),
            NewApiToken {
                name: "ci".into(),
                scope: TenantScope::Tenant(acme()),
                role: Role::User,
                expires_in_secs: 3600,
            },
        )
        .await
        .unwrap();
    world
        .id
        .users
        .delete_user(&grant(&admin, None, Action::DeleteUser), "alice")
        .await
        .unwrap();
    world.clock.advance(3);
    assert!(world.id.sessions.validate(&session.token).await.is_err());
    assert!(world.id.api_tokens.verify(&token.token).await.is_err());
    assert!(world.raw("kms.user.alice").await.is_none());
    assert!(world.raw("kms.credential.alice").await.is_none());
    assert!(
        world
            .raw(&format!("kms.apitoken.{}", token.info.id))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn api_tokens_are_shown_once_stored_hashed_scoped_and_expiring() {
    let world = World::with_users(IdentityConfig::default()).await;
    let session = world.sign_in("alice", ALICE_PASSWORD).await;
    let alice = world.principal(&session).await;
    let manage = grant(&alice, None, Action::ManageOwnApiTokens);
    let tokens: &ApiTokenService = &world.id.api_tokens;

    // Never more than the creator holds.
    for (scope, role) in [
        (TenantScope::Tenant(acme()), Role::Admin),
        (TenantScope::AllTenants, Role::Readonly),
    ] {
        let refused = tokens
            .create(
                &manage,
                NewApiToken {
                    name: "x".into(),
                    scope,
                    role,
                    expires_in_secs: 60,
                },
            )
            .await;
        assert!(
            matches!(refused, Err(IdentityError::ApiTokenRoleTooHigh { .. })),
            "{refused:?}"
        );
    }
    let refused = tokens
        .create(
            &manage,
            NewApiToken {
                name: "x".into(),
                scope: TenantScope::Tenant(acme()),
                role: Role::User,
                expires_in_secs: 0,
            },
        )
        .await;
    assert!(
        matches!(refused, Err(IdentityError::ApiTokenLifetime { .. })),
        "{refused:?}"
    );

    let created = tokens
        .create(
            &manage,
            NewApiToken {
                name: "terraform".into(),
                scope: TenantScope::Tenant(acme()),
                role: Role::Readonly,
                expires_in_secs: 3600,
            },
        )
        .await
        .unwrap();
    let text = created.token.expose_secret().to_owned();
    assert!(
        text.starts_with(&format!("km_{}_", created.info.id)),
        "{text}"
    );
    assert_eq!(created.info.expires_at, START + 3600);
    assert!(!format!("{created:?}").contains(&text));

    // The record holds the digest, not the secret.
    let secret_part = text
        .strip_prefix(&format!("km_{}_", created.info.id))
        .unwrap()
        .to_owned();
    assert!(secret_part.len() >= 40);
    let raw = world
        .raw(&format!("kms.apitoken.{}", created.info.id))
        .await
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(raw.contains("secret_sha256"), "{raw}");
    assert!(
        !raw.contains(&secret_part),
        "the token secret is stored: {raw}"
    );

    // Verification yields a token principal scoped to acme/readonly.
    let verified = tokens.verify(&created.token).await.unwrap();
    assert_eq!(verified.principal.kind, PrincipalKind::ApiToken);
    assert_eq!(
        verified.principal.subject.as_str(),
        format!("token:{}", created.info.id)
    );
    assert_eq!(
        verified.principal.bindings,
        vec![RoleBinding::tenant(acme(), Role::Readonly)]
    );
    assert!(authorize(&verified.principal, Some(&acme()), Action::ListKeys).is_ok());
    assert!(authorize(&verified.principal, Some(&acme()), Action::CreateKey).is_err());
    assert!(authorize(&verified.principal, None, Action::ManageOwnApiTokens).is_err());

    // Anything else is the same "invalid".
    let mut forged = text.clone();
    forged.pop();
    forged.push(if text.ends_with('A') { 'B' } else { 'A' });
    for bad in [
        forged.as_str(),
        "km_",
        "km_zz_zz",
        "Bearer nonsense",
        &text.replacen("km_", "kx_", 1),
    ] {
        let result = tokens.verify(&secret(bad)).await;
        assert!(
            matches!(result, Err(IdentityError::ApiTokenInvalid)),
            "{bad}: {result:?}"
        );
    }

    let listed = tokens.list_own(&manage).await.unwrap();
    assert_eq!(listed, vec![created.info.clone()]);

    // Revocation.
    let doomed = tokens
        .create(
            &manage,
            NewApiToken {
                name: "doomed".into(),
                scope: TenantScope::Tenant(acme()),
                role: Role::User,
                expires_in_secs: 3600,
            },
        )
        .await
        .unwrap();
    tokens.verify(&doomed.token).await.unwrap();
    tokens.revoke_own(&manage, &doomed.info.id).await.unwrap();
    assert!(matches!(
        tokens.verify(&doomed.token).await,
        Err(IdentityError::ApiTokenInvalid)
    ));
    assert_eq!(tokens.list_own(&manage).await.unwrap().len(), 1);

    // The owner losing the role caps the token at once.
    let admin = world.admin().await;
    world
        .id
        .users
        .set_tenant_role(
            &grant(&admin, Some(&acme()), Action::ManageRoleBindings),
            &acme(),
            "alice",
            None,
        )
        .await
        .unwrap();
    world.clock.advance(3);
    assert!(matches!(
        tokens.verify(&created.token).await,
        Err(IdentityError::ApiTokenInvalid)
    ));
    world
        .id
        .users
        .set_tenant_role(
            &grant(&admin, Some(&acme()), Action::ManageRoleBindings),
            &acme(),
            "alice",
            Some(Role::User),
        )
        .await
        .unwrap();
    world.clock.advance(3);
    tokens.verify(&created.token).await.unwrap();

    // Expiry.
    world.clock.set(START + 3600);
    assert!(matches!(
        tokens.verify(&created.token).await,
        Err(IdentityError::ApiTokenInvalid)
    ));
}

#[tokio::test]
async fn a_restart_keeps_users_second_factors_and_sessions() {
    let world = World::with_users(IdentityConfig::default()).await;
    let session = world.sign_in("alice", ALICE_PASSWORD).await;
    let (seed, codes) = world.enrol(&session).await;

    // New service instances over the same emulator (a restarted process).
    let restarted = world.replica("r1-restarted", IdentityConfig::default());
    assert!(matches!(
        restarted.setup.begin("r1-restarted").await.unwrap(),
        SetupStart::AlreadyComplete
    ));
    let valid = restarted.sessions.validate(&session.token).await.unwrap();
    assert_eq!(valid.principal.subject.as_str(), "alice");

    world.clock.advance(30);
    let LoginOutcome::SecondFactorRequired(pending) = restarted
        .login
        .login_password("alice", &secret(ALICE_PASSWORD))
        .await
        .unwrap()
    else {
        panic!("TOTP survives a restart");
    };
    restarted
        .login
        .complete_second_factor(
            &pending.token,
            SecondFactor::Totp(code(&seed, world.clock.now())),
        )
        .await
        .unwrap();
    let LoginOutcome::SecondFactorRequired(pending) = restarted
        .login
        .login_password("alice", &secret(ALICE_PASSWORD))
        .await
        .unwrap()
    else {
        panic!("TOTP survives a restart");
    };
    restarted
        .login
        .complete_second_factor(&pending.token, SecondFactor::RecoveryCode(codes[0].clone()))
        .await
        .unwrap();
    restarted
        .login
        .login_password("admin", &secret(ADMIN_PASSWORD))
        .await
        .unwrap();
}
