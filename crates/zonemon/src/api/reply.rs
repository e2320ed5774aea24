//! What the server answers: JSON documents, NDJSON streams, and errors as
//! `{"error": "…"}` with a 4xx or 5xx status.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

/// Every response body: a whole document or a stream of NDJSON lines.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The media type of the event stream: one JSON object per line.
pub const NDJSON: &str = "application/x-ndjson";

/// A request the server will not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (4xx for the client's mistakes, 5xx for the server's).
    pub status: StatusCode,
    /// One line saying what was wrong and what is accepted.
    pub message: String,
}

impl ApiError {
    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// The error as a response: `{"error": message}`.
    pub fn into_response(self) -> Response<Body> {
        json_response(self.status, &json!({ "error": self.message }))
    }
}

/// A JSON document with `status`.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut text = value.to_string();
    text.push('\n');
    let mut resp = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A 200 response streaming `body` as NDJSON.
pub fn ndjson_response(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    resp
}
