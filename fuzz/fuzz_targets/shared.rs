//! What the fuzz targets share (included with `#[path]`; not a target).

use std::sync::OnceLock;

use sovereign_check::Schema;
use sovereign_diagnostics::SourceMap;

/// The embedded schema, loaded once: it is the same for every input, and
/// loading it per run made a target ~100× slower than the code under test.
pub fn schema() -> &'static (Schema, SourceMap) {
    static SCHEMA: OnceLock<(Schema, SourceMap)> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut sources = SourceMap::new();
        let (schema, _) = sovereign_check::embedded_schema(&mut sources);
        (schema, sources)
    })
}
