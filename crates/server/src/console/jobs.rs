//! Jobs: the filtered, paginated list, one job's page (history, runs, devices, live logs,
//! cancel) and the submission form.

use std::fmt::Write;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::FormError;
use super::html::{self, csrf_field, escape, url_encode};
use super::{ApiFailure, Caller, Console, failure_page};
use crate::api::types::Submit;
use crate::store::{JobRecord, RunSpec, Tenant};

/// Jobs per page of the list.
const PAGE_SIZE: usize = 50;
/// Most bytes of log shown in the page itself (the rest streams in).
const LOG_TAIL_BYTES: usize = 64 << 10;

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    user: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    page: usize,
}

/// The accelerator types a job asked for or runs on.
fn job_types(job: &JobRecord) -> Vec<&str> {
    let mut types: Vec<&str> = job
        .spec
        .run
        .accelerators
        .iter()
        .map(String::as_str)
        .collect();
    if let Some(run) = &job.run {
        types.push(&run.accelerator);
    }
    types
}

/// Keeps the jobs matching the filter's user and type (the API filters tenant and state).
pub fn keep(jobs: Vec<JobRecord>, user: &str, kind: &str) -> Vec<JobRecord> {
    jobs.into_iter()
        .filter(|j| user.is_empty() || j.spec.user == user)
        .filter(|j| kind.is_empty() || job_types(j).contains(&kind))
        .collect()
}

fn select(name: &str, label: &str, current: &str, options: &[&str]) -> String {
    let mut out = format!(
        "<label for=\"{name}\">{label}</label><select id=\"{name}\" name=\"{name}\">\
         <option value=\"\">any</option>"
    );
    for o in options {
        let selected = if *o == current { " selected" } else { "" };
        let o = escape(o);
        let _ = write!(out, "<option value=\"{o}\"{selected}>{o}</option>");
    }
    out.push_str("</select>");
    out
}

/// Links to the newer and older pages of the list, keeping the filter.
fn pager(filter: &Filter, page: usize, pages: usize, jobs: usize) -> String {
    let mut body = String::new();
    let link = |p: usize| {
        format!(
            "/console/jobs?tenant={}&state={}&user={}&type={}&page={p}",
            url_encode(&filter.tenant),
            url_encode(&filter.state),
            url_encode(&filter.user),
            url_encode(&filter.kind)
        )
    };
    let _ = write!(
        body,
        "<nav aria-label=\"Pages\" class=\"pages\">{} <span>page {} of {pages} · {} jobs</span> {}</nav>",
        if page > 0 {
            format!("<a href=\"{}\">← newer</a>", escape(&link(page - 1)))
        } else {
            String::new()
        },
        page + 1,
        jobs,
        if page + 1 < pages {
            format!("<a href=\"{}\">older →</a>", escape(&link(page + 1)))
        } else {
            String::new()
        },
    );
    body
}

/// `GET /console/jobs`.
pub async fn list(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    let caller = match console.caller(&headers).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let mut path = String::from("/api/v1/jobs?");
    for (key, value) in [("tenant", &filter.tenant), ("state", &filter.state)] {
        if !value.is_empty() {
            let _ = write!(path, "{key}={}&", url_encode(value));
        }
    }
    let jobs: Vec<JobRecord> = match console.get(&caller, &path).await {
        Ok(jobs) => jobs,
        Err(page) => return page,
    };
    let tenants: Vec<Tenant> = console.get_or_default(&caller, "/api/v1/tenants").await;
    let mut jobs = keep(jobs, filter.user.trim(), filter.kind.trim());
    jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
    let pages = jobs.len().div_ceil(PAGE_SIZE).max(1);
    let page = filter.page.min(pages - 1);
    let tenant_names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    let mut body = format!(
        "<p><a class=\"button\" href=\"/console/jobs/new\">Submit a job</a></p>\
         <form method=\"get\" action=\"/console/jobs\" class=\"filters\">{}{}\
         <label for=\"user\">User</label><input id=\"user\" name=\"user\" value=\"{}\">\
         <label for=\"type\">Accelerator type</label><input id=\"type\" name=\"type\" value=\"{}\">\
         <button type=\"submit\">Filter</button></form>",
        select("tenant", "Tenant", &filter.tenant, &tenant_names),
        select(
            "state",
            "State",
            &filter.state,
            &["queued", "running", "succeeded", "failed", "cancelled"]
        ),
        escape(&filter.user),
        escape(&filter.kind),
    );
    body.push_str(
        "<div class=\"scroll\"><table id=\"jobs\"><thead><tr><th scope=\"col\">Id</th>\
         <th scope=\"col\">Name</th><th scope=\"col\">Tenant</th><th scope=\"col\">User</th>\
         <th scope=\"col\">State</th><th scope=\"col\">Accelerators</th>\
         <th scope=\"col\">Submitted (UTC)</th><th scope=\"col\">Reason</th></tr></thead><tbody>",
    );
    for job in jobs.iter().skip(page * PAGE_SIZE).take(PAGE_SIZE) {
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/jobs/{id}\">{id}</a></td><td>{}</td><td>{}</td>\
             <td>{}</td><td class=\"state-{s}\">{s}</td><td>{} × {}</td><td>{}</td><td>{}</td></tr>",
            escape(&job.spec.name),
            escape(&job.spec.tenant),
            escape(&job.spec.user),
            job.spec.gpus,
            escape(&job_types(job).join(", ")),
            html::time(job.submitted_at_s),
            escape(&job.reason),
            id = job.id,
            s = job.state.as_str(),
        );
    }
    body.push_str("</tbody></table></div>");
    body.push_str(&pager(&filter, page, pages, jobs.len()));
    html::page("Jobs", Some(&caller), "jobs", &body).into_response()
}

fn submit_form(caller: &Caller, tenants: &[Tenant], problem: Option<&str>) -> String {
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    let mut tenant_options = String::new();
    for name in names {
        let selected = if caller.me.tenant.as_deref() == Some(name) {
            " selected"
        } else {
            ""
        };
        let name = escape(name);
        let _ = write!(
            tenant_options,
            "<option value=\"{name}\"{selected}>{name}</option>"
        );
    }
    let problem = problem.map_or(String::new(), |p| html::alert(&p));
    format!(
        "{problem}<form method=\"post\" action=\"/console/jobs/new\" class=\"card\">{}\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" maxlength=\"128\">\
         <label for=\"tenant\">Tenant</label><select id=\"tenant\" name=\"tenant\">{tenant_options}</select>\
         <label for=\"command\">Command</label><input id=\"command\" name=\"command\" required \
          maxlength=\"4096\" placeholder=\"python train.py --steps 100\">\
         <p class=\"hint\">Split into arguments like a shell would (quotes group words); no \
          shell runs it.</p>\
         <label for=\"gpus\">Accelerators</label><input id=\"gpus\" name=\"gpus\" type=\"number\" \
          min=\"1\" max=\"4096\" value=\"1\">\
         <label for=\"processes\">Processes (ranks)</label><input id=\"processes\" \
          name=\"processes\" type=\"number\" min=\"1\" max=\"4096\" value=\"1\">\
         <label for=\"accelerator\">Accelerator type (optional)</label>\
         <input id=\"accelerator\" name=\"accelerator\" maxlength=\"64\" placeholder=\"h100-sxm5-80gb\">\
         <label for=\"priority\">Priority</label><input id=\"priority\" name=\"priority\" \
          type=\"number\" value=\"0\">\
         <label for=\"max_restarts\">Restarts allowed</label><input id=\"max_restarts\" \
          name=\"max_restarts\" type=\"number\" min=\"0\" max=\"100\" value=\"0\">\
         <button type=\"submit\">Submit</button></form>",
        csrf_field(caller)
    )
}

/// `GET /console/jobs/new`.
pub async fn new_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    let caller = match console.caller(&headers).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let tenants: Vec<Tenant> = console.get_or_default(&caller, "/api/v1/tenants").await;
    let body = submit_form(&caller, &tenants, None);
    html::page("Submit a job", Some(&caller), "jobs", &body).into_response()
}

#[derive(Deserialize)]
pub struct SubmitForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    gpus: String,
    #[serde(default)]
    processes: String,
    #[serde(default)]
    accelerator: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    max_restarts: String,
}

/// Splits a command line into words: whitespace separates, single and double quotes group,
/// a backslash escapes the next character outside single quotes.
pub fn split_words(line: &str) -> Result<Vec<String>, FormError> {
    let (mut words, mut word, mut in_word) = (Vec::new(), String::new(), false);
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (_, '\\') => {
                word.push(chars.next().ok_or(FormError::LoneBackslash)?);
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(FormError::UnclosedQuote);
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err(FormError::NoCommand);
    }
    Ok(words)
}

fn number<T: std::str::FromStr>(
    field: &'static str,
    text: &str,
    default: T,
) -> Result<T, FormError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(default);
    }
    text.parse().map_err(|_| FormError::NotInRange {
        field,
        text: text.to_string(),
    })
}

fn submission(form: &SubmitForm) -> Result<Submit, FormError> {
    let given = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
    Ok(Submit {
        run: RunSpec {
            command: split_words(&form.command)?,
            priority: number::<i32>("priority", &form.priority, 0)?,
            max_restarts: number::<u32>("restarts", &form.max_restarts, 0)?,
            accelerators: given(&form.accelerator).into_iter().collect(),
            ..RunSpec::default()
        },
        gpus: Some(number::<u32>("accelerators", &form.gpus, 1)?),
        processes: Some(number::<u32>("processes", &form.processes, 1)?),
        name: given(&form.name),
        tenant: given(&form.tenant),
        ..Submit::default()
    })
}

/// `POST /console/jobs/new`: submits through the API and shows the new job.
pub async fn submit(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SubmitForm>,
) -> Response {
    let caller = match console.form_caller(&headers, &form.csrf).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let result = match submission(&form) {
        Ok(body) => {
            console
                .json::<JobRecord, _>(&caller.token, Method::POST, "/api/v1/jobs", Some(&body))
                .await
        }
        Err(problem) => Err(ApiFailure {
            status: StatusCode::BAD_REQUEST,
            message: problem.to_string(),
        }),
    };
    match result {
        Ok(job) => Redirect::to(&format!("/console/jobs/{}", job.id)).into_response(),
        Err(failure) => {
            let tenants: Vec<Tenant> = console.get_or_default(&caller, "/api/v1/tenants").await;
            let body = submit_form(&caller, &tenants, Some(&failure.message));
            (
                failure.status,
                html::page("Submit a job", Some(&caller), "jobs", &body),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct LogChoice {
    attempt: Option<u32>,
}

/// `GET /console/jobs/{id}`.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(choice): Query<LogChoice>,
) -> Response {
    let caller = match console.caller(&headers).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let job: JobRecord = match console.get(&caller, &format!("/api/v1/jobs/{id}")).await {
        Ok(job) => job,
        Err(page) => return page,
    };
    let attempt = choice.attempt.unwrap_or(job.attempts.saturating_sub(1));
    let logs_path = format!("/api/v1/jobs/{id}/logs?attempt={attempt}");
    let (_, log_headers, log) = console
        .call(&caller.token, Method::GET, &logs_path, None)
        .await;
    let next_offset = log_headers
        .get("x-suanli-next-offset")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_string();
    let start = log.len().saturating_sub(LOG_TAIL_BYTES);
    let text = String::from_utf8_lossy(&log[start..]);
    let body = super::logs::job_body(&caller, &job, attempt, &text, &next_offset);
    let title = format!("Job {} · {}", job.id, job.spec.name);
    html::page(&title, Some(&caller), "jobs", &body).into_response()
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub(super) csrf: String,
}

/// `POST /console/jobs/{id}/cancel`: the API decides whether the caller may.
pub async fn cancel(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let caller = match console.form_caller(&headers, &form.csrf).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let path = format!("/api/v1/jobs/{id}/cancel");
    match console
        .json::<JobRecord, ()>(&caller.token, Method::POST, &path, None)
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/jobs/{id}")).into_response(),
        Err(failure) => failure_page(&caller, &failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"sh -c "echo 'a b'; sleep 1" x\ y"#).unwrap(),
            vec!["sh", "-c", "echo 'a b'; sleep 1", "x y"]
        );
        assert_eq!(split_words("a '' b").unwrap(), vec!["a", "", "b"]);
        assert!(split_words("echo 'open").is_err());
        assert!(split_words("   ").is_err());
        assert!(split_words("echo \\").is_err());
    }

    #[test]
    fn numbers_are_checked() {
        assert_eq!(number::<u32>("gpus", " 4 ", 1).ok(), Some(4));
        assert_eq!(number::<u32>("gpus", "", 1).ok(), Some(1));
        assert!(number::<u32>("gpus", "-1", 1).is_err());
        assert!(number::<u32>("gpus", "1e9999", 1).is_err());
    }
}
