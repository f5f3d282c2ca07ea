//! Reading the layers of the configuration — the file, then `KM_*` environment variables — each
//! checked against the schema on its own (so an error names the file line or the variable), then
//! merged key by key with the environment winning.
//!
//! Errors never quote the configuration text: a typo'd key can sit on the same line as a secret,
//! so a file error gives the line, the column and serde's message (which names keys, not values
//! of secrets — see [`super::raw::RawSecret`]).

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

use super::ConfigError;
use super::raw::RawConfig;

/// Prefix of environment overrides: `KM_<SECTION>__<KEY>`, `__` between levels.
pub const ENV_PREFIX: &str = "KM_";
/// Separator between levels in a variable name.
const ENV_SEPARATOR: &str = "__";

/// The merged layers, plus where each environment override came from.
#[derive(Debug)]
pub struct Layers {
    /// File overlaid with the environment.
    pub merged: Table,
    /// Dotted key (`management.tsb_url`) → the variable that set it.
    pub from_env: BTreeMap<String, String>,
}

/// Reads `path` and the `KM_*` variables among `env`.
pub fn read(path: &Path, env: &[(String, String)]) -> Result<Layers, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    // Checked against the schema first, straight from the text, so errors carry positions.
    toml::from_str::<RawConfig>(&text).map_err(|error| ConfigError::File {
        path: path.to_owned(),
        message: describe_file_error(&text, &error),
    })?;
    let mut merged: Table = toml::from_str(&text).map_err(|error| ConfigError::File {
        path: path.to_owned(),
        message: describe_file_error(&text, &error),
    })?;

    let mut from_env = BTreeMap::new();
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (name, value) in vars {
        let Some(keys) = env_keys(name)? else {
            continue;
        };
        let value = env_value(name, &keys, value)?;
        from_env.insert(keys.join("."), name.clone());
        insert(&mut merged, &keys, value);
    }
    Ok(Layers { merged, from_env })
}

/// The sections a variable can address (the top-level tables of the schema).
const SECTIONS: [&str; 8] = [
    "server",
    "management",
    "identity",
    "audit",
    "state",
    "partitions",
    "notifications",
    "keys",
];

/// `KM_MANAGEMENT__API_KEYS__SERVICE` → `Some(["management", "api_keys", "service"])`.
///
/// A variable with `__` is a setting and must be one. One without `__` is another tool's
/// (`KM_SKIP_BROWSER_TESTS`) and is left alone (`None`) — unless it starts with a section name,
/// where it is a setting with a single `_` typo and refused.
fn env_keys(name: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let rest = &name[ENV_PREFIX.len()..];
    if !rest.contains(ENV_SEPARATOR) {
        let lower = rest.to_ascii_lowercase();
        if let Some(section) = SECTIONS
            .iter()
            .find(|s| lower.starts_with(&format!("{s}_")))
        {
            return Err(ConfigError::Env {
                variable: name.to_owned(),
                message: format!(
                    "levels are separated by a double underscore: write KM_{}__{}",
                    section.to_ascii_uppercase(),
                    rest.get(section.len() + 1..).unwrap_or_default()
                ),
            });
        }
        return Ok(None);
    }
    let keys: Vec<String> = rest
        .split(ENV_SEPARATOR)
        .map(str::to_ascii_lowercase)
        .collect();
    if keys.iter().any(|key| key.is_empty()) {
        return Err(ConfigError::Env {
            variable: name.to_owned(),
            message: "is not a keymanager setting: settings are KM_<SECTION>__<KEY> with `__` \
                      between levels (e.g. KM_MANAGEMENT__TSB_URL)"
                .to_owned(),
        });
    }
    Ok(Some(keys))
}

/// The variable's value, typed the way the schema wants it: first as a TOML value (so `30`,
/// `true` and `["a", "b"]` work), else as a plain string (so an API key of digits stays a
/// string). The schema check runs on the variable alone, so its error names the variable.
fn env_value(name: &str, keys: &[String], text: &str) -> Result<Value, ConfigError> {
    let typed = toml::from_str::<Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut table| table.remove("v"));
    let mut last_error = None;
    for candidate in typed.into_iter().chain([Value::String(text.to_owned())]) {
        let mut alone = Table::new();
        insert(&mut alone, keys, candidate.clone());
        match alone.try_into::<RawConfig>() {
            Ok(_) => return Ok(candidate),
            Err(error) => last_error = Some(error),
        }
    }
    Err(ConfigError::Env {
        variable: name.to_owned(),
        message: last_error.map_or_else(String::new, |error| error.message().trim().to_owned()),
    })
}

/// Sets `keys` (a path of tables) to `value`, creating tables and replacing non-tables on the
/// way: a later layer wins.
fn insert(table: &mut Table, keys: &[String], value: Value) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}

/// `line L, column C [in [section]]: message`, never the text itself — except the key of a
/// duplicate-key error (a key, never a value).
fn describe_file_error(text: &str, error: &toml::de::Error) -> String {
    let mut message = error.message().trim().to_owned();
    let Some(span) = error.span() else {
        return message;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    // The table header in force: the last `[...]` line strictly above the error's line.
    let section = before
        .get(..line_start)
        .unwrap_or_default()
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .and_then(|l| l.find(']').map(|end| &l[..=end]))
        .map(|header| format!(" in {header}"))
        .unwrap_or_default();
    let spanned = text.get(span).unwrap_or_default().trim();
    let is_key = !spanned.is_empty()
        && spanned
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if message.starts_with("duplicate key") && is_key {
        message = format!("duplicate key `{spanned}`");
    }
    format!("line {line}, column {column}{section}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_nested_keys() {
        assert_eq!(
            env_keys("KM_MANAGEMENT__API_KEYS__KEY_MANAGEMENT_FILE")
                .unwrap()
                .unwrap(),
            ["management", "api_keys", "key_management_file"]
        );
        // Another tool's variable.
        assert_eq!(env_keys("KM_SKIP_BROWSER_TESTS").unwrap(), None);
        // A setting with a typo.
        let error = env_keys("KM_MANAGEMENT_TSB_URL").unwrap_err().to_string();
        assert!(error.contains("KM_MANAGEMENT__TSB_URL"), "{error}");
        assert!(env_keys("KM_SERVER____LISTEN").is_err());
        // An unknown section is caught by the schema check (see `env_values_...`).
        assert!(env_keys("KM_DEBUG__LEVEL").unwrap().is_some());
    }

    #[test]
    fn env_values_take_the_type_the_schema_wants() {
        let keys = |k: &str| k.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            env_value("X", &keys("management.timeout_secs"), "7").unwrap(),
            Value::Integer(7)
        );
        // Digits stay a string where a string is expected (API keys, bearer tokens).
        assert_eq!(
            env_value("X", &keys("management.bearer_token"), "12345").unwrap(),
            Value::String("12345".into())
        );
        assert_eq!(
            env_value("X", &keys("server.listen"), "0.0.0.0:1").unwrap(),
            Value::String("0.0.0.0:1".into())
        );
        let list = env_value("X", &keys("management.api_keys.service"), r#"["a", "b"]"#).unwrap();
        assert!(list.is_array());
        let error = env_value("KM_SERVER__LISEN", &keys("server.lisen"), "x").unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("KM_SERVER__LISEN") && text.contains("lisen"),
            "{text}"
        );
        let error = env_value("KM_X", &keys("management.timeout_secs"), "soon").unwrap_err();
        assert!(error.to_string().contains("KM_X"), "{error}");
    }

    #[test]
    fn file_errors_give_position_and_section_but_no_text() {
        let text = "[server]\nlisten = \"0.0.0.0:1\"\n\n[management]\nbearer_tokn = \"s3cr3t\"\n";
        let error = toml::from_str::<RawConfig>(text).unwrap_err();
        let described = describe_file_error(text, &error);
        assert!(described.contains("line 5"), "{described}");
        assert!(described.contains("[management]"), "{described}");
        assert!(described.contains("bearer_tokn"), "{described}");
        assert!(!described.contains("s3cr3t"), "{described}");

        let text = "[identity]\nbcrypt_cost = 12\n[identity]\n";
        let error = toml::from_str::<RawConfig>(text).unwrap_err();
        let described = describe_file_error(text, &error);
        assert!(
            described.contains("line 3") && described.contains("`identity`"),
            "{described}"
        );
    }
}
