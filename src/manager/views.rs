//! Views of containers: `list` and `show`.

use serde::Serialize;

use super::{Error, StorageManager};
use crate::host::DomainState;
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

    /// Every VMD in the catalog, by name, with the live state of deployed instances (one
    /// libvirt call for all; the catalog's state when the host cannot be reached).
    pub async fn list(&self) -> Result<Vec<VmdSummary>, Error> {
        let mut all = self.catalog()?.list()?;
        if all.iter().any(|v| v.state == State::Deployed) {
            if let Ok(domains) = self.on_host(|h| Ok(h.vmd_domains()?)).await {
                for v in all.iter_mut().filter(|v| v.state == State::Deployed) {
                    let live = domains
                        .iter()
                        .find(|d| d.uuid == v.id.uuid())
                        .map(|d| d.state);
                    v.state = live_state(v, live);
                }
            }
        }
        let all = all;
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

    /// One VMD by name or id, with its live state when it is deployed. Its deployment's
    /// console log is given only when that file is there to read.
    pub async fn show(&self, name: &str) -> Result<Vmd, Error> {
        let mut vmd = self.catalog()?.get(name)?;
        if let Some(d) = vmd.deployment.as_mut() {
            d.console_log = d
                .console_log
                .take()
                .filter(|log| std::path::Path::new(log).is_file());
        }
        if vmd.state == State::Deployed {
            let uuid = vmd.id.uuid();
            if let Ok(live) = self.on_host(move |h| Ok(h.domain_state(&uuid)?)).await {
                vmd.state = live_state(&vmd, live);
            }
        }
        Ok(vmd)
    }
}

/// The live state of a VMD: the catalog's, refined by libvirt's when a domain is defined.
pub(super) fn live_state(vmd: &Vmd, domain: Option<DomainState>) -> State {
    match (vmd.state, domain) {
        (State::Deployed, Some(DomainState::Running)) => State::Running,
        (State::Deployed, Some(DomainState::Paused)) => State::Paused,
        (s, _) => s,
    }
}
