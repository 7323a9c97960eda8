//! `vmd console NAME` and `vmd start NAME --console`: the guest's serial console copied to
//! stdout until the guest stops (or Ctrl-C, whose default action ends vmd and with it the
//! session).
//!
//! On a terminal every chunk goes through [`TermStream`] (SECURITY.md item 41: the guest's
//! bytes are hostile); into a pipe or a file the bytes are copied as the guest wrote them,
//! for scripts. Stdout carries only the console, so `--json` is refused with it.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use vmd::{Console, StorageManager};

use super::output::{Output, TermStream};

/// How long libvirt gets, after the console stream ended, to record the domain as off.
const STOP_GRACE: Duration = Duration::from_secs(10);

fn refuse_json(out: &Output) -> anyhow::Result<()> {
    if out.is_json() {
        anyhow::bail!(vmd::Error::Request(
            "--json cannot be combined with the console, which is what vmd prints".into()
        ));
    }
    Ok(())
}

/// `vmd console NAME`.
pub async fn console(name: &str, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    refuse_json(out)?;
    let console = m.console(name).await?;
    follow(console, m).await
}

/// `vmd start NAME --console`, and `vmd deploy NAME --start --console` once deployed.
pub async fn start(name: &str, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    refuse_json(out)?;
    let console = m.start_with_console(name).await?;
    follow(console, m).await
}

/// Copies the console to stdout until it ends, then makes sure the guest is off.
async fn follow(console: Console, m: &StorageManager) -> anyhow::Result<()> {
    let name = console.name().to_string();
    tokio::task::spawn_blocking(move || copy(console)).await??;
    m.wait_stopped(&name, STOP_GRACE).await?;
    Ok(())
}

fn copy(mut console: Console) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut stdout = stdout.lock();
    let mut escaper = TermStream::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match console.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("reading the console of {}", console.name())))
            }
        };
        if terminal {
            stdout.write_all(escaper.push(&buf[..n]).as_bytes())?;
        } else {
            stdout.write_all(&buf[..n])?;
        }
        stdout.flush()?;
    }
    if terminal {
        stdout.write_all(escaper.finish().as_bytes())?;
    }
    stdout.flush()?;
    Ok(())
}
