//! The API's routes: which handler answers a request, and the checks every
//! request passes first (method, URI length, no body).

use std::sync::Arc;

use hyper::body::{Body as _, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::events;
use super::progress::Progress;
use super::query::{EventsQuery, WaitQuery};
use super::reply::{json_response, ndjson_response, ApiError, Body};
use super::server::Limits;
use super::{wait, zones, API_VERSION};
use crate::store::EventStore;

/// What every request handler may use.
#[derive(Clone)]
pub struct Ctx {
    /// The journal.
    pub store: Arc<dyn EventStore>,
    /// The server's limits.
    pub limits: Limits,
}

/// The routes, for the 404 message.
const ROUTES: &str = "/v1/version, /v1/events, /v1/zones, /v1/zones/{zone_id or name}, /v1/wait";

/// Answers `req`; every failure is a JSON error response.
pub async fn answer(req: Request<Incoming>, ctx: Ctx, progress: Arc<Progress>) -> Response<Body> {
    match route(req, &ctx, progress).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::debug!(status = %e.status, error = %e.message, "refused a request");
            e.into_response()
        }
    }
}

async fn route(
    req: Request<Incoming>,
    ctx: &Ctx,
    progress: Arc<Progress>,
) -> Result<Response<Body>, ApiError> {
    check(&req, &ctx.limits)?;
    let now = zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME);
    let query = req.uri().query();
    let path = req.uri().path();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["v1", "version"] => Ok(json_response(
            StatusCode::OK,
            &json!({ "api": API_VERSION, "version": env!("CARGO_PKG_VERSION") }),
        )),
        ["v1", "events"] => {
            let q = EventsQuery::parse(query, now)?;
            let body = events::body(Arc::clone(&ctx.store), q, ctx.limits.max_lag, progress)
                .map_err(internal)?;
            Ok(ndjson_response(body))
        }
        ["v1", "zones"] => {
            no_query(query)?;
            let zones = zones::running(ctx.store.as_ref());
            Ok(json_response(StatusCode::OK, &Value::from(zones)))
        }
        ["v1", "zones", key] => {
            no_query(query)?;
            let key = percent_decode(key)?;
            match zones::find(ctx.store.as_ref(), &key) {
                Some(z) => Ok(json_response(StatusCode::OK, &Value::Object(z))),
                None => Err(ApiError::not_found(format!(
                    "no running zone has zone_id or name `{}`",
                    key.escape_debug()
                ))),
            }
        }
        ["v1", "wait"] => {
            let q = WaitQuery::parse(query, now)?;
            match wait::first_match(Arc::clone(&ctx.store), &q).await {
                Ok(Some(r)) => Ok(json_response(
                    StatusCode::OK,
                    &Value::Object(Arc::unwrap_or_clone(r.object)),
                )),
                Ok(None) => Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("timeout: no {} of that zone within the timeout", q.event),
                )),
                Err(e) => Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{e:#}"),
                )),
            }
        }
        _ => Err(ApiError::not_found(format!(
            "no route {} (routes: {ROUTES})",
            path.escape_debug()
        ))),
    }
}

/// The checks before routing: GET only, a bounded URI, no request body.
fn check(req: &Request<Incoming>, limits: &Limits) -> Result<(), ApiError> {
    if req.method() != Method::GET {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "method {} not allowed: the API is read-only (GET)",
                req.method()
            ),
        ));
    }
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > limits.max_uri {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the URI is {uri_len} bytes, more than {}", limits.max_uri),
        ));
    }
    if req.body().size_hint().upper() != Some(0) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "requests have no body",
        ));
    }
    Ok(())
}

/// Refuses a query string on routes that take none.
fn no_query(query: Option<&str>) -> Result<(), ApiError> {
    match query {
        None | Some("") => Ok(()),
        Some(_) => Err(ApiError::bad_request("this route takes no parameters")),
    }
}

/// A path segment, percent-decoded (names may hold any character).
fn percent_decode(segment: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad_request("the zone name is not UTF-8"))
}

/// A server-side failure, as a 500.
fn internal(e: anyhow::Error) -> ApiError {
    tracing::warn!(error = %format!("{e:#}"), "serving a request");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}
