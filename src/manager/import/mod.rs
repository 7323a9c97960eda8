//! `import` and `verify`: an OVF package becomes a read-only master VMD whose disks are
//! volumes in a libvirt storage pool.
//!
//! Plan, then execute. The plan reads and checks everything that can be checked without
//! writing: layout, descriptor, manifest, certificate, EULA, every disk's header, names and
//! free space. Execution creates the volumes through libvirt, streams each disk from where it
//! lies in the package into its volume (hashing as it reads), re-inspects what it wrote, and
//! commits the catalog record last. Any failure, or an interrupt, deletes what was created.

mod bound;
mod execute;
mod plan;
mod target;
mod verify;
mod write;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;

pub use plan::{ImportPlan, PlannedDisk, PlannedSource};

use super::{Error, Progress, StorageManager};
use crate::vmd::{DiskFormat, PoolName, Vmd, VmdName};

/// What to import, and how.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// An `.ova`, an `.ovf` (its files beside it) or a directory holding one `.ovf`.
    pub package: PathBuf,
    /// The master's name; by default the package's system id or file name.
    pub name: Option<VmdName>,
    /// The pool for the volumes; by default vmd's own `dir` pool under the state directory.
    pub pool: Option<PoolName>,
    /// The volume format.
    pub format: DiskFormat,
    /// Which VirtualSystem, when the package holds several.
    pub system: Option<String>,
    /// Which deployment option, when the package offers several.
    pub deployment: Option<String>,
    /// The user accepts the package's license agreements.
    pub accept_eula: bool,
    /// Only plan; write nothing.
    pub dry_run: bool,
    /// Refuse every exporter quirk (see `docs/compatibility.md`) instead of warning.
    pub strict: bool,
    /// Set (from a signal handler, say) to stop the import; it then undoes what it did.
    pub cancel: Arc<AtomicBool>,
}

impl ImportRequest {
    /// A request with vmd's defaults for `package`.
    pub fn new(package: impl Into<PathBuf>) -> Self {
        Self {
            package: package.into(),
            name: None,
            pool: None,
            format: DiskFormat::Qcow2,
            system: None,
            deployment: None,
            accept_eula: false,
            dry_run: false,
            strict: false,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// What `import` did: only planned (`--dry-run`), or made a master.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum ImportOutcome {
    /// The plan, nothing written.
    Planned(Box<ImportPlan>),
    /// The new master, and what the plan warned about (an untrusted signer, a manifest
    /// entry for a file not in the package, ...).
    Imported {
        /// The master's record.
        vmd: Box<Vmd>,
        /// Warnings from the plan.
        warnings: Vec<String>,
    },
}

/// What `verify` found: the plan an import would follow, with every disk read and checked.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The plan, as `import --dry-run` gives it.
    pub plan: ImportPlan,
    /// The license texts the package carries.
    pub eulas: Vec<String>,
    /// Each disk's stream decoded and every digest checked.
    pub disks_verified: usize,
}

impl StorageManager {
    /// Imports a package into a new master VMD (or only plans it with `dry_run`).
    pub async fn import(
        &self,
        request: ImportRequest,
        progress: Arc<dyn Progress>,
    ) -> Result<ImportOutcome, Error> {
        let config = self.config.clone();
        self.on_host(move |host| {
            let qemu_img = super::qemu_img()?;
            let ctx = plan::plan(Some(host), &config, &request)?;
            if request.dry_run {
                return Ok(ImportOutcome::Planned(Box::new(ctx.plan)));
            }
            super::fault::point("import.planned")?;
            let warnings = ctx.plan.warnings.clone();
            let vmd = execute::execute(host, &config, &qemu_img, &request, ctx, progress.as_ref())?;
            Ok(ImportOutcome::Imported {
                vmd: Box::new(vmd),
                warnings,
            })
        })
        .await
    }

    /// Checks everything `import` checks, reading every disk in full, and writes nothing.
    pub async fn verify(
        &self,
        request: ImportRequest,
        progress: Arc<dyn Progress>,
    ) -> Result<VerifyReport, Error> {
        let config = self.config.clone();
        let request = ImportRequest {
            accept_eula: true,
            ..request
        };
        super::blocking(move || {
            let ctx = plan::plan(None, &config, &request)?;
            let disks_verified = verify::verify_streams(&ctx, &request, progress.as_ref())?;
            Ok(VerifyReport {
                eulas: ctx.appliance.system.eulas.clone(),
                plan: ctx.plan,
                disks_verified,
            })
        })
        .await
    }
}
