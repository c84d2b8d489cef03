//! The standard library as data: the schema of every node kind and the
//! catalogs, as KDL files embedded in the binary.
//!
//! Architecture Invariant: this crate holds data only. The compiler parses
//! these files with the same parser as user specs; `--stdlib DIR` replaces
//! them with files read from disk, laid out the same way.

/// One embedded file: its path relative to `stdlib/` and its text.
#[derive(Clone, Copy, Debug)]
pub struct StdlibFile {
    pub path: &'static str,
    pub text: &'static str,
}

/// The schema files, in a fixed order.
pub const SCHEMA: &[StdlibFile] = &[
    StdlibFile { path: "schema/common.kdl", text: include_str!("../schema/common.kdl") },
    StdlibFile { path: "schema/fabric.kdl", text: include_str!("../schema/fabric.kdl") },
    StdlibFile { path: "schema/site.kdl", text: include_str!("../schema/site.kdl") },
    StdlibFile { path: "schema/data.kdl", text: include_str!("../schema/data.kdl") },
    StdlibFile { path: "schema/modules.kdl", text: include_str!("../schema/modules.kdl") },
];

/// The catalog files.
pub const CATALOG: &[StdlibFile] = &[
    StdlibFile { path: "catalog/regions.kdl", text: include_str!("../catalog/regions.kdl") },
    StdlibFile { path: "catalog/gpus.kdl", text: include_str!("../catalog/gpus.kdl") },
    StdlibFile { path: "catalog/tpus.kdl", text: include_str!("../catalog/tpus.kdl") },
    StdlibFile { path: "catalog/socs.kdl", text: include_str!("../catalog/socs.kdl") },
    StdlibFile { path: "catalog/models.kdl", text: include_str!("../catalog/models.kdl") },
    StdlibFile { path: "catalog/charts.kdl", text: include_str!("../catalog/charts.kdl") },
];
