//! A Slurm cluster's nodes from `sinfo -N -O SINFO_FORMAT`: state, GPU types (GRES) and use,
//! and the suanli pools they form (one per partition-filtered GPU type).

use super::parse::ParseError;

/// Whether suanli may place work on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Idle, mixed, allocated or completing, and responding.
    Up,
    /// Drain requested; running jobs continue, nothing new starts.
    Draining,
    /// Drained: no jobs, nothing starts.
    Drained,
    /// Down, failed, powered off, in maintenance or not yet in service.
    Down,
    /// Not known right now: `unknown` while slurmctld starts, `*` (not responding) until Slurm
    /// itself decides the node is down. Changes nothing.
    Unknown,
}

/// Parses `sinfo` `StateLong` (`idle`, `drained`, `mixed-`, `idle*`, `down~`, ...).
pub fn parse_node_state(text: &str) -> Result<Health, ParseError> {
    let text = text.trim();
    // Suffixes (sinfo(1) "NODE STATE CODES"): `*` not responding, `~` powered off, `#` powering
    // up, `!` pending power down, `%` powering down, `$` maintenance reservation, `@` pending
    // reboot, `^` reboot issued, `-` planned by the backfill scheduler.
    let base = text.trim_end_matches(['*', '~', '#', '!', '%', '$', '@', '^', '-']);
    let suffix = &text[base.len()..];
    let health = match base {
        "idle" | "mixed" | "allocated" | "completing" | "planned" | "reserved" => Health::Up,
        "draining" | "failing" => Health::Draining,
        "drained" => Health::Drained,
        "unknown" | "unk" => Health::Unknown,
        "down" | "fail" | "future" | "inval" | "maint" | "reboot_issued" | "reboot_requested"
        | "powered_down" | "powering_down" | "powering_up" | "blocked" | "perfctrs"
        | "no_respond" => Health::Down,
        _ => return Err(ParseError::UnknownNodeState(text.to_string())),
    };
    Ok(if suffix.contains(['~', '%']) {
        // Powered off or powering down: no work until it is back.
        Health::Down
    } else if suffix.contains('*') && health == Health::Up {
        Health::Unknown
    } else {
        health
    })
}

/// One node as `sinfo` reports it for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmNode {
    pub name: String,
    /// Partition, without the `*` that marks the default one.
    pub partition: String,
    pub state: String,
    pub health: Health,
    /// GPUs per type (`gpu:h100:8` -> ("h100", 8)); untyped GPUs are type `gpu`.
    pub gpus: Vec<(String, u32)>,
    pub gpus_used: Vec<(String, u32)>,
    pub address: String,
    pub reason: String,
}

/// Parses a GRES list: `gpu:h100:8,gpu:a100:2(S:0-1)` or `gpu:h100:0(IDX:N/A)`; other GRES
/// (`shard`, `mps`) are ignored. Returns (type, count) per GPU type.
pub fn parse_gres(text: &str, line: usize) -> Result<Vec<(String, u32)>, ParseError> {
    let mut gpus: Vec<(String, u32)> = Vec::new();
    let text = text.trim();
    if text.is_empty() || text == "(null)" {
        return Ok(gpus);
    }
    // Commas also appear inside `(IDX:0,2-3)`: split only outside parentheses.
    let mut depth = 0i32;
    let mut items = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    for item in items {
        let item = item.split('(').next().unwrap_or("").trim();
        let parts: Vec<&str> = item.split(':').collect();
        if parts.first() != Some(&"gpu") {
            continue;
        }
        let (kind, count) = match parts.as_slice() {
            [_, count] => ("gpu", *count),
            [_, kind, count] => (*kind, *count),
            _ => ("", ""),
        };
        let count: u32 = count.parse().map_err(|_| ParseError::Value {
            line,
            what: "GRES count",
            value: item.chars().take(80).collect(),
        })?;
        match gpus.iter_mut().find(|(k, _)| k == kind) {
            Some(entry) => entry.1 += count,
            None => gpus.push((kind.to_string(), count)),
        }
    }
    Ok(gpus)
}

/// Parses `sinfo -h -N -O SINFO_FORMAT` output.
pub fn parse_sinfo(text: &str) -> Result<Vec<SlurmNode>, ParseError> {
    let mut nodes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let body = line.strip_suffix('|').unwrap_or(line);
        let f: Vec<&str> = body.splitn(7, '|').collect();
        if f.len() != 7 {
            return Err(ParseError::Fields {
                line: number,
                expected: 7,
                found: f.len(),
                text: line.chars().take(200).collect(),
            });
        }
        let reason = f[6].trim();
        nodes.push(SlurmNode {
            name: f[0].trim().to_string(),
            partition: f[1].trim().trim_end_matches('*').to_string(),
            state: f[2].trim().to_string(),
            health: parse_node_state(f[2])?,
            gpus: parse_gres(f[3], number)?,
            gpus_used: parse_gres(f[4], number)?,
            address: f[5].trim().to_string(),
            reason: if reason == "none" {
                String::new()
            } else {
                reason.to_string()
            },
        });
    }
    Ok(nodes)
}

/// A suanli pool on a Slurm cluster: the nodes of one partition with one GPU type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmPool {
    /// Slurm's GRES type (`h100`), as `--gres` needs it.
    pub gres_type: String,
    /// suanli's catalog id for it (`h100-sxm5-80gb`).
    pub accelerator: String,
    /// Node names in a fixed order; device `d` of the pool is GPU `d % per_node` of node
    /// `d / per_node`.
    pub nodes: Vec<String>,
    pub addresses: Vec<String>,
    pub per_node: u32,
}

/// Groups nodes into pools by GPU type, in `partition` when given. Nodes with fewer GPUs of the
/// type than the most common count are left out (a gang's per-node share must fit every node).
pub fn pools(nodes: &[SlurmNode], partition: Option<&str>) -> Vec<SlurmPool> {
    let mut pools: Vec<SlurmPool> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for node in nodes {
        if partition.is_some_and(|p| p != node.partition) || !seen.insert(node.name.clone()) {
            continue;
        }
        for (kind, count) in &node.gpus {
            let accelerator = crate::devices::canonical_type(kind);
            match pools.iter_mut().find(|p| p.gres_type == *kind) {
                Some(pool) if pool.per_node == *count => {
                    pool.nodes.push(node.name.clone());
                    pool.addresses.push(node.address.clone());
                }
                Some(_) => {}
                None => pools.push(SlurmPool {
                    gres_type: kind.clone(),
                    accelerator,
                    nodes: vec![node.name.clone()],
                    addresses: vec![node.address.clone()],
                    per_node: *count,
                }),
            }
        }
    }
    pools
}
