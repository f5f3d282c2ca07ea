//! Runtime settings of the deployment (DESIGN §4.4): the second-factor policy, how often a session
//! must prove the second factor again, session timeouts and the sign-in soft-lock.
//!
//! They live in one plain state-store record, `kms.config.public` (kind `config`, id `public`), so
//! every replica sees a change within the store's cache TTL without a restart. Until an operator
//! saves them, the static [`IdentityConfig`] given at start-up supplies the values (it stays the
//! default, and the fallback of a fresh installation).
//!
//! Reads go through the store's read cache ([`SettingsService::get`]); identity reads them on every
//! session check, so a change (e.g. making TOTP mandatory) applies to live sessions at once.
//! Changing them needs a [`Grant`] for `update_platform_settings`; the caller (the app layer)
//! audits the change.

use km_domain::{Action, Grant, GrantMismatch};
use serde::{Deserialize, Serialize};

use crate::identity::{IdentityConfig, SecondFactorPolicy};
use crate::{Sealing, StateStore, StoreError, Versioned};

/// State-store kind of the record.
pub const SETTINGS_KIND: &str = "config";
/// State-store id of the record.
pub const SETTINGS_ID: &str = "public";

/// Whether local users must enrol a second factor, as stored and shown in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactorSetting {
    /// Users may enrol TOTP; those who did must use it.
    Optional,
    /// Every local user must enrol before doing anything else.
    Mandatory,
}

impl SecondFactorSetting {
    /// Stable name (`optional` / `mandatory`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Mandatory => "mandatory",
        }
    }
}

impl From<SecondFactorPolicy> for SecondFactorSetting {
    fn from(policy: SecondFactorPolicy) -> Self {
        match policy {
            SecondFactorPolicy::Optional => Self::Optional,
            SecondFactorPolicy::Mandatory => Self::Mandatory,
        }
    }
}

impl From<SecondFactorSetting> for SecondFactorPolicy {
    fn from(setting: SecondFactorSetting) -> Self {
        match setting {
            SecondFactorSetting::Optional => Self::Optional,
            SecondFactorSetting::Mandatory => Self::Mandatory,
        }
    }
}

/// The runtime settings record (`kms.config.public`). Units are the ones an operator thinks in
/// (hours, minutes); [`Settings::validate`] keeps every value in a range that cannot lock everybody
/// out or keep sessions alive for weeks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// TOTP optional or mandatory for local users.
    pub second_factor: SecondFactorSetting,
    /// A session must prove the second factor again after this many hours (1–168; default 12).
    pub reverify_hours: u32,
    /// A session ends after this many minutes without a request (1–1440).
    pub session_idle_minutes: u32,
    /// A session ends this many hours after sign-in, however active (1–168).
    pub session_absolute_hours: u32,
    /// Consecutive failed sign-ins before the account is soft-locked (1–100).
    pub lockout_threshold: u32,
    /// How long a soft-lock lasts, in minutes (1–1440).
    pub lockout_minutes: u32,
}

/// Inclusive ranges of every field, also shown in error messages and the API schema.
pub mod limits {
    /// `reverify_hours`.
    pub const REVERIFY_HOURS: (u32, u32) = (1, 168);
    /// `session_idle_minutes`.
    pub const SESSION_IDLE_MINUTES: (u32, u32) = (1, 1440);
    /// `session_absolute_hours`.
    pub const SESSION_ABSOLUTE_HOURS: (u32, u32) = (1, 168);
    /// `lockout_threshold`.
    pub const LOCKOUT_THRESHOLD: (u32, u32) = (1, 100);
    /// `lockout_minutes`.
    pub const LOCKOUT_MINUTES: (u32, u32) = (1, 1440);
}

/// A settings value outside its range (or contradicting another).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidSetting {
    /// The field, as named in the record.
    pub field: &'static str,
    /// What is wrong, in words a user can act on.
    pub reason: String,
}

impl Settings {
    /// The settings a fresh installation runs with, derived from the static configuration
    /// (rounded up to whole units, then clamped into the valid ranges).
    pub fn from_config(config: &IdentityConfig) -> Self {
        let clamp = |value: u64, (min, max): (u32, u32)| {
            u32::try_from(value).unwrap_or(u32::MAX).clamp(min, max)
        };
        Self {
            second_factor: config.second_factor.into(),
            reverify_hours: clamp(config.reverify_secs.div_ceil(3600), limits::REVERIFY_HOURS),
            session_idle_minutes: clamp(
                config.session_idle_secs.div_ceil(60),
                limits::SESSION_IDLE_MINUTES,
            ),
            session_absolute_hours: clamp(
                config.session_absolute_secs.div_ceil(3600),
                limits::SESSION_ABSOLUTE_HOURS,
            ),
            lockout_threshold: clamp(
                u64::from(config.lockout_threshold),
                limits::LOCKOUT_THRESHOLD,
            ),
            lockout_minutes: clamp(config.lockout_secs.div_ceil(60), limits::LOCKOUT_MINUTES),
        }
    }

    /// Checks every range, and that the idle timeout is not longer than the absolute lifetime.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let check = |field: &'static str, value: u32, (min, max): (u32, u32), unit: &str| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(InvalidSetting {
                    field,
                    reason: format!("must be {min} to {max} {unit}, got {value}"),
                })
            }
        };
        check(
            "reverify_hours",
            self.reverify_hours,
            limits::REVERIFY_HOURS,
            "hours",
        )?;
        check(
            "session_idle_minutes",
            self.session_idle_minutes,
            limits::SESSION_IDLE_MINUTES,
            "minutes",
        )?;
        check(
            "session_absolute_hours",
            self.session_absolute_hours,
            limits::SESSION_ABSOLUTE_HOURS,
            "hours",
        )?;
        check(
            "lockout_threshold",
            self.lockout_threshold,
            limits::LOCKOUT_THRESHOLD,
            "failed attempts",
        )?;
        check(
            "lockout_minutes",
            self.lockout_minutes,
            limits::LOCKOUT_MINUTES,
            "minutes",
        )?;
        if u64::from(self.session_idle_minutes) > u64::from(self.session_absolute_hours) * 60 {
            return Err(InvalidSetting {
                field: "session_idle_minutes",
                reason: "must not be longer than the absolute session lifetime".to_owned(),
            });
        }
        Ok(())
    }
}

/// The values identity applies, in seconds. From the record when one is stored, otherwise exactly
/// the static [`IdentityConfig`] (so an installation that never saved settings behaves as
/// configured, to the second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveSettings {
    /// TOTP optional or mandatory.
    pub second_factor: SecondFactorPolicy,
    /// Re-verification interval.
    pub reverify_secs: u64,
    /// Idle timeout.
    pub session_idle_secs: u64,
    /// Absolute session lifetime.
    pub session_absolute_secs: u64,
    /// Failures before the soft-lock.
    pub lockout_threshold: u32,
    /// Soft-lock duration.
    pub lockout_secs: u64,
}

impl EffectiveSettings {
    /// The static configuration's values.
    pub fn from_config(config: &IdentityConfig) -> Self {
        Self {
            second_factor: config.second_factor,
            reverify_secs: config.reverify_secs,
            session_idle_secs: config.session_idle_secs,
            session_absolute_secs: config.session_absolute_secs,
            lockout_threshold: config.lockout_threshold,
            lockout_secs: config.lockout_secs,
        }
    }

    /// A stored record's values.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            second_factor: settings.second_factor.into(),
            reverify_secs: u64::from(settings.reverify_hours) * 3600,
            session_idle_secs: u64::from(settings.session_idle_minutes) * 60,
            session_absolute_secs: u64::from(settings.session_absolute_hours) * 3600,
            lockout_threshold: settings.lockout_threshold,
            lockout_secs: u64::from(settings.lockout_minutes) * 60,
        }
    }
}

/// What can go wrong reading or changing settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value is out of range.
    #[error(transparent)]
    Invalid(#[from] InvalidSetting),
    /// A grant for another action was passed (a programming error).
    #[error(transparent)]
    Grant(#[from] GrantMismatch),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads and changes the runtime settings. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SettingsService {
    store: StateStore,
    defaults: IdentityConfig,
}

impl SettingsService {
    /// The settings in `store`, falling back to `defaults` while none are saved.
    pub fn new(store: StateStore, defaults: IdentityConfig) -> Self {
        Self { store, defaults }
    }

    /// The saved record, if an operator saved one.
    pub async fn stored(&self) -> Result<Option<Versioned<Settings>>, SettingsError> {
        Ok(self.store.get(SETTINGS_KIND, SETTINGS_ID).await?)
    }

    /// The settings in force (the record, or the defaults from the static configuration).
    pub async fn get(&self) -> Result<Settings, SettingsError> {
        Ok(match self.stored().await? {
            Some(stored) => stored.value,
            None => Settings::from_config(&self.defaults),
        })
    }

    /// The values identity applies, in seconds (see [`EffectiveSettings`]).
    pub async fn effective(&self) -> Result<EffectiveSettings, SettingsError> {
        Ok(match self.stored().await? {
            Some(stored) => EffectiveSettings::from_settings(&stored.value),
            None => EffectiveSettings::from_config(&self.defaults),
        })
    }

    /// Validates and saves `settings` (`update_platform_settings`). Returns what was saved.
    pub async fn update(
        &self,
        grant: &Grant,
        settings: Settings,
    ) -> Result<Settings, SettingsError> {
        grant.require(Action::UpdatePlatformSettings, None)?;
        settings.validate()?;
        let written = self
            .store
            .modify(
                SETTINGS_KIND,
                SETTINGS_ID,
                Sealing::Plain,
                grant.principal().as_str(),
                |_: Option<Versioned<Settings>>| Ok::<_, SettingsError>(settings),
            )
            .await?;
        tracing::info!(by = %grant.principal(), second_factor = settings.second_factor.as_str(),
            "runtime settings changed");
        Ok(written.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_static_configuration() {
        let settings = Settings::from_config(&IdentityConfig::default());
        assert_eq!(settings.second_factor, SecondFactorSetting::Optional);
        assert_eq!(settings.reverify_hours, 12);
        assert_eq!(settings.session_idle_minutes, 30);
        assert_eq!(settings.session_absolute_hours, 12);
        assert_eq!(settings.lockout_threshold, 5);
        assert_eq!(settings.lockout_minutes, 15);
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(
            EffectiveSettings::from_settings(&settings),
            EffectiveSettings::from_config(&IdentityConfig::default())
        );
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_field() {
        let good = Settings::from_config(&IdentityConfig::default());
        let cases: [(Settings, &str); 6] = [
            (
                Settings {
                    reverify_hours: 0,
                    ..good
                },
                "reverify_hours",
            ),
            (
                Settings {
                    reverify_hours: 169,
                    ..good
                },
                "reverify_hours",
            ),
            (
                Settings {
                    session_idle_minutes: 0,
                    ..good
                },
                "session_idle_minutes",
            ),
            (
                Settings {
                    lockout_threshold: 0,
                    ..good
                },
                "lockout_threshold",
            ),
            (
                Settings {
                    lockout_minutes: 1441,
                    ..good
                },
                "lockout_minutes",
            ),
            (
                Settings {
                    session_idle_minutes: 61,
                    session_absolute_hours: 1,
                    ..good
                },
                "session_idle_minutes",
            ),
        ];
        for (settings, field) in cases {
            assert_eq!(
                settings.validate().map_err(|e| e.field),
                Err(field),
                "{settings:?}"
            );
        }
    }

    #[test]
    fn the_record_refuses_unknown_fields_and_bad_policies() {
        let json = r#"{"second_factor":"mandatory","reverify_hours":12,"session_idle_minutes":30,
            "session_absolute_hours":12,"lockout_threshold":5,"lockout_minutes":15}"#;
        let parsed: Settings = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.second_factor, SecondFactorSetting::Mandatory);
        assert!(serde_json::from_str::<Settings>(&json.replace("mandatory", "always")).is_err());
        assert!(
            serde_json::from_str::<Settings>(
                &json.replace("\"lockout_minutes\"", "\"x\":1,\"lockout_minutes\"")
            )
            .is_err()
        );
    }
}
