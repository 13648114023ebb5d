//! The web console at `/`: server-rendered pages that call the HTTP API in-process with the
//! signed-in user's token, so every role and tenant rule is the API's own.
//!
//! Sign-in takes an API token and keeps it server-side behind a random session id in an
//! `HttpOnly; SameSite=Strict` cookie; every form carries the session's CSRF token. Pages are
//! plain HTML with inline SVG charts; the one script (live logs over server-sent events) and the
//! style sheet are embedded in the binary.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::api::AppState;
use crate::api::types::Whoami;
use crate::auth::Principal;

mod admin;
mod cluster;
mod form;
mod html;
mod jobs;
mod logs;
mod planner;
mod planner_serve;
mod planner_slo;
mod session;
mod simulate;

pub use session::Sessions;

/// What every console handler shares.
#[derive(Clone)]
pub struct Console {
    /// The API's router, called in-process.
    api: Router,
    sessions: Arc<Sessions>,
    history: Arc<cluster::History>,
    /// The server's catalog, which the planners offer and plan with.
    catalog: Arc<suanli_catalog::Catalog>,
}

/// The console's routes; `api` is the API router they call.
pub fn router(state: AppState, api: Router) -> Router {
    let history = Arc::new(cluster::History::default());
    let catalog = state.catalog.clone();
    cluster::start_sampler(state, history.clone());
    let console = Console {
        api,
        sessions: Arc::new(Sessions::default()),
        history,
        catalog,
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/cluster") }))
        .route(
            "/console/login",
            get(session::login_page).post(session::login),
        )
        .route("/console/logout", post(session::logout))
        .route("/console/static/{file}", get(static_file))
        .route("/console/cluster", get(cluster::page))
        .route("/console/jobs", get(jobs::list))
        .route("/console/jobs/new", get(jobs::new_form).post(jobs::submit))
        .route("/console/jobs/{id}", get(jobs::show))
        .route("/console/jobs/{id}/cancel", post(jobs::cancel))
        .route("/console/jobs/{id}/events", get(logs::events))
        .route("/console/tenants", get(admin::tenants))
        .route("/console/quotas", post(admin::set_quota))
        .route("/console/nodes", get(admin::nodes))
        .route("/console/nodes/{pool}/{action}", post(admin::node_action))
        .route("/console/audit", get(admin::audit))
        .route("/console/planner", get(planner::page).post(planner::post))
        .route("/console/planner/serving", get(planner_serve::page))
        .route("/console/simulations", get(simulate::page))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

/// Headers every console response carries: no framing, no sniffing, nothing from elsewhere.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (
            include_str!("static/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("static/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// A refusal or failure from the API, as its status and one-line message.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub message: String,
}

/// The signed-in user of a request: who the API says the token is, and the session's CSRF token.
pub struct Caller {
    pub token: String,
    pub csrf: String,
    pub me: Principal,
}

impl Console {
    /// Calls the API as `token` with a JSON `body` (already encoded).
    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json)
            }
            None => Body::empty(),
        };
        let request = request.body(body).expect("a valid request");
        let response = match self.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 << 20)
            .await
            .unwrap_or_default();
        (parts.status, parts.headers, bytes)
    }

    /// Calls the API with a request body of the API's own types (`crate::api::types`) and
    /// decodes the answer as one, or returns the API's refusal.
    async fn json<T: DeserializeOwned, B: Serialize>(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiFailure> {
        let body = body.map(|b| serde_json::to_vec(b).expect("API types always encode"));
        let (status, _, bytes) = self.call(token, method, path, body).await;
        if !status.is_success() {
            let message = serde_json::from_slice::<crate::api::types::ErrorBody>(&bytes)
                .map(|body| body.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ApiFailure { status, message });
        }
        serde_json::from_slice(&bytes).map_err(|e| ApiFailure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("the API answered something unexpected: {e}"),
        })
    }

    /// A GET for a page: the answer, or the page saying why the API refused.
    async fn get<T: DeserializeOwned>(&self, caller: &Caller, path: &str) -> Result<T, Response> {
        self.json::<T, ()>(&caller.token, Method::GET, path, None)
            .await
            .map_err(|failure| failure_page(caller, &failure))
    }

    /// A GET for a part of a page that may be missing (quotas, tenants): empty when refused.
    async fn get_or_default<T: DeserializeOwned + Default>(
        &self,
        caller: &Caller,
        path: &str,
    ) -> T {
        self.json::<T, ()>(&caller.token, Method::GET, path, None)
            .await
            .unwrap_or_default()
    }

    /// The caller of a page, or a redirect to the sign-in page.
    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, Response> {
        let to_login = || Redirect::to("/console/login").into_response();
        let (token, csrf) = self.sessions.lookup(headers).ok_or_else(to_login)?;
        let who: Whoami = self
            .json::<_, ()>(&token, Method::GET, "/api/v1/whoami", None)
            .await
            .map_err(|_| to_login())?;
        let me = principal_of(who);
        Ok(Caller { token, csrf, me })
    }

    /// The caller of a form post: as [`Self::caller`], and a 403 unless `given_csrf` is the
    /// session's CSRF token.
    async fn form_caller(&self, headers: &HeaderMap, given_csrf: &str) -> Result<Caller, Response> {
        let caller = self.caller(headers).await?;
        if !session::csrf_ok(&caller.csrf, given_csrf) {
            return Err((StatusCode::FORBIDDEN, "bad CSRF token").into_response());
        }
        Ok(caller)
    }
}

/// The principal the API's `/whoami` describes.
fn principal_of(who: Whoami) -> Principal {
    Principal {
        user: who.user,
        role: who.role,
        tenant: who.tenant,
    }
}

/// A page with the API's refusal or failure, with its status.
fn failure_page(caller: &Caller, failure: &ApiFailure) -> Response {
    let body = format!(
        "<p class=\"error\" role=\"alert\">The server refused: {} ({})</p>",
        html::escape(&failure.message),
        failure.status.as_u16()
    );
    let status = failure.status;
    (status, html::page("Refused", Some(caller), "", &body)).into_response()
}
