//! [`Shared`]: a part of the broker's state that states share until one of them changes it, and
//! whose hash is computed once.
//!
//! The model checker clones the whole state for every step it explores and hashes every state it
//! reaches; most steps change one queue or one channel. A `Shared` part is an [`Arc`]: cloning it
//! is a reference count, and the first `&mut` access of a state that shares it copies it
//! ([`Arc::make_mut`]), so a step pays for what it changes. Each copy also keeps its own hash
//! once computed, so hashing a state hashes again only the parts its step changed: `Hash` writes
//! that one number, a deterministic function of the value (the same value hashes the same in every
//! state, which is what the checker's fingerprints need). Every change goes through `&mut`, which
//! drops the kept hash.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A value shared copy-on-write between states, its hash computed once per copy.
pub struct Shared<T>(Arc<Node<T>>);

struct Node<T> {
    value: T,
    /// The value's hash once computed, 0 until then (a hash of 0 is kept as 1). Two threads
    /// that both find it missing compute the same number, so a plain atomic is enough.
    hash: AtomicU64,
}

impl<T: Clone> Clone for Node<T> {
    /// The copy a change is about to make: without the hash, which the change makes stale.
    fn clone(&self) -> Self {
        Node { value: self.value.clone(), hash: AtomicU64::new(0) }
    }
}

/// Fixed seeds: a value's hash is the same in every state and every run of the process.
const SEEDS: ahash::RandomState = ahash::RandomState::with_seeds(0x414d_5150, 0x302d_392d, 0x3120_6d6f, 0x6465_6c21);

impl<T> Shared<T> {
    /// A value of its own.
    pub fn new(value: T) -> Self {
        Shared(Arc::new(Node { value, hash: AtomicU64::new(0) }))
    }
}

impl<T> Shared<T> {
    /// Whether two states share this part: then it is the same (the converse need not hold).
    pub fn same(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T: Clone> Shared<T> {
    /// The value to change: copied first when another state shares it (as every `&mut` access is).
    pub fn make_mut(this: &mut Self) -> &mut T {
        let node = Arc::make_mut(&mut this.0);
        *node.hash.get_mut() = 0;
        &mut node.value
    }
}

impl<T: Hash> Shared<T> {
    /// The value's hash, computed the first time it is asked for.
    pub fn hash_value(&self) -> u64 {
        match self.0.hash.load(Relaxed) {
            0 => {
                let h = SEEDS.hash_one(&self.0.value).max(1);
                self.0.hash.store(h, Relaxed);
                h
            }
            h => h,
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        Shared::make_mut(self)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Shared::new(T::default())
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Shared::new(value)
    }
}

impl<'a, T> IntoIterator for &'a Shared<T>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        (&self.0.value).into_iter()
    }
}

impl<'a, T: Clone> IntoIterator for &'a mut Shared<T>
where
    &'a mut T: IntoIterator,
{
    type Item = <&'a mut T as IntoIterator>::Item;
    type IntoIter = <&'a mut T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        Shared::make_mut(self).into_iter()
    }
}

impl<T: Hash> Hash for Shared<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_value());
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.value == other.0.value
    }
}

impl<T: Eq> Eq for Shared<T> {}

impl<T: PartialOrd> PartialOrd for Shared<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.0.value.partial_cmp(&other.0.value)
    }
}

impl<T: Ord> Ord for Shared<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        self.0.value.cmp(&other.0.value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.value.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Shared::new)
    }
}

#[cfg(test)]
mod tests {
    use super::Shared;
    use std::collections::BTreeMap;

    fn fingerprint<T: std::hash::Hash>(v: &T) -> u64 {
        ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(v)
    }

    #[test]
    fn a_change_copies_the_shared_value_and_leaves_the_other_state_as_it_was() {
        let a: Shared<BTreeMap<u8, u8>> = Shared::new([(1, 1)].into());
        let mut b = a.clone();
        b.insert(2, 2);
        assert_eq!(a.len(), 1);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn equal_values_hash_the_same_however_they_were_reached() {
        let mut a: Shared<Vec<u8>> = Shared::new(vec![1]);
        let b: Shared<Vec<u8>> = Shared::new(vec![1, 2]);
        let before = fingerprint(&a);
        a.push(2);
        assert_ne!(fingerprint(&a), before, "a change drops the kept hash");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(a, b);
        a.pop();
        assert_eq!(fingerprint(&a), before);
    }

    #[test]
    fn a_copy_made_for_a_change_does_not_keep_the_old_hash() {
        let a: Shared<Vec<u8>> = Shared::new(vec![1]);
        let _ = fingerprint(&a);
        let mut b = a.clone();
        b.push(3);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&b), fingerprint(&Shared::new(vec![1u8, 3])));
    }
}
