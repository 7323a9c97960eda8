//! Results: one [`Row`] per measured line, rendered as the markdown table `make bench`
//! prints and as `target/bench/results.json`, with the machine they were measured on.

use std::process::Command;

use serde_json::{json, Value};

use crate::measure::Samples;

/// One measured thing: what ran, its samples, and the bytes it moved (for throughput).
#[derive(Debug, Clone)]
pub struct Measure {
    pub label: String,
    pub samples: Samples,
    pub bytes: Option<u64>,
    /// CPU seconds of the process tree, per sample, where it was measured.
    pub cpu: Samples,
}

impl Measure {
    pub fn new(label: &str, samples: Samples) -> Self {
        Self {
            label: label.to_string(),
            samples,
            bytes: None,
            cpu: Samples::default(),
        }
    }

    pub fn with_cpu(mut self, cpu: Samples) -> Self {
        self.cpu = cpu;
        self
    }

    pub fn with_bytes(mut self, bytes: u64) -> Self {
        self.bytes = Some(bytes);
        self
    }

    pub fn median(&self) -> f64 {
        self.samples.median()
    }

    /// The median as text, with the throughput when the bytes are known and the CPU time
    /// when it was measured.
    fn cell(&self) -> String {
        let mut extra = Vec::new();
        if let Some(b) = self.bytes.filter(|_| self.median() > 0.0) {
            extra.push(format!("{:.0} MB/s", b as f64 / 1e6 / self.median()));
        }
        if !self.cpu.is_empty() {
            extra.push(format!("CPU {}", human_secs(self.cpu.median())));
        }
        let t = human_secs(self.median());
        if extra.is_empty() {
            t
        } else {
            format!("{t} ({})", extra.join(", "))
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "label": self.label,
            "median_s": self.median(),
            "min_s": self.samples.min(),
            "max_s": self.samples.max(),
            "samples_s": self.samples.0,
            "cpu_median_s": (!self.cpu.is_empty()).then(|| self.cpu.median()),
            "cpu_samples_s": self.cpu.0,
            "bytes": self.bytes,
            "throughput_mb_s": self.bytes.filter(|_| self.median() > 0.0)
                .map(|b| b as f64 / 1e6 / self.median()),
        })
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub vmd: Measure,
    pub comparisons: Vec<Measure>,
    /// The ratios that matter for the target, as text (`0.97x of (b)`), and their values.
    pub ratios: Vec<(String, f64)>,
    pub target: String,
    /// Whether the target is met; none for rows without a target.
    pub met: Option<bool>,
    /// What a reader needs to interpret the row: page-cache state, what was timed, ...
    pub notes: Vec<String>,
}

impl Row {
    pub fn new(id: &str, name: &str, vmd: Measure) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            vmd,
            comparisons: Vec::new(),
            ratios: Vec::new(),
            target: "-".to_string(),
            met: None,
            notes: Vec::new(),
        }
    }

    pub fn compare(mut self, m: Measure) -> Self {
        self.comparisons.push(m);
        self
    }

    pub fn ratio(mut self, label: &str, value: f64) -> Self {
        self.ratios.push((label.to_string(), value));
        self
    }

    pub fn target(mut self, target: &str, met: Option<bool>) -> Self {
        self.target = target.to_string();
        self.met = met;
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "vmd": self.vmd.to_json(),
            "comparisons": self.comparisons.iter().map(Measure::to_json).collect::<Vec<_>>(),
            "ratios": self.ratios.iter().map(|(l, v)| json!({"label": l, "value": v}))
                .collect::<Vec<_>>(),
            "target": self.target,
            "met": self.met,
            "notes": self.notes,
        })
    }
}

/// `12.3 ms`, `4.56 s`.
pub fn human_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// The markdown table, then each row's notes.
pub fn markdown(rows: &[Row], runs: usize) -> String {
    let mut s = format!(
        "| row | vmd (median of {runs}) | comparisons (median) | ratio | target | met? |\n\
         | --- | --- | --- | --- | --- | --- |\n"
    );
    for r in rows {
        let comps = r
            .comparisons
            .iter()
            .map(|c| format!("{}: {}", c.label, c.cell()))
            .collect::<Vec<_>>()
            .join("<br>");
        let ratios = r
            .ratios
            .iter()
            .map(|(l, v)| format!("{v:.2}x {l}"))
            .collect::<Vec<_>>()
            .join("<br>");
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        s.push_str(&format!(
            "| {} {} | {}: {} | {} | {} | {} | {} |\n",
            r.id,
            r.name,
            r.vmd.label,
            r.vmd.cell(),
            if comps.is_empty() { "-".into() } else { comps },
            if ratios.is_empty() {
                "-".into()
            } else {
                ratios
            },
            r.target,
            met
        ));
    }
    let noted: Vec<&Row> = rows.iter().filter(|r| !r.notes.is_empty()).collect();
    if !noted.is_empty() {
        s.push_str("\nNotes:\n");
        for r in noted {
            for n in &r.notes {
                s.push_str(&format!("- {}: {n}\n", r.id));
            }
        }
    }
    s
}

/// The whole result document.
pub fn to_json(rows: &[Row], runs: usize, machine: &Value) -> Value {
    json!({
        "runs": runs,
        "machine": machine,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    })
}

fn shell(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// What the numbers were measured on: CPU, memory, kernel, the filesystems, tool versions,
/// and the load at the time (other work on the host skews every number).
pub fn machine(bench_dir: &std::path::Path) -> Value {
    json!({
        "nproc": shell("nproc"),
        "free": shell("free -h"),
        "lscpu": shell("lscpu | head -20"),
        "kernel": shell("uname -r"),
        "os": shell(". /etc/os-release && echo \"$PRETTY_NAME\""),
        "var_lib": shell(
            "df -hT /var/lib | tail -1; findmnt -no SOURCE,FSTYPE,OPTIONS -T /var/lib"
        ),
        "bench_dir": shell(&format!(
            "df -hT '{0}' | tail -1; findmnt -no SOURCE,FSTYPE,OPTIONS -T '{0}'",
            bench_dir.display()
        )),
        "block": shell("lsblk -dno NAME,SIZE,ROTA,MODEL 2>/dev/null"),
        "qemu_img": shell("qemu-img --version | head -1"),
        "libvirt": shell(
            "virsh -c qemu:///system version 2>/dev/null | grep -i 'hypervisor\\|library'"
        ),
        "virt_install": shell("virt-install --version 2>/dev/null"),
        "loadavg_start": shell("cat /proc/loadavg"),
        "vmd_source": shell(&format!(
            "cd '{}' && git rev-parse --git-dir >/dev/null 2>&1 && echo \"$(git rev-parse \
             --short HEAD), $(git status --porcelain | wc -l) paths changed in the work tree\"",
            env!("CARGO_MANIFEST_DIR")
        )),
    })
}

/// The nice value of process `pid` (`self` for this one), from `/proc/<pid>/stat`.
fn nice_of(pid: &str) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // The fields after the command name start at field 3; nice is field 19.
    rest.split_whitespace().nth(19 - 3)?.parse().ok()
}

/// Runs the bench at libvirtd's nice value when libvirtd runs at a lower priority than the
/// bench: work that libvirtd does for vmd (qemu-img for a full clone or an overlay, the
/// guests) and the comparisons the bench runs itself then compete for the CPU on equal
/// terms. Returns what it found and did, for the report.
pub fn match_libvirtd_priority() -> String {
    let pid = shell("pgrep -xo libvirtd");
    let (Some(theirs), Some(ours)) = (nice_of(&pid), nice_of("self")) else {
        return "libvirtd's nice value unknown".to_string();
    };
    if theirs <= ours {
        return format!("libvirtd nice {theirs}, bench nice {ours}");
    }
    let _ = Command::new("renice")
        .args([
            "-n",
            &theirs.to_string(),
            "-p",
            &std::process::id().to_string(),
        ])
        .output();
    let now = nice_of("self").unwrap_or(ours);
    format!("libvirtd nice {theirs}: bench raised its own nice from {ours} to {now} to match")
}

/// The load average now, for the end of the run.
pub fn loadavg() -> String {
    shell("cat /proc/loadavg")
}
