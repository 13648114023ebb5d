//! The local pool's accelerators: declared with `--devices TYPE:COUNT,...` or detected with the
//! vendor tools (`nvidia-smi`, `rocm-smi`, `npu-smi`), and the environment variable each vendor's
//! runtime reads to pick its devices.

use std::process::Command;
use std::sync::OnceLock;

fn catalog() -> &'static suanli_catalog::Catalog {
    static CATALOG: OnceLock<suanli_catalog::Catalog> = OnceLock::new();
    CATALOG.get_or_init(suanli_catalog::Catalog::builtin)
}

/// Accelerators of one type on this machine.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceGroup {
    /// Catalog id when known (`h100-sxm5-80gb`), else the name the tool reported, kebab-cased.
    pub accelerator: String,
    pub count: u32,
}

/// What is wrong with a `--devices` list; the message shows the right form.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    /// A count that is not a whole number.
    #[error("`{item}`: the count after `:` must be a whole number, e.g. h100-sxm5-80gb:8")]
    Count { item: String },
    /// An empty type or a zero count.
    #[error("`{item}`: give a type and a positive count, e.g. h100-sxm5-80gb:8")]
    Missing { item: String },
    /// A type that is neither in the catalog nor `cpu`.
    #[error("`{item}`: {error}")]
    Type { item: String, error: UnknownType },
    /// An empty list.
    #[error("no devices given; use TYPE:COUNT,..., e.g. h100-sxm5-80gb:8")]
    Empty,
}

/// A declared accelerator type that is neither a catalog id or alias nor `cpu`.
#[derive(Debug, thiserror::Error)]
#[error("{0} (or `cpu`; `suanli catalog accelerators` lists them all)")]
pub struct UnknownType(pub suanli_catalog::CatalogError);

/// Parses `h100-sxm5-80gb:8,mi300x:4` against `catalog` (the server's: built-in plus
/// `SUANLI_CATALOG`); a type without a count means one device.
pub fn parse_devices(
    text: &str,
    catalog: &suanli_catalog::Catalog,
) -> Result<Vec<DeviceGroup>, DevicesError> {
    let mut groups: Vec<DeviceGroup> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, count) = match item.rsplit_once(':') {
            Some((name, count)) => {
                let count: u32 = count.parse().map_err(|_| DevicesError::Count {
                    item: item.to_string(),
                })?;
                (name, count)
            }
            None => (item, 1),
        };
        if count == 0 || name.is_empty() {
            return Err(DevicesError::Missing {
                item: item.to_string(),
            });
        }
        let accelerator = declared_type(name, catalog).map_err(|error| DevicesError::Type {
            item: item.to_string(),
            error,
        })?;
        match groups.iter_mut().find(|g| g.accelerator == accelerator) {
            Some(group) => group.count += count,
            None => groups.push(DeviceGroup { accelerator, count }),
        }
    }
    if groups.is_empty() {
        return Err(DevicesError::Empty);
    }
    Ok(groups)
}

/// The local pool: declared, detected, or one `cpu` slot per core when neither finds anything.
pub fn local(
    declared: Option<&str>,
    catalog: &suanli_catalog::Catalog,
) -> Result<Vec<DeviceGroup>, DevicesError> {
    if let Some(text) = declared {
        return parse_devices(text, catalog);
    }
    let detected = detect();
    if !detected.is_empty() {
        tracing::info!(?detected, "detected accelerators");
        return Ok(detected);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    tracing::info!(
        cores,
        "no accelerators detected; offering one `cpu` slot per core"
    );
    Ok(vec![DeviceGroup {
        accelerator: "cpu".into(),
        count: cores,
    }])
}

/// A type a user declares: a catalog id or alias (as its id), or `cpu`. Anything else is a typo
/// until shown otherwise; the error suggests the nearest catalog names.
pub fn declared_type(name: &str, catalog: &suanli_catalog::Catalog) -> Result<String, UnknownType> {
    if name.trim().eq_ignore_ascii_case("cpu") {
        return Ok("cpu".into());
    }
    catalog
        .accelerator(name.trim())
        .map(|accelerator| accelerator.id.clone())
        .map_err(UnknownType)
}

/// The catalog id for a name or alias, or the name lower-cased and kebab-cased.
pub fn canonical_type(name: &str) -> String {
    match catalog().accelerator(name) {
        Ok(accelerator) => accelerator.id.clone(),
        Err(_) => name.trim().to_lowercase().replace([' ', '_'], "-"),
    }
}

/// The variable a vendor runtime reads to choose devices, if the type is known to need one.
pub fn visible_devices_variable(accelerator: &str) -> Option<&'static str> {
    let vendor = catalog()
        .accelerator(accelerator)
        .map(|a| a.vendor.to_lowercase())
        .unwrap_or_default();
    match vendor.as_str() {
        "nvidia" => Some("CUDA_VISIBLE_DEVICES"),
        "amd" => Some("HIP_VISIBLE_DEVICES"),
        "huawei" => Some("ASCEND_RT_VISIBLE_DEVICES"),
        _ if accelerator.starts_with("nvidia") => Some("CUDA_VISIBLE_DEVICES"),
        _ if accelerator.starts_with("amd") => Some("HIP_VISIBLE_DEVICES"),
        _ if accelerator.starts_with("ascend") => Some("ASCEND_RT_VISIBLE_DEVICES"),
        _ => None,
    }
}

fn tool_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Accelerators the vendor tools report; empty when none of the tools is installed.
pub fn detect() -> Vec<DeviceGroup> {
    let mut groups: Vec<DeviceGroup> = Vec::new();
    let mut add = |name: String| {
        let accelerator = canonical_type(&name);
        match groups.iter_mut().find(|g| g.accelerator == accelerator) {
            Some(group) => group.count += 1,
            None => groups.push(DeviceGroup {
                accelerator,
                count: 1,
            }),
        }
    };
    if let Some(text) = tool_output("nvidia-smi", &["--query-gpu=name", "--format=csv,noheader"]) {
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            add(nvidia_type(line));
        }
    }
    if let Some(text) = tool_output("rocm-smi", &["--showproductname", "--csv"]) {
        for line in text.lines().skip(1).filter(|l| l.starts_with("card")) {
            let series = line.split(',').nth(1).unwrap_or("amd-gpu");
            add(amd_type(series));
        }
    }
    if let Some(text) = tool_output("npu-smi", &["info", "-l"]) {
        let count = text
            .lines()
            .find_map(|l| {
                l.split_once("Total Count")
                    .map(|(_, rest)| rest.to_string())
            })
            .and_then(|rest| rest.trim_matches([' ', ':']).trim().parse::<u32>().ok())
            .unwrap_or(0);
        for _ in 0..count {
            add("ascend-910b".into());
        }
    }
    groups
}

/// `NVIDIA H100 80GB HBM3` -> `h100-sxm5-80gb` when the catalog knows the model.
fn nvidia_type(name: &str) -> String {
    let lower = name.to_lowercase();
    let guesses = [
        ("h100 nvl", "h100-nvl-94gb"),
        ("h100 pcie", "h100-pcie-80gb"),
        ("h100", "h100-sxm5-80gb"),
        ("h200", "h200-sxm-141gb"),
        ("h800", "h800-sxm5-80gb"),
        ("h20", "h20-96gb"),
        ("a100-sxm4-40gb", "a100-sxm4-40gb"),
        ("a100 80gb pcie", "a100-pcie-80gb"),
        ("a100", "a100-sxm4-80gb"),
        ("a800", "a800-sxm4-80gb"),
        ("b200", "b200-sxm-180gb"),
        ("l40s", "l40s"),
        ("l20", "l20"),
    ];
    guesses
        .iter()
        .find(|(key, _)| lower.contains(key))
        .map(|(_, id)| id.to_string())
        .unwrap_or_else(|| format!("nvidia-{}", lower.trim_start_matches("nvidia ")))
}

fn amd_type(series: &str) -> String {
    let lower = series.to_lowercase();
    for id in ["mi325x", "mi300x", "mi250x"] {
        if lower.contains(id) {
            return id.into();
        }
    }
    format!("amd-{lower}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use suanli_catalog::Catalog;

    fn builtin() -> Catalog {
        Catalog::builtin()
    }

    #[test]
    fn the_servers_catalog_declares_types() {
        // `suanli serve` passes the catalog with the user's files (SUANLI_CATALOG) in it.
        let mut mine = builtin();
        let mut accelerator = mine.accelerator("h100").unwrap().clone();
        accelerator.id = "my-h100-variant".into();
        accelerator.aliases.clear();
        mine.accelerators.push(accelerator);
        let groups = parse_devices("my-h100-variant:4", &mine).unwrap();
        assert_eq!(groups[0].accelerator, "my-h100-variant");
        assert!(parse_devices("my-h100-variant:4", &builtin()).is_err());
    }

    #[test]
    fn parses_declared_devices() {
        let groups = parse_devices("h100:8, mi300x:2,h100-sxm5-80gb:1,cpu", &builtin()).unwrap();
        assert_eq!(
            groups,
            vec![
                DeviceGroup {
                    accelerator: "h100-sxm5-80gb".into(),
                    count: 9
                },
                DeviceGroup {
                    accelerator: "mi300x".into(),
                    count: 2
                },
                DeviceGroup {
                    accelerator: "cpu".into(),
                    count: 1
                },
            ]
        );
        assert!(parse_devices("h100:x", &builtin()).is_err());
        assert!(parse_devices("h100:0", &builtin()).is_err());
        assert!(parse_devices("", &builtin()).is_err());
        let typo = parse_devices("h10:8", &builtin()).unwrap_err().to_string();
        assert!(typo.contains("did you mean h100-sxm5-80gb"), "{typo}");
        assert!(
            parse_devices("foo", &builtin())
                .unwrap_err()
                .to_string()
                .contains("unknown accelerator `foo`")
        );
    }

    #[test]
    fn a_bad_list_names_its_cause_once() {
        // The CLI prints an error with its chain of sources (`{:#}`), and the message already
        // holds the cause: a source as well would print it twice.
        let error = crate::ServerError::Devices(local(Some("h10:8"), &builtin()).unwrap_err());
        assert!(std::error::Error::source(&error).is_none());
        assert_eq!(error.to_string().matches("unknown accelerator").count(), 1);
    }

    #[test]
    fn picks_vendor_variables() {
        assert_eq!(
            visible_devices_variable("h100-sxm5-80gb"),
            Some("CUDA_VISIBLE_DEVICES")
        );
        assert_eq!(
            visible_devices_variable("mi300x"),
            Some("HIP_VISIBLE_DEVICES")
        );
        assert_eq!(
            visible_devices_variable("ascend-910b"),
            Some("ASCEND_RT_VISIBLE_DEVICES")
        );
        assert_eq!(visible_devices_variable("cpu"), None);
        assert_eq!(nvidia_type("NVIDIA H100 80GB HBM3"), "h100-sxm5-80gb");
    }
}
