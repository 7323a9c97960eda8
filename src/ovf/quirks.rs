//! Exporter quirks: deviations from the OVF specification that real exporters write and that
//! carry no safety risk (a manifest under another name, a `<Disk>` without `ovf:format`, ...).
//!
//! Readers report each one here. By default a quirk becomes a warning and the package imports;
//! with `--strict` the first quirk is fatal, with the same words. Safety rules (digests,
//! host paths, format confusion, bounds) never go through here: they are always fatal.
//! `docs/compatibility.md` lists every quirk accepted.

/// The quirks met while reading one package, or the first one when strict.
#[derive(Debug, Clone, Default)]
pub struct Quirks {
    strict: bool,
    warnings: Vec<String>,
}

impl Quirks {
    /// A collector; `strict` makes every quirk fatal.
    pub fn new(strict: bool) -> Self {
        Self {
            strict,
            warnings: Vec::new(),
        }
    }

    /// Whether quirks are fatal.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// Accepts a quirk described by `what` (a warning), or returns `what` as the error when
    /// strict. The words read as a warning and as a refusal alike ("the manifest does not
    /// list disk.ovf").
    pub fn accept(&mut self, what: impl Into<String>) -> Result<(), String> {
        let what = what.into();
        if self.strict {
            return Err(format!("{what} (refused with --strict)"));
        }
        if !self.warnings.contains(&what) {
            self.warnings.push(what);
        }
        Ok(())
    }

    /// The warnings so far.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Takes the warnings, leaving none.
    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_collects_each_warning_once() {
        let mut q = Quirks::new(false);
        q.accept("a").unwrap();
        q.accept("b").unwrap();
        q.accept("a").unwrap();
        assert_eq!(q.warnings(), ["a", "b"]);
        assert_eq!(q.take(), ["a", "b"]);
        assert!(q.warnings().is_empty());
    }

    #[test]
    fn strict_refuses_with_the_same_words() {
        let mut q = Quirks::new(true);
        assert_eq!(
            q.accept("the manifest does not list a.ovf").unwrap_err(),
            "the manifest does not list a.ovf (refused with --strict)"
        );
        assert!(q.warnings().is_empty());
    }
}
