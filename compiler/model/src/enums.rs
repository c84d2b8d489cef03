//! The schema's enumerations that Rust gives meaning to. The schema stays
//! the source of truth for what users may write; [`SCHEMA_ENUMS`] lists
//! where each enum is used in it, and a test in `sovereign-check` holds
//! the two to the same set of words, so that a value added to the schema
//! without meaning fails a test instead of silently vanishing. A `--stdlib`
//! schema with a word this binary does not know is an error when the model
//! is read (`SOV2019`), never a declaration that quietly disappears.

/// Declares an enum with its words and the schema fields that use it.
/// A field is `kind/path.prop` for a property, `kind/path` for the first argument.
macro_rules! schema_enum {
    ($(#[$meta:meta])* $name:ident in [$($field:literal),+ $(,)?] { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in the schema's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The schema fields whose values this enum reads.
            pub const FIELDS: &'static [&'static str] = &[$($field),+];

            /// The value a schema word stands for.
            #[must_use]
            pub fn parse(word: &str) -> Option<$name> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The word the spec writes.
            #[must_use]
            pub fn word(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.word())
            }
        }
    };
}

schema_enum! {
    /// The tier of a site: where a workload may be placed.
    Tier in ["site.tier", "serve.tier", "vectorstore.tier"] {
        Cloud = "cloud",
        Server = "server",
        Device = "device",
    }
}

schema_enum! {
    /// The managed Kubernetes provider of a cloud site.
    Provider in ["site.provider"] { Gke = "gke", Eks = "eks", Aks = "aks" }
}

schema_enum! {
    /// The distribution a site's cluster runs.
    ClusterKind in ["site/cluster.kind"] { K3s = "k3s", K8s = "k8s", Gke = "gke", Eks = "eks", Aks = "aks" }
}

schema_enum! {
    /// Temporal's persistence engine.
    PersistenceEngine in ["temporal/persistence"] {
        Postgresql = "postgresql",
        Mysql = "mysql",
        Cassandra = "cassandra",
    }
}

schema_enum! {
    /// How the OpenTelemetry Collector runs on each cluster.
    CollectorMode in ["observe/collector.mode"] { DaemonSet = "daemonset", Deployment = "deployment" }
}

schema_enum! {
    /// Where telemetry is exported.
    ExportDestination in ["observe/export"] { Logfire = "logfire", Otlp = "otlp" }
}

schema_enum! {
    /// The precision of a serve's KV cache.
    KvCacheDtype in ["serve/kv-cache-dtype"] { Auto = "auto", Fp8 = "fp8" }
}

schema_enum! {
    /// A vector collection's distance metric.
    Distance in ["vectorstore/collection.distance"] {
        Cosine = "cosine",
        Dot = "dot",
        Euclid = "euclid",
        Manhattan = "manhattan",
    }
}

schema_enum! {
    /// What a failed evaluation gate does.
    OnFail in ["eval/on-fail"] { Block = "block", Warn = "warn", Rollback = "rollback" }
}

schema_enum! {
    /// A data classification, ordered from least to most sensitive.
    Classification in ["dataset.classification"] {
        Public = "public",
        Internal = "internal",
        Confidential = "confidential",
        Restricted = "restricted",
    }
}

schema_enum! {
    /// The precision of a model's weights.
    Dtype in ["model.dtype"] { Fp32 = "fp32", Bf16 = "bf16", Fp16 = "fp16", Fp8 = "fp8", Int8 = "int8", Int4 = "int4" }
}

schema_enum! {
    /// The file format of a model's weights.
    WeightFormat in ["model.format"] {
        Safetensors = "safetensors",
        Onnx = "onnx",
        Gguf = "gguf",
        Tflite = "tflite",
        Qnn = "qnn",
        Pte = "pte",
        CoreMl = "coreml",
        OpenVino = "openvino",
        TensorRt = "tensorrt",
    }
}

schema_enum! {
    /// Where the state of applies lives.
    StateBackend in ["fabric/state.backend"] { Local = "local", Kubernetes = "kubernetes" }
}

schema_enum! {
    /// The Iceberg catalog implementation of a ledger.
    IcebergCatalog in ["ledger/iceberg.catalog"] { Rest = "rest", Glue = "glue", Hive = "hive" }
}

/// One enum of [`SCHEMA_ENUMS`]: its name, the schema fields it reads, its words.
pub struct SchemaEnum {
    pub name: &'static str,
    pub fields: &'static [&'static str],
    pub words: fn() -> Vec<&'static str>,
}

macro_rules! table {
    ($($name:ident),+ $(,)?) => {
        /// Every enum the model reads from the schema.
        pub const SCHEMA_ENUMS: &[SchemaEnum] = &[$(SchemaEnum {
            name: stringify!($name),
            fields: $name::FIELDS,
            words: || $name::ALL.iter().map(|v| v.word()).collect(),
        }),+];
    };
}

table!(
    Tier,
    Provider,
    ClusterKind,
    PersistenceEngine,
    CollectorMode,
    ExportDestination,
    KvCacheDtype,
    Distance,
    OnFail,
    Classification,
    Dtype,
    WeightFormat,
    StateBackend,
    IcebergCatalog,
);

impl Classification {
    /// What a redacting hop leaves of it: restricted and confidential data become internal.
    #[must_use]
    pub fn redacted(self) -> Classification {
        self.min(Classification::Internal)
    }
}
