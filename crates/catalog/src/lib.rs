//! The suanli catalog: accelerators, node shapes and model architectures, each figure with its
//! source.
//!
//! Built-in data lives in TOML files under `data/` embedded in the binary; users add their own
//! TOML files with the same tables, and a Hugging Face `config.json` is accepted wherever a model
//! is named.
//!
//! ```
//! let catalog = suanli_catalog::Catalog::builtin();
//! let h100 = catalog.accelerator("h100-sxm5-80gb").unwrap();
//! assert_eq!(h100.memory_gb, 80.0);
//! let llama = catalog.model("llama-3.1-70b").unwrap();
//! assert!(llama.total_params() > 70_000_000_000);
//! ```

mod accelerator;
mod hf;
mod model;
mod precision;
pub mod units;

pub use accelerator::{Accelerator, Confidence, DenseTflops, NodeShape, ScaleUp};
pub use hf::{HfConfigError, model_from_hf_config};
pub use model::{Mla, Mlp, Model, ModelError, Moe};
pub use precision::{Precision, UnknownPrecision};

use serde::Deserialize;
use std::path::Path;

const BUILTIN_ACCELERATORS: &str = include_str!("../data/accelerators.toml");
const BUILTIN_NODES: &str = include_str!("../data/nodes.toml");
const BUILTIN_MODELS: &str = include_str!("../data/models.toml");
const BUILTIN_VALIDATION_MODELS: &str = include_str!("../data/models-validation.toml");

/// The environment variable naming extra catalog files for every command.
pub const ENV_VAR: &str = "SUANLI_CATALOG";

/// The embedded catalog files, by name, in the order they are merged.
pub const BUILTIN_FILES: [(&str, &str); 4] = [
    ("accelerators.toml", BUILTIN_ACCELERATORS),
    ("nodes.toml", BUILTIN_NODES),
    ("models.toml", BUILTIN_MODELS),
    ("models-validation.toml", BUILTIN_VALIDATION_MODELS),
];

/// Errors a user can cause by naming something or handing over a file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown {kind} `{given}`{}", suggestion_text(.suggestions))]
    Unknown {
        kind: &'static str,
        given: String,
        suggestions: Vec<String>,
    },
    #[error("cannot read {path}: {error}")]
    Io {
        path: String,
        /// Kept out of the error chain: the message already says it.
        error: std::io::Error,
    },
    #[error("{path} is not a valid catalog file: {message}")]
    BadFile { path: String, message: String },
    #[error("{path} is not a usable Hugging Face config.json: {message}")]
    BadHfConfig { path: String, message: String },
}

/// A TOML error on one line: `line L, column C: what`.
fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let what = error
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let Some(before) = error.span().and_then(|span| text.get(..span.start)) else {
        return what;
    };
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}: {what}")
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}

/// The tables a catalog TOML file may hold; each is optional in a user file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    accelerator: Vec<Accelerator>,
    #[serde(default)]
    node: Vec<NodeShape>,
    #[serde(default)]
    model: Vec<Model>,
}

/// Accelerators, node shapes and models, built in plus whatever the user added.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub accelerators: Vec<Accelerator>,
    pub nodes: Vec<NodeShape>,
    pub models: Vec<Model>,
}

impl Catalog {
    /// The data embedded in the binary.
    pub fn builtin() -> Catalog {
        let mut catalog = Catalog::default();
        for (name, text) in BUILTIN_FILES {
            // The embedded files are checked by this crate's tests, so a failure is a build bug.
            catalog
                .merge_toml(text, name)
                .unwrap_or_else(|e| panic!("built-in catalog file is broken: {e}"));
        }
        catalog
    }

    /// The catalog every command uses: the built-in data, then the files and directories named in
    /// `env` (the value of [`ENV_VAR`], a path list separated as `PATH` is), then `paths` (the
    /// commands' `--catalog` flags), later entries replacing earlier ones with the same id.
    ///
    /// ```
    /// let catalog = suanli_catalog::Catalog::load(&[] as &[&str], None).unwrap();
    /// assert!(catalog.model("llama-3.1-8b").is_ok());
    /// ```
    pub fn load(
        paths: &[impl AsRef<Path>],
        env: Option<&std::ffi::OsStr>,
    ) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::builtin();
        let from_env: Vec<std::path::PathBuf> = env
            .map(|value| std::env::split_paths(value).collect())
            .unwrap_or_default();
        for path in from_env.iter().filter(|p| !p.as_os_str().is_empty()) {
            catalog.merge_path(path)?;
        }
        for path in paths {
            catalog.merge_path(path.as_ref())?;
        }
        Ok(catalog)
    }

    /// Adds (or replaces, by id) the entries of a TOML catalog text.
    pub fn merge_toml(&mut self, text: &str, path: &str) -> Result<(), CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::BadFile {
            path: path.to_string(),
            message: toml_message(text, &e),
        })?;
        for item in file.accelerator {
            upsert(&mut self.accelerators, item, |a| &a.id);
        }
        for item in file.node {
            upsert(&mut self.nodes, item, |n| &n.id);
        }
        for item in file.model {
            item.validate().map_err(|message| CatalogError::BadFile {
                path: path.to_string(),
                message: format!("model `{}`: {message}", item.id),
            })?;
            upsert(&mut self.models, item, |m| &m.id);
        }
        Ok(())
    }

    /// Adds the entries of a TOML file, or of every `.toml` file in a directory.
    pub fn merge_path(&mut self, path: &Path) -> Result<(), CatalogError> {
        let io_error = |error| CatalogError::Io {
            path: path.display().to_string(),
            error,
        };
        if path.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(path)
                .map_err(io_error)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
                .collect();
            files.sort();
            for file in files {
                self.merge_path(&file)?;
            }
            return Ok(());
        }
        let text = std::fs::read_to_string(path).map_err(io_error)?;
        self.merge_toml(&text, &path.display().to_string())
    }

    /// Looks an accelerator up by id or alias, ignoring case.
    pub fn accelerator(&self, name: &str) -> Result<&Accelerator, CatalogError> {
        find(&self.accelerators, name, "accelerator", |a| {
            (&a.id, &a.aliases)
        })
    }

    /// Looks a model up by id or alias, ignoring case.
    pub fn model(&self, name: &str) -> Result<&Model, CatalogError> {
        find(&self.models, name, "model", |m| (&m.id, &m.aliases))
    }

    /// Looks a node shape up by id or alias, ignoring case.
    pub fn node(&self, name: &str) -> Result<&NodeShape, CatalogError> {
        find(&self.nodes, name, "node shape", |n| (&n.id, &n.aliases))
    }

    /// Resolves a model named on the command line: a catalog id or alias, a Hugging Face
    /// `config.json`, or a TOML file holding one `[[model]]`.
    pub fn resolve_model(&self, name_or_path: &str) -> Result<Model, CatalogError> {
        let path = Path::new(name_or_path);
        let looks_like_file = name_or_path.ends_with(".json") || name_or_path.ends_with(".toml");
        if !(looks_like_file || path.is_file()) {
            return self.model(name_or_path).cloned();
        }
        let text = std::fs::read_to_string(path).map_err(|error| CatalogError::Io {
            path: name_or_path.to_string(),
            error,
        })?;
        if name_or_path.ends_with(".toml") {
            let mut scratch = Catalog::default();
            scratch.merge_toml(&text, name_or_path)?;
            return match scratch.models.len() {
                1 => Ok(scratch.models.remove(0)),
                n => Err(CatalogError::BadFile {
                    path: name_or_path.to_string(),
                    message: format!("expected exactly one [[model]] table, found {n}"),
                }),
            };
        }
        // `org/model/config.json` is named after its folder, `deepseek-v3.json` after itself.
        let named_after = if path.file_name().is_some_and(|name| name == "config.json") {
            path.parent().and_then(|dir| dir.file_name())
        } else {
            path.file_stem()
        };
        let id = named_after
            .map(|name| name.to_string_lossy().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "custom".to_string());
        model_from_hf_config(&text, &id).map_err(|error| CatalogError::BadHfConfig {
            path: name_or_path.to_string(),
            message: error.to_string(),
        })
    }
}

fn upsert<T>(items: &mut Vec<T>, item: T, id: impl Fn(&T) -> &String) {
    match items.iter().position(|existing| id(existing) == id(&item)) {
        Some(index) => items[index] = item,
        None => items.push(item),
    }
}

fn find<'a, T>(
    items: &'a [T],
    name: &str,
    kind: &'static str,
    names: impl Fn(&T) -> (&String, &Vec<String>),
) -> Result<&'a T, CatalogError> {
    let wanted = name.trim().to_ascii_lowercase();
    let found = items.iter().find(|item| {
        let (id, aliases) = names(item);
        id.eq_ignore_ascii_case(&wanted) || aliases.iter().any(|a| a.eq_ignore_ascii_case(&wanted))
    });
    if let Some(item) = found {
        return Ok(item);
    }
    // Score each entry by its closest name (id or alias) but suggest its id.
    let mut scored: Vec<(f64, &String)> = items
        .iter()
        .map(|item| {
            let (id, aliases) = names(item);
            let best = std::iter::once(id)
                .chain(aliases)
                .map(|n| strsim::jaro_winkler(&wanted, &n.to_ascii_lowercase()))
                .fold(0.0, f64::max);
            (best, id)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let suggestions = scored
        .into_iter()
        .take(3)
        .filter(|(score, _)| *score > 0.6)
        .map(|(_, id)| id.clone())
        .collect();
    Err(CatalogError::Unknown {
        kind,
        given: name.to_string(),
        suggestions,
    })
}
