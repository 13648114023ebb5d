//! One job's page body and its live log: server-sent events that follow the API's log endpoint
//! from an offset until the job ends.

use std::fmt::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::html::{self, csrf_field, escape};
use super::{Caller, Console};
use crate::store::JobRecord;

/// How often the stream asks the API for new log bytes.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Longest a single stream stays open; the browser reconnects from its offset after.
const MAX_STREAM: Duration = Duration::from_secs(3600);
/// Most log streams open at once over all users; more get 503 and the page still shows the log.
const MAX_STREAMS: usize = 256;
/// Log streams open now.
static OPEN_STREAMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Holds one of the `MAX_STREAMS` places until dropped.
struct StreamSlot;

impl StreamSlot {
    fn take() -> Option<StreamSlot> {
        use std::sync::atomic::Ordering;
        let taken = OPEN_STREAMS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_STREAMS).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| StreamSlot)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        OPEN_STREAMS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn row(out: &mut String, key: &str, value: &str) {
    let _ = write!(out, "<dt>{key}</dt><dd>{value}</dd>");
}

/// The job page below its title: summary, history, runs, cancel button and log.
pub fn job_body(
    caller: &Caller,
    job: &JobRecord,
    attempt: u32,
    log: &str,
    next_offset: &str,
) -> String {
    let s = &job.spec;
    let mut out = String::from("<section class=\"card\"><h2>Summary</h2><dl>");
    let state = format!(
        "<span id=\"job-state\" class=\"state-{0}\">{0}</span>",
        job.state.as_str()
    );
    row(&mut out, "State", &state);
    row(&mut out, "Reason", &escape(&job.reason));
    row(&mut out, "Tenant", &escape(&s.tenant));
    row(&mut out, "User", &escape(&s.user));
    row(
        &mut out,
        "Command",
        &format!("<code>{}</code>", escape(&shell_quoted(&s.run.command))),
    );
    let types = if s.run.accelerators.is_empty() {
        "any type".to_string()
    } else {
        s.run.accelerators.join(", ")
    };
    row(
        &mut out,
        "Asks for",
        &escape(&format!(
            "{} accelerators ({types}) in {} processes, priority {}",
            s.gpus, s.processes, s.run.priority
        )),
    );
    row(
        &mut out,
        "Restarts",
        &format!("{} of {} allowed", job.restarts, s.run.max_restarts),
    );
    if let Some(code) = job.exit_code {
        row(&mut out, "Exit code", &code.to_string());
    }
    out.push_str("</dl>");
    if !job.state.is_terminal() && caller.me.can_cancel(&s.tenant, &s.user) {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/console/jobs/{}/cancel\">{}\
             <button type=\"submit\" id=\"cancel\" class=\"danger\">Cancel job</button></form>",
            job.id,
            csrf_field(caller)
        );
    }
    out.push_str("</section>");
    out.push_str(&history(job));
    out.push_str(&runs(job, attempt));
    let _ = write!(
        out,
        "<section><h2>Log of attempt {attempt} <span id=\"live\" class=\"hint\" aria-live=\"polite\">\
         </span></h2><pre id=\"log\" tabindex=\"0\" data-state=\"{}\" data-events=\"/console/jobs/{}/events?attempt={attempt}&amp;offset={}\">{}</pre></section>",
        job.state.as_str(),
        job.id,
        escape(next_offset),
        escape(log)
    );
    out
}

/// The words of a command as a shell would need them typed.
pub fn shell_quoted(words: &[String]) -> String {
    let quote = |w: &String| {
        let plain = !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c));
        if plain {
            w.clone()
        } else {
            format!("'{}'", w.replace('\'', "'\\''"))
        }
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
}

fn history(job: &JobRecord) -> String {
    let mut out = String::from("<section><h2>History</h2><ol class=\"history\">");
    let mut step = |at: Option<i64>, what: &str| {
        if let Some(at) = at {
            let _ = write!(out, "<li><time>{} UTC</time> {what}</li>", html::time(at));
        }
    };
    step(Some(job.submitted_at_s), "submitted, queued");
    if job.restarts > 0 {
        step(job.started_at_s, "first started");
    } else {
        step(job.started_at_s, "started running");
    }
    if let Some(run) = job.run.as_ref().filter(|_| job.attempts > 1) {
        step(
            Some(run.started_at_s),
            &format!("attempt {} started (restart)", run.attempt),
        );
    }
    let end = format!("ended: {} — {}", job.state.as_str(), escape(&job.reason));
    step(job.finished_at_s, &end);
    if job.finished_at_s.is_none() {
        let _ = write!(
            out,
            "<li>now {} — {}</li>",
            job.state.as_str(),
            escape(&job.reason)
        );
    }
    out.push_str("</ol></section>");
    out
}

fn runs(job: &JobRecord, shown: u32) -> String {
    let mut out = String::from("<section><h2>Runs</h2>");
    if let Some(run) = &job.run {
        let devices: Vec<String> = run.devices.iter().map(u32::to_string).collect();
        let _ = write!(
            out,
            "<p>Attempt {} on <strong>{}</strong> (pool {}, {}), devices {} since {} UTC.</p>",
            run.attempt,
            escape(&run.node),
            escape(&run.pool),
            escape(&run.accelerator),
            escape(&devices.join(", ")),
            html::time(run.started_at_s)
        );
    }
    if job.attempts == 0 {
        out.push_str("<p>Not started yet.</p>");
    } else {
        out.push_str("<p>Logs of attempt:");
        for a in 0..job.attempts {
            if a == shown {
                let _ = write!(out, " <strong>{a}</strong>");
            } else {
                let _ = write!(
                    out,
                    " <a href=\"/console/jobs/{}?attempt={a}\">{a}</a>",
                    job.id
                );
            }
        }
        out.push_str("</p>");
    }
    out.push_str("</section>");
    out
}

#[derive(Deserialize)]
pub struct Follow {
    #[serde(default)]
    attempt: u32,
    #[serde(default)]
    offset: u64,
}

/// Events sent into a channel, as a stream.
struct Events(tokio::sync::mpsc::Receiver<Event>);

impl futures_core::Stream for Events {
    type Item = Result<Event, std::convert::Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(Ok))
    }
}

/// The longest prefix of `bytes` that does not end inside a UTF-8 character.
fn whole_chars(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => bytes.len(),
    }
}

/// `GET /console/jobs/{id}/events?attempt=N&offset=B`: `log` events with new text, then one
/// `end` event with the final state.
pub async fn events(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(follow): Query<Follow>,
) -> Response {
    let caller = match console.caller(&headers).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let Some(slot) = StreamSlot::take() else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too many log streams open; reload the page for the log so far",
        )
            .into_response();
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let _slot = slot;
        let mut offset = follow.offset;
        let deadline = tokio::time::Instant::now() + MAX_STREAM;
        while tokio::time::Instant::now() < deadline {
            let path = format!(
                "/api/v1/jobs/{id}/logs?attempt={}&offset={offset}",
                follow.attempt
            );
            let (status, headers, bytes) =
                console.call(&caller.token, Method::GET, &path, None).await;
            if !status.is_success() {
                let _ = tx
                    .send(Event::default().event("failed").data(status.as_str()))
                    .await;
                return;
            }
            let take = whole_chars(&bytes);
            let text = String::from_utf8_lossy(&bytes[..take]);
            offset += take as u64;
            let state = headers
                .get("x-suanli-job-state")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let event = json!({ "text": text, "offset": offset, "state": state });
            if take > 0
                && tx
                    .send(
                        Event::default()
                            .event("log")
                            .json_data(&event)
                            .expect("json"),
                    )
                    .await
                    .is_err()
            {
                return;
            }
            let ended = crate::store::JobState::parse(&state).is_some_and(|s| s.is_terminal());
            if take == 0 && ended {
                let _ = tx.send(Event::default().event("end").data(state)).await;
                return;
            }
            if take == 0 {
                tokio::time::sleep(POLL_EVERY).await;
            }
        }
    });
    Sse::new(Events(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_shown_quoted() {
        let words = ["sh", "-c", "echo 'hi'; ls", ""].map(String::from);
        assert_eq!(shell_quoted(&words), r#"sh -c 'echo '\''hi'\''; ls' ''"#);
    }

    #[test]
    fn log_streams_are_bounded() {
        let slots: Vec<StreamSlot> = std::iter::from_fn(StreamSlot::take).take(1000).collect();
        assert_eq!(slots.len(), MAX_STREAMS);
        assert!(StreamSlot::take().is_none());
        drop(slots);
        assert!(StreamSlot::take().is_some());
    }

    #[test]
    fn a_chunk_never_ends_inside_a_character() {
        let text = "ab算".as_bytes();
        assert_eq!(whole_chars(text), 5);
        assert_eq!(whole_chars(&text[..4]), 2);
        assert_eq!(whole_chars(b"a\xffb"), 3);
    }
}
