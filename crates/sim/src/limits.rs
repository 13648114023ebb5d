//! Largest workloads the simulator accepts, checked when a spec or cluster file is read, before
//! anything is allocated (1e9 nodes or jobs used to take 10-16 GB or abort on allocation).

/// Most jobs in one simulation (the largest public traces hold about 1.2 million).
pub const MAX_JOBS: usize = 10_000_000;
/// Most accelerators in one simulated cluster (ten times the largest announced clusters).
pub const MAX_ACCELERATORS: u64 = 10_000_000;
