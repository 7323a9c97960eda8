//! The embedded VMDK descriptor, parsed as an allowlist (oslo `format_inspector`): blank
//! lines, `#` comments, `key=value` / `key="value"` lines (including `ddb.*`), and exactly
//! one `RW|RDONLY|NOACCESS <sectors> SPARSE "<name>"` extent. Anything that could make QEMU
//! open another file (a flat or foreign extent, a path, a parent disk) is rejected.

use super::shown;
use crate::image::{ImageError, ImageFormat, VmdkSubformat};

/// What the descriptor declares, once it passed the allowlist.
#[derive(Debug)]
pub(super) struct Descriptor {
    pub(super) subformat: VmdkSubformat,
    pub(super) extent_sectors: u64,
}

/// QEMU looks this key up with `strstr` over the raw text (comments included), so its mere
/// presence anywhere gives the image a backing file.
const PARENT_HINT: &[u8] = b"parentFileNameHint";
const NO_PARENT_CID: &str = "ffffffff";
const MAX_CREATE_TYPE_SHOWN: usize = 64;

fn line_err(line: usize, reason: String) -> ImageError {
    ImageError::VmdkDescriptor { line, reason }
}

/// `text` is the descriptor up to (not including) its NUL terminator.
pub(super) fn parse(text: &[u8]) -> Result<Descriptor, ImageError> {
    if text.windows(PARENT_HINT.len()).any(|w| w == PARENT_HINT) {
        return Err(ImageError::BackingFile {
            format: ImageFormat::Vmdk,
            detail: "descriptor contains parentFileNameHint".into(),
        });
    }
    let mut create_type: Option<String> = None;
    let mut parent_cid_seen = false;
    let mut extent: Option<u64> = None;
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if let Some(bad) = raw.iter().find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(line_err(
                line_no,
                format!("contains control byte {bad:#04x}"),
            ));
        }
        let line = String::from_utf8_lossy(raw);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(sectors) = parse_extent(line_no, line)? {
            if extent.replace(sectors).is_some() {
                return Err(line_err(
                    line_no,
                    "second extent line (only one extent is allowed)".into(),
                ));
            }
            continue;
        }
        let (key, value) = parse_key_value(line_no, line)?;
        match key {
            "createType" if create_type.is_some() => {
                return Err(line_err(line_no, "second createType".into()));
            }
            "createType" => create_type = Some(value.to_owned()),
            "parentCID" => {
                if parent_cid_seen {
                    return Err(line_err(line_no, "second parentCID".into()));
                }
                parent_cid_seen = true;
                if !value.eq_ignore_ascii_case(NO_PARENT_CID) {
                    return Err(ImageError::BackingFile {
                        format: ImageFormat::Vmdk,
                        detail: format!(
                            "parentCID is {} (a delta disk needs its parent)",
                            shown(value)
                        ),
                    });
                }
            }
            "version" if !matches!(value, "1" | "2" | "3") => {
                return Err(line_err(
                    line_no,
                    format!("descriptor version {} is not 1, 2 or 3", shown(value)),
                ));
            }
            _ => {}
        }
    }
    let create_type = create_type.ok_or_else(|| ImageError::InvalidHeader {
        format: ImageFormat::Vmdk,
        reason: "descriptor has no createType".into(),
    })?;
    let subformat = match create_type.as_str() {
        "monolithicSparse" => VmdkSubformat::MonolithicSparse,
        "streamOptimized" => VmdkSubformat::StreamOptimized,
        other => {
            return Err(ImageError::VmdkCreateType(
                other.chars().take(MAX_CREATE_TYPE_SHOWN).collect(),
            ))
        }
    };
    let extent_sectors = extent.ok_or_else(|| ImageError::InvalidHeader {
        format: ImageFormat::Vmdk,
        reason: "descriptor has no extent line".into(),
    })?;
    Ok(Descriptor {
        subformat,
        extent_sectors,
    })
}

/// `Ok(None)` when the line is not an extent line at all.
fn parse_extent(line_no: usize, line: &str) -> Result<Option<u64>, ImageError> {
    let mut words = line.splitn(2, [' ', '\t']);
    let access = words.next().unwrap_or("");
    if !matches!(access, "RW" | "RDONLY" | "NOACCESS") {
        return Ok(None);
    }
    let rest = words.next().unwrap_or("").trim_start();
    let err = |reason: String| Err(line_err(line_no, reason));
    let Some((head, quoted)) = rest.split_once('"') else {
        return err(format!("extent {} has no quoted file name", shown(line)));
    };
    let mut fields = head.split_whitespace();
    let (Some(sectors), Some(kind), None) = (fields.next(), fields.next(), fields.next()) else {
        return err(format!(
            "extent {} is not <access> <sectors> <type> \"<file>\"",
            shown(line)
        ));
    };
    let Some(sectors) = sectors.parse::<u64>().ok().filter(|&s| s > 0) else {
        return err(format!(
            "extent size {} is not a positive number",
            shown(sectors)
        ));
    };
    if kind != "SPARSE" {
        return err(format!(
            "extent type {} is not allowed (only SPARSE)",
            shown(kind)
        ));
    }
    let Some((name, tail)) = quoted.split_once('"') else {
        return err(format!(
            "extent {} has an unterminated file name",
            shown(line)
        ));
    };
    if !tail.trim().is_empty() {
        return err(format!(
            "extent {} has data after the file name",
            shown(line)
        ));
    }
    // The name is never opened (the extent is this very file), but a name that could
    // point elsewhere means the image was not made as one self-contained file.
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', ':']) {
        return err(format!(
            "extent file name {} is not a plain file name",
            shown(name)
        ));
    }
    Ok(Some(sectors))
}

fn parse_key_value(line_no: usize, line: &str) -> Result<(&str, &str), ImageError> {
    let not_allowed = || {
        line_err(
            line_no,
            format!("{} is not a comment, key=value or extent line", shown(line)),
        )
    };
    let (key, value) = line.split_once('=').ok_or_else(not_allowed)?;
    let key = key.trim_end();
    let value = value.trim_start();
    let key_ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    if !key_ok {
        return Err(not_allowed());
    }
    let value = match value.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .filter(|v| !v.contains('"'))
            .ok_or_else(not_allowed)?,
        None if value.contains(['"', ' ', '\t']) => return Err(not_allowed()),
        None => value,
    };
    Ok((key, value))
}
