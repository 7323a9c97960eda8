//! Views of containers: `list` and `show`.

use serde::Serialize;

use super::{Error, StorageManager};
use crate::vmd::catalog::Catalog;
use crate::vmd::{Kind, State, Vmd, VmdId};

/// One row of `vmd list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmdSummary {
    /// The VMD's id.
    pub id: VmdId,
    /// Its name.
    pub name: String,
    /// Master or instance.
    pub kind: Kind,
    /// Life-cycle state.
    pub state: State,
    /// The master it was cloned from, by name (or id when that master is gone).
    pub parent: Option<String>,
    /// How many disks it has.
    pub disks: usize,
}

impl StorageManager {
    pub(super) fn catalog(&self) -> Result<Catalog, Error> {
        Ok(Catalog::open(&self.config.state_dir)?)
    }

    /// Every VMD in the catalog, by name.
    pub async fn list(&self) -> Result<Vec<VmdSummary>, Error> {
        let all = self.catalog()?.list()?;
        let name_of = |id: &VmdId| {
            all.iter()
                .find(|v| v.id == *id)
                .map(|v| v.name.to_string())
                .unwrap_or_else(|| id.to_string())
        };
        Ok(all
            .iter()
            .map(|v| VmdSummary {
                id: v.id,
                name: v.name.to_string(),
                kind: v.kind,
                state: v.state,
                parent: v.parent.as_ref().map(name_of),
                disks: v.disks.len(),
            })
            .collect())
    }

    /// One VMD by name or id.
    pub async fn show(&self, name: &str) -> Result<Vmd, Error> {
        Ok(self.catalog()?.get(name)?)
    }
}
