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
            && let Some(&(_, node)) = p.by_free.range((gang, 0)..).next()
        {
            return Some(vec![(NodeId(node), gang)]);
        }
        let k_min = min_nodes(&p.free_histogram, gang);
        let leaves = &self.leaves[p.first_leaf as usize..(p.first_leaf + p.leaf_count) as usize];
        let pods = &self.pods[p.first_pod as usize..(p.first_pod + p.pod_count) as usize];
        self.best_in_one_of(leaves, gang, k_min)
            .or_else(|| self.best_in_one_of(pods, gang, k_min))
            .or_else(|| {
                self.plan_in(p.first_node, p.node_count, gang)
                    .map(|(_, a)| a)
            })
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
}
