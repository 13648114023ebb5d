//! Latency-bandwidth (alpha-beta) cost of collectives over a two-level network: a scale-up
//! domain (NVLink, Infinity Fabric, HCCS) inside a node and a scale-out fabric between nodes.
//!
//! Ring algorithms after Thakur, Rabenseifner and Gropp 2005 ("Optimization of Collective
//! Communication Operations in MPICH"): all-reduce moves 2(n-1)/n of the buffer per rank,
//! reduce-scatter and all-gather (n-1)/n, all-to-all (n-1)/n. A group spanning nodes runs the
//! hierarchical form NCCL uses: the intra-node step over the scale-up links, then k parallel
//! inter-node rings (one per local rank, each on its own NIC) over 1/k of the data.
//!
//! Topologies: a switched scale-up domain (NVSwitch, NVL72's NVLink Switch, Ascend UB) or a
//! full mesh (AMD Infinity Fabric, Gaudi's on-chip RoCE all-to-all) gives every device its whole
//! scale-up bandwidth towards any peer set; a torus (TPU ICI, Trainium NeuronLink) spans a slice
//! of up to `max_slice` devices and runs collectives dimension by dimension; slices and nodes
//! join over the scale-out network (InfiniBand/RoCE rails, TPU DCN), whose bandwidth divides by
//! the oversubscription of the fabric's upper tier.

use crate::efficiency::Efficiency;
use serde::Serialize;
use suanli_catalog::Accelerator;

/// Where a communication group sits and how fast its links are.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Group {
    /// Ranks in the group.
    pub size: u32,
    /// Ranks of the group inside one scale-up domain (1..=size).
    pub ranks_per_domain: u32,
    /// Scale-up bandwidth per device, one direction, bytes/s, after efficiency.
    pub scaleup_bytes_per_s: f64,
    /// Scale-out bandwidth per device, one direction, bytes/s, after efficiency.
    pub scaleout_bytes_per_s: f64,
    pub scaleup_latency_s: f64,
    pub scaleout_latency_s: f64,
    /// Ring steps of one pass inside a scale-up domain: local - 1 on a switch, the sum of the
    /// torus sides the group spans on a torus.
    pub scaleup_steps: u32,
    /// Torus dimensions the group spans inside a domain (0 = switched or full mesh).
    pub torus_dims_used: u32,
}

/// The two-level network devices of one type sit on: scale-up domains of at most a node, and
/// the scale-out fabric between them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fabric {
    /// Devices per scale-up domain: the catalog's domain capped by the node size when the
    /// domain is one server, the rack (NVL72) or supernode (CloudMatrix384) when it spans
    /// servers, the slice when the links form a torus (see [`Fabric::for_job`]).
    pub domain: u32,
    /// Torus dimensions of the scale-up links, 0 for a switch or full mesh.
    pub torus_dims: u32,
    /// Point-to-point links to every other device of the domain (`ScaleUp::full_mesh`).
    pub full_mesh: bool,
    max_slice: Option<u32>,
    scaleup_gb_per_s_unidir: f64,
    scaleout_gb_per_s: f64,
    efficiency: Efficiency,
}

impl Fabric {
    /// The fabric of `accelerator` on nodes of `per_node` devices with `scaleout_gb_per_s` each.
    pub fn new(
        accelerator: &Accelerator,
        per_node: u32,
        scaleout_gb_per_s: f64,
        efficiency: &Efficiency,
    ) -> Fabric {
        let scaleup = &accelerator.scaleup;
        // A domain wider than the catalog's server (NVL72: 72 GPUs on 4-GPU trays) spans nodes.
        let spans_nodes = scaleup.domain_size > accelerator.default_per_node;
        let domain = if spans_nodes {
            scaleup.domain_size.max(1)
        } else {
            scaleup.domain_size.clamp(1, per_node.max(1))
        };
        Fabric {
            domain,
            torus_dims: scaleup.torus_dims.unwrap_or(0),
            full_mesh: scaleup.full_mesh,
            max_slice: scaleup.max_slice,
            scaleup_gb_per_s_unidir: scaleup.bandwidth_gb_per_s_unidir(),
            scaleout_gb_per_s,
            efficiency: *efficiency,
        }
    }

    /// The fabric as a job of `count` devices sees it: a torus slice as large as the job (up to
    /// `max_slice`) is one scale-up domain, and the scale-out bandwidth between domains divides
    /// by the upper tier's `oversubscription` (1 = non-blocking fat tree).
    pub fn for_job(mut self, count: u64, oversubscription: f64) -> Fabric {
        if let Some(max_slice) = self.max_slice {
            let slice = count.min(max_slice as u64).max(1) as u32;
            self.domain = self.domain.max(slice);
        }
        if oversubscription > 1.0 {
            self.scaleout_gb_per_s /= oversubscription;
        }
        self
    }

    /// The fabric of a torus job split into slices of `slice_size` devices that only the
    /// scale-out network (TPU DCN) joins; no change for switched fabrics or `None`.
    pub fn with_slice_size(mut self, slice_size: Option<u32>) -> Fabric {
        if let (Some(slice), true) = (slice_size, self.torus_dims > 0) {
            self.domain = slice.clamp(1, self.domain.max(1));
        }
        self
    }

    /// A group of `size` ranks, `stride` apart, on this fabric.
    pub fn group(&self, size: u32, stride: u32) -> Group {
        let mut group = Group::new(
            size,
            stride,
            self.domain,
            self.scaleup_gb_per_s_unidir,
            self.scaleout_gb_per_s,
            &self.efficiency,
        );
        if self.torus_dims > 0 && group.ranks_per_domain > 1 {
            group.onto_torus(self.domain, self.torus_dims);
        }
        if self.full_mesh {
            group.onto_mesh(self.domain);
        }
        group
    }
}

/// The sides of a `dims`-dimensional torus slice of `devices` chips, longest first: TPU slices
/// are built from 4x4x4 cubes (v4, v5p) or 4x4 blocks (v5e, v6e) into powers of two per side
/// (v5p-1024 = 8x8x8 chips, v5e-256 = 16x16; cloud.google.com/tpu/docs "TPU topologies"), so
/// the power-of-two part is spread as evenly as possible and any odd factor (PaLM's 3072-chip
/// pods) lengthens the shortest side.
pub fn torus_sides(devices: u32, dims: u32) -> Vec<u32> {
    let mut sides = [1u32; 3];
    let dims = dims.clamp(1, 3) as usize;
    fill_torus_sides(&mut sides[..dims], devices);
    sides[..dims].to_vec()
}

/// [`torus_sides`] into `sides` without allocating (the search costs thousands of layouts).
fn fill_torus_sides(sides: &mut [u32], devices: u32) {
    let devices = devices.max(1);
    let power = devices.trailing_zeros();
    sides.fill(1);
    let dims = sides.len();
    for i in 0..power as usize {
        sides[i % dims] *= 2;
    }
    sides.sort_unstable();
    sides[0] *= devices >> power;
    sides.sort_unstable_by(|a, b| b.cmp(a));
}

/// Which collective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collective {
    AllReduce,
    ReduceScatter,
    AllGather,
    AllToAll,
}

impl Group {
    /// A group of `size` ranks laid out with `stride` between consecutive ranks, on devices
    /// packed `per_domain` to a scale-up domain.
    pub fn new(
        size: u32,
        stride: u32,
        per_domain: u32,
        scaleup_gb_per_s_unidir: f64,
        scaleout_gb_per_s: f64,
        efficiency: &Efficiency,
    ) -> Group {
        let ranks_per_domain = if stride >= per_domain {
            1
        } else {
            (per_domain / stride.max(1)).clamp(1, size.max(1))
        };
        // A device without a scale-up link talks to its neighbours over PCIe/the NIC.
        let scaleup = if scaleup_gb_per_s_unidir > 0.0 {
            scaleup_gb_per_s_unidir * efficiency.scaleup
        } else {
            scaleout_gb_per_s * efficiency.scaleout
        };
        Group {
            size,
            ranks_per_domain,
            scaleup_bytes_per_s: scaleup * 1e9,
            scaleout_bytes_per_s: scaleout_gb_per_s * efficiency.scaleout * 1e9,
            scaleup_latency_s: efficiency.scaleup_latency_s,
            scaleout_latency_s: efficiency.scaleout_latency_s,
            scaleup_steps: ranks_per_domain.saturating_sub(1),
            torus_dims_used: 0,
        }
    }

    /// Re-costs the in-domain part on a full mesh of `domain` devices: each device's scale-up
    /// bandwidth is split evenly over its `domain - 1` peers, and a group's collectives run only
    /// over the links between its own ranks (RCCL and HCCL build their rings and trees on
    /// direct links), so `local` ranks drive `local - 1` of the `domain - 1` link groups.
    /// A group with one rank per domain sends nothing over scale-up and is left as it is.
    pub fn onto_mesh(&mut self, domain: u32) {
        let local = self.ranks_per_domain.min(self.size);
        if (2..domain).contains(&local) {
            self.scaleup_bytes_per_s *= (local - 1) as f64 / (domain - 1) as f64;
        }
    }

    /// Re-costs the in-domain part on a `dims`-dimensional torus of `domain` devices.
    ///
    /// Multi-dimensional torus collectives run one bidirectional ring per dimension at a time,
    /// reduce-scatter along each dimension then all-gather back (Chan et al. 2007, "Collective
    /// communication: theory, practice, and experience", section 6; Google's "How to Scale Your
    /// Model", ch. 3: an all-gather over k torus axes with wraparound runs at 2k links' bandwidth
    /// per chip). The bandwidth term is that of one ring at the bandwidth of the links in the
    /// spanned dimensions (2 of the chip's 2*dims links per dimension); the latency term is one
    /// step per chip along each spanned side instead of one per rank.
    ///
    /// The group's ranks fill the slice's sides longest first (see [`torus_sides`]), as JAX's
    /// `mesh_utils.create_device_mesh` lays the innermost mesh axis along whole physical axes.
    pub fn onto_torus(&mut self, domain: u32, dims: u32) {
        let local = self.ranks_per_domain.max(1);
        let mut all_sides = [1u32; 3];
        let sides = &mut all_sides[..dims.clamp(1, 3) as usize];
        fill_torus_sides(sides, domain);
        let mut used = 0;
        let mut covered = 1u64;
        let mut steps = 0;
        for side in sides.iter() {
            if covered >= local as u64 {
                break;
            }
            let along = (local as u64).div_ceil(covered).min(*side as u64);
            steps += along.saturating_sub(1) as u32;
            covered *= *side as u64;
            used += 1;
        }
        let used = used.clamp(1, dims.max(1));
        self.torus_dims_used = used;
        self.scaleup_bytes_per_s *= used as f64 / dims.max(1) as f64;
        self.scaleup_steps = steps.max(1);
    }

    /// Whether any of the group's traffic leaves its scale-up domain (uses the NICs / DCN).
    pub fn crosses_scaleout(&self) -> bool {
        self.size > self.ranks_per_domain.max(1)
    }

    /// Seconds for `collective` over a buffer of `bytes` per rank (the full, unsharded size).
    pub fn time_s(&self, collective: Collective, bytes: f64) -> f64 {
        if self.size <= 1 || bytes <= 0.0 {
            return 0.0;
        }
        let local = self.ranks_per_domain.min(self.size);
        let domains = self.size.div_ceil(local);
        // Fraction of the buffer each rank sends per phase of a ring over n ranks.
        let share = |n: u32| (n as f64 - 1.0) / n as f64;
        let passes = match collective {
            Collective::AllReduce => 2.0,
            _ => 1.0,
        };
        let intra = if local > 1 {
            passes * share(local) * bytes / self.scaleup_bytes_per_s
                + passes * self.scaleup_steps as f64 * self.scaleup_latency_s
        } else {
            0.0
        };
        let inter = if domains > 1 {
            // Each of the `local` ranks carries 1/local of the data over its own NIC. All-to-all
            // sends every byte not bound for the own domain across the fabric.
            let inter_bytes = match collective {
                Collective::AllToAll => bytes * share(domains),
                _ => bytes / local as f64 * share(domains),
            };
            passes * inter_bytes / self.scaleout_bytes_per_s
                + passes * (domains - 1) as f64 * self.scaleout_latency_s
        } else {
            0.0
        };
        intra + inter
    }

    /// Seconds for a flat ring over all ranks whose slowest hop is one device's own NIC, used
    /// for the per-layer ZeRO-3 collectives that every rank issues at once: the measured
    /// ZeRO-3 throughput of Narayanan et al. 2021 (Table 2) follows this bound, not NCCL's
    /// hierarchical optimum.
    pub fn flat_time_s(&self, collective: Collective, bytes: f64) -> f64 {
        if self.size <= 1 || bytes <= 0.0 {
            return 0.0;
        }
        if self.ranks_per_domain >= self.size {
            return self.time_s(collective, bytes);
        }
        let passes = match collective {
            Collective::AllReduce => 2.0,
            _ => 1.0,
        };
        let n = self.size as f64;
        passes
            * ((n - 1.0) / n * bytes / self.scaleout_bytes_per_s
                + (n - 1.0) * self.scaleout_latency_s.min(self.scaleup_latency_s))
    }

    /// Seconds to send `bytes` to one neighbour, across the fabric when `crosses_nodes`.
    pub fn point_to_point_s(&self, bytes: f64, crosses_nodes: bool) -> f64 {
        if crosses_nodes {
            self.scaleout_latency_s + bytes / self.scaleout_bytes_per_s
        } else {
            self.scaleup_latency_s + bytes / self.scaleup_bytes_per_s
        }
    }
}
