//! Row 4, deploy: defining an instance's domain, and defining and starting it until the
//! guest's first console line, against virt-install on the same disks with the same
//! hardware (TCG, 256 MiB, one vCPU, virtio-scsi, a virtio NIC on user networking, a pty
//! serial port logged to a file, no balloon, a virtio RNG, the same USB controller). What
//! still differs in the defined domains: virt-install adds clock timer policies and `<pm>`.
//!
//! The disks are linked clones of the tiny appliance, made (untimed) with `vmd clone`;
//! virt-install gets its own clone so that both guests boot the same content from scratch.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::env::{virsh, Bench};
use crate::measure::{run, time, time_output, wait_for, Samples};
use crate::report::{Measure, Row};

/// How long a TCG guest may take to print its first line.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// virt-install for a domain like the one vmd's template defines.
fn virt_install(dom: &str, disks: &[(PathBuf, String)], log: &Path, print_xml: bool) -> Command {
    let mut cmd = Command::new("virt-install");
    cmd.args([
        "--connect",
        "qemu:///system",
        "--name",
        dom,
        "--import",
        "--virt-type",
        "qemu",
        "--arch",
        "x86_64",
        "--machine",
        "pc",
        "--memory",
        "256",
        "--vcpus",
        "1",
        "--osinfo",
        "generic",
        "--controller",
        "scsi,model=virtio-scsi",
        "--controller",
        "usb,model=piix3-uhci",
        "--network",
        "user,model=virtio",
        "--graphics",
        "none",
        "--memballoon",
        "none",
        "--rng",
        "/dev/urandom",
        "--events",
        "on_poweroff=destroy,on_reboot=restart,on_crash=destroy",
        "--noautoconsole",
    ]);
    for (i, (path, serial)) in disks.iter().enumerate() {
        let mut spec = format!(
            "path={},format=qcow2,bus=scsi,target.dev=sd{}",
            path.display(),
            char::from(b'a' + i as u8)
        );
        if !serial.is_empty() {
            spec.push_str(&format!(",serial={serial}"));
        }
        if i == 0 {
            spec.push_str(",boot.order=1");
        }
        cmd.arg("--disk").arg(spec);
    }
    cmd.arg("--serial")
        .arg(format!("pty,log.file={},log.append=off", log.display()));
    if print_xml {
        cmd.arg("--print-xml");
    }
    cmd
}

/// Waits until `log` holds a complete line and returns the time since `start`.
fn first_line(log: &Path, start: Instant) -> Result<f64> {
    wait_for(
        &format!("the first console line in {}", log.display()),
        BOOT_TIMEOUT,
        || {
            let text = std::fs::read(log).unwrap_or_default();
            Ok(text.contains(&b'\n').then(|| start.elapsed().as_secs_f64()))
        },
    )
}

fn drop_domain(dom: &str) {
    let _ = virsh(&["destroy", dom]).output();
    let _ = virsh(&["undefine", dom]).output();
}

/// Row 4a and 4b.
pub fn deploy(b: &Bench, master: &str) -> Result<Vec<Row>> {
    // virt-install's disks for the define-only runs: defining never opens them.
    let vi = b.name("vi");
    b.vmd_ok(&["clone", master, &vi])?;
    let vi_disks = b.disks(&vi)?;
    let xml = b.work_dir.join("virt-install.xml");
    let [mut def_vmd, mut def_vi, mut def_virsh]: [Samples; 3] = Default::default();
    for round in 0..b.runs {
        let name = b.name(&format!("d{round}"));
        b.vmd_ok(&["clone", master, &name])?;
        def_vmd.push(b.time_vmd(&["deploy", &name])?);
        b.vmd_ok(&["delete", &name, "--force"])?;

        let dom = b.foreign_name(&format!("def{round}"));
        let log = b.work_dir.join(format!("{dom}.log"));
        let (t_xml, doc) = time_output(&mut virt_install(&dom, &vi_disks, &log, true))?;
        std::fs::write(&xml, doc)?;
        let t_define = time(&mut virsh(&["define", &xml.to_string_lossy()]))?;
        def_vi.push(t_xml + t_define);
        def_virsh.push(t_define);
        run(&mut virsh(&["undefine", &dom]))?;
    }
    b.vmd_ok(&["delete", &vi])?;
    eprintln!(
        "  4a: vmd deploy {:.1} ms, virt-install --print-xml + virsh define {:.1} ms",
        def_vmd.median() * 1e3,
        def_vi.median() * 1e3
    );

    let [mut up_vmd, mut ret_vmd, mut up_vi, mut ret_vi]: [Samples; 4] = Default::default();
    for round in 0..b.runs {
        let name = b.name(&format!("s{round}"));
        b.vmd_ok(&["clone", master, &name])?;
        let start = Instant::now();
        b.vmd_ok(&["deploy", &name, "--start"])?;
        ret_vmd.push(start.elapsed().as_secs_f64());
        // A script learns the console log from `show`; the guest is still booting meanwhile.
        let shown = b.vmd_json(&["show", &name])?;
        let log = shown["deployment"]["console_log"]
            .as_str()
            .context("vmd show: no deployment.console_log")?
            .to_string();
        let t = first_line(Path::new(&log), start)?;
        up_vmd.push(t);
        b.vmd_ok(&["delete", &name, "--force"])?;

        let disks_of = b.name(&format!("vs{round}"));
        b.vmd_ok(&["clone", master, &disks_of])?;
        let disks = b.disks(&disks_of)?;
        let dom = b.foreign_name(&format!("start{round}"));
        let log = b.work_dir.join(format!("{dom}.log"));
        let _ = std::fs::remove_file(&log);
        let start = Instant::now();
        let started = run(&mut virt_install(&dom, &disks, &log, false));
        ret_vi.push(start.elapsed().as_secs_f64());
        let t = started.and_then(|_| first_line(&log, start));
        drop_domain(&dom);
        let t_vi = t?;
        up_vi.push(t_vi);
        b.vmd_ok(&["delete", &disks_of])?;
        eprintln!(
            "  4b round {round}: vmd {:.2} s, virt-install {t_vi:.2} s",
            up_vmd.0[round]
        );
    }

    let vmd = Measure::new("vmd deploy", def_vmd);
    let vi = Measure::new("virt-install --print-xml + virsh define", def_vi);
    let floor = Measure::new("virsh define alone", def_virsh);
    let ratio = vmd.median() / vi.median();
    let under = vmd.median() < 0.050;
    let row_a = Row::new("4a", "deploy: define only", vmd)
        .compare(vi)
        .compare(floor)
        .ratio("vmd / virt-install", ratio)
        .target("< 50 ms", Some(under));

    let ret_note = format!(
        "the deploy commands themselves returned after {:.0} ms (vmd deploy --start) and \
         {:.0} ms (virt-install); the rest is the TCG guest booting to its first line",
        ret_vmd.median() * 1e3,
        ret_vi.median() * 1e3
    );
    let vmd = Measure::new("vmd deploy --start", up_vmd);
    let vi = Measure::new("virt-install --import", up_vi);
    let ratio = vmd.median() / vi.median();
    let row_b = Row::new("4b", "deploy + start to first console line (TCG)", vmd)
        .compare(vi)
        .ratio("vmd / virt-install", ratio)
        .target("- (comparison only)", None)
        .note(ret_note);
    Ok(vec![row_a, row_b])
}
