//! The registry of diagnostic codes: one table, stable forever.
//!
//! Numbering follows the phase that finds the problem: `SOV1xxx` syntax,
//! `SOV2xxx` schema (lowering against the stdlib), `SOV3xxx` names,
//! references, imports and cycles, `SOV4xxx` capacity and placement,
//! `SOV5xxx` sovereignty (data flows), `SOV6xxx` what a site's API
//! server refused at apply time (the spec checked clean). Every code has a page in
//! `docs/diagnostics/`, embedded here so `sovereign explain` can print it;
//! a missing page is a compile error.

use crate::Severity;

/// A stable diagnostic code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code {
    /// The code users search for: `SOV2001`.
    pub id: &'static str,
    /// A kebab-case name that says what the problem is.
    pub name: &'static str,
    /// The default severity.
    pub severity: Severity,
    /// One line: what the code means.
    pub summary: &'static str,
    /// The full Markdown page from `docs/diagnostics/`.
    pub doc: &'static str,
}

macro_rules! codes {
    ($($konst:ident = $id:literal, $name:literal, $severity:ident, $summary:literal;)*) => {
        $(
            #[doc = $summary]
            pub const $konst: Code = Code {
                id: $id,
                name: $name,
                severity: Severity::$severity,
                summary: $summary,
                doc: include_str!(concat!("../../../docs/diagnostics/", $id, ".md")),
            };
        )*
        /// Every code, in numeric order.
        pub const ALL: &[Code] = &[$($konst),*];
    };
}

codes! {
    INVALID_SYNTAX = "SOV1001", "invalid-syntax", Error, "the text is not valid KDL 2.0 here";
    UNTERMINATED_STRING = "SOV1002", "unterminated-string", Error, "a string is missing its closing quote";
    UNTERMINATED_COMMENT = "SOV1003", "unterminated-comment", Error, "a block comment is missing its closing `*/`";
    INVALID_ESCAPE = "SOV1004", "invalid-escape", Error, "a string contains an escape KDL 2.0 does not define";
    INVALID_NUMBER = "SOV1005", "invalid-number", Error, "a value starts like a number but is not a valid KDL number";
    UNBALANCED_BRACE = "SOV1006", "unbalanced-brace", Error, "a children block is not closed, or a `}` closes nothing";
    BARE_KEYWORD = "SOV1007", "bare-keyword", Error, "`true`, `false`, `null`, `inf` and `nan` need a leading `#`";
    MISSING_SPACE = "SOV1008", "missing-space", Error, "arguments and properties must be separated by whitespace";
    INVALID_MULTILINE_STRING = "SOV1009", "invalid-multiline-string", Error, "a multi-line string is malformed or its lines do not share the closing line's indentation";
    DISALLOWED_CHARACTER = "SOV1010", "disallowed-character", Error, "a code point KDL forbids (control or bidirectional character, or a misplaced byte-order mark)";
    DANGLING_SLASHDASH = "SOV1011", "dangling-slashdash", Error, "a `/-` comment marker has nothing after it to comment out";
    INVALID_TYPE_ANNOTATION = "SOV1012", "invalid-type-annotation", Error, "a type annotation is empty or malformed";
    INVALID_UTF8 = "SOV1013", "invalid-utf8", Error, "the file is not valid UTF-8";
    UNKNOWN_NODE = "SOV2001", "unknown-node", Error, "a node the schema does not define at this place";
    UNKNOWN_PROPERTY = "SOV2002", "unknown-property", Error, "a property the node's schema does not define";
    WRONG_TYPE = "SOV2003", "wrong-type", Error, "a value of the wrong type";
    MISSING_VALUE = "SOV2004", "missing-value", Error, "a required name, argument, property or child is missing";
    VALUE_NOT_ALLOWED = "SOV2005", "value-not-allowed", Error, "a value that is not one of the allowed ones";
    UNEXPECTED_ARGUMENT = "SOV2006", "unexpected-argument", Error, "more arguments than the node takes";
    DUPLICATE_PROPERTY = "SOV2007", "duplicate-property", Error, "the same property is given twice on one node";
    INVALID_QUANTITY = "SOV2008", "invalid-quantity", Error, "a memory or storage size that is not a number with a binary or decimal unit";
    INVALID_DURATION = "SOV2009", "invalid-duration", Error, "a duration that is not a number with a unit (ms, s, m, h, d, w)";
    INVALID_CRON = "SOV2010", "invalid-cron", Error, "a schedule that is not a five-field cron expression with every field in range";
    UNKNOWN_REGION = "SOV2011", "unknown-region", Error, "a region or jurisdiction the catalog does not know";
    TOO_MANY_CHILDREN = "SOV2012", "too-many-children", Error, "a child node given more often than its parent allows";
    VALUE_OUT_OF_RANGE = "SOV2013", "value-out-of-range", Error, "a number outside the range the property allows";
    IGNORED_TYPE_ANNOTATION = "SOV2014", "ignored-type-annotation", Warning, "a KDL type annotation, which fabric specs give no meaning";
    INVALID_NAME = "SOV2015", "invalid-name", Error, "a name that cannot become a Kubernetes object name";
    INVALID_CONDITION = "SOV2016", "invalid-condition", Error, "a routing condition that is not `metric op number` joined by `and`/`or`";
    INVALID_URI = "SOV2017", "invalid-uri", Error, "a URI or secret source without an accepted scheme";
    UNKNOWN_CATALOG_ENTRY = "SOV2018", "unknown-catalog-entry", Error, "a GPU, TPU, SoC or model name the catalog does not know";
    SCHEMA_MISMATCH = "SOV2019", "schema-mismatch", Error, "a `--stdlib` schema allows or leaves out a value this version of sovereign does not understand";
    DUPLICATE_NAME = "SOV3001", "duplicate-name", Error, "two declarations of the same kind share a name";
    UNKNOWN_REFERENCE = "SOV3002", "unknown-reference", Error, "a reference to a name that is not declared";
    WRONG_REFERENCE_KIND = "SOV3003", "wrong-reference-kind", Error, "a reference names a declaration of the wrong kind";
    AMBIGUOUS_REFERENCE = "SOV3004", "ambiguous-reference", Error, "a `depends-on` name matches declarations of several kinds";
    DEPENDENCY_CYCLE = "SOV3005", "dependency-cycle", Error, "declarations depend on each other in a cycle";
    SECRET_LITERAL = "SOV3006", "secret-literal", Error, "a secret written in clear text where a `secret` reference is required";
    UNRESOLVED_IMPORT = "SOV3007", "unresolved-import", Error, "an import names a file or folder that cannot be read";
    IMPORT_CYCLE = "SOV3008", "import-cycle", Error, "files import each other in a cycle";
    MISSING_FABRIC = "SOV3009", "missing-fabric", Error, "the spec has no `fabric` declaration";
    IMPORT_OUTSIDE_SPEC = "SOV3010", "import-outside-spec", Error, "an import names an absolute path or a file outside the root spec's folder";
    IMPORT_NOT_A_SPEC = "SOV3011", "import-not-a-spec", Error, "an import names something other than a regular `.kdl` file or a folder";
    IMPORT_TOO_DEEP = "SOV3012", "import-too-deep", Error, "imports are nested deeper than the loader follows";
    CAPACITY_SHORT = "SOV4001", "capacity-short", Error, "a serve asks for more GPUs, MIG slices or TPU slices than its sites have left";
    MODEL_TOO_LARGE = "SOV4002", "model-too-large", Error, "the weights plus one max-model-len sequence of KV cache do not fit the device";
    DEVICE_MODEL_TOO_LARGE = "SOV4003", "device-model-too-large", Error, "an on-device model is larger than the fleet's memory";
    DEVICE_UNSUPPORTED = "SOV4004", "device-unsupported", Error, "an on-device model's precision or format is not one the fleet's NPU runs";
    CONFLICTING_RESOURCES = "SOV4005", "conflicting-resources", Error, "a serve asks for MIG slices and whole GPUs, or for GPUs and a different tensor-parallel degree";
    RESOURCE_CYCLE = "SOV4006", "resource-cycle", Error, "the resources the fabric implies depend on each other in a cycle";
    RESTRICTED_LEAVES_SITE = "SOV5001", "restricted-leaves-site", Error, "restricted data leaves the site where it lives without redaction";
    CONFIDENTIAL_OFF_SERVER = "SOV5002", "confidential-off-server", Error, "confidential data reaches a site outside the server tier without redaction";
    RESIDENCY_VIOLATION = "SOV5003", "residency-violation", Error, "data reaches a site outside the jurisdiction it must reside in";
    UNKNOWN_DESTINATION = "SOV5004", "unknown-destination", Error, "telemetry leaves for a destination whose site or jurisdiction is not declared";
    OBJECT_REFUSED = "SOV6001", "object-refused", Error, "a site's API server refused an object apply sent";
    FIELD_CONFLICT = "SOV6002", "field-conflict", Error, "another field manager owns fields of an object that apply sets";
}

/// Looks a code up by its id (`SOV2001`) or name (`unknown-node`), ignoring case.
#[must_use]
pub fn lookup(query: &str) -> Option<Code> {
    ALL.iter().copied().find(|c| c.id.eq_ignore_ascii_case(query) || c.name.eq_ignore_ascii_case(query))
}
