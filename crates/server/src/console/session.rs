//! Console sessions: sign-in with an API token, a random session id in an `HttpOnly;
//! SameSite=Strict` cookie, the token kept server-side, and one CSRF token per session.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Console, html};

/// Cookie carrying the session id.
const SESSION_COOKIE: &str = "suanli_session";
/// Cookie carrying the sign-in form's CSRF token (double submit: there is no session yet).
const LOGIN_COOKIE: &str = "suanli_login";
/// How long a session lasts without signing in again.
const SESSION_TTL_S: i64 = 12 * 3600;
/// Most sessions kept at once; the oldest go first.
const MAX_SESSIONS: usize = 10_000;
/// Longest token accepted by the form (real ones are 71 characters).
const MAX_TOKEN_CHARS: usize = 200;

struct Session {
    token: String,
    csrf: String,
    expires_at_s: i64,
}

/// Signed-in sessions, in memory: a restart signs everyone out.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    hex::encode(bytes)
}

/// The value of cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Constant-time equality of two secrets.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    fn create(&self, token: String) -> String {
        let now = crate::engine::now_s();
        let id = random_hex();
        let mut map = self.map.lock().expect("sessions lock");
        map.retain(|_, s| s.expires_at_s > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires_at_s)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let session = Session {
            token,
            csrf: random_hex(),
            expires_at_s: now + SESSION_TTL_S,
        };
        map.insert(id.clone(), session);
        id
    }

    /// The token and CSRF token of the request's session.
    pub fn lookup(&self, headers: &HeaderMap) -> Option<(String, String)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let map = self.map.lock().expect("sessions lock");
        let session = map.get(id)?;
        (session.expires_at_s > crate::engine::now_s())
            .then(|| (session.token.clone(), session.csrf.clone()))
    }

    fn remove(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.map.lock().expect("sessions lock").remove(id);
        }
    }
}

/// Whether a form's CSRF field matches the session's.
pub fn csrf_ok(expected: &str, given: &str) -> bool {
    !given.is_empty() && same(expected, given)
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age_s: i64) {
    let cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}");
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("cookie is ascii"),
    );
}

fn login_form(csrf: &str, problem: Option<&str>) -> String {
    let problem = problem.map_or(String::new(), |p| html::alert(&p));
    format!(
        "{problem}<form method=\"post\" action=\"/console/login\" class=\"card narrow\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"token\">API token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required \
          placeholder=\"suanli_…\">\
         <p class=\"hint\">The admin's token is in DATA_DIR/admin-token; others come from \
          <code>suanli token create</code>.</p>\
         <button type=\"submit\">Sign in</button></form>"
    )
}

/// `GET /console/login`.
pub async fn login_page() -> Response {
    let csrf = random_hex();
    let mut response = html::page("Sign in", None, "", &login_form(&csrf, None)).into_response();
    set_cookie(&mut response, LOGIN_COOKIE, &csrf, 3600);
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /console/login`: checks the token with the API and opens a session.
pub async fn login(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let refuse = |status: StatusCode, problem: &str| {
        let csrf = random_hex();
        let mut response = (
            status,
            html::page("Sign in", None, "", &login_form(&csrf, Some(problem))),
        )
            .into_response();
        set_cookie(&mut response, LOGIN_COOKIE, &csrf, 3600);
        response
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !csrf_ok(expected, &form.csrf) {
        return refuse(
            StatusCode::FORBIDDEN,
            "The sign-in form expired; try again.",
        );
    }
    let token = form.token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS || !token.is_ascii() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "Give an API token (it starts with suanli_).",
        );
    }
    let who: Result<crate::api::types::Whoami, _> = console
        .json::<_, ()>(token, Method::GET, "/api/v1/whoami", None)
        .await;
    if let Err(failure) = who {
        return refuse(
            StatusCode::UNAUTHORIZED,
            &format!("That token was refused: {}.", failure.message),
        );
    }
    let id = console.sessions.create(token.to_string());
    let mut response = Redirect::to("/console/cluster").into_response();
    set_cookie(&mut response, SESSION_COOKIE, &id, SESSION_TTL_S);
    set_cookie(&mut response, LOGIN_COOKIE, "", 0);
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/logout`.
pub async fn logout(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some((_, csrf)) = console.sessions.lookup(&headers) {
        if !csrf_ok(&csrf, &form.csrf) {
            return (StatusCode::FORBIDDEN, "bad CSRF token").into_response();
        }
        console.sessions.remove(&headers);
    }
    let mut response = Redirect::to("/console/login").into_response();
    set_cookie(&mut response, SESSION_COOKIE, "", 0);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("xsuanli_session=bad; suanli_session=good"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("good"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
    }

    #[test]
    fn csrf_needs_an_exact_non_empty_match() {
        assert!(csrf_ok("abc", "abc"));
        assert!(!csrf_ok("abc", "abd"));
        assert!(!csrf_ok("abc", "ab"));
        assert!(!csrf_ok("", ""));
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let sessions = Sessions::default();
        let id = sessions.create("suanli_x".into());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{SESSION_COOKIE}={id}")).unwrap(),
        );
        assert_eq!(sessions.lookup(&headers).unwrap().0, "suanli_x");
        sessions
            .map
            .lock()
            .unwrap()
            .get_mut(&id)
            .unwrap()
            .expires_at_s = 0;
        assert!(sessions.lookup(&headers).is_none());
    }
}
