//! Which partitions (tenants) the sidebar offers, with their display name and colour.
//!
//! Today there is no partition registry: a person sees the tenants named in their role bindings,
//! and a binding on `*` shows every partition the deployment knows ([`StaticPartitions`], which
//! `keymanager dev` fills with its demo partitions). The registry of a later issue (name, colour,
//! endpoint, status per partition) plugs in by implementing [`PartitionDirectory`]; the console
//! asks nothing else about partitions.

use std::fmt;

use async_trait::async_trait;
use km_domain::{Principal, TenantId, TenantScope};

/// How the console shows one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The tenant id (slug), as used in role bindings and the API.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// `#rrggbb`; validated on construction so it can be written into SVG attributes.
    pub colour: Colour,
}

/// A `#rrggbb` colour (lower-case). Only this type reaches the templates, so a colour can never
/// carry markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colour(String);

impl Colour {
    /// Parses `#rrggbb` (any case); `None` otherwise.
    pub fn parse(value: &str) -> Option<Self> {
        let hex = value.strip_prefix('#')?;
        (hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| Self(format!("#{}", hex.to_ascii_lowercase())))
    }

    /// The colour text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Distinct, accessible accent colours; a partition without a registered colour gets one of them,
/// always the same for the same id.
const PALETTE: [&str; 10] = [
    "#6366f1", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#ec4899", "#14b8a6",
    "#f97316", "#84cc16",
];

/// The colour a partition gets until a registry assigns one: FNV-1a of the id picks a palette
/// entry, so every replica and every page shows the same colour for the same partition.
pub fn default_colour(id: &TenantId) -> Colour {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in id.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let index = usize::try_from(hash).unwrap_or(0) % PALETTE.len();
    Colour(PALETTE.get(index).copied().unwrap_or(PALETTE[0]).to_owned())
}

impl PartitionInfo {
    /// A partition known only by its id: the id as its name and the default colour.
    pub fn from_id(id: TenantId) -> Self {
        Self {
            name: id.as_str().to_owned(),
            colour: default_colour(&id),
            id,
        }
    }
}

/// The seam for the partition registry: what partitions exist and how they look.
#[async_trait]
pub trait PartitionDirectory: Send + Sync + fmt::Debug {
    /// Every registered partition (what a `*` binding can switch to), in display order.
    async fn all(&self) -> Vec<PartitionInfo>;

    /// How to show `id`; partitions the directory does not know get their id and default colour.
    async fn describe(&self, id: &TenantId) -> PartitionInfo {
        self.all()
            .await
            .into_iter()
            .find(|info| &info.id == id)
            .unwrap_or_else(|| PartitionInfo::from_id(id.clone()))
    }

    /// The partitions `principal` may switch to: its bound tenants, or every partition for a
    /// binding on `*` (plus any bound tenant the directory does not list). Sorted by name.
    async fn visible_to(&self, principal: &Principal) -> Vec<PartitionInfo> {
        let mut visible: Vec<PartitionInfo> = Vec::new();
        if principal.is_platform_operator() {
            visible = self.all().await;
        }
        for binding in &principal.bindings {
            if let TenantScope::Tenant(id) = &binding.scope
                && !visible.iter().any(|info| &info.id == id)
            {
                visible.push(self.describe(id).await);
            }
        }
        visible.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        visible
    }
}

/// A fixed list of partitions, until the registry exists. `keymanager dev` passes its demo
/// partitions (`acme`, `globex`).
#[derive(Debug, Clone, Default)]
pub struct StaticPartitions {
    partitions: Vec<PartitionInfo>,
}

impl StaticPartitions {
    /// Partitions known by id only (named by their id, default colours).
    pub fn from_ids(ids: impl IntoIterator<Item = TenantId>) -> Self {
        Self {
            partitions: ids.into_iter().map(PartitionInfo::from_id).collect(),
        }
    }

    /// Partitions with explicit names and colours.
    pub fn new(partitions: Vec<PartitionInfo>) -> Self {
        Self { partitions }
    }
}

#[async_trait]
impl PartitionDirectory for StaticPartitions {
    async fn all(&self) -> Vec<PartitionInfo> {
        self.partitions.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use km_domain::{PrincipalId, Role, RoleBinding};

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    #[test]
    fn default_colours_are_stable_and_differ_for_the_demo_partitions() {
        let acme = default_colour(&tenant("acme"));
        assert_eq!(acme, default_colour(&tenant("acme")));
        assert_ne!(acme, default_colour(&tenant("globex")));
        assert!(Colour::parse(acme.as_str()).is_some());
    }

    #[test]
    fn colours_must_be_hex() {
        assert_eq!(Colour::parse("#AABBCC").unwrap().as_str(), "#aabbcc");
        assert!(Colour::parse("red").is_none());
        assert!(Colour::parse("#abc").is_none());
        assert!(Colour::parse("#abcdeg").is_none());
        assert!(Colour::parse("#abcdef\" onload=\"x").is_none());
    }

    #[tokio::test]
    async fn a_tenant_binding_shows_that_tenant_and_a_star_binding_shows_all() {
        let directory = StaticPartitions::from_ids([tenant("globex"), tenant("acme")]);
        let reader = Principal::user(
            PrincipalId::parse("reader").unwrap(),
            vec![RoleBinding::tenant(tenant("acme"), Role::Readonly)],
        );
        let ids: Vec<_> = directory
            .visible_to(&reader)
            .await
            .into_iter()
            .map(|p| p.id.to_string())
            .collect();
        assert_eq!(ids, ["acme"]);

        let operator = Principal::user(
            PrincipalId::parse("root").unwrap(),
            vec![
                RoleBinding::all_tenants(Role::Admin),
                RoleBinding::tenant(tenant("initech"), Role::User),
            ],
        );
        let ids: Vec<_> = directory
            .visible_to(&operator)
            .await
            .into_iter()
            .map(|p| p.id.to_string())
            .collect();
        assert_eq!(ids, ["acme", "globex", "initech"]);

        let nobody = Principal::user(PrincipalId::parse("nobody").unwrap(), vec![]);
        assert!(directory.visible_to(&nobody).await.is_empty());
    }
}
