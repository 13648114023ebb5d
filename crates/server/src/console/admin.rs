//! Tenants and quotas, nodes (down and up) and the audit log with its chain verification.

use std::fmt::Write;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html::{self, csrf_field, escape, url_encode};
use super::jobs::CsrfOnly;
use super::{Console, failure_page};
use crate::api::types::{AuditVerdict, NodeChange, NodeRow, QuotaUsage};
use crate::store::{AuditEvent, Quota, Tenant};

/// Audit entries per page.
const AUDIT_PAGE: usize = 100;

/// `GET /console/tenants`.
pub async fn tenants(State(console): State<Console>, headers: HeaderMap) -> Response {
    let caller = match console.caller(&headers).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let tenants: Vec<Tenant> = match console.get(&caller, "/api/v1/tenants").await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let quotas: Vec<QuotaUsage> = console.get_or_default(&caller, "/api/v1/quotas").await;
    let mut body = String::from(
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Tenant</th>\
         <th scope=\"col\">Created (UTC)</th><th scope=\"col\">Quotas (used / limit)</th>\
         </tr></thead><tbody>",
    );
    for t in &tenants {
        let mine: Vec<String> = quotas
            .iter()
            .filter(|q| q.tenant == t.name)
            .map(|q| format!("{}: {} / {}", escape(&q.accelerator), q.used, q.limit))
            .collect();
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/jobs?tenant={}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            url_encode(&t.name),
            escape(&t.name),
            html::time(t.created_at_s),
            if mine.is_empty() {
                "none".to_string()
            } else {
                mine.join("<br>")
            }
        );
    }
    body.push_str("</tbody></table></div>");
    if caller.me.is_admin() {
        let _ = write!(
            body,
            "<h2>Set a quota</h2><form method=\"post\" action=\"/console/quotas\" class=\"card\">{}\
             <label for=\"q-tenant\">Tenant</label><input id=\"q-tenant\" name=\"tenant\" required maxlength=\"64\">\
             <label for=\"q-acc\">Accelerator type</label><input id=\"q-acc\" name=\"accelerator\" required maxlength=\"64\">\
             <label for=\"q-limit\">Limit (accelerators)</label><input id=\"q-limit\" name=\"limit\" type=\"number\" min=\"0\" required>\
             <button type=\"submit\">Set quota</button></form>",
            csrf_field(&caller)
        );
    }
    html::page("Tenants and quotas", Some(&caller), "tenants", &body).into_response()
}

#[derive(Deserialize)]
pub struct QuotaForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    accelerator: String,
    #[serde(default)]
    limit: String,
}

/// `POST /console/quotas`.
pub async fn set_quota(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<QuotaForm>,
) -> Response {
    let caller = match console.form_caller(&headers, &form.csrf).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let Ok(limit) = form.limit.trim().parse::<u32>() else {
        let failure = super::ApiFailure {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "limit `{}` is not a whole number of accelerators",
                form.limit
            ),
        };
        return failure_page(&caller, &failure);
    };
    let quota = Quota {
        tenant: form.tenant.trim().to_string(),
        accelerator: form.accelerator.trim().to_string(),
        limit,
    };
    match console
        .json::<Quota, _>(&caller.token, Method::PUT, "/api/v1/quotas", Some(&quota))
        .await
    {
        Ok(_) => Redirect::to("/console/tenants").into_response(),
        Err(failure) => failure_page(&caller, &failure),
    }
}

/// `GET /console/nodes`.
pub async fn nodes(State(console): State<Console>, headers: HeaderMap) -> Response {
    let caller = match console.caller(&headers).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let pools: Vec<NodeRow> = match console.get(&caller, "/api/v1/nodes").await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let mut body = String::from(
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Node</th><th scope=\"col\">Pool</th>\
         <th scope=\"col\">Accelerator</th><th scope=\"col\">Free / total</th>\
         <th scope=\"col\">State</th><th scope=\"col\">Action</th></tr></thead><tbody>",
    );
    for p in &pools {
        let action = if !caller.me.is_admin() {
            "—".to_string()
        } else {
            let (verb, label) = if p.state == "up" {
                ("down", "Mark down")
            } else {
                ("up", "Mark up")
            };
            format!(
                "<form method=\"post\" action=\"/console/nodes/{}/{verb}\">{}\
                 <button type=\"submit\">{label}</button></form>",
                url_encode(&p.pool),
                csrf_field(&caller)
            )
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td class=\"state-{s}\">{s}</td><td>{action}</td></tr>",
            escape(&p.node),
            escape(&p.pool),
            escape(&p.accelerator),
            p.free,
            p.total,
            s = escape(&p.state),
        );
    }
    body.push_str("</tbody></table></div>");
    html::page("Nodes", Some(&caller), "nodes", &body).into_response()
}

/// `POST /console/nodes/{pool}/{down|up}`.
pub async fn node_action(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((pool, action)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let caller = match console.form_caller(&headers, &form.csrf).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    if action != "down" && action != "up" {
        return (StatusCode::NOT_FOUND, "use down or up").into_response();
    }
    let path = format!("/api/v1/nodes/{}/{action}", url_encode(&pool));
    match console
        .json::<NodeChange, ()>(&caller.token, Method::POST, &path, None)
        .await
    {
        Ok(_) => Redirect::to("/console/nodes").into_response(),
        Err(failure) => failure_page(&caller, &failure),
    }
}

#[derive(Deserialize)]
pub struct AuditPage {
    #[serde(default)]
    page: usize,
}

/// `GET /console/audit`: the chain's verification and the newest entries first.
pub async fn audit(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<AuditPage>,
) -> Response {
    let caller = match console.caller(&headers).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let verify: AuditVerdict = match console.get(&caller, "/api/v1/audit/verify").await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let mut events: Vec<AuditEvent> = match console.get(&caller, "/api/v1/audit").await {
        Ok(e) => e,
        Err(page) => return page,
    };
    events.reverse();
    let mut body = if verify.ok {
        format!(
            "<p class=\"ok\" id=\"chain\">Chain verified: {} entries, head <code>{}</code>.</p>",
            verify.entries,
            escape(verify.head.as_deref().unwrap_or(""))
        )
    } else {
        format!(
            "<p class=\"error\" id=\"chain\" role=\"alert\">Chain broken at entry {}: {}</p>",
            verify.first_bad_seq.unwrap_or_default(),
            escape(verify.message.as_deref().unwrap_or(""))
        )
    };
    let pages = events.len().div_ceil(AUDIT_PAGE).max(1);
    let page = query.page.min(pages - 1);
    body.push_str(
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Seq</th><th scope=\"col\">At (UTC)</th>\
         <th scope=\"col\">Actor</th><th scope=\"col\">Action</th><th scope=\"col\">Target</th>\
         <th scope=\"col\">Outcome</th></tr></thead><tbody>",
    );
    for e in events.iter().skip(page * AUDIT_PAGE).take(AUDIT_PAGE) {
        body.push_str(&html::row(&[
            &e.seq,
            &html::time(e.at_ms.div_euclid(1000)),
            &escape(&e.actor),
            &escape(&e.action),
            &escape(&e.target),
            &escape(&e.outcome),
        ]));
    }
    body.push_str("</tbody></table></div>");
    let _ = write!(body, "<nav aria-label=\"Pages\" class=\"pages\">");
    if page > 0 {
        let _ = write!(
            body,
            "<a href=\"/console/audit?page={}\">← newer</a> ",
            page - 1
        );
    }
    let _ = write!(body, "<span>page {} of {pages}</span>", page + 1);
    if page + 1 < pages {
        let _ = write!(
            body,
            " <a href=\"/console/audit?page={}\">older →</a>",
            page + 1
        );
    }
    body.push_str("</nav>");
    html::page("Audit log", Some(&caller), "audit", &body).into_response()
}
