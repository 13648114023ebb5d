//! Runs every transcript in README.md against the real binary and compares the output, so the
//! README cannot drift.
//!
//! A transcript is either a ```sh block holding one command followed directly by a ```text block
//! with its output, or a block whose lines start with `$ ` (a command; `\` continues it) each
//! followed by its output. Commands run in `bash` with this build's `suanli` first on PATH,
//! stdout and stderr together as a terminal shows them. A ```sh block that starts `suanli serve`
//! starts that server (same arguments, but its data directory in a temporary directory and on a
//! free port), waits for it, and exports SUANLI_URL and SUANLI_TOKEN for the commands after it,
//! which then run in that temporary directory. Other ```sh blocks (build, test, long simulations)
//! are not transcripts and are skipped.
//!
//! Normalised before comparing, and only these, because they vary from run to run: 64-digit hex
//! hashes (the audit chain head covers timestamps) become `<hash>`, the server's port becomes
//! 8080, the temporary directory becomes `.`, this machine's host name (the local node's name)
//! becomes `vm`, trailing spaces and blank lines are dropped.
//!
//! `SUANLI_README_UPDATE=1 cargo test -p suanli --test readme` writes the real output of every
//! transcript that differs back into README.md (then read the diff before committing it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fenced block: its language tag and its lines.
struct Block {
    lang: String,
    lines: Vec<String>,
    /// 1-based line of the opening fence.
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("```") {
            match open.take() {
                Some(block) => out.push(block),
                None => {
                    open = Some(Block {
                        lang: rest.trim().to_string(),
                        lines: Vec::new(),
                        line: index + 1,
                    })
                }
            }
        } else if let Some(block) = open.as_mut() {
            block.lines.push(line.to_string());
        }
    }
    out
}

/// One step of a transcript.
enum Step {
    Serve {
        args: Vec<String>,
        line: usize,
    },
    Run {
        command: String,
        expected: String,
        line: usize,
        /// 0-based index of the expected output's first line in the README, and its length.
        span: (usize, usize),
    },
}

fn steps(markdown: &str) -> Vec<Step> {
    let blocks = blocks(markdown);
    let mut steps = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        let first = block.lines.first().map(String::as_str).unwrap_or("");
        if first.starts_with("$ ") {
            steps.extend(session(block));
        } else if block.lang == "sh" && first.starts_with("suanli serve") {
            let args = first
                .trim_end_matches('&')
                .split_whitespace()
                .skip(2)
                .map(str::to_string)
                .collect();
            steps.push(Step::Serve {
                args,
                line: block.line,
            });
        } else if block.lang == "sh" {
            let next = blocks.get(index + 1);
            if let Some(next) = next.filter(|n| n.lang == "text" && !is_session(n)) {
                steps.push(Step::Run {
                    command: block.lines.join("\n"),
                    expected: next.lines.join("\n"),
                    line: block.line,
                    span: (next.line, next.lines.len()),
                });
            }
        }
    }
    steps
}

fn is_session(block: &Block) -> bool {
    block.lines.first().is_some_and(|l| l.starts_with("$ "))
}

/// `$ command` lines (with `\` continuations) and the output under each.
fn session(block: &Block) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continuing = false;
    for (offset, line) in block.lines.iter().enumerate() {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step::Run {
                command: command.to_string(),
                expected: String::new(),
                line: block.line + 1 + offset,
                span: (block.line + offset + 1, 0),
            });
            continuing = command.ends_with('\\');
        } else if let Some(Step::Run {
            command,
            expected,
            span,
            ..
        }) = steps.last_mut()
        {
            if continuing {
                command.push('\n');
                command.push_str(line);
                continuing = line.ends_with('\\');
                span.0 += 1;
            } else {
                expected.push_str(line);
                expected.push('\n');
                span.1 = if line.trim().is_empty() {
                    span.1
                } else {
                    offset + block.line + 1 - span.0
                };
            }
        }
    }
    steps
}

struct Server {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("suanli-readme-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_server(args: &[String]) -> Server {
    let dir = temp_dir("serve");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_suanli"));
    command.arg("serve").current_dir(&dir);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--data-dir" || arg == "--listen" {
            rest.next();
        } else {
            command.arg(arg);
        }
    }
    let child = command
        .args(["--data-dir", "suanli-data", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("SUANLI_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz")).is_err() {
        assert!(
            Instant::now() < deadline,
            "the README's server did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child, dir, port }
}

fn normalise(text: &str, server: Option<&Server>) -> String {
    let mut text = text.to_string();
    if let Some(server) = server {
        text = text.replace(&format!("127.0.0.1:{}", server.port), "127.0.0.1:8080");
        text = text.replace(&server.dir.display().to_string(), ".");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host = host.trim();
        if !host.is_empty() {
            text = text.replace(&format!("  {host} "), "  vm ");
            text = text.replace(&format!("│ {host} "), "│ vm ");
        }
    }
    let lines: Vec<String> = text
        .lines()
        .map(|line| hide_hashes(line.trim_end()))
        .collect();
    lines.join("\n").trim_end().to_string()
}

/// Replaces every run of exactly 64 hex digits with `<hash>`.
fn hide_hashes(line: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in line.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if run.len() == 64 {
            out.push_str("<hash>");
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

fn run(command: &str, dir: &Path, server: Option<&Server>, config: &Path) -> (bool, String) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_suanli"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut shell = Command::new("bash");
    shell
        .arg("-c")
        .arg(format!("exec 2>&1\n{command}"))
        .current_dir(dir)
        .env("PATH", path)
        .env("SUANLI_CONFIG_DIR", config)
        .env_remove("SUANLI_URL")
        .env_remove("SUANLI_TOKEN")
        .env_remove("SUANLI_CATALOG")
        .stdin(Stdio::null());
    if let Some(server) = server {
        let token = std::fs::read_to_string(server.dir.join("suanli-data/admin-token")).unwrap();
        shell
            .env("SUANLI_URL", format!("http://127.0.0.1:{}", server.port))
            .env("SUANLI_TOKEN", token.trim());
    }
    let output = shell.output().expect("bash runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
    )
}

#[test]
fn every_readme_transcript_prints_what_the_readme_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = steps(&readme);
    let runs = steps
        .iter()
        .filter(|s| matches!(s, Step::Run { .. }))
        .count();
    assert!(
        runs >= 8,
        "only {runs} transcript commands found in README.md"
    );
    let config = temp_dir("config");
    let mut server: Option<Server> = None;
    let mut failures = Vec::new();
    let mut updates: Vec<((usize, usize), String)> = Vec::new();
    for step in &steps {
        match step {
            Step::Serve { args, line } => {
                eprintln!("README.md:{line}: suanli serve {}", args.join(" "));
                // The previous server goes first: its directory is the one the next one gets.
                drop(server.take());
                server = Some(start_server(args));
            }
            Step::Run {
                command,
                expected,
                line,
                span,
            } => {
                eprintln!("README.md:{line}: {command}");
                let dir = server.as_ref().map_or(root.as_path(), |s| s.dir.as_path());
                let (ok, output) = run(command, dir, server.as_ref(), &config);
                let got = normalise(&output, server.as_ref());
                let want = normalise(expected, None);
                let expects_error = want.starts_with("error:");
                if got != want {
                    updates.push((*span, got.clone()));
                }
                if got != want || ok == expects_error {
                    failures.push(format!(
                        "README.md:{line}: `{command}` (exit ok: {ok})\n--- README\n{want}\n--- real\n{got}\n"
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&config);
    if std::env::var_os("SUANLI_README_UPDATE").is_some() && !updates.is_empty() {
        let mut lines: Vec<String> = readme.lines().map(str::to_string).collect();
        for ((start, count), got) in updates.into_iter().rev() {
            lines.splice(start..start + count, got.lines().map(str::to_string));
        }
        std::fs::write(root.join("README.md"), lines.join("\n") + "\n").unwrap();
        eprintln!("README.md updated: review `git diff README.md`");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hashes_are_hidden_and_other_hex_is_kept() {
    let hash = "e93c39659ee27fe8457dc6eb458ed24ade9655a4b1110422c1cb3b6b9299e7c8";
    assert_eq!(hide_hashes(&format!("head {hash}")), "head <hash>");
    assert_eq!(hide_hashes("id 1f2e, cafe"), "id 1f2e, cafe");
}
