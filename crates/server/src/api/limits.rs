//! Bounds on everything a client sends: body sizes per route, field sizes and characters, list
//! pages. Every check answers 400 with what was wrong and what would be right.

use super::ApiError;

/// Largest body of a job submission (command, environment and the rest).
pub const SUBMIT_BODY_BYTES: usize = 1 << 20;
/// Largest body of every other request.
pub const BODY_BYTES: usize = 64 << 10;
/// Longest job name, in bytes.
pub const NAME_BYTES: usize = 256;
/// Most bytes of a command, all arguments together.
pub const COMMAND_BYTES: usize = 128 << 10;
/// Most environment variables of a job.
pub const ENV_ENTRIES: usize = 256;
/// Most bytes of a job's environment, names and values together.
pub const ENV_BYTES: usize = 128 << 10;
/// Longest path (checkpoint directory).
pub const PATH_BYTES: usize = 4096;
/// Most accelerator types a job may name.
pub const ACCELERATOR_TYPES: usize = 32;
/// Most accelerators and processes of one job.
pub const MAX_GPUS: u32 = 65_536;
/// Most restarts a job may ask for.
pub const MAX_RESTARTS: u32 = 1000;
/// Jobs per list page by default, and at most.
pub const PAGE_DEFAULT: u32 = 100;
pub const PAGE_MAX: u32 = 1000;
/// Longest token lifetime: ten years.
pub const MAX_TOKEN_LIFETIME_S: i64 = 10 * 365 * 24 * 3600;

/// A name of a tenant, user, accelerator type or quota: 1-64 bytes of letters, digits, `-`,
/// `_` or `.`, starting with a letter or digit (so never `.`, `..` or an option like `-rf`).
pub fn name(kind: &str, text: &str) -> Result<(), ApiError> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "{kind} name `{}` must be 1-64 characters of letters, digits, `-`, `_` or `.`, starting with a letter or digit",
            printable(text, 80)
        )))
    }
}

/// The accelerator types a job or plan names: at most `ACCELERATOR_TYPES`, each a `name`;
/// returned in canonical spelling (`h100` for `H100-SXM`).
pub fn accelerator_types(given: &[String]) -> Result<Vec<String>, ApiError> {
    if given.len() > ACCELERATOR_TYPES {
        return Err(ApiError::bad(format!(
            "at most {ACCELERATOR_TYPES} accelerator types"
        )));
    }
    for accelerator in given {
        name("accelerator", accelerator)?;
    }
    Ok(given
        .iter()
        .map(|a| crate::devices::canonical_type(a))
        .collect())
}

/// A job's display name: at most `NAME_BYTES` of printable text.
pub fn job_name(text: &str) -> Result<(), ApiError> {
    if text.len() > NAME_BYTES || text.chars().any(char::is_control) {
        return Err(ApiError::bad(format!(
            "job name must be at most {NAME_BYTES} bytes of printable text (no control characters); got {} bytes",
            text.len()
        )));
    }
    Ok(())
}

/// A command: non-empty, at most `COMMAND_BYTES` in all, no NUL (which no process can receive).
pub fn command(args: &[String]) -> Result<(), ApiError> {
    if args.is_empty() || args[0].is_empty() {
        return Err(ApiError::bad(
            "the command is empty; give the program and its arguments, e.g. [\"python\", \"train.py\"]",
        ));
    }
    let bytes: usize = args.iter().map(|a| a.len() + 1).sum();
    if bytes > COMMAND_BYTES {
        return Err(ApiError::bad(format!(
            "the command is {bytes} bytes; at most {COMMAND_BYTES} are allowed (put long inputs in a file)"
        )));
    }
    if let Some(i) = args.iter().position(|a| a.contains('\0')) {
        return Err(ApiError::bad(format!(
            "command argument {i} contains a NUL byte, which no process can receive"
        )));
    }
    Ok(())
}

/// A job's environment: at most `ENV_ENTRIES` variables named like `NAME_1`, no NUL in values.
pub fn env(vars: &std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    if vars.len() > ENV_ENTRIES {
        return Err(ApiError::bad(format!(
            "{} environment variables; at most {ENV_ENTRIES} are allowed",
            vars.len()
        )));
    }
    let bytes: usize = vars.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if bytes > ENV_BYTES {
        return Err(ApiError::bad(format!(
            "the environment is {bytes} bytes; at most {ENV_BYTES} are allowed"
        )));
    }
    for (key, value) in vars {
        let valid_key = key.len() <= 256
            && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(ApiError::bad(format!(
                "environment variable name `{}` must be letters, digits and `_`, not starting with a digit",
                printable(key, 80)
            )));
        }
        if value.contains('\0') {
            return Err(ApiError::bad(format!(
                "environment variable {key} contains a NUL byte"
            )));
        }
    }
    Ok(())
}

/// A path a job names: absolute, at most `PATH_BYTES`, no NUL or control characters.
pub fn path(what: &str, text: &str) -> Result<(), ApiError> {
    if !text.starts_with('/') || text.len() > PATH_BYTES || text.chars().any(char::is_control) {
        return Err(ApiError::bad(format!(
            "{what} must be an absolute path of at most {PATH_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

/// A count within `1..=max`.
pub fn count(what: &str, value: u32, max: u32) -> Result<(), ApiError> {
    if value == 0 || value > max {
        return Err(ApiError::bad(format!(
            "{what} must be between 1 and {max}, not {value}"
        )));
    }
    Ok(())
}

/// `text` with control characters replaced by `?` and cut to `max` characters, safe to put in
/// a message a terminal will show.
pub fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_paths_options_and_empties() {
        for bad in [
            "",
            ".",
            "..",
            "-rf",
            "../../etc",
            "a/b",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(name("quota", bad).is_err(), "{bad:?}");
        }
        for good in ["research", "h100-sxm5-80gb", "a.b_c", "A1"] {
            assert!(name("tenant", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn commands_and_env_are_bounded() {
        assert!(command(&[]).is_err());
        assert!(command(&["a\0b".into()]).is_err());
        assert!(command(&["x".repeat(COMMAND_BYTES)]).is_err());
        assert!(command(&["python".into(), "train.py".into()]).is_ok());
        let many: std::collections::BTreeMap<String, String> = (0..=ENV_ENTRIES)
            .map(|i| (format!("V{i}"), "1".into()))
            .collect();
        assert!(env(&many).is_err());
        let bad_key = [("1X".to_string(), "1".to_string())].into_iter().collect();
        assert!(env(&bad_key).is_err());
        assert!(job_name("\u{1b}[2Jowned").is_err());
        assert!(job_name(&"n".repeat(NAME_BYTES + 1)).is_err());
        assert_eq!(printable("a\u{1b}[31mb", 80), "a?[31mb");
    }
}
