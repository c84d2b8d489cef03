//! The memory model of a vLLM replica and of an on-device model.
//!
//! weights = params × bytes(dtype); KV per token = 2 × layers × KV heads ×
//! head dim × bytes(KV dtype); usable = device memory × gpu-memory-utilization.
//! A replica fits when its share of the weights plus one `max-model-len`
//! sequence of KV fits the usable memory of each of its devices.

use sovereign_catalog::Architecture;

const GIB: f64 = (1u64 << 30) as f64;

/// Bytes per weight of a model dtype. int4 counts half a byte (scales are
/// ignored; they add a few percent).
#[must_use]
pub fn dtype_bytes(dtype: &str) -> f64 {
    match dtype {
        "fp32" => 4.0,
        "fp8" | "int8" => 1.0,
        "int4" => 0.5,
        // bf16, fp16 and anything unknown (check reported it).
        _ => 2.0,
    }
}

/// The memory of one replica on its devices.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaMemory {
    /// Weights on each device (the model split `devices` ways).
    pub weights: f64,
    /// KV cache of one `max_len` sequence on each device.
    pub kv_per_sequence: f64,
    /// What vLLM may use on each device.
    pub usable: f64,
    /// Memory of each device.
    pub device: f64,
    pub utilization: f64,
    pub devices: u32,
    pub max_len: u64,
}

impl ReplicaMemory {
    #[must_use]
    pub fn new(
        arch: &Architecture,
        dtype: &str,
        kv_bytes: f64,
        max_len: u64,
        utilization: f64,
        device_bytes: u64,
        devices: u32,
    ) -> Self {
        let split = f64::from(devices.max(1));
        ReplicaMemory {
            weights: arch.params as f64 * dtype_bytes(dtype) / split,
            kv_per_sequence: arch.kv_bytes_per_token(kv_bytes) * max_len as f64 / split,
            usable: device_bytes as f64 * utilization,
            device: device_bytes as f64,
            utilization,
            devices: devices.max(1),
            max_len,
        }
    }

    /// Weights and one full-length sequence fit.
    #[must_use]
    pub fn fits(&self) -> bool {
        self.weights + self.kv_per_sequence <= self.usable
    }

    /// Usable memory left after the weights, per device (negative when the weights alone do not fit).
    #[must_use]
    pub fn headroom(&self) -> f64 {
        self.usable - self.weights
    }

    /// How many `max_len` sequences the KV cache holds at once.
    #[must_use]
    pub fn concurrent_sequences(&self) -> u64 {
        if self.kv_per_sequence <= 0.0 || self.headroom() <= 0.0 {
            return 0;
        }
        (self.headroom() / self.kv_per_sequence).floor() as u64
    }

    /// The arithmetic, for diagnostics: "weights 14.96 GiB + KV 1.00 GiB = 15.96 GiB > 8.83 GiB usable (9.81 GiB × 0.90)".
    #[must_use]
    pub fn arithmetic(&self) -> String {
        let per = if self.devices > 1 { format!(" per GPU (split {} ways)", self.devices) } else { String::new() };
        let need = self.weights + self.kv_per_sequence;
        let op = if self.fits() { "≤" } else { ">" };
        format!(
            "weights {} + KV for one {}-token sequence {} = {}{per} {op} {} usable ({} × {:.2})",
            gib(self.weights),
            self.max_len,
            gib(self.kv_per_sequence),
            gib(need),
            gib(self.usable),
            gib(self.device),
            self.utilization
        )
    }
}

/// A byte count as GiB with two decimals.
#[must_use]
pub fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / GIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llama_8b() -> Architecture {
        Architecture {
            name: "llama-3.1-8b-instruct".into(),
            params: 8_030_261_248,
            layers: 32,
            hidden: 4096,
            heads: 32,
            kv_heads: 8,
            head_dim: 128,
            max_position: 131_072,
        }
    }

    #[test]
    fn matches_the_reference_sizing() {
        // targets-facts §3.3: Llama-3.1-8B bf16 weights 15.0 GiB, 128 KiB of KV per token, 1 GiB at 8K.
        let m = ReplicaMemory::new(&llama_8b(), "bf16", 2.0, 8192, 0.9, 39_50 * (1 << 30) / 100, 1);
        assert_eq!(gib(m.weights), "14.96 GiB");
        assert_eq!(llama_8b().kv_bytes_per_token(2.0), 131_072.0);
        assert_eq!(gib(m.kv_per_sequence), "1.00 GiB");
        assert!(m.fits());
        // (39.5 × 0.9 − 14.96) / 1.0 = 20.59 → 20 sequences.
        assert_eq!(m.concurrent_sequences(), 20);
    }

    #[test]
    fn tensor_parallel_splits_weights_and_kv() {
        let one = ReplicaMemory::new(&llama_8b(), "bf16", 2.0, 8192, 0.9, 80 << 30, 1);
        let two = ReplicaMemory::new(&llama_8b(), "bf16", 2.0, 8192, 0.9, 80 << 30, 2);
        assert!((one.weights - 2.0 * two.weights).abs() < 1.0);
        assert!((one.kv_per_sequence - 2.0 * two.kv_per_sequence).abs() < 1.0);
    }

    #[test]
    fn too_small_a_slice_does_not_fit() {
        let m = ReplicaMemory::new(&llama_8b(), "bf16", 2.0, 8192, 0.9, 975 * (1 << 30) / 100, 1);
        assert!(!m.fits());
        assert_eq!(m.concurrent_sequences(), 0);
        assert!(m.arithmetic().contains('>'));
    }
}
