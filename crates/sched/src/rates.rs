//! `Rates`: a job's units/s per accelerator type, as a small vector sorted by type name.
//!
//! A job names one to a few types. A `BTreeMap<String, f64>` allocates a whole B-tree node
//! (eleven slots, about 370 bytes) even for one entry; a replay of a million jobs holds one per
//! trace job and one per queued job, so the map alone took most of a gigabyte. This type keeps
//! the map's interface (lookups by name, iteration in name order, serialised as a map) and holds
//! exactly its entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Units/s per accelerator type id, in type-name order; at most one entry per type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates(Vec<(String, f64)>);

impl Rates {
    /// No types.
    pub fn new() -> Self {
        Rates(Vec::new())
    }

    fn position(&self, accelerator: &str) -> Result<usize, usize> {
        self.0
            .binary_search_by(|(name, _)| name.as_str().cmp(accelerator))
    }

    /// The rate on a type, if the job can run there.
    pub fn get(&self, accelerator: &str) -> Option<&f64> {
        self.position(accelerator).ok().map(|i| &self.0[i].1)
    }

    /// True when the type has a rate.
    pub fn contains_key(&self, accelerator: &str) -> bool {
        self.position(accelerator).is_ok()
    }

    /// Sets the rate on a type; returns the previous one.
    pub fn insert(&mut self, accelerator: String, rate: f64) -> Option<f64> {
        match self.position(&accelerator) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, rate)),
            Err(i) => {
                self.0.insert(i, (accelerator, rate));
                None
            }
        }
    }

    /// Sets the rate on a type that has none yet (a map's `entry(..).or_insert(..)`).
    pub fn insert_if_absent(&mut self, accelerator: String, rate: f64) {
        if let Err(i) = self.position(&accelerator) {
            self.0.insert(i, (accelerator, rate));
        }
    }

    /// Keeps only the types for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut f64) -> bool) {
        self.0.retain_mut(|(name, rate)| keep(name, rate));
    }

    /// Takes a type's rate out.
    pub fn remove(&mut self, accelerator: &str) -> Option<f64> {
        let i = self.position(accelerator).ok()?;
        Some(self.0.remove(i).1)
    }

    /// Type ids in name order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(name, _)| name)
    }

    /// Rates in type-name order.
    pub fn values(&self) -> impl Iterator<Item = &f64> {
        self.0.iter().map(|(_, rate)| rate)
    }

    /// (type id, rate) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.0.iter().map(|(name, rate)| (name, rate))
    }

    /// Number of types.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no type can run the job.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
        rates.0.shrink_to_fit();
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
        Rates(map.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Rates {
    type Item = (&'a String, &'a f64);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, f64)>,
        fn(&'a (String, f64)) -> (&'a String, &'a f64),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(name, rate)| (name, rate))
    }
}

impl IntoIterator for Rates {
    type Item = (String, f64);
    type IntoIter = std::vec::IntoIter<(String, f64)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
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
}
