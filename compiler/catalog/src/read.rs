//! Reading catalog files into the typed tables of [`Catalog`].

use sovereign_diagnostics::{Diagnostic, FileId, Span, codes};
use sovereign_syntax::ast::{LiteralKind, Node};

use crate::{Architecture, Catalog, Chart, Gpu, MIG_COMPUTE_SLICES, MIG_MEMORY_SLICES, MigProfile, Region, Soc, Tpu};

/// Reads catalog files; `files` pairs each file's id with its text.
#[must_use]
pub fn load(files: &[(FileId, &str)]) -> (Catalog, Vec<Diagnostic>) {
    let mut catalog = Catalog::default();
    let mut diagnostics = Vec::new();
    for &(file, text) in files {
        let parse = sovereign_syntax::parse(file, text);
        diagnostics.extend(parse.diagnostics);
        for node in &parse.document.nodes {
            let mut entry = Entry { node, diagnostics: &mut diagnostics };
            let Some(name) = entry.name() else { continue };
            let duplicate = match node.name.text.as_ref() {
                "jurisdiction" => {
                    let doc = entry.opt_str("doc").unwrap_or_default();
                    catalog.jurisdictions.insert(name.clone(), doc).is_some()
                }
                "region" => {
                    let Some(jurisdiction) = entry.req_str("jurisdiction") else { continue };
                    let region = Region {
                        jurisdiction,
                        provider: entry.opt_str("provider"),
                        doc: entry.opt_str("doc").unwrap_or_default(),
                    };
                    catalog.regions.insert(name.clone(), region).is_some()
                }
                "gpu" => {
                    let Some(gpu) = entry.gpu(&name) else { continue };
                    catalog.gpus.insert(name.clone(), gpu).is_some()
                }
                "tpu" => {
                    let Some(tpu) = entry.tpu(&name) else { continue };
                    catalog.tpus.insert(name.clone(), tpu).is_some()
                }
                "soc" => {
                    let Some(soc) = entry.soc(&name) else { continue };
                    catalog.socs.insert(name.clone(), soc).is_some()
                }
                "model" => {
                    let Some(model) = entry.architecture(&name) else { continue };
                    catalog.models.insert(name.clone(), model).is_some()
                }
                "chart" => {
                    let (Some(repo), Some(version), Some(app_version)) =
                        (entry.req_str("repo"), entry.req_str("version"), entry.req_str("app-version"))
                    else {
                        continue;
                    };
                    let chart = Chart { name: name.clone(), repo, version, app_version };
                    catalog.charts.insert(name.clone(), chart).is_some()
                }
                "checked" => {
                    let Some(on) = entry.req_str("on") else { continue };
                    if !is_date(&on) {
                        entry.bad(
                            node.span,
                            format!("`on` is the date the facts were checked, as YYYY-MM-DD, not `{on}`"),
                        );
                        continue;
                    }
                    catalog.checked.insert(name.clone(), on).is_some()
                }
                other => {
                    entry.bad(
                        node.name.span,
                        format!(
                            "unknown catalog entry `{other}`; expected jurisdiction, region, gpu, tpu, soc, model, chart or checked"
                        ),
                    );
                    false
                }
            };
            if duplicate {
                let span = node.span;
                entry.bad(span, format!("`{name}` is in the catalog twice"));
            }
        }
    }
    for (name, region) in &catalog.regions {
        if !catalog.jurisdictions.contains_key(&region.jurisdiction) {
            diagnostics.push(Diagnostic::new(
                codes::UNKNOWN_REGION,
                Span::default(),
                format!("stdlib catalog: region `{name}` is in unknown jurisdiction `{}`", region.jurisdiction),
            ));
        }
    }
    (catalog, diagnostics)
}

/// One catalog node being read, reporting what is missing or malformed.
struct Entry<'n, 'd> {
    node: &'n Node<'n>,
    diagnostics: &'d mut Vec<Diagnostic>,
}

impl Entry<'_, '_> {
    fn bad(&mut self, span: Span, message: String) {
        self.diagnostics.push(
            Diagnostic::new(codes::MISSING_VALUE, span, format!("stdlib catalog: {message}"))
                .with_help("fix the catalog file, or pass --stdlib with a corrected copy"),
        );
    }

    fn name(&mut self) -> Option<String> {
        match self.node.arguments().next().and_then(|v| v.kind.as_str()) {
            Some(name) => Some(name.to_owned()),
            None => {
                let span = self.node.name.span;
                self.bad(span, "a catalog entry needs a name as its first argument".into());
                None
            }
        }
    }

    fn opt_str(&self, key: &str) -> Option<String> {
        self.node.property(key).and_then(|e| e.value.kind.as_str()).map(str::to_owned)
    }

    fn req_str(&mut self, key: &str) -> Option<String> {
        let value = self.opt_str(key);
        if value.is_none() {
            let span = self.node.name.span;
            self.bad(span, format!("`{}` needs `{key}=\"…\"`", self.node.name.text));
        }
        value
    }

    fn words(&mut self, key: &str) -> Vec<String> {
        self.req_str(key).map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
    }

    /// A non-negative number property; `None` (and a diagnostic) when absent or malformed.
    fn number(&mut self, key: &str) -> Option<f64> {
        let value = match self.node.property(key).map(|e| &e.value.kind) {
            Some(LiteralKind::Number(n)) => n.as_f64().filter(|v| v.is_finite() && *v >= 0.0),
            _ => None,
        };
        if value.is_none() {
            let span = self.node.property(key).map_or(self.node.name.span, |e| e.span);
            self.bad(span, format!("`{}` needs `{key}=` with a non-negative number", self.node.name.text));
        }
        value
    }

    fn integer(&mut self, key: &str) -> Option<u64> {
        let value = self.number(key)?;
        if value.fract() != 0.0 {
            let span = self.node.property(key).map_or(self.node.name.span, |e| e.span);
            self.bad(span, format!("`{key}` must be a whole number"));
            return None;
        }
        if !(0.0..=9_007_199_254_740_992.0).contains(&value) {
            let span = self.node.property(key).map_or(self.node.name.span, |e| e.span);
            self.bad(span, format!("`{key}` must be a whole number from 0 to 2^53"));
            return None;
        }
        Some(value as u64)
    }

    /// A size or count that must be at least 1: a 0-MiB GPU or a model of
    /// no parameters would make every fit trivially true (or divide by 0).
    fn positive(&mut self, key: &str) -> Option<u64> {
        let value = self.integer(key)?;
        if value == 0 {
            let span = self.node.property(key).map_or(self.node.name.span, |e| e.span);
            self.bad(span, format!("`{key}` must be at least 1"));
            return None;
        }
        Some(value)
    }

    fn small(&mut self, key: &str) -> Option<u32> {
        self.integer(key).and_then(|v| u32::try_from(v).ok())
    }

    fn gpu(&mut self, name: &str) -> Option<Gpu> {
        let product = self.req_str("product")?;
        let memory_mib = self.positive("memory-mib")?;
        let mut mig = Vec::new();
        for child in self.node.child_nodes() {
            let mut entry = Entry { node: child, diagnostics: self.diagnostics };
            if child.name.text != "mig" {
                let span = child.name.span;
                entry.bad(span, format!("unknown child `{}` of a gpu; expected `mig`", child.name.text));
                continue;
            }
            if let Some(profile) = entry.name().and_then(|profile| entry.mig_profile(profile)) {
                mig.push(profile);
            }
        }
        Some(Gpu { name: name.to_owned(), product, memory_mib, mig })
    }

    fn mig_profile(&mut self, name: String) -> Option<MigProfile> {
        let id = self.small("id")?;
        let instances = self.small("instances")?;
        let memory_centigib = (self.number("memory-gib")? * 100.0).round() as u64;
        let sm = self.small("sm")?;
        let size = self.small("size")?;
        let starts: Vec<u32> = self.words("starts").iter().filter_map(|s| s.parse().ok()).collect();
        // The compute slices are the `Ng` of the name: one fact, not two.
        let compute = name.split_once('g').and_then(|(n, _)| n.parse::<u32>().ok());
        let span = self.node.span;
        let Some(compute) = compute.filter(|c| (1..=MIG_COMPUTE_SLICES).contains(c)) else {
            self.bad(span, format!("MIG profile `{name}` does not start with a compute slice count such as `3g`"));
            return None;
        };
        if size == 0 || starts.is_empty() || starts.iter().any(|s| s + size > MIG_MEMORY_SLICES) {
            self.bad(
                span,
                format!("MIG profile `{name}` has placements outside the {MIG_MEMORY_SLICES} memory slices"),
            );
            return None;
        }
        Some(MigProfile { name, id, instances, memory_centigib, sm, compute, size, starts })
    }

    fn tpu(&mut self, name: &str) -> Option<Tpu> {
        let hbm_gib = self.positive("hbm-gib")?;
        let bf16_tflops = self.number("bf16-tflops")?;
        let chips_per_host = self.small("chips-per-host")?;
        let topologies = self.words("topologies");
        Some(Tpu { name: name.to_owned(), hbm_gib, bf16_tflops, chips_per_host, topologies })
    }

    fn soc(&mut self, name: &str) -> Option<Soc> {
        let npu = self.req_str("npu")?;
        let tops = match self.node.property("tops") {
            Some(_) => Some(self.number("tops")?),
            None => None,
        };
        let precisions = self.words("precisions");
        let formats = self.words("formats");
        let max_memory_gib = self.positive("max-memory-gib")?;
        Some(Soc { name: name.to_owned(), npu, tops, precisions, formats, max_memory_gib })
    }

    fn architecture(&mut self, name: &str) -> Option<Architecture> {
        Some(Architecture {
            name: name.to_owned(),
            params: self.positive("params")?,
            layers: self.positive("layers")?,
            hidden: self.positive("hidden")?,
            heads: self.positive("heads")?,
            kv_heads: self.positive("kv-heads")?,
            head_dim: self.positive("head-dim")?,
            max_position: self.positive("max-position")?,
        })
    }
}

/// `YYYY-MM-DD`, with a month and a day that exist in some year.
fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let number = |part: &str, digits: usize| {
        (part.len() == digits && part.bytes().all(|b| b.is_ascii_digit())).then(|| part.parse::<u32>().unwrap_or(0))
    };
    matches!(
        (
            parts.as_slice(),
            parts.first().and_then(|y| number(y, 4)),
            parts.get(1).and_then(|m| number(m, 2)),
            parts.get(2).and_then(|d| number(d, 2))
        ),
        ([_, _, _], Some(_), Some(1..=12), Some(1..=31))
    )
}

#[cfg(test)]
mod size_tests {
    use sovereign_diagnostics::FileId;

    #[test]
    fn checked_dates_are_read_and_bad_ones_refused() {
        let text = "checked \"gpus\" on=\"2026-11-27\"\nchecked \"socs\" on=\"2026-13-01\"\nchecked \"tpus\" on=\"27.11.2026\"\n";
        let (catalog, diagnostics) = crate::Catalog::load(&[(FileId(0), text)]);
        assert_eq!(catalog.checked.into_iter().collect::<Vec<_>>(), vec![("gpus".into(), "2026-11-27".into())]);
        assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
        assert!(diagnostics.iter().all(|d| d.message.contains("YYYY-MM-DD")));
    }

    #[test]
    fn zero_sizes_and_negative_counts_are_refused() {
        let text = "gpu \"zero\" product=\"Nothing\" memory-mib=0\nmodel \"none\" params=0 layers=1 hidden=1 heads=1 kv-heads=1 head-dim=1 max-position=1\nmodel \"neg\" params=-5 layers=1 hidden=1 heads=1 kv-heads=1 head-dim=1 max-position=1\n";
        let (catalog, diagnostics) = crate::Catalog::load(&[(FileId(0), text)]);
        assert!(catalog.gpus.is_empty() && catalog.models.is_empty(), "{catalog:?}");
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.contains("`memory-mib` must be at least 1")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("`params` must be at least 1")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("`params=` with a non-negative number")), "{messages:?}");
    }
}
