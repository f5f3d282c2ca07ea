//! Tunables of the identity services, with the defaults DESIGN §4.4 asks for.

/// Whether users must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecondFactorPolicy {
    /// Users may enrol TOTP; those who did must use it.
    #[default]
    Optional,
    /// Every local user must enrol; until they do, their session reports
    /// [`SecondFactorState::EnrolmentRequired`](super::SecondFactorState::EnrolmentRequired) and
    /// the HTTP layer lets it reach only the enrolment pages.
    Mandatory,
}

/// Everything identity can be tuned on. Every replica should run with the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Issuer shown in authenticator apps (no `:`).
    pub issuer: String,
    /// Consecutive failed sign-ins (password or second factor) before the account is soft-locked.
    pub lockout_threshold: u32,
    /// How long a soft-lock lasts.
    pub lockout_secs: u64,
    /// TOTP optional or mandatory.
    pub second_factor: SecondFactorPolicy,
    /// A session must prove the second factor again after this long.
    pub reverify_secs: u64,
    /// A session ends after this long without a request.
    pub session_idle_secs: u64,
    /// A session ends this long after sign-in, however active.
    pub session_absolute_secs: u64,
    /// `last_seen` is written at most this often (each write is a few HSM round trips); the idle
    /// timeout is therefore exact to within this interval.
    pub session_touch_interval_secs: u64,
    /// Time to enter the second factor after the password.
    pub pending_login_secs: u64,
    /// Time to confirm a started TOTP enrolment with a first code.
    pub totp_enrolment_secs: u64,
    /// Recovery codes issued per enrolment.
    pub recovery_code_count: usize,
    /// Longest lifetime an API token may be given.
    pub api_token_max_lifetime_secs: u64,
    /// Password rules.
    pub password_min_chars: usize,
    /// Password rules.
    pub password_max_chars: usize,
    /// A setup claim older than this is considered abandoned (the claiming replica crashed).
    pub setup_claim_secs: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            issuer: "keymanager".to_owned(),
            lockout_threshold: 5,
            lockout_secs: 15 * 60,
            second_factor: SecondFactorPolicy::Optional,
            reverify_secs: 12 * 3600,
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            session_touch_interval_secs: 60,
            pending_login_secs: 5 * 60,
            totp_enrolment_secs: 10 * 60,
            recovery_code_count: 10,
            api_token_max_lifetime_secs: 366 * 24 * 3600,
            password_min_chars: 12,
            password_max_chars: 128,
            setup_claim_secs: 120,
        }
    }
}
