//! Validated identifiers. Every name that reaches libvirt is one of these, and volume names
//! come from vmd's own scheme, never from an OVF. A VMD name never looks like a VMD id
//! (anything the UUID parser takes), so a reference is a name or an id, never both.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A name or id that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {rule}")]
pub struct NameError {
    what: &'static str,
    value: String,
    rule: &'static str,
}

fn plain_name(what: &'static str, s: &str, max: usize) -> Result<(), NameError> {
    let rule = "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit";
    name_chars(what, s, max, rule, &[])
}

/// The rule of [`plain_name`], with `also` allowed after the first character.
fn name_chars(
    what: &'static str,
    s: &str,
    max: usize,
    rule: &'static str,
    also: &[char],
) -> Result<(), NameError> {
    let err = || NameError {
        what,
        value: s.chars().take(80).collect(),
        rule,
    };
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || also.contains(&c));
    if s.is_empty() || s.len() > max || !first_ok || !rest_ok {
        return Err(err());
    }
    Ok(())
}

/// A VMD's unique id (a UUID), fixed for its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VmdId(uuid::Uuid);

impl VmdId {
    /// A new random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The 32 hex digits without dashes, used inside volume names.
    pub fn simple(&self) -> String {
        self.0.simple().to_string()
    }

    /// The UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl Default for VmdId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for VmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for VmdId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self).map_err(|_| NameError {
            what: "VMD id",
            value: s.chars().take(80).collect(),
            rule: "expected a UUID",
        })
    }
}

/// Refuses what [`VmdId::from_str`] would take as an id: the hyphenated, simple (32 hex
/// digits), braced and `urn:uuid:` forms, in any case. A package's VirtualSystem id is often
/// a UUID, and a guest can learn its own VMD id (the domain UUID, through SMBIOS); as a name
/// it would make `delete <id>` reach another VMD.
fn not_an_id(what: &'static str, s: &str) -> Result<(), NameError> {
    if uuid::Uuid::parse_str(s).is_ok() {
        return Err(NameError {
            what,
            value: s.chars().take(80).collect(),
            rule: "a name may not look like a UUID, which is how VMD ids are written",
        });
    }
    Ok(())
}

/// No extra rule beyond [`plain_name`].
fn no_extra_rule(_what: &'static str, _s: &str) -> Result<(), NameError> {
    Ok(())
}

/// A name as a catalog record stores it. Reading one applies the character rules but not
/// the later ones (a VMD name that looks like an id), so records written before a rule
/// existed still load; the catalog's resolver refuses what they make ambiguous.
#[derive(Deserialize)]
#[serde(transparent)]
struct Stored(String);

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        name_type!($(#[$doc])* $name, $what, $max, no_extra_rule, plain_name);
    };
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $extra:ident) => {
        name_type!($(#[$doc])* $name, $what, $max, $extra, plain_name);
    };
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $extra:ident, $chars:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "Stored", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $chars($what, s, $max)?;
                $extra($what, s)?;
                Ok(Self(s.to_string()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl TryFrom<Stored> for $name {
            type Error = NameError;
            fn try_from(s: Stored) -> Result<Self, Self::Error> {
                $chars($what, &s.0, $max)?;
                Ok(Self(s.0))
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
    };
}

name_type!(
    /// A VMD's name, chosen by the user (or taken from the package when it is valid). Never
    /// UUID-shaped, so it cannot be mistaken for a [`VmdId`].
    VmdName,
    "VMD name",
    64,
    not_an_id
);
name_type!(
    /// A libvirt storage pool name.
    PoolName,
    "pool name",
    64
);
/// A volume name: [`plain_name`]'s characters and `:` after the first, for the names libvirt
/// gives the volumes it finds rather than makes (`unit:0:0:1`, a LUN of an `iscsi-direct`
/// pool). `/` stays out, so a name is never a path.
fn volume_chars(what: &'static str, s: &str, max: usize) -> Result<(), NameError> {
    let rule =
        "use 1 to 128 letters, digits, '.', '_', '-' or ':', starting with a letter or digit";
    name_chars(what, s, max, rule, &[':'])
}

name_type!(
    /// A libvirt storage volume name: of vmd's own scheme (see [`VolumeName::for_disk`]) for
    /// every volume vmd creates, or the name libvirt gave a pre-existing volume vmd claimed.
    VolumeName,
    "volume name",
    128,
    no_extra_rule,
    volume_chars
);

impl VolumeName {
    /// The volume of disk `index` of VMD `id`: `vmd-<id>-d<index>.<ext>`. The prefix and id
    /// let vmd (and `doctor`) tell its volumes from others without trusting any package.
    pub fn for_disk(id: &VmdId, index: usize, ext: &str) -> Self {
        Self(format!("vmd-{}-d{index}.{ext}", id.simple()))
    }

    /// The VMD id embedded in a volume name of vmd's scheme.
    pub fn owner(&self) -> Option<VmdId> {
        let rest = self.0.strip_prefix("vmd-")?;
        let hex = rest.get(..32)?;
        uuid::Uuid::parse_str(hex).ok().map(VmdId)
    }
}

impl PoolName {
    /// vmd's default pool, a `dir` pool under the state directory.
    pub fn default_pool() -> Self {
        Self("vmd".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmd_name_plain_is_accepted() {
        assert_eq!(
            "tiny-1.0_a".parse::<VmdName>().unwrap().as_str(),
            "tiny-1.0_a"
        );
    }

    #[test]
    fn vmd_name_hostile_strings_are_rejected() {
        for bad in [
            "",
            "../x",
            "a/b",
            "-x",
            ".x",
            "a b",
            "x'",
            "<x>",
            "é",
            &"a".repeat(65),
        ] {
            let err = bad.parse::<VmdName>().unwrap_err();
            assert!(err.to_string().starts_with("invalid VMD name"), "{err}");
        }
    }

    #[test]
    fn volume_name_for_disk_round_trips_owner() {
        let id = VmdId::new();
        let vol = VolumeName::for_disk(&id, 2, "qcow2");
        assert!(vol.as_str().ends_with("-d2.qcow2"));
        assert_eq!(vol.owner(), Some(id));
        assert_eq!("other.qcow2".parse::<VolumeName>().unwrap().owner(), None);
    }

    #[test]
    fn volume_name_lun_names_are_accepted_and_paths_are_not() {
        let lun: VolumeName = "unit:0:0:1".parse().unwrap();
        assert_eq!(lun.owner(), None);
        for bad in [":x", "a/b", "../x", "a b", "-x"] {
            let err = bad.parse::<VolumeName>().unwrap_err();
            assert!(err.to_string().starts_with("invalid volume name"), "{err}");
        }
        assert!("a:b".parse::<PoolName>().is_err());
    }

    // SECURITY.md item 40: a name never looks like an id, in any form the UUID parser takes.
    #[test]
    fn vmd_name_uuid_shaped_is_rejected_in_every_uuid_form() {
        let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        for bad in [
            id.to_string(),
            id.to_uppercase(),
            id.replace('-', ""),
            id.replace('-', "").to_uppercase(),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            "00000000-0000-0000-0000-000000000000".to_string(),
        ] {
            assert!(bad.parse::<VmdId>().is_ok(), "{bad} is an id form");
            let err = bad.parse::<VmdName>().unwrap_err();
            assert!(err.to_string().starts_with("invalid VMD name"), "{err}");
        }
        let err = id.parse::<VmdName>().unwrap_err().to_string();
        assert!(err.contains("may not look like a UUID"), "{err}");
    }

    // SECURITY.md item 40: near-UUIDs are names, and the id parser refuses them too.
    #[test]
    fn vmd_name_almost_uuid_is_accepted_and_is_not_an_id() {
        for ok in [
            "67e55044-10b1-426f-9247-bb680e5fe0c",
            "67e55044-10b1-426f-9247-bb680e5fe0c8-x",
            "vm-67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67e5504410b1426f9247bb680e5fe0c",
            "g7e55044-10b1-426f-9247-bb680e5fe0c8",
        ] {
            assert!(ok.parse::<VmdName>().is_ok(), "{ok}");
            assert!(ok.parse::<VmdId>().is_err(), "{ok}");
        }
    }

    // SECURITY.md item 40: a record written before the rule still loads (the resolver
    // refuses the ambiguity instead), but a new name from a string never passes.
    #[test]
    fn vmd_name_uuid_shaped_in_a_stored_record_still_loads() {
        let id = "\"67e55044-10b1-426f-9247-bb680e5fe0c8\"";
        let name: VmdName = serde_json::from_str(id).unwrap();
        assert_eq!(name.as_str(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert!(VmdName::try_from(name.as_str().to_string()).is_err());
    }

    #[test]
    fn vmd_name_deserialize_validates() {
        let err = serde_json::from_str::<VmdName>("\"../etc\"").unwrap_err();
        assert!(err.to_string().contains("invalid VMD name"), "{err}");
    }
}
