//! Tenant files in TOML: one `[[tenant]]` table per tenant, with its fair-share weight and the
//! accelerators guaranteed to it per accelerator type (`suanli simulate --tenants FILE`).
//!
//! ```toml
//! [[tenant]]
//! name = "resnet-18"          # the trace's tenant name (gavel: the job family)
//! weight = 2.0                # optional fair-share weight, > 0 (1 when omitted)
//! guaranteed = { v100 = 12 }  # optional accelerators per type id (none when omitted)
//! ```
//!
//! Unknown keys are errors, so a typo never silently falls back to a default. Tenants of the trace
//! that the file does not name get weight 1 and no guarantee. [`check_against_cluster`] refuses a
//! guarantee on a type the cluster lacks, or guarantees that add up to more than a type's
//! accelerators (they could never all be honoured).

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use suanli_sched::TenantConfig;

use crate::workload::ClusterSpec;

/// What is wrong with a tenant file.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TenantFileError {
    /// The file cannot be read.
    #[error("cannot read tenant file {file}: {message}")]
    Read { file: String, message: String },
    /// The file is not a valid tenant file; `line` is 1-based when known.
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    /// The tenants do not fit the cluster.
    #[error("{file}: {message}")]
    Cluster { file: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantFile {
    #[serde(default)]
    tenant: Vec<TenantEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    name: String,
    weight: Option<f64>,
    #[serde(default)]
    guaranteed: BTreeMap<String, u32>,
}

/// Reads and parses a tenant file.
pub fn load_tenants(path: &Path) -> Result<Vec<TenantConfig>, TenantFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| TenantFileError::Read {
        file: file.clone(),
        message: e.to_string(),
    })?;
    parse_tenants_toml(&text, &file)
}

/// Parses the text of a tenant file; `file` names it in errors.
pub fn parse_tenants_toml(text: &str, file: &str) -> Result<Vec<TenantConfig>, TenantFileError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let parsed: TenantFile = toml::from_str(text).map_err(|e| TenantFileError::Invalid {
        file: file.to_string(),
        line: e.span().map_or(1, |span| line_of(span.start)),
        message: e.message().trim().replace('\n', "; "),
    })?;
    if parsed.tenant.is_empty() {
        return Err(TenantFileError::Invalid {
            file: file.to_string(),
            line: 1,
            message: "no [[tenant]] table; expected at least one with a `name`".to_string(),
        });
    }
    // Lines of the `name = ...` keys, in order, to point errors at the tenant concerned.
    let name_lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with("name"))
        .map(|(index, _)| index + 1)
        .collect();
    let mut seen = BTreeSet::new();
    let mut tenants = Vec::with_capacity(parsed.tenant.len());
    for (index, entry) in parsed.tenant.into_iter().enumerate() {
        let invalid = |message: String| TenantFileError::Invalid {
            file: file.to_string(),
            line: name_lines.get(index).copied().unwrap_or(1),
            message,
        };
        if entry.name.trim().is_empty() {
            return Err(invalid(
                "field `name` is empty; expected the tenant's name as the trace gives it"
                    .to_string(),
            ));
        }
        if !seen.insert(entry.name.clone()) {
            return Err(invalid(format!(
                "tenant `{}` is configured twice; expected one [[tenant]] per name",
                entry.name
            )));
        }
        let weight = entry.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight > 0.0) {
            return Err(invalid(format!(
                "tenant `{}`: field `weight` is {weight}; expected a number > 0",
                entry.name
            )));
        }
        tenants.push(TenantConfig {
            name: entry.name,
            guaranteed: entry
                .guaranteed
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            weight,
        });
    }
    Ok(tenants)
}

/// Refuses guarantees on types the cluster lacks, or adding up to more than a type holds.
pub fn check_against_cluster(
    tenants: &[TenantConfig],
    cluster: &ClusterSpec,
    file: &str,
) -> Result<(), TenantFileError> {
    let mut capacity: BTreeMap<&str, u32> = BTreeMap::new();
    for pool in &cluster.pools {
        *capacity.entry(pool.accelerator.as_str()).or_insert(0) +=
            pool.nodes * pool.accelerators_per_node;
    }
    let mut promised: BTreeMap<&str, u32> = BTreeMap::new();
    for tenant in tenants {
        for (accelerator, count) in &tenant.guaranteed {
            if !capacity.contains_key(accelerator.as_str()) {
                let types: Vec<&str> = capacity.keys().copied().collect();
                return Err(TenantFileError::Cluster {
                    file: file.to_string(),
                    message: format!(
                        "tenant `{}` is guaranteed {count} of `{accelerator}`, which cluster {} \
                         does not have; its types are {}",
                        tenant.name,
                        cluster.name,
                        types.join(", ")
                    ),
                });
            }
            *promised.entry(accelerator.as_str()).or_insert(0) += count;
        }
    }
    for (accelerator, total) in promised {
        let available = capacity[accelerator];
        if total > available {
            return Err(TenantFileError::Cluster {
                file: file.to_string(),
                message: format!(
                    "guarantees of `{accelerator}` add up to {total}, more than the {available} \
                     the cluster has; expected at most {available}"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weights_and_guarantees_with_defaults() {
        let text = "[[tenant]]\nname = \"a\"\nweight = 2.5\nguaranteed = { v100 = 12, k80 = 0 }\n\n\
                    [[tenant]]\nname = \"b\"\n";
        let tenants = parse_tenants_toml(text, "t.toml").unwrap();
        assert_eq!(tenants.len(), 2);
        assert_eq!(tenants[0].weight, 2.5);
        assert_eq!(tenants[0].guaranteed, BTreeMap::from([("v100".into(), 12)]));
        assert_eq!(tenants[1].weight, 1.0);
        assert!(tenants[1].guaranteed.is_empty());
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let cases = [
            (
                "[[tenant]]\nname = \"a\"\nweihgt = 2\n",
                "t.toml:3: unknown field `weihgt`",
            ),
            (
                "[[tenant]]\nname = \"a\"\n\n[[tenant]]\nname = \"b\"\nweight = -1\n",
                "t.toml:5: tenant `b`: field `weight` is -1; expected a number > 0",
            ),
            (
                "[[tenant]]\nname = \"a\"\n[[tenant]]\nname = \"a\"\n",
                "t.toml:4: tenant `a` is configured twice",
            ),
            (
                "[[tenant]]\nname = \"a\"\nguaranteed = { v100 = \"many\" }\n",
                "t.toml:3: invalid type: string \"many\", expected u32",
            ),
            ("# nothing\n", "t.toml:1: no [[tenant]] table"),
        ];
        for (text, expected) in cases {
            let error = parse_tenants_toml(text, "t.toml").unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error:?} for {text:?}");
            assert!(!error.contains('\n'), "{error:?}");
        }
    }

    #[test]
    fn guarantees_must_fit_the_cluster() {
        let cluster = crate::presets::load_cluster("gavel-36-36-36").unwrap();
        let tenant = |name: &str, accelerator: &str, count| TenantConfig {
            name: name.into(),
            guaranteed: BTreeMap::from([(accelerator.to_string(), count)]),
            weight: 1.0,
        };
        let fits = [tenant("a", "v100", 20), tenant("b", "v100", 16)];
        assert_eq!(check_against_cluster(&fits, &cluster, "t.toml"), Ok(()));
        let too_many = [tenant("a", "v100", 20), tenant("b", "v100", 17)];
        let error = check_against_cluster(&too_many, &cluster, "t.toml").unwrap_err();
        assert!(
            error.to_string().contains("add up to 37, more than the 36"),
            "{error}"
        );
        let unknown = [tenant("a", "h100", 8)];
        let error = check_against_cluster(&unknown, &cluster, "t.toml").unwrap_err();
        assert!(error.to_string().contains("its types are"), "{error}");
    }
}
