//! Parsers for Slurm's machine-readable output (`squeue -O ...:|`, `sinfo -N -O ...:|`,
//! `scontrol -o show job`, `sbatch --parsable`) and the mapping of every Slurm job and node state to suanli's terms.

/// `squeue` columns the executor asks for, `|`-separated; the job name is last because it is the
/// only free-text field (it may itself contain `|`). `JobArrayID` is a job's id (`12`), or
/// `<array>_<task>` for a task of a job array (spares are submitted as arrays, see `spares`),
/// the form `squeue --jobs`, `scontrol` and `scancel` take.
pub const SQUEUE_FORMAT: &str = "JobArrayID:|,State:|,Reason:|,NodeList:|,exit_code:|,Name:|";

/// `sinfo -N` columns; the reason is last because it is free text.
pub const SINFO_FORMAT: &str =
    "NodeList:|,Partition:|,StateLong:|,Gres:|,GresUsed:|,NodeAddr:|,Reason:|";

/// What Slurm output could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("line {line}: expected {expected} `|`-separated fields, found {found}: `{text}`")]
    Fields {
        line: usize,
        expected: usize,
        found: usize,
        text: String,
    },
    #[error("line {line}: `{value}` is not a valid {what}")]
    Value {
        line: usize,
        what: &'static str,
        value: String,
    },
    #[error("`scontrol show job` line without {field}: `{text}`")]
    Missing { field: &'static str, text: String },
    #[error("unknown Slurm job state `{0}`; suanli knows the states of Slurm 20.11 to 24.05")]
    UnknownJobState(String),
    #[error("unknown Slurm node state `{0}`")]
    UnknownNodeState(String),
}

/// A Slurm job state (`squeue -O State`, `scontrol show job` JobState), every one Slurm defines
/// in `src/common/slurm_protocol_defs.c` (`job_state_string`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Configuring,
    Running,
    Suspended,
    Completing,
    Completed,
    Cancelled,
    Failed,
    Timeout,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    OutOfMemory,
    Requeued,
    RequeueHold,
    RequeueFed,
    Resizing,
    Revoked,
    Signaling,
    SpecialExit,
    StageOut,
    Stopped,
}

/// Every job state name Slurm prints, and its value.
const STATE_NAMES: [(&str, JobState); 23] = {
    use JobState::*;
    [
        ("PENDING", Pending),
        ("CONFIGURING", Configuring),
        ("RUNNING", Running),
        ("SUSPENDED", Suspended),
        ("COMPLETING", Completing),
        ("COMPLETED", Completed),
        ("CANCELLED", Cancelled),
        ("FAILED", Failed),
        ("TIMEOUT", Timeout),
        ("NODE_FAIL", NodeFail),
        ("PREEMPTED", Preempted),
        ("BOOT_FAIL", BootFail),
        ("DEADLINE", Deadline),
        ("OUT_OF_MEMORY", OutOfMemory),
        ("REQUEUED", Requeued),
        ("REQUEUE_HOLD", RequeueHold),
        ("REQUEUE_FED", RequeueFed),
        ("RESIZING", Resizing),
        ("REVOKED", Revoked),
        ("SIGNALING", Signaling),
        ("SPECIAL_EXIT", SpecialExit),
        ("STAGE_OUT", StageOut),
        ("STOPPED", Stopped),
    ]
};

impl JobState {
    /// Parses a state name; unknown names are an error, never guessed.
    pub fn parse(text: &str) -> Result<JobState, ParseError> {
        // `CANCELLED by 0` is how `scontrol` shows who cancelled; the state is the first word.
        let word = text.split_whitespace().next().unwrap_or("");
        STATE_NAMES
            .iter()
            .find(|(name, _)| *name == word)
            .map(|&(_, state)| state)
            .ok_or_else(|| ParseError::UnknownJobState(text.to_string()))
    }

    /// Slurm's name for the state (`NODE_FAIL`).
    pub fn name(self) -> &'static str {
        STATE_NAMES
            .iter()
            .find(|(_, state)| *state == self)
            .map_or("UNKNOWN", |&(name, _)| name)
    }

    /// What the state means for a suanli run.
    pub fn phase(self) -> Phase {
        use JobState::*;
        match self {
            // Waiting for Slurm: resources, priority, a requeue after a node failure.
            Pending | Requeued | RequeueFed | Configuring => Phase::Waiting,
            // Held by an operator (or after too many requeues): waits until released.
            RequeueHold | Suspended | Stopped => Phase::Held,
            Running | Completing | Resizing | Signaling | StageOut => Phase::Running,
            Completed => Phase::Ended(Ending::Succeeded),
            Failed | SpecialExit => Phase::Ended(Ending::Failed),
            Cancelled | Revoked => Phase::Ended(Ending::Cancelled),
            Timeout | Deadline => Phase::Ended(Ending::TimedOut),
            NodeFail | BootFail => Phase::Ended(Ending::NodeFailed),
            Preempted => Phase::Ended(Ending::Preempted),
            OutOfMemory => Phase::Ended(Ending::OutOfMemory),
        }
    }
}

/// A Slurm job's state in suanli's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Held,
    Running,
    Ended(Ending),
}

/// How a Slurm job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
    NodeFailed,
    Preempted,
    OutOfMemory,
}

impl Ending {
    /// The exit code suanli records: the job's own for a plain failure, else the shell's
    /// convention for how it was stopped (`128 + signal`, 124 for a time-out like timeout(1)).
    pub fn exit_code(self, wait_status: i32) -> i32 {
        match self {
            Ending::Succeeded => 0,
            Ending::Failed => match decode_wait_status(wait_status) {
                0 => 1,
                code => code,
            },
            Ending::Cancelled | Ending::Preempted => 128 + 15,
            Ending::TimedOut => 124,
            Ending::NodeFailed | Ending::OutOfMemory => 128 + 9,
        }
    }
}

/// `squeue -O exit_code` prints the raw wait(2) status: the exit code in bits 8..16, or the
/// terminating signal in the low 7 bits. Returns `code`, or `128 + signal`.
pub fn decode_wait_status(status: i32) -> i32 {
    let signal = status & 0x7f;
    if signal != 0 {
        128 + signal
    } else {
        (status >> 8) & 0xff
    }
}

/// One row of `squeue -O SQUEUE_FORMAT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRow {
    /// `12`, or `12_3` for task 3 of job array 12.
    pub job_id: String,
    pub state: JobState,
    /// Slurm's reason (`Resources`, `Priority`, `None`, ...).
    pub reason: String,
    /// Compressed node list (`n[1-2]`); empty while pending.
    pub nodes: String,
    pub wait_status: i32,
    pub name: String,
}

fn split_fields(line: &str, expected: usize, number: usize) -> Result<Vec<&str>, ParseError> {
    // Every field, the last included, is followed by `|`; the last may contain `|` itself.
    let body = line.strip_suffix('|').unwrap_or(line);
    let fields: Vec<&str> = body.splitn(expected, '|').collect();
    if fields.len() != expected {
        return Err(ParseError::Fields {
            line: number,
            expected,
            found: fields.len(),
            text: line.chars().take(200).collect(),
        });
    }
    Ok(fields)
}

/// Parses `squeue -h -O SQUEUE_FORMAT` output.
pub fn parse_squeue(text: &str) -> Result<Vec<QueueRow>, ParseError> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f = split_fields(line, 6, number)?;
        let value = |what: &'static str, value: &str| ParseError::Value {
            line: number,
            what,
            value: value.chars().take(80).collect(),
        };
        rows.push(QueueRow {
            job_id: job_id(f[0].trim()).ok_or_else(|| value("job id", f[0]))?,
            state: JobState::parse(f[1].trim())?,
            reason: f[2].trim().to_string(),
            nodes: f[3].trim().to_string(),
            wait_status: f[4].trim().parse().map_err(|_| value("exit code", f[4]))?,
            name: f[5].to_string(),
        });
    }
    Ok(rows)
}

/// Parses one line of `scontrol -o show job <id>` (Slurm's `key=value` pairs separated by
/// spaces) into the fields `squeue -O SQUEUE_FORMAT` gives. A value may contain spaces (a job
/// name, a path): a word without `key=` continues the previous value; the first occurrence of
/// a key counts. The id is `<ArrayJobId>_<ArrayTaskId>` for an array task (as asked and as
/// `squeue -r` prints it), else `JobId`. `ExitCode=<code>:<signal>` becomes the wait(2)
/// status `squeue` prints, so one `Ending::exit_code` serves both.
pub fn parse_show_job(line: &str) -> Result<QueueRow, ParseError> {
    let text = || line.chars().take(200).collect::<String>();
    if !line.starts_with("JobId=") {
        return Err(ParseError::Missing {
            field: "a leading JobId=",
            text: text(),
        });
    }
    let mut fields: Vec<(&str, String)> = Vec::new();
    for word in line.split(' ').filter(|w| !w.is_empty()) {
        match word.split_once('=') {
            Some((key, value)) if is_key(key) => fields.push((key, value.to_string())),
            _ => match fields.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(word);
                }
                None => unreachable!("the line starts with JobId="),
            },
        }
    }
    let get = |field: &'static str| {
        fields
            .iter()
            .find(|(key, _)| *key == field)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| ParseError::Missing {
                field,
                text: text(),
            })
    };
    let value = |what: &'static str, value: &str| ParseError::Value {
        line: 1,
        what,
        value: value.chars().take(80).collect(),
    };
    let id = match (get("ArrayJobId"), get("ArrayTaskId")) {
        (Ok(array), Ok(task)) => format!("{array}_{task}"),
        _ => get("JobId")?.to_string(),
    };
    let exit = get("ExitCode")?;
    let wait_status = exit
        .split_once(':')
        .and_then(|(code, signal)| Some((code.parse::<i32>().ok()?, signal.parse::<i32>().ok()?)))
        .filter(|&(code, signal)| (0..256).contains(&code) && (0..128).contains(&signal))
        .map(|(code, signal)| code << 8 | signal)
        .ok_or_else(|| value("ExitCode (code:signal)", exit))?;
    let nodes = get("NodeList")?;
    Ok(QueueRow {
        job_id: job_id(&id).ok_or_else(|| value("job id", &id))?,
        state: JobState::parse(get("JobState")?)?,
        reason: get("Reason")?.to_string(),
        nodes: if nodes == "(null)" { "" } else { nodes }.to_string(),
        wait_status,
        name: get("JobName")?.to_string(),
    })
}

/// A `scontrol show job` key: `JobId`, `MCS_label`, `AllocNode:Sid`, `CPUs/Task`.
fn is_key(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'/'))
}

/// A job id as the Slurm commands take it: `12`, or `12_3` (task 3 of array 12).
pub fn job_id(text: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let valid = match text.split_once('_') {
        Some((array, task)) => digits(array) && digits(task),
        None => digits(text),
    };
    valid.then(|| text.to_string())
}

/// `sbatch --parsable` prints `JOBID` or `JOBID;CLUSTER`.
pub fn parse_sbatch(text: &str) -> Result<u64, ParseError> {
    let first = text.trim().split(';').next().unwrap_or("");
    first.parse().map_err(|_| ParseError::Value {
        line: 1,
        what: "sbatch job id",
        value: text.trim().chars().take(80).collect(),
    })
}
