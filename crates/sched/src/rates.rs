//! `Rates`: a job's units/s per accelerator type, as a small vector sorted by type name.
//!
//! A job names one to a few types. A `BTreeMap<String, f64>` allocates a whole B-tree node
//! (eleven slots, about 370 bytes) even for one entry; a replay of a million jobs holds one per
//! trace job and one per queued job, so the map alone took most of a gigabyte. This type keeps
//! the map's interface (lookups by name, iteration in name order, serialised as a map) and holds
//! exactly its entries.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Units/s per accelerator type id, in type-name order; at most one entry per type.
///
/// The entries sit behind an `Arc`, so a clone shares them: a synthetic workload gives every job
/// the same rates, and the simulator copies a job's rates into the scheduler's spec, so a million
/// jobs would otherwise hold (and allocate, and free) a million identical vectors twice over.
/// Changing a shared value copies it first (`Arc::make_mut`). No entries: no allocation.
#[derive(Clone, Debug, Default)]
pub struct Rates(Option<Arc<Vec<(String, f64)>>>);

impl PartialEq for Rates {
    fn eq(&self, other: &Self) -> bool {
        self.entries() == other.entries()
    }
}

impl Rates {
    /// No types.
    pub fn new() -> Self {
        Rates(None)
    }

    fn entries(&self) -> &[(String, f64)] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The entries to change in place (unshared first if shared).
    fn entries_mut(&mut self) -> &mut Vec<(String, f64)> {
        Arc::make_mut(self.0.get_or_insert_with(Default::default))
    }

    /// Drops the vector once it holds nothing, so that "no types" has one representation.
    fn drop_if_empty(&mut self) {
        if self.0.as_ref().is_some_and(|entries| entries.is_empty()) {
            self.0 = None;
        }
    }

    fn position(&self, accelerator: &str) -> Result<usize, usize> {
        self.entries()
            .binary_search_by(|(name, _)| name.as_str().cmp(accelerator))
    }

    /// The rate on a type, if the job can run there.
    pub fn get(&self, accelerator: &str) -> Option<&f64> {
        self.position(accelerator)
            .ok()
            .map(|i| &self.entries()[i].1)
    }

    /// True when the type has a rate.
    pub fn contains_key(&self, accelerator: &str) -> bool {
        self.position(accelerator).is_ok()
    }

    /// Sets the rate on a type; returns the previous one.
    pub fn insert(&mut self, accelerator: String, rate: f64) -> Option<f64> {
        match self.position(&accelerator) {
            Ok(i) => Some(std::mem::replace(&mut self.entries_mut()[i].1, rate)),
            Err(i) => {
                self.entries_mut().insert(i, (accelerator, rate));
                None
            }
        }
    }

    /// Sets the rate on a type that has none yet (a map's `entry(..).or_insert(..)`).
    pub fn insert_if_absent(&mut self, accelerator: String, rate: f64) {
        if let Err(i) = self.position(&accelerator) {
            self.entries_mut().insert(i, (accelerator, rate));
        }
    }

    /// Keeps only the types for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut f64) -> bool) {
        if self.is_empty() {
            return;
        }
        self.entries_mut()
            .retain_mut(|(name, rate)| keep(name, rate));
        self.drop_if_empty();
    }

    /// Takes a type's rate out.
    pub fn remove(&mut self, accelerator: &str) -> Option<f64> {
        let i = self.position(accelerator).ok()?;
        let rate = self.entries_mut().remove(i).1;
        self.drop_if_empty();
        Some(rate)
    }

    /// Type ids in name order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries().iter().map(|(name, _)| name)
    }

    /// Rates in type-name order.
    pub fn values(&self) -> impl Iterator<Item = &f64> {
        self.entries().iter().map(|(_, rate)| rate)
    }

    /// (type id, rate) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.entries().iter().map(|(name, rate)| (name, rate))
    }

    /// Number of types.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// True when no type can run the job.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }
}

impl std::ops::Index<&str> for Rates {
    type Output = f64;

    /// The rate on a type; panics when the type is absent, as a map's index does.
    fn index(&self, accelerator: &str) -> &f64 {
        self.get(accelerator)
            .unwrap_or_else(|| panic!("no rate for accelerator type `{accelerator}`"))
    }
}

impl FromIterator<(String, f64)> for Rates {
    /// Later entries for the same type replace earlier ones, as collecting into a map does.
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(entries: I) -> Self {
        let mut rates = Rates::new();
        for (accelerator, rate) in entries {
            rates.insert(accelerator, rate);
        }
        if let Some(entries) = rates.0.as_mut().and_then(Arc::get_mut) {
            entries.shrink_to_fit();
        }
        rates
    }
}

impl<const N: usize> From<[(String, f64); N]> for Rates {
    fn from(entries: [(String, f64); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl From<BTreeMap<String, f64>> for Rates {
    fn from(map: BTreeMap<String, f64>) -> Self {
        // Already sorted and unique.
        let entries: Vec<(String, f64)> = map.into_iter().collect();
        Rates((!entries.is_empty()).then(|| Arc::new(entries)))
    }
}

impl<'a> IntoIterator for &'a Rates {
    type Item = (&'a String, &'a f64);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, f64)>,
        fn(&'a (String, f64)) -> (&'a String, &'a f64),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries().iter().map(|(name, rate)| (name, rate))
    }
}

impl IntoIterator for Rates {
    type Item = (String, f64);
    type IntoIter = std::vec::IntoIter<(String, f64)>;

    fn into_iter(self) -> Self::IntoIter {
        let entries = self.0.map_or_else(Vec::new, |shared| {
            Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone())
        });
        entries.into_iter()
    }
}

impl Serialize for Rates {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Rates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, f64>::deserialize(deserializer).map(Rates::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_the_map_it_replaces() {
        let entries = [("v100", 2.0), ("k80", 1.0), ("p100", 1.5), ("k80", 0.5)];
        let map: BTreeMap<String, f64> = entries.iter().map(|(t, r)| (t.to_string(), *r)).collect();
        let mut rates: Rates = entries.iter().map(|(t, r)| (t.to_string(), *r)).collect();
        assert!(rates.iter().eq(map.iter()));
        assert_eq!(rates.get("p100"), map.get("p100"));
        assert_eq!(rates.get("a100"), None);
        assert_eq!(rates["k80"], 0.5);
        assert_eq!(
            serde_json::to_string(&rates).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        let back: Rates = serde_json::from_str(r#"{"v100":2.0,"k80":0.5,"p100":1.5}"#).unwrap();
        assert_eq!(back, rates);
        assert_eq!(rates.remove("p100"), Some(1.5));
        assert_eq!(rates.insert("a100".into(), 3.0), None);
        assert_eq!(rates.keys().collect::<Vec<_>>(), ["a100", "k80", "v100"]);
    }

    #[test]
    fn a_clone_shares_until_changed() {
        let original: Rates = [("a100".to_string(), 2.0), ("h100".to_string(), 3.0)].into();
        let mut copy = original.clone();
        assert_eq!(copy, original);
        assert_eq!(copy.remove("a100"), Some(2.0));
        assert_eq!(original.get("a100"), Some(&2.0));
        assert_eq!(copy.keys().collect::<Vec<_>>(), ["h100"]);
        assert_eq!(copy.remove("h100"), Some(3.0));
        assert!(copy.is_empty());
        assert_eq!(copy, Rates::new());
        assert_eq!(original.clone().into_iter().count(), 2);
    }
}
