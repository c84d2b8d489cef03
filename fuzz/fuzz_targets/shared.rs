//! What the fuzz targets share (included with `#[path]`; not a target).

use std::sync::OnceLock;

use sovereign_check::Stdlib;

/// The embedded stdlib, loaded once: it is the same for every input, and
/// loading it per run made a target ~100× slower than the code under test.
pub fn stdlib() -> &'static Stdlib {
    static STDLIB: OnceLock<Stdlib> = OnceLock::new();
    STDLIB.get_or_init(|| Stdlib::embedded().0)
}
