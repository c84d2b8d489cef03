//! The free-capacity index placement searches instead of scanning every GPU.
//!
//! Scanning every GPU of every candidate site for every replica made
//! placement O(replicas × GPUs): 30,000 serves on 4,286 nodes took seconds,
//! and `tier=` requests over thousands of sites as long. Most GPUs of a
//! fabric are in one of a few states (empty, or holding the same instances),
//! so the index groups them by *scope* (a site, or every resident site of a
//! tier: what a request may use) and *state*, each group ordered by GPU
//! number. A replica's best candidate on a node the request has not used yet
//! is then the first GPU of some group, found per group instead of per GPU;
//! nodes the request already uses are few and are looked at one by one.
//!
//! GPU numbers follow site, node and index order, and a tier's sites are
//! taken in site order, so "the first GPU of a group" is the GPU placement's
//! order prefers among equals: the index changes how fast the choice is
//! found, never which it is.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use crate::view::{SiteId, Sites, Tier};

/// What a request may use: one site, or every resident site of a tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Site(SiteId),
    Tier(Tier),
}

/// Everything that decides whether and where a MIG profile fits on a GPU.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MigState {
    pub(crate) model: Arc<str>,
    pub(crate) occupied: u8,
    pub(crate) compute: u32,
    /// The profiles of its instances, sorted.
    pub(crate) profiles: Vec<String>,
}

/// Nodes grouped by what whole-GPU placement looks at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct NodeState {
    pub(crate) model: Arc<str>,
    pub(crate) mig_capable: bool,
    pub(crate) free: u32,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct FreeIndex {
    /// MIG-capable GPUs not held whole, by scope and state: GPU numbers.
    /// (Scopes are only looked up, never iterated: a hash map; the states
    /// of a scope are iterated, in order.)
    pub(crate) mig: Groups<MigState>,
    /// GPU nodes by scope and state: node keys.
    pub(crate) nodes: Groups<NodeState>,
    /// The GPUs of each node key (empty for TPU pools).
    pub(crate) node_gpus: Vec<Range<usize>>,
    /// The scopes of each site.
    site_scopes: Vec<Vec<Scope>>,
    /// The scopes each site's GPUs are filed under: a small site's own scope
    /// is not indexed (its GPUs are scanned; an index per site of a fabric
    /// of thousands of small sites cost more memory than it saved time).
    indexed_scopes: Vec<Vec<Scope>>,
    /// The scopes indexed so far (built on first use).
    pub(crate) built: std::collections::HashSet<Scope>,
    /// Scan every candidate GPU instead of searching: the reference the
    /// index is tested against (`capacity::place_serves_by_scan`).
    pub(crate) scan_all: bool,
}

/// Sites with at most this many GPUs are scanned, not indexed.
const SMALL_SITE: usize = 64;

impl FreeIndex {
    pub(crate) fn new(sites: &Sites, node_count: usize, site_gpus: &[usize]) -> FreeIndex {
        let resident = |j: &str| sites.residency.as_deref().is_none_or(|r| r == j);
        let site_scopes: Vec<Vec<Scope>> = sites
            .sites
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut scopes = vec![Scope::Site(SiteId::from_index(i))];
                if resident(&s.jurisdiction) {
                    scopes.push(Scope::Tier(s.tier));
                }
                scopes
            })
            .collect();
        let indexed_scopes = site_scopes
            .iter()
            .enumerate()
            .map(|(i, scopes): (usize, &Vec<Scope>)| {
                let small = site_gpus.get(i).is_none_or(|&n| n <= SMALL_SITE);
                scopes.iter().copied().filter(|s| !(small && matches!(s, Scope::Site(_)))).collect()
            })
            .collect();
        FreeIndex { node_gpus: vec![0..0; node_count], site_scopes, indexed_scopes, ..FreeIndex::default() }
    }

    /// Every scope `site` belongs to.
    pub(crate) fn scopes_of(&self, site: SiteId) -> &[Scope] {
        self.site_scopes.get(site.index()).map_or(&[], Vec::as_slice)
    }

    /// The scopes `site`'s GPUs are filed under.
    pub(crate) fn indexed_scopes_of(&self, site: SiteId) -> &[Scope] {
        self.indexed_scopes.get(site.index()).map_or(&[], Vec::as_slice)
    }

    /// Whether a scope's GPUs are in the index (tiers always; a site when it is not small).
    pub(crate) fn is_indexed(&self, scope: Scope) -> bool {
        match scope {
            Scope::Tier(_) => true,
            Scope::Site(site) => self.indexed_scopes.get(site.index()).is_some_and(|s| s.contains(&scope)),
        }
    }

    pub(crate) fn insert_mig(&mut self, scopes: &[Scope], state: &MigState, g: usize) {
        insert(&mut self.mig, scopes, state, g);
    }

    pub(crate) fn remove_mig(&mut self, scopes: &[Scope], state: &MigState, g: usize) {
        remove(&mut self.mig, scopes, state, g);
    }

    pub(crate) fn insert_node(&mut self, scopes: &[Scope], state: &NodeState, node: usize) {
        insert(&mut self.nodes, scopes, state, node);
    }

    pub(crate) fn remove_node(&mut self, scopes: &[Scope], state: &NodeState, node: usize) {
        remove(&mut self.nodes, scopes, state, node);
    }
}

type Groups<S> = HashMap<Scope, BTreeMap<S, BTreeSet<usize>>>;

fn insert<S: Ord + Clone>(groups: &mut Groups<S>, scopes: &[Scope], state: &S, member: usize) {
    for scope in scopes {
        groups.entry(*scope).or_default().entry(state.clone()).or_default().insert(member);
    }
}

/// Removes `member`, and a group left empty (so that searches skip it).
fn remove<S: Ord>(groups: &mut Groups<S>, scopes: &[Scope], state: &S, member: usize) {
    for scope in scopes {
        if let Some(states) = groups.get_mut(scope)
            && let Some(set) = states.get_mut(state)
        {
            set.remove(&member);
            if set.is_empty() {
                states.remove(state);
            }
        }
    }
}

/// The first element of `set` for which `usable` holds, jumping past a run
/// with `skip_to` (the first element that may be usable after a rejected one).
pub(crate) fn first_where(
    set: &BTreeSet<usize>,
    usable: impl Fn(usize) -> bool,
    skip_to: impl Fn(usize) -> usize,
) -> Option<usize> {
    let mut from = *set.first()?;
    loop {
        let &candidate = set.range(from..).next()?;
        if usable(candidate) {
            return Some(candidate);
        }
        from = skip_to(candidate).max(candidate + 1);
    }
}
