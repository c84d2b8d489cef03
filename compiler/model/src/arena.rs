//! Typed ids: an `Id<Site>` indexes the sites and nothing else, so an
//! emitter cannot look a serve up with a site's index.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Index;

/// The index of a `T` in its [`Arena`].
pub struct Id<T> {
    raw: u32,
    of: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    #[must_use]
    pub fn from_index(index: usize) -> Id<T> {
        Id { raw: u32::try_from(index).unwrap_or(u32::MAX), of: PhantomData }
    }

    #[must_use]
    pub fn index(self) -> usize {
        self.raw as usize
    }
}

// By hand: derives would require `T` itself to be Copy, Eq, ….
impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<T> Eq for Id<T> {}
impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.raw.cmp(&other.raw)
    }
}
impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}
impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = std::any::type_name::<T>().rsplit("::").next().unwrap_or("?");
        write!(f, "{kind}#{}", self.raw)
    }
}

/// Values of one kind, in spec order, indexed by [`Id`].
#[derive(Clone, Debug)]
pub struct Arena<T> {
    items: Vec<T>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena { items: Vec::new() }
    }
}

impl<T> Arena<T> {
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Arena<T> {
        Arena { items: Vec::with_capacity(capacity) }
    }

    pub fn push(&mut self, value: T) -> Id<T> {
        self.items.push(value);
        Id::from_index(self.items.len() - 1)
    }

    #[must_use]
    pub fn get(&self, id: Id<T>) -> Option<&T> {
        self.items.get(id.index())
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every value with its id, in spec order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Id<T>, &T)> + '_ {
        self.items.iter().enumerate().map(|(i, v)| (Id::from_index(i), v))
    }

    pub fn ids(&self) -> impl ExactSizeIterator<Item = Id<T>> + use<T> {
        (0..self.items.len()).map(Id::from_index)
    }

    pub fn values(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }
}

impl<T> Index<Id<T>> for Arena<T> {
    type Output = T;
    fn index(&self, id: Id<T>) -> &T {
        &self.items[id.index()]
    }
}
