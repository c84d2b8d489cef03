//! Device fits: does each `edge` model fit its fleet? Bytes at the declared
//! dtype against the devices' memory, and dtype and format against what the
//! SoC's NPU and runtimes accept (`SOV4003`, `SOV4004`).

use sovereign_catalog::Catalog;
use sovereign_diagnostics::{Diagnostic, codes};
use sovereign_model::{Edge, Id, Spec};

use crate::memory::{dtype_bytes, gib};
use crate::view::Sites;

/// The fit of one edge model on its fleet.
#[derive(Clone, Debug)]
pub struct DeviceFit {
    pub edge: Id<Edge>,
    pub name: String,
    /// `site/fleet`.
    pub fleet: String,
    pub soc: String,
    pub devices: u32,
    pub base: String,
    pub dtype: String,
    pub format: String,
    pub weights: f64,
    pub memory: u64,
    /// The dtype is one of the NPU's precisions and the format one its runtimes load.
    pub supported: bool,
}

impl DeviceFit {
    #[must_use]
    pub fn fits(&self) -> bool {
        self.weights <= self.memory as f64
    }
}

/// Checks every edge model against its fleet.
pub fn check(spec: &Spec, catalog: &Catalog, sites: &Sites, diagnostics: &mut Vec<Diagnostic>) -> Vec<DeviceFit> {
    let mut fits = Vec::new();
    for (id, edge) in spec.edges.iter() {
        let fleet = sites.fleet(edge.fleet.value);
        let model = &spec.models[edge.model.value];
        let base = &*model.base.value;
        let (Some(arch), Some(soc)) = (catalog.models.get(base), catalog.socs.get(&*fleet.soc)) else { continue };
        let (dtype, format) = (model.dtype.value.word(), model.format.value.word());
        let fit = DeviceFit {
            edge: id,
            name: edge.name.qualified.to_string(),
            fleet: fleet.qualified.clone(),
            soc: soc.name.clone(),
            devices: fleet.count,
            base: base.to_owned(),
            dtype: dtype.to_owned(),
            format: format.to_owned(),
            weights: arch.params as f64 * dtype_bytes(dtype),
            memory: fleet.memory,
            supported: soc.precisions.iter().any(|p| p == dtype) && soc.formats.iter().any(|f| f == format),
        };
        let model_ref = edge.model.span;
        let fleet_span = spec.fleet(edge.fleet.value).name.span;
        if !fit.fits() {
            diagnostics.push(
                Diagnostic::new(
                    codes::DEVICE_MODEL_TOO_LARGE,
                    model_ref,
                    format!(
                        "edge \"{}\": {base} in {dtype} is {} of weights, more than the {} of a {} device",
                        fit.name,
                        gib(fit.weights),
                        gib(fit.memory as f64),
                        soc.name
                    ),
                )
                .with_primary_label("too large for the devices")
                .with_label(fleet_span, format!("{} devices with {} each", fleet.count, gib(fleet.memory as f64)))
                .with_help("use a smaller base model or a smaller dtype (int8, int4)"),
            );
        }
        let dtype_ok = soc.precisions.iter().any(|p| p == dtype);
        let format_ok = soc.formats.iter().any(|f| f == format);
        if !dtype_ok || !format_ok {
            let mut problems = Vec::new();
            if !dtype_ok {
                problems.push(format!("the NPU does not run {dtype} (it runs {})", soc.precisions.join(", ")));
            }
            if !format_ok {
                problems.push(format!("its runtimes do not load {format} (they load {})", soc.formats.join(", ")));
            }
            let model_span = model.name.span;
            diagnostics.push(
                Diagnostic::new(
                    codes::DEVICE_UNSUPPORTED,
                    model_ref,
                    format!(
                        "edge \"{}\": model \"{}\" cannot run on {} ({}): {}",
                        fit.name,
                        model.name.qualified,
                        soc.name,
                        soc.npu,
                        problems.join("; ")
                    ),
                )
                .with_primary_label("unsupported on this fleet")
                .with_label(model_span, format!("declared as {dtype}, {format}"))
                .with_label(fleet_span, format!("{} devices", soc.name))
                .with_help(format!(
                    "declare the on-device model with dtype one of {} and format one of {}",
                    soc.precisions.join(", "),
                    soc.formats.join(", ")
                )),
            );
        }
        fits.push(fit);
    }
    fits
}
