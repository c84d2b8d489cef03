//! The device-bundle driver of the executor: a bundle's OCI layout pushed
//! to the registry of its site (the `push` the NPU emitter put in its
//! body), its index tagged, and ready when the registry answers the tag
//! with the index's digest. A delete removes the index by digest, which
//! untags it; the blobs are the registry's garbage collector's.
//!
//! Credentials come from the Docker/containers credential files, for the
//! registry's host; they go in the registry's requests and nowhere else.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde_json::Value;
use sovereign_oci::{Deleted, Layout, Location, OciError, Registry};

use super::driver::{Driver, StepRun};
use super::{Failure, FailureKind};
use crate::state::Live;

/// The layouts of the bundles a run may push, by their index digest.
pub type BundleLayouts = HashMap<String, Layout>;

/// Where one bundle goes, as its body says.
struct Push<'a> {
    registry: &'a str,
    repository: &'a str,
    tag: &'a str,
    digest: &'a str,
}

impl<'a> Push<'a> {
    fn of(object: &'a Value) -> Result<Push<'a>, Failure> {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        match (text("/push/registry"), text("/push/repository"), text("/push/tag"), text("/digest")) {
            (Some(registry), Some(repository), Some(tag), Some(digest)) => {
                Ok(Push { registry, repository, tag, digest })
            }
            _ => Err(Failure::refused("this bundle's site has no `registry`: there is nowhere to push it")),
        }
    }
}

/// The bundles of one site.
pub struct NpuDriver {
    layouts: Arc<BundleLayouts>,
    auth_files: Vec<PathBuf>,
    timeout: Duration,
    /// One client per registry address, made when first used.
    registries: Mutex<HashMap<String, Arc<Registry>>>,
}

impl NpuDriver {
    /// `auth_files` are read, for a registry's host, when it is first used.
    #[must_use]
    pub fn new(layouts: Arc<BundleLayouts>, auth_files: Vec<PathBuf>, timeout: Duration) -> NpuDriver {
        NpuDriver { layouts, auth_files, timeout, registries: Mutex::new(HashMap::new()) }
    }

    fn registry(&self, address: &str) -> Result<Arc<Registry>, Failure> {
        let mut registries = self.registries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(registry) = registries.get(address) {
            return Ok(Arc::clone(registry));
        }
        let location = Location::parse(address).map_err(Failure::refused)?;
        let credentials =
            sovereign_oci::auth::credentials_for(&location.host, &self.auth_files).map_err(Failure::refused)?;
        let registry = Arc::new(Registry::new(location, credentials, self.timeout)?);
        registries.insert(address.to_owned(), Arc::clone(&registry));
        Ok(registry)
    }
}

impl Driver for NpuDriver {
    fn apply<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<Live, Failure>> {
        async move {
            let push = Push::of(&run.step.object)?;
            let layout = self.layouts.get(push.digest).ok_or_else(|| {
                Failure::other(format!(
                    "the layout of bundle {} is not in this run (a plan saved without it): plan again",
                    push.digest
                ))
            })?;
            let registry = self.registry(push.registry)?;
            let held = run.permits().await;
            registry.push(push.repository, layout, "bundle", push.tag).await?;
            drop(held);
            let live = Live { uid: Some(push.digest.to_owned()), resource_version: None };
            run.applied(&live)?;
            // Ready: the registry answers the tag with the pushed digest.
            let tagged = registry.tagged(push.repository, push.tag, sovereign_oci::layout::INDEX).await?;
            if tagged.as_deref() != Some(push.digest) {
                return Err(Failure::not_ready(format!(
                    "{}/{}:{} answers {}, not the pushed index {}",
                    registry.location().host,
                    push.repository,
                    push.tag,
                    tagged.as_deref().unwrap_or("nothing"),
                    push.digest
                )));
            }
            Ok(live)
        }
        .boxed()
    }

    fn delete<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<(), Failure>> {
        async move {
            let push = Push::of(&run.step.object)?;
            let registry = self.registry(push.registry)?;
            let _held = run.permits().await;
            match registry.delete(push.repository, push.digest).await? {
                Deleted::Deleted | Deleted::AlreadyGone => Ok(()),
            }
        }
        .boxed()
    }
}

impl From<OciError> for Failure {
    fn from(error: OciError) -> Failure {
        let kind = match error {
            OciError::Unreachable(_) => FailureKind::Unreachable,
            OciError::Refused { .. } | OciError::Unauthorized(_) | OciError::Layout(_) => FailureKind::Refused,
        };
        Failure { kind, why: error.to_string(), fields: Vec::new() }
    }
}
