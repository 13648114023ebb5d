//! Topology-aware placement of a gang inside one pool: the fewest nodes first, then the fewest
//! leaf switches, then the least free capacity left stranded on the chosen nodes (best fit).
//!
//! A gang that fits on one node goes to the node with the fewest free accelerators that still
//! holds it (O(log nodes)). A larger gang needs at least `k_min` nodes, the number of the
//! emptiest nodes whose free accelerators add up to the gang (read from the pool's free-count
//! histogram). We look for a plan of `k_min` nodes inside one leaf switch, then inside one pod
//! (fewest leaves), then across the pool; within a scope nodes are taken emptiest first, ties
//! broken towards leaves with more free accelerators, and the last node by best fit. Minimising
//! leaves within a pod or pool is greedy, not exact.

use crate::cluster::{Cluster, Domain, NodeId, PoolId};

/// Accelerators taken on each node.
pub type Allocation = Vec<(NodeId, u32)>;

impl Cluster {
    /// Where a gang of `gang` accelerators would go in `pool` right now, or `None` if the pool's
    /// up nodes do not have that many free accelerators.
    pub fn place(&self, pool: PoolId, gang: u32) -> Option<Allocation> {
        let p = &self.pools[pool.0 as usize];
        if gang == 0 || p.free < gang {
            return None;
        }
        if gang <= p.accelerators_per_node
            && let Some(node) = p.by_free.first_at_least(gang)
        {
            return Some(vec![(NodeId(node), gang)]);
        }
        let k_min = min_nodes(&p.free_histogram, gang);
        let pods = &self.pods[p.first_pod as usize..(p.first_pod + p.pod_count) as usize];
        self.best_in_one_leaf(p.first_leaf, p.leaf_count, gang, k_min)
            .or_else(|| self.best_in_one_of(pods, gang, k_min))
            .or_else(|| {
                self.plan_in(p.first_node, p.node_count, gang)
                    .map(|(_, a)| a)
            })
    }

    /// The best plan of `k_min` nodes inside one of the leaves `first..first + count`: what
    /// [`Self::best_in_one_of`] over those leaves returns, but each leaf is ranked from its
    /// free-count histogram (a plan inside one leaf has one leaf, so only its node count and
    /// stranded accelerators differ) and only the winner's nodes are visited.
    fn best_in_one_leaf(
        &self,
        first: u32,
        count: u32,
        gang: u32,
        k_min: u32,
    ) -> Option<Allocation> {
        let stride = self.histogram_stride as usize;
        let mut best: Option<(u32, usize)> = None;
        for leaf in first as usize..(first + count) as usize {
            if self.leaves[leaf].free < gang {
                continue;
            }
            let histogram = &self.leaf_free_histogram[leaf * stride..(leaf + 1) * stride];
            if let Some((nodes, stranded)) = plan_shape(histogram, gang)
                && nodes == k_min
                && best.is_none_or(|(b, _)| stranded < b)
            {
                best = Some((stranded, leaf));
                if stranded == 0 {
                    // Nothing later can be strictly better, and ties keep the first.
                    break;
                }
            }
        }
        let (_, leaf) = best?;
        let domain = &self.leaves[leaf];
        self.plan_in(domain.first_node, domain.node_count, gang)
            .map(|(_, allocation)| allocation)
    }

    /// The best plan of `k_min` nodes inside any one of `domains` (leaves or pods).
    fn best_in_one_of(&self, domains: &[Domain], gang: u32, k_min: u32) -> Option<Allocation> {
        let mut best: Option<(Plan, Allocation)> = None;
        for domain in domains.iter().filter(|d| d.free >= gang) {
            if let Some((plan, allocation)) =
                self.plan_in(domain.first_node, domain.node_count, gang)
                && plan.nodes == k_min
                && best.as_ref().is_none_or(|(b, _)| plan < *b)
            {
                best = Some((plan, allocation));
            }
        }
        best.map(|(_, allocation)| allocation)
    }

    /// Emptiest-first plan over the nodes `first..first + count`.
    fn plan_in(&self, first: u32, count: u32, gang: u32) -> Option<(Plan, Allocation)> {
        let mut candidates: Vec<(u32, u32, u32)> = (first..first + count)
            .filter_map(|n| {
                let node = &self.nodes[n as usize];
                (node.up && node.free > 0)
                    .then(|| (node.free, self.leaves[node.leaf as usize].free, n))
            })
            .collect();
        // Emptiest nodes first; among equals, nodes under emptier leaves, then lower index.
        candidates.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut taken = 0u32;
        let mut allocation = Vec::new();
        let mut index = 0;
        while index < candidates.len() {
            let (free, _, node) = candidates[index];
            let still_needed = gang - taken;
            if free >= still_needed {
                // Last node: the smallest remaining node that still covers what is needed.
                let &(best_free, _, best_node) = candidates[index..]
                    .iter()
                    .filter(|c| c.0 >= still_needed)
                    .min_by_key(|c| c.0)
                    .expect("the current node qualifies");
                allocation.push((NodeId(best_node), still_needed));
                let stranded = best_free - still_needed;
                let mut leaves: Vec<u32> = allocation
                    .iter()
                    .map(|(n, _)| self.nodes[n.0 as usize].leaf)
                    .collect();
                leaves.sort_unstable();
                leaves.dedup();
                let plan = Plan {
                    nodes: allocation.len() as u32,
                    leaves: leaves.len() as u32,
                    stranded,
                };
                return Some((plan, allocation));
            }
            allocation.push((NodeId(node), free));
            taken += free;
            index += 1;
        }
        None
    }
}

/// How good a placement is; smaller is better, compared field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Plan {
    nodes: u32,
    leaves: u32,
    stranded: u32,
}

/// (nodes, stranded accelerators) of the plan [`Cluster::plan_in`] makes for `gang` over nodes
/// whose free counts are `histogram` (`histogram[f]` nodes with `f` free), or `None` if they
/// hold fewer. Emptiest first: whole nodes are taken while the next one does not cover what is
/// still needed; then the last node is the one with the fewest free that covers it.
fn plan_shape(histogram: &[u32], gang: u32) -> Option<(u32, u32)> {
    let mut still_needed = gang;
    let mut nodes = 0u32;
    for free in (1..histogram.len() as u32).rev() {
        let count = histogram[free as usize];
        if count == 0 {
            continue;
        }
        // Nodes with this many free taken whole before one covers the rest.
        let whole = if free >= still_needed {
            0
        } else {
            still_needed.div_ceil(free) - 1
        };
        if whole < count {
            still_needed -= whole * free;
            // Untaken nodes: the rest of this count and every smaller one.
            let last = (still_needed..=free).find(|&f| histogram[f as usize] > 0)?;
            return Some((nodes + whole + 1, last - still_needed));
        }
        still_needed -= count * free;
        nodes += count;
    }
    None
}

/// The fewest nodes whose free accelerators add up to `gang`, from a free-count histogram.
fn min_nodes(free_histogram: &[u32], gang: u32) -> u32 {
    let mut remaining = gang;
    let mut nodes = 0;
    for free in (1..free_histogram.len()).rev() {
        let available = free_histogram[free];
        let wanted = remaining.div_ceil(free as u32);
        if wanted <= available {
            return nodes + wanted;
        }
        nodes += available;
        remaining -= available * free as u32;
    }
    u32::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_nodes_takes_the_emptiest_nodes_first() {
        // Two empty 8-way nodes and three with 3 free: 19 needs 2 + 1.
        let mut histogram = vec![0; 9];
        histogram[8] = 2;
        histogram[3] = 3;
        assert_eq!(min_nodes(&histogram, 19), 3);
        assert_eq!(min_nodes(&histogram, 16), 2);
        assert_eq!(min_nodes(&histogram, 25), 5);
        assert_eq!(min_nodes(&histogram, 26), u32::MAX);
    }

    proptest::proptest! {
        /// The histogram shortcut ranks a leaf's plan as the node-by-node plan does.
        #[test]
        fn plan_shape_matches_the_node_by_node_plan(
            taken in proptest::collection::vec(0u32..=8, 1..12),
            gang in 1u32..100,
        ) {
            let pool = crate::cluster::PoolConfig {
                name: "p".into(),
                accelerator: "a".into(),
                nodes: taken.len() as u32,
                accelerators_per_node: 8,
                nodes_per_leaf: 16,
                leaves_per_pod: 1,
            };
            let mut cluster = Cluster::new(&[pool]).unwrap();
            for (node, &count) in taken.iter().enumerate() {
                if count > 0 {
                    cluster.allocate(NodeId(node as u32), count);
                }
            }
            let stride = cluster.histogram_stride as usize;
            let shape = plan_shape(&cluster.leaf_free_histogram[..stride], gang);
            let plan = cluster
                .plan_in(0, taken.len() as u32, gang)
                .map(|(plan, _)| (plan.nodes, plan.stranded));
            proptest::prop_assert_eq!(shape, plan);
        }
    }
}
