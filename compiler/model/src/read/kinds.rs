//! One reader per declaration kind.

use sovereign_ir::{Item, ItemId, ValueKind};

use super::{Reader, bytes, count, flag, long, millis, number, text, uri};
use crate::*;

impl<'f> Reader<'f> {
    pub(super) fn fabric_decl(&mut self, id: ItemId, item: &'f Item) -> FabricDecl {
        let residency = self.child_arg(id, "fabric/residency");
        let residency = self.optional(item, residency.as_ref(), "residency", text);
        let state = self.child(item, "fabric/state").and_then(|(state_id, state)| {
            Some(State {
                item: state_id,
                span: state.keyword_span,
                backend: self.required_word(state, state.prop("backend"), "backend", StateBackend::parse)?,
                site: self.reference(state, state.prop("site"), "site", Decl::site),
                path: self.prop(state, "path", text),
            })
        });
        FabricDecl { item: Some(id), name: Some(Self::name(item)), residency, state }
    }

    pub(super) fn site(&mut self, id: ItemId, item: &'f Item) -> Option<Site> {
        let cluster = match self.child(item, "site/cluster") {
            Some((cluster_id, cluster)) => Some(Cluster {
                item: cluster_id,
                kind: self.required_word(cluster, cluster.prop("kind"), "kind", ClusterKind::parse)?,
                context: self.required_prop(cluster, "context", text)?,
            }),
            None => None,
        };
        // Sized exactly: a Vec grown from empty holds room for four.
        let mut nodes = Vec::with_capacity(self.children(item, "site/node").count());
        for (node_id, node) in self.children(item, "site/node") {
            nodes.push(Node {
                item: node_id,
                name: Self::name(node),
                gpu: self.prop(node, "gpu", text),
                gpus: self.required_prop(node, "gpus", count)?,
                mig: self.required_prop(node, "mig", flag)?,
                cpu: self.prop(node, "cpu", count),
                memory: self.prop(node, "memory", bytes),
            });
        }
        let mut pools = Vec::with_capacity(self.children(item, "site/pool").count());
        for (pool_id, pool) in self.children(item, "site/pool") {
            pools.push(Pool {
                item: pool_id,
                name: Self::name(pool),
                accelerator: self.required_prop(pool, "accelerator", text)?,
                gpus: self.required_prop(pool, "gpus", count)?,
                topology: self.prop(pool, "topology", text),
                min: self.required_prop(pool, "min", count)?,
                max: self.required_prop(pool, "max", count)?,
                spot: self.required_prop(pool, "spot", flag)?,
            });
        }
        let mut fleets = Vec::with_capacity(self.children(item, "site/fleet").count());
        for (fleet_id, fleet) in self.children(item, "site/fleet") {
            fleets.push(Fleet {
                item: fleet_id,
                name: Self::name(fleet),
                soc: self.required_prop(fleet, "soc", text)?,
                count: self.required_prop(fleet, "count", count)?,
                memory: self.required_prop(fleet, "memory", bytes)?,
            });
        }
        let registry = self.child_arg(id, "site/registry");
        Some(Site {
            item: id,
            name: Self::name(item),
            tier: self.required_word(item, item.prop("tier"), "tier", Tier::parse)?,
            region: self.required_prop(item, "region", text)?,
            provider: self.word(item, item.prop("provider"), "provider", Provider::parse),
            cluster,
            nodes,
            pools,
            fleets,
            registry: self.optional(item, registry.as_ref(), "registry", uri),
            depends_on: self.depends_on(item, "site/depends-on"),
        })
    }

    pub(super) fn model(&mut self, id: ItemId, item: &'f Item) -> Option<Model> {
        Some(Model {
            item: id,
            name: Self::name(item),
            base: self.required_prop(item, "base", text)?,
            dtype: self.required_word(item, item.prop("dtype"), "dtype", Dtype::parse)?,
            format: self.required_word(item, item.prop("format"), "format", WeightFormat::parse)?,
            source: self.prop(item, "source", uri),
        })
    }

    pub(super) fn secret(&mut self, id: ItemId, item: &'f Item) -> Option<Secret> {
        let source = |kind: &ValueKind| match kind {
            ValueKind::SecretSource(source) => Some((**source).clone()),
            _ => None,
        };
        Some(Secret { item: id, name: Self::name(item), from: self.required_prop(item, "from", source)? })
    }

    pub(super) fn ledger(&mut self, id: ItemId, item: &'f Item) -> Option<Ledger> {
        let Some((_, iceberg)) = self.child(item, "ledger/iceberg") else {
            let message = format!("{} has no `iceberg`: sovereign needs it", Self::describe(item));
            self.mismatch(item.keyword_span, message);
            return None;
        };
        Some(Ledger {
            item: id,
            name: Self::name(item),
            site: self.reference(item, item.prop("site"), "site", Decl::site),
            catalog: self.required_word(iceberg, iceberg.prop("catalog"), "catalog", IcebergCatalog::parse)?,
            uri: self.prop(iceberg, "uri", uri),
            warehouse: self.required_prop(iceberg, "warehouse", uri)?,
            depends_on: self.depends_on(item, "ledger/depends-on"),
        })
    }

    pub(super) fn dataset(&mut self, id: ItemId, item: &'f Item) -> Option<Dataset> {
        Some(Dataset {
            item: id,
            name: Self::name(item),
            classification: self.required_word(
                item,
                item.prop("classification"),
                "classification",
                Classification::parse,
            )?,
            residency: self.prop(item, "residency", text),
            ledger: self.reference(item, item.prop("ledger"), "ledger", Decl::ledger),
            table: self.prop(item, "table", text),
        })
    }

    pub(super) fn temporal(&mut self, id: ItemId, item: &'f Item) -> Option<Temporal> {
        let persistence = match self.child(item, "temporal/persistence") {
            Some((persistence_id, persistence)) => Some(Persistence {
                item: persistence_id,
                engine: self.required_word(
                    persistence,
                    persistence.args.first(),
                    "persistence",
                    PersistenceEngine::parse,
                )?,
                size: self.prop(persistence, "size", bytes),
            }),
            None => None,
        };
        let mut namespaces = Vec::with_capacity(self.children(item, "temporal/namespace").count());
        for (namespace_id, namespace) in self.children(item, "temporal/namespace") {
            namespaces.push(TemporalNamespace {
                item: namespace_id,
                name: Self::name(namespace),
                retention: self.required_prop(namespace, "retention", millis)?,
            });
        }
        Some(Temporal {
            item: id,
            name: Self::name(item),
            site: self.required_reference(item, item.prop("site"), "site", Decl::site)?,
            endpoint: self.prop(item, "endpoint", uri),
            persistence,
            namespaces,
            depends_on: self.depends_on(item, "temporal/depends-on"),
        })
    }

    pub(super) fn observe(&mut self, id: ItemId, item: &'f Item) -> Option<Observe> {
        let collector = match self.child(item, "observe/collector") {
            Some((collector_id, collector)) => Some(Collector {
                item: collector_id,
                mode: self.required_word(collector, collector.prop("mode"), "mode", CollectorMode::parse)?,
            }),
            None => None,
        };
        let mut exports = Vec::with_capacity(self.children(item, "observe/export").count());
        for (export_id, export) in self.children(item, "observe/export") {
            exports.push(Export {
                item: export_id,
                span: export.keyword_span,
                destination: self.required_word(export, export.args.first(), "export", ExportDestination::parse)?,
                region: self.prop(export, "region", text),
                token: self.reference(export, export.prop("token"), "token", Decl::secret),
                endpoint: self.prop(export, "endpoint", uri),
                site: self.reference(export, export.prop("site"), "site", Decl::site),
                redact: self.required_prop(export, "redact", flag)?,
            });
        }
        let ebpf = self.child_arg(id, "observe/ebpf");
        Some(Observe {
            item: id,
            name: Self::name(item),
            collector,
            exports,
            ebpf: self.required(item, ebpf.as_ref(), "ebpf", flag)?,
            depends_on: self.depends_on(item, "observe/depends-on"),
        })
    }

    pub(super) fn serve(&mut self, id: ItemId, item: &'f Item) -> Option<Serve> {
        let mig = |kind: &ValueKind| match kind {
            ValueKind::MigProfile(profile) => Some(*profile),
            _ => None,
        };
        let mut uses = Vec::with_capacity(self.children(item, "serve/uses").map(|(_, c)| c.args.len()).sum());
        for (_, child) in self.children(item, "serve/uses") {
            for value in &child.args {
                uses.push(self.reference(child, Some(value), "uses", Decl::vector_store)?);
            }
        }
        let arg = |name: &str| self.child_arg(id, name);
        let (mig_arg, gpus, tp, replicas, len, utilization, kv) = (
            arg("serve/mig"),
            arg("serve/gpus"),
            arg("serve/tensor-parallel"),
            arg("serve/replicas"),
            arg("serve/max-model-len"),
            arg("serve/gpu-memory-utilization"),
            arg("serve/kv-cache-dtype"),
        );
        Some(Serve {
            item: id,
            name: Self::name(item),
            model: self.required_reference(item, item.prop("model"), "model", Decl::model)?,
            tier: self.word(item, item.prop("tier"), "tier", Tier::parse),
            site: self.reference(item, item.prop("site"), "site", Decl::site),
            mig: self.optional(item, mig_arg.as_ref(), "mig", mig),
            gpus: self.optional(item, gpus.as_ref(), "gpus", count),
            tensor_parallel: self.optional(item, tp.as_ref(), "tensor-parallel", count),
            replicas: self.required(item, replicas.as_ref(), "replicas", count)?,
            max_model_len: self.optional(item, len.as_ref(), "max-model-len", long),
            gpu_memory_utilization: self.required(item, utilization.as_ref(), "gpu-memory-utilization", number)?,
            kv_cache_dtype: self.required_word(item, kv.as_ref(), "kv-cache-dtype", KvCacheDtype::parse)?,
            uses,
            depends_on: self.depends_on(item, "serve/depends-on"),
        })
    }

    pub(super) fn vectorstore(&mut self, id: ItemId, item: &'f Item) -> Option<VectorStore> {
        let mut collections = Vec::with_capacity(self.children(item, "vectorstore/collection").count());
        for (collection_id, collection) in self.children(item, "vectorstore/collection") {
            collections.push(Collection {
                item: collection_id,
                name: Self::name(collection),
                dims: self.required_prop(collection, "dims", count)?,
                distance: self.required_word(collection, collection.prop("distance"), "distance", Distance::parse)?,
            });
        }
        let (storage, replicas) =
            (self.child_arg(id, "vectorstore/storage"), self.child_arg(id, "vectorstore/replicas"));
        Some(VectorStore {
            item: id,
            name: Self::name(item),
            tier: self.word(item, item.prop("tier"), "tier", Tier::parse),
            site: self.reference(item, item.prop("site"), "site", Decl::site),
            collections,
            storage: self.optional(item, storage.as_ref(), "storage", bytes),
            replicas: self.required(item, replicas.as_ref(), "replicas", count)?,
            depends_on: self.depends_on(item, "vectorstore/depends-on"),
        })
    }

    pub(super) fn eval(&mut self, id: ItemId, item: &'f Item) -> Option<Eval> {
        let cron = |kind: &ValueKind| match kind {
            ValueKind::Cron(cron) => Some((**cron).clone()),
            _ => None,
        };
        let mut metrics = Vec::with_capacity(self.children(item, "eval/metric").count());
        for (metric_id, metric) in self.children(item, "eval/metric") {
            metrics.push(Metric {
                item: metric_id,
                name: Self::name(metric),
                min: self.prop(metric, "min", number),
                max: self.prop(metric, "max", number),
            });
        }
        let Some((runs_on_id, runs_on)) = self.child(item, "eval/runs-on") else {
            let message = format!("{} has no `runs-on`: sovereign needs it", Self::describe(item));
            self.mismatch(item.keyword_span, message);
            return None;
        };
        let runs_on = RunsOn {
            item: runs_on_id,
            temporal: self.required_reference(runs_on, runs_on.args.first(), "runs-on", Decl::temporal)?,
            namespace: self.reference(runs_on, runs_on.prop("namespace"), "namespace", Decl::namespace),
        };
        let (schedule, on_fail) = (self.child_arg(id, "eval/schedule"), self.child_arg(id, "eval/on-fail"));
        Some(Eval {
            item: id,
            name: Self::name(item),
            target: self.required_reference(item, item.prop("target"), "target", Decl::serve)?,
            dataset: self.required_reference(item, item.prop("dataset"), "dataset", Decl::dataset)?,
            schedule: self.optional(item, schedule.as_ref(), "schedule", cron),
            metrics,
            on_fail: self.required_word(item, on_fail.as_ref(), "on-fail", OnFail::parse)?,
            runs_on,
            depends_on: self.depends_on(item, "eval/depends-on"),
        })
    }

    pub(super) fn edge(&mut self, id: ItemId, item: &'f Item) -> Option<Edge> {
        let condition = |kind: &ValueKind| match kind {
            ValueKind::Condition(condition) => Some((**condition).clone()),
            _ => None,
        };
        let mut reads = Vec::with_capacity(self.children(item, "edge/reads").map(|(_, c)| c.args.len()).sum());
        for (_, child) in self.children(item, "edge/reads") {
            for value in &child.args {
                reads.push(self.reference(child, Some(value), "reads", Decl::dataset)?);
            }
        }
        let fallback = match self.child(item, "edge/fallback") {
            Some((fallback_id, fallback)) => Some(Fallback {
                item: fallback_id,
                serve: self.required_reference(fallback, fallback.args.first(), "fallback", Decl::serve)?,
                when: self.required_prop(fallback, "when", condition)?,
                redact: self.required_prop(fallback, "redact", flag)?,
                timeout: self.prop(fallback, "timeout", millis),
            }),
            None => None,
        };
        Some(Edge {
            item: id,
            name: Self::name(item),
            fleet: self.required_reference(item, item.prop("fleet"), "fleet", Decl::fleet)?,
            model: self.required_reference(item, item.prop("model"), "model", Decl::model)?,
            version: self.prop(item, "version", text),
            signing_key: self.reference(item, item.prop("signing-key"), "signing-key", Decl::secret),
            reads,
            fallback,
            depends_on: self.depends_on(item, "edge/depends-on"),
        })
    }
}
