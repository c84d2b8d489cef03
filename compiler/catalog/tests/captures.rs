//! The GPU catalog must say what the real cards say: the H100 and H200
//! entries are compared with `nvidia-smi` captures (`mig -lgip`,
//! `mig -lgipp`, `--query-gpu`), parsed here independently of the catalog.
// Reads fixtures from disk: the purity rule (compiler/clippy.toml) is for the crates, not their tests.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use sovereign_catalog::{Catalog, MigProfile};
use sovereign_diagnostics::{Format, RenderConfig, SourceMap, render};

fn catalog() -> Catalog {
    let mut sources = SourceMap::new();
    let files: Vec<_> = sovereign_stdlib::CATALOG
        .iter()
        .map(|f| (sources.add(Path::new(f.path).to_path_buf(), f.text), f.text))
        .collect();
    let (catalog, diagnostics) = Catalog::load(&files);
    assert!(
        diagnostics.is_empty(),
        "{}",
        render(&diagnostics, &sources, Format::Human, RenderConfig { color: false, width: 100 })
    );
    catalog
}

fn fixture(gpu: &str, file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(gpu).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A profile as the capture prints it: name, id, total instances, memory GiB ×100, SMs.
#[derive(Debug, PartialEq)]
struct Captured {
    name: String,
    id: u32,
    instances: u32,
    memory_centigib: u64,
    sm: u32,
}

/// Parses the `|   0  MIG 1g.10gb   19   7/7   9.75   No   16 ...|` rows of `nvidia-smi mig -lgip`.
fn parse_lgip(text: &str) -> Vec<Captured> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim_matches(|c| c == '|' || c == ' ').split_whitespace().collect();
            if fields.get(1) != Some(&"MIG") {
                return None;
            }
            let (_, total) = fields[4].split_once('/')?;
            let (whole, fraction) = fields[5].split_once('.')?;
            Some(Captured {
                name: fields[2].to_owned(),
                id: fields[3].parse().ok()?,
                instances: total.parse().ok()?,
                memory_centigib: whole.parse::<u64>().ok()? * 100 + fraction.parse::<u64>().ok()?,
                sm: fields[7].parse().ok()?,
            })
        })
        .collect()
}

/// Parses `GPU  0 Profile ID 19 Placements: {0,1,2,3,4,5,6}:1` into (id, starts, size).
fn parse_lgipp(text: &str) -> Vec<(u32, Vec<u32>, u32)> {
    text.lines()
        .filter_map(|line| {
            let (head, placements) = line.split_once(':')?;
            let id = head.split("ID").nth(1)?.split_whitespace().next()?.parse().ok()?;
            let (set, size) = placements.trim().rsplit_once(':')?;
            let starts = set
                .trim_matches(|c| c == '{' || c == '}')
                .split(',')
                .map(|s| s.trim().parse().ok())
                .collect::<Option<_>>()?;
            Some((id, starts, size.trim().parse().ok()?))
        })
        .collect()
}

fn compare(catalog_name: &str, fixture_dir: &str) {
    let catalog = catalog();
    let gpu = catalog.gpus.get(catalog_name).unwrap_or_else(|| panic!("{catalog_name} is not in the catalog"));
    let lgip = parse_lgip(&fixture(fixture_dir, "mig-lgip.txt"));
    let lgipp = parse_lgipp(&fixture(fixture_dir, "mig-lgipp.txt"));
    assert_eq!(lgip.len(), 7, "the capture lists seven profiles");
    assert_eq!(lgipp.len(), 7, "the capture lists seven placements");
    let ours: Vec<Captured> = gpu
        .mig
        .iter()
        .map(|p: &MigProfile| Captured {
            name: p.name.clone(),
            id: p.id,
            instances: p.instances,
            memory_centigib: p.memory_centigib,
            sm: p.sm,
        })
        .collect();
    assert_eq!(ours, lgip, "{catalog_name}: profiles differ from `nvidia-smi mig -lgip`");
    for (id, starts, size) in lgipp {
        let profile = gpu.mig.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("profile id {id} missing"));
        assert_eq!((&profile.starts, profile.size), (&starts, size), "{catalog_name} {}: placements", profile.name);
    }
    // memory.total from --query-gpu.
    let csv = fixture(fixture_dir, "query-gpu.csv");
    let row = csv.lines().nth(1).expect("a data row");
    let memory: u64 = row
        .split(',')
        .nth(1)
        .and_then(|m| m.trim().strip_suffix(" MiB"))
        .and_then(|m| m.parse().ok())
        .expect("memory.total");
    assert_eq!(gpu.memory_mib, memory, "{catalog_name}: memory.total");
    assert_eq!(gpu.product, row.split(',').next().unwrap_or_default().trim());
}

#[test]
fn h100_matches_the_capture() {
    compare("h100-80gb", "nvidia-h100-80gb");
}

#[test]
fn h200_matches_the_capture() {
    compare("h200", "nvidia-h200");
}

#[test]
fn every_mig_profile_is_well_formed() {
    let catalog = catalog();
    for gpu in catalog.gpus.values() {
        for p in &gpu.mig {
            // A profile's instances must fit its legal starts, and a full
            // GPU of them must not need more than 7 compute slices.
            assert!(p.instances as usize <= p.starts.len(), "{} {}", gpu.name, p.name);
            assert!(p.starts.iter().all(|s| s + p.size <= 8), "{} {}", gpu.name, p.name);
            assert!(p.memory_bytes() < gpu.memory_mib << 20, "{} {} is larger than the card", gpu.name, p.name);
        }
    }
    assert!(catalog.gpus["l40s"].mig.is_empty() && catalog.gpus["l4"].mig.is_empty());
    for name in ["a100-40gb", "a100-80gb", "h100-80gb", "h200", "b200", "l40s", "l4"] {
        assert!(catalog.gpus.contains_key(name), "{name}");
    }
}
