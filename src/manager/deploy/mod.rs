//! `deploy`, `start`, `stop`, `undeploy`, `redeploy`: an instance's domain on the host.
//!
//! The domain's UUID is the VMD id and its `<metadata>` names the VMD, so vmd only ever acts
//! on domains it made. The catalog records `deployed` while a domain is defined; whether it
//! runs is asked of libvirt, since a guest can power itself off at any time.

pub mod spec;
pub mod template_file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

pub(super) use super::views::live_state;
use super::{fault, lock_vmd, Error, StorageManager};
use crate::host::{
    DomainDefinition, DomainSpec, DomainState, DomainTemplate, Host, HostError, NicSpec, PoolAccess,
};
use crate::vmd::catalog::Catalog;
use crate::vmd::{Deployment, Kind, State, Vmd};

/// How to deploy an instance.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    /// The instance, by name or id.
    pub name: String,
    /// Start the domain once defined.
    pub start: bool,
    /// `kvm` or `qemu` (TCG); by default kvm where the host offers it.
    pub virt_type: Option<String>,
    /// Package network name to libvirt network.
    pub networks: BTreeMap<String, String>,
    /// A domain template file instead of `templates/domain.xml`.
    pub template: Option<PathBuf>,
}

/// How to stop or undeploy a running domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOptions {
    /// How long the guest gets to shut down after the ACPI power button.
    pub timeout: Duration,
    /// Power off without asking the guest.
    pub force: bool,
}

impl Default for StopOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            force: false,
        }
    }
}

/// What a life-cycle call left behind.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The VMD.
    pub name: String,
    /// Its state now (live from libvirt when deployed).
    pub state: State,
    /// The domain's name, when one is defined.
    pub domain: Option<String>,
}

pub(super) fn status(vmd: &Vmd, host: &dyn Host) -> Result<Status, Error> {
    let domain = match vmd.state {
        State::Deployed => host.domain_state(&vmd.id.uuid())?,
        _ => None,
    };
    Ok(Status {
        name: vmd.name.to_string(),
        state: live_state(vmd, domain),
        domain: vmd
            .deployment
            .as_ref()
            .filter(|_| vmd.state == State::Deployed)
            .map(|d| d.domain.clone()),
    })
}

fn check_instance(vmd: &Vmd) -> Result<(), Error> {
    if vmd.kind == Kind::Master {
        return Err(Error::Request(format!(
            "{} is a master, which never runs: clone it first",
            vmd.name
        )));
    }
    Ok(())
}

/// Asks the guest to shut down, waits up to the timeout, then powers it off if `force` or
/// the caller allows; returns whether it is off.
pub(super) fn stop_domain(
    host: &dyn Host,
    vmd: &Vmd,
    opts: StopOptions,
    force_after: bool,
) -> Result<(), Error> {
    let uuid = vmd.id.uuid();
    match host.domain_state(&uuid)? {
        None | Some(DomainState::Shutoff) => return Ok(()),
        Some(_) if opts.force => return Ok(host.destroy_domain(&uuid)?),
        Some(_) => {}
    }
    host.shutdown_domain(&uuid)?;
    let deadline = Instant::now() + opts.timeout;
    while Instant::now() < deadline {
        if matches!(host.domain_state(&uuid)?, None | Some(DomainState::Shutoff)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if force_after {
        return Ok(host.destroy_domain(&uuid)?);
    }
    Err(Error::Busy(format!(
        "{} did not shut down within {} s; use --force to power it off",
        vmd.name,
        opts.timeout.as_secs()
    )))
}

impl StorageManager {
    /// The file the host logs the serial console to: `<state dir>/consoles/<name>.log`, but
    /// only where vmd has proved that the host's files are its own (a pool of the instance
    /// is local, as `PoolAccess::Local` proves it) and so can read the log. Elsewhere (a
    /// remote host) no log is named: a path of this machine would name nothing, or another
    /// file, on the host. The console itself is read through libvirt either way.
    fn console_log(&self, host: &dyn Host, vmd: &Vmd) -> Option<PathBuf> {
        let pools: std::collections::BTreeSet<_> = vmd.disks.iter().map(|d| &d.pool).collect();
        // A probe that fails (a full pool, one gone) proves nothing.
        let local = pools
            .into_iter()
            .any(|p| matches!(host.pool_access(p), Ok(PoolAccess::Local(_))));
        local.then(|| {
            self.config
                .state_dir
                .join("consoles")
                .join(format!("{}.log", vmd.name))
        })
    }

    /// Defines the instance's domain (redefining it if it exists) and optionally starts it.
    pub async fn deploy(&self, req: DeployRequest) -> Result<Status, Error> {
        let this = self.clone();
        self.on_host(move |host| {
            let catalog = this.catalog()?;
            let (_lock, vmd) = lock_vmd(&catalog, &req.name, false)?;
            this.deploy_locked(host, &catalog, vmd, &req)
        })
        .await
    }

    /// `deploy` once the caller holds the VMD's lock and has re-read `vmd`.
    pub(super) fn deploy_locked(
        &self,
        host: &dyn Host,
        catalog: &Catalog,
        mut vmd: Vmd,
        req: &DeployRequest,
    ) -> Result<Status, Error> {
        check_instance(&vmd)?;
        let deployment = self.plan_deployment(host, &vmd, req)?;
        let definition = domain_definition(&vmd, &deployment)?;
        let was_defined = host.domain_state(&vmd.id.uuid())?.is_some();
        host.define_domain(&definition).map_err(|e| match e {
            // The error gives the position and the kind of problem, never the template's
            // text.
            HostError::Template(e) => Error::Request(e.to_string()),
            e => Error::from(e),
        })?;
        let committed = fault::point("deploy.defined").and_then(|()| {
            // Made only once the domain is defined, so that a refused template leaves
            // nothing.
            console_dir(&deployment)?;
            vmd.state = State::Deployed;
            vmd.deployment = Some(deployment);
            fault::point("deploy.before-commit")?;
            Ok(catalog.write(&vmd)?)
        });
        if let Err(e) = committed {
            if !was_defined {
                let _ = host.undefine_domain(&vmd.id.uuid());
            }
            return Err(e);
        }
        if req.start {
            host.start_domain(&vmd.id.uuid())?;
            fault::point("deploy.started")?;
        }
        status(&vmd, host)
    }

    fn plan_deployment(
        &self,
        host: &dyn Host,
        vmd: &Vmd,
        req: &DeployRequest,
    ) -> Result<Deployment, Error> {
        let previous = vmd.deployment.clone();
        let virt_type = match req
            .virt_type
            .clone()
            .or_else(|| previous.as_ref().map(|d| d.virt_type.clone()))
        {
            Some(t) => t,
            None => host
                .info()?
                .default_virt_type
                .ok_or_else(|| Error::Request("the host offers neither kvm nor qemu".into()))?,
        };
        if !matches!(virt_type.as_str(), "kvm" | "qemu") {
            return Err(Error::Request(format!(
                "unknown virt type {virt_type:?}: use kvm or qemu"
            )));
        }
        let host_networks = host.networks()?;
        let mut networks = previous
            .as_ref()
            .map(|d| d.networks.clone())
            .unwrap_or_default();
        for (ovf, net) in &req.networks {
            if !vmd.networks.iter().any(|n| &n.name == ovf) {
                return Err(Error::Request(format!(
                    "{} has no network {ovf:?} (it has: {})",
                    vmd.name,
                    vmd.networks
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if !host_networks.contains(net) {
                return Err(Error::Request(format!(
                    "the host has no active libvirt network {net:?}"
                )));
            }
            networks.insert(ovf.clone(), net.clone());
        }
        for n in &vmd.networks {
            if !networks.contains_key(&n.name) && host_networks.contains(&n.name) {
                networks.insert(n.name.clone(), n.name.clone());
            }
        }
        Ok(Deployment {
            domain: spec::domain_name(vmd.name.as_str()),
            virt_type,
            networks,
            template: req
                .template
                .as_ref()
                .map(|p| p.display().to_string())
                .or_else(|| previous.and_then(|d| d.template)),
            console_log: self.console_log(host, vmd).map(|p| p.display().to_string()),
        })
    }

    /// Starts a deployed instance.
    pub async fn start(&self, name: &str) -> Result<Status, Error> {
        let state_dir = self.config.state_dir.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (_lock, vmd) = lock_vmd(&catalog, &name, false)?;
            start_locked(host, &vmd)
        })
        .await
    }

    /// Stops a running instance: ACPI shutdown, then (with `force`) power off.
    pub async fn stop(&self, name: &str, opts: StopOptions) -> Result<Status, Error> {
        let state_dir = self.config.state_dir.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (_lock, vmd) = lock_vmd(&catalog, &name, false)?;
            check_instance(&vmd)?;
            if vmd.state == State::Deployed {
                stop_domain(host, &vmd, opts, false)?;
            }
            status(&vmd, host)
        })
        .await
    }

    /// The live status of a VMD.
    pub async fn status(&self, name: &str) -> Result<Status, Error> {
        let state_dir = self.config.state_dir.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let vmd = Catalog::open(&state_dir)?.get(&name)?;
            status(&vmd, host)
        })
        .await
    }
}

/// The typed description of the instance's domain, with the user's template when the
/// deployment names one (read here, bounded, so the host gets its text, not a path).
fn domain_definition(vmd: &Vmd, deployment: &Deployment) -> Result<DomainDefinition, Error> {
    let template = match &deployment.template {
        Some(path) => Some(DomainTemplate {
            name: path.clone(),
            text: template_file::read(Path::new(path))?,
        }),
        None => None,
    };
    let mut disks: Vec<_> = vmd.disks.iter().map(|d| spec::disk_spec(vmd, d)).collect();
    disks.sort_by_key(|d| d.unit);
    let nics = vmd
        .networks
        .iter()
        .map(|n| NicSpec {
            user: !deployment.networks.contains_key(&n.name),
            network: deployment.networks.get(&n.name).cloned(),
            model: nic_model(n.model.as_deref()),
        })
        .collect();
    let spec = DomainSpec {
        name: deployment.domain.clone(),
        uuid: vmd.id.to_string(),
        vmd_id: vmd.id.to_string(),
        vmd_name: vmd.name.to_string(),
        virt_type: deployment.virt_type.clone(),
        vcpus: vmd.hardware.vcpus,
        memory_mib: vmd.hardware.memory_mib,
        firmware: match vmd.hardware.firmware {
            crate::vmd::Firmware::Bios => "bios".to_string(),
            crate::vmd::Firmware::Efi => "efi".to_string(),
        },
        disks,
        nics,
        console_log: deployment.console_log.clone().unwrap_or_default(),
    };
    Ok(DomainDefinition { spec, template })
}

/// The directory the serial console is logged to.
fn console_dir(deployment: &Deployment) -> Result<(), Error> {
    let console = deployment.console_log.as_deref().map(Path::new);
    if let Some(dir) = console.and_then(Path::parent) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// `start` once the caller holds the VMD's lock and has re-read `vmd`.
pub(super) fn start_locked(host: &dyn Host, vmd: &Vmd) -> Result<Status, Error> {
    check_instance(vmd)?;
    if vmd.state != State::Deployed {
        return Err(Error::Busy(format!(
            "{} is not deployed (it is {}): deploy it first",
            vmd.name,
            state_word(vmd.state)
        )));
    }
    host.start_domain(&vmd.id.uuid())?;
    status(vmd, host)
}

/// The libvirt NIC model for a package's NIC subtype: the emulated model the guest's
/// drivers expect where QEMU has it, virtio otherwise.
fn nic_model(ovf: Option<&str>) -> String {
    let m = ovf.unwrap_or_default().to_ascii_lowercase();
    let model = if m.starts_with("e1000e") {
        "e1000e"
    } else if m.starts_with("e1000") {
        "e1000"
    } else if m.contains("pcnet") {
        "pcnet"
    } else if m.contains("rtl8139") {
        "rtl8139"
    } else {
        // VmxNet3 and friends have no QEMU model that guests can count on; virtio is the
        // paravirtual device every modern guest has drivers for.
        "virtio"
    };
    model.to_string()
}

/// A state's word, as JSON spells it.
pub(super) fn state_word(s: State) -> &'static str {
    match s {
        State::Ready => "ready",
        State::Cloned => "cloned",
        State::Deployed => "deployed",
        State::Running => "running",
        State::Paused => "paused",
        State::Undeployed => "undeployed",
    }
}

/// Shuts the domain down (forcing it off after the timeout), undefines it and marks the
/// instance undeployed. Devices and snapshots stay.
pub(super) fn undeploy_domain(
    host: &dyn Host,
    catalog: &Catalog,
    vmd: &mut Vmd,
    opts: StopOptions,
) -> Result<(), Error> {
    if vmd.state != State::Deployed {
        return Ok(());
    }
    stop_domain(host, vmd, opts, true)?;
    fault::point("undeploy.shutdown")?;
    host.undefine_domain(&vmd.id.uuid())?;
    fault::point("undeploy.undefined")?;
    vmd.state = State::Undeployed;
    fault::point("undeploy.before-commit")?;
    catalog.write(vmd)?;
    Ok(())
}
