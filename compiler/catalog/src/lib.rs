//! The catalogs: facts about the world the compiler reasons with.
//!
//! They are KDL data in `stdlib/catalog/` (every fact with its source in a
//! comment); this crate only reads them into typed tables. A malformed
//! entry (possible with `--stdlib DIR`) is a diagnostic on that file.
//!
//! Architecture Invariant: pure data. No placement or policy logic here;
//! `sovereign-analyze` decides, the catalog only answers "what is an H100".

mod read;

use std::collections::BTreeMap;

use sovereign_diagnostics::{Diagnostic, FileId};

pub use read::load;

/// Every catalog, keyed by the names specs use.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Jurisdiction name (`eu`) to its description.
    pub jurisdictions: BTreeMap<String, String>,
    pub regions: BTreeMap<String, Region>,
    pub gpus: BTreeMap<String, Gpu>,
    pub tpus: BTreeMap<String, Tpu>,
    pub socs: BTreeMap<String, Soc>,
    /// Model architectures by base name (`llama-3.1-8b-instruct`).
    pub models: BTreeMap<String, Architecture>,
    /// Helm charts by name (`qdrant`), pinned.
    pub charts: BTreeMap<String, Chart>,
    /// When each table's facts were last checked against their sources
    /// (`gpus` → `2026-11-27`), for `sovereign --version`.
    pub checked: BTreeMap<String, String>,
}

/// A Helm chart sovereign installs, at the version its values were checked against.
#[derive(Clone, Debug)]
pub struct Chart {
    pub name: String,
    /// The chart repository's URL.
    pub repo: String,
    pub version: String,
    /// The application version the chart release ships.
    pub app_version: String,
}

/// The kinds of catalog entry a spec value may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    Region,
    Jurisdiction,
    Gpu,
    Tpu,
    Soc,
    Model,
}

impl EntryKind {
    /// Parses the word used in schema files (`type="catalog" of="gpu tpu"`).
    #[must_use]
    pub fn from_word(word: &str) -> Option<EntryKind> {
        Some(match word {
            "region" => EntryKind::Region,
            "jurisdiction" => EntryKind::Jurisdiction,
            "gpu" => EntryKind::Gpu,
            "tpu" => EntryKind::Tpu,
            "soc" => EntryKind::Soc,
            "model" => EntryKind::Model,
            _ => return None,
        })
    }

    /// The word for messages.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            EntryKind::Region => "region",
            EntryKind::Jurisdiction => "jurisdiction",
            EntryKind::Gpu => "GPU",
            EntryKind::Tpu => "TPU",
            EntryKind::Soc => "SoC",
            EntryKind::Model => "model architecture",
        }
    }

    /// The catalog file that holds entries of this kind, for help texts.
    #[must_use]
    pub fn file(self) -> &'static str {
        match self {
            EntryKind::Region | EntryKind::Jurisdiction => "stdlib/catalog/regions.kdl",
            EntryKind::Gpu => "stdlib/catalog/gpus.kdl",
            EntryKind::Tpu => "stdlib/catalog/tpus.kdl",
            EntryKind::Soc => "stdlib/catalog/socs.kdl",
            EntryKind::Model => "stdlib/catalog/models.kdl",
        }
    }
}

impl Catalog {
    /// Reads catalog files; `files` pairs each file's id with its text.
    #[must_use]
    pub fn load(files: &[(FileId, &str)]) -> (Catalog, Vec<Diagnostic>) {
        read::load(files)
    }

    /// Whether an entry of `kind` is named `name`.
    #[must_use]
    pub fn contains(&self, kind: EntryKind, name: &str) -> bool {
        match kind {
            EntryKind::Region => self.regions.contains_key(name),
            EntryKind::Jurisdiction => self.jurisdictions.contains_key(name),
            EntryKind::Gpu => self.gpus.contains_key(name),
            EntryKind::Tpu => self.tpus.contains_key(name),
            EntryKind::Soc => self.socs.contains_key(name),
            EntryKind::Model => self.models.contains_key(name),
        }
    }

    /// The names of every entry of `kind`, sorted.
    #[must_use]
    pub fn names(&self, kind: EntryKind) -> Vec<&str> {
        fn keys<V>(map: &BTreeMap<String, V>) -> Vec<&str> {
            map.keys().map(String::as_str).collect()
        }
        match kind {
            EntryKind::Region => keys(&self.regions),
            EntryKind::Jurisdiction => keys(&self.jurisdictions),
            EntryKind::Gpu => keys(&self.gpus),
            EntryKind::Tpu => keys(&self.tpus),
            EntryKind::Soc => keys(&self.socs),
            EntryKind::Model => keys(&self.models),
        }
    }

    /// The jurisdiction of a region.
    #[must_use]
    pub fn jurisdiction_of(&self, region: &str) -> Option<&str> {
        self.regions.get(region).map(|r| r.jurisdiction.as_str())
    }
}

/// A region and the jurisdiction it is in.
#[derive(Clone, Debug)]
pub struct Region {
    pub jurisdiction: String,
    /// The cloud provider that names its region so (`gke`), if any.
    pub provider: Option<String>,
    pub doc: String,
}

/// A GPU model.
#[derive(Clone, Debug)]
pub struct Gpu {
    pub name: String,
    /// The product name `nvidia-smi` prints.
    pub product: String,
    /// Total memory as `nvidia-smi` reports it.
    pub memory_mib: u64,
    /// GPU-instance profiles; empty when the GPU has no MIG.
    pub mig: Vec<MigProfile>,
}

impl Gpu {
    /// The MIG profile named `name`, if the GPU offers it.
    #[must_use]
    pub fn profile(&self, name: &str) -> Option<&MigProfile> {
        self.mig.iter().find(|p| p.name == name)
    }
}

/// The number of memory slices of a MIG-capable GPU (the placement grid).
pub const MIG_MEMORY_SLICES: u32 = 8;
/// The number of compute slices of a MIG-capable GPU.
pub const MIG_COMPUTE_SLICES: u32 = 7;

/// A MIG GPU-instance profile, as `nvidia-smi mig -lgip` and `-lgipp` print it.
#[derive(Clone, Debug, PartialEq)]
pub struct MigProfile {
    /// `3g.40gb`, `1g.10gb+me`.
    pub name: String,
    /// The profile id.
    pub id: u32,
    /// At most this many instances per GPU.
    pub instances: u32,
    /// Memory in hundredths of a GiB, exactly as printed (39.50 → 3950).
    pub memory_centigib: u64,
    /// Streaming multiprocessors.
    pub sm: u32,
    /// Compute slices (the `Ng` of the name).
    pub compute: u32,
    /// Memory slices occupied, from a start slot.
    pub size: u32,
    /// The slots an instance may start at.
    pub starts: Vec<u32>,
}

impl MigProfile {
    /// Memory in bytes.
    #[must_use]
    pub fn memory_bytes(&self) -> u64 {
        self.memory_centigib * (1 << 30) / 100
    }

    /// The occupancy mask of an instance starting at `start` (bit i = memory slice i).
    #[must_use]
    pub fn mask(&self, start: u32) -> u8 {
        let bits = ((1u32 << self.size) - 1) << start;
        u8::try_from(bits & 0xFF).unwrap_or(0)
    }
}

/// A Cloud TPU generation.
#[derive(Clone, Debug)]
pub struct Tpu {
    pub name: String,
    /// High-bandwidth memory per chip.
    pub hbm_gib: u64,
    /// Peak bf16 TFLOPS per chip.
    pub bf16_tflops: f64,
    /// The most chips one host (VM) holds.
    pub chips_per_host: u32,
    /// The slice shapes that may be requested, such as `2x4`.
    pub topologies: Vec<String>,
}

impl Tpu {
    /// Chips in a slice of the given topology (`2x4` → 8), if the topology is offered.
    #[must_use]
    pub fn chips(&self, topology: &str) -> Option<u32> {
        if !self.topologies.iter().any(|t| t == topology) {
            return None;
        }
        topology.split('x').map(|d| d.parse::<u32>().ok()).product()
    }
}

/// A device system-on-chip and its NPU.
#[derive(Clone, Debug)]
pub struct Soc {
    pub name: String,
    /// The NPU, such as `Hexagon HTP V75`.
    pub npu: String,
    /// Peak INT8 TOPS as the vendor publishes it; `None` when none is published.
    pub tops: Option<f64>,
    /// Precisions the NPU runs (`int4 int8 int16 fp16`).
    pub precisions: Vec<String>,
    /// Weight formats its runtimes load (`qnn onnx tflite gguf`).
    pub formats: Vec<String>,
    /// The most memory devices with this SoC ship with.
    pub max_memory_gib: u64,
}

/// A model architecture, from the model's `config.json`.
#[derive(Clone, Debug)]
pub struct Architecture {
    pub name: String,
    /// Parameter count.
    pub params: u64,
    pub layers: u64,
    pub hidden: u64,
    /// Attention (query) heads.
    pub heads: u64,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: u64,
    pub head_dim: u64,
    /// `max_position_embeddings`: vLLM's `max-model-len` when none is set.
    pub max_position: u64,
}

impl Architecture {
    /// Bytes of KV cache per token at `kv_bytes` per element: 2 (K and V) × layers × KV heads × head dim.
    #[must_use]
    pub fn kv_bytes_per_token(&self, kv_bytes: f64) -> f64 {
        2.0 * (self.layers * self.kv_heads * self.head_dim) as f64 * kv_bytes
    }
}
