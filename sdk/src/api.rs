//! The platform API client the service modules share: base URL and token from the
//! environment, one buffered request, and the platform's error shapes.

use serde::de::DeserializeOwned;
use wstd::http::{Body, Client, HeaderMap, Method, Request, Response};

use crate::Error;
use crate::config::{self, ConfigError};

/// The platform's base URL, without a trailing slash.
pub(crate) fn base_url() -> Result<String, Error> {
    match config::get(config::API_URL) {
        Some(url) if !url.trim().is_empty() => Ok(url.trim().trim_end_matches('/').to_owned()),
        _ => Err(ConfigError::Missing {
            key: config::API_URL.to_owned(),
        }
        .into()),
    }
}

/// The function's token for the platform API.
pub(crate) fn function_token() -> Result<String, Error> {
    match config::get(config::FUNCTION_TOKEN) {
        Some(token) if !token.is_empty() => Ok(token),
        _ => Err(ConfigError::Missing {
            key: config::FUNCTION_TOKEN.to_owned(),
        }
        .into()),
    }
}

/// An answer read whole.
pub(crate) struct Reply {
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The body as JSON of type `T`.
    pub(crate) fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|error| {
            Error::Json(format!(
                "decoding {what}: {error} (body: {})",
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            ))
        })
    }
}

/// One call of the platform API.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    /// Everything after the base URL, starting with `/`.
    pub(crate) path: String,
    /// The bearer token; `None`: the function's own.
    pub(crate) token: Option<&'a str>,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// The body and its content type.
    pub(crate) body: Option<(Vec<u8>, &'static str)>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(method: Method, path: String) -> Self {
        Call {
            method,
            path,
            token: None,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn token(mut self, token: Option<&'a str>) -> Self {
        self.token = token;
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|error| Error::Json(format!("encoding the request body: {error}")))?;
        self.body = Some((bytes, "application/json"));
        Ok(self)
    }

    pub(crate) fn bytes(mut self, bytes: Vec<u8>, content_type: &'static str) -> Self {
        self.body = Some((bytes, content_type));
        self
    }

    /// Sends the call and reads the answer; a non-2xx answer is an [`Error::Api`].
    pub(crate) async fn send(self) -> Result<Reply, Error> {
        let token = match self.token {
            Some(token) => token.to_owned(),
            None => function_token()?,
        };
        let url = format!("{}{}", base_url()?, self.path);
        let mut builder = Request::builder()
            .method(self.method)
            .uri(url.as_str())
            .header("authorization", format!("Bearer {token}"));
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let body = match self.body {
            Some((bytes, content_type)) => {
                builder = builder.header("content-type", content_type);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let request = builder
            .body(body)
            .map_err(|error| Error::Http(format!("building the request to {url}: {error}")))?;
        let response = send(request, &url).await?;
        read(response, &url).await
    }
}

/// Sends `request` (to `url`, for messages).
pub(crate) async fn send(request: Request<Body>, url: &str) -> Result<Response<Body>, Error> {
    Client::new()
        .send(request)
        .await
        .map_err(|error| Error::Http(format!("calling {url}: {error:#}")))
}

/// Reads `response` whole; a non-2xx status is an [`Error::Api`].
async fn read(response: Response<Body>, url: &str) -> Result<Reply, Error> {
    let (parts, mut body) = response.into_parts();
    let body = body
        .contents()
        .await
        .map_err(|error| Error::Http(format!("reading the answer of {url}: {error:#}")))?
        .to_vec();
    if parts.status.is_success() {
        Ok(Reply { body })
    } else {
        Err(api_error(parts.status.as_u16(), &parts.headers, &body))
    }
}

/// The [`Error::Api`] of an error answer: `{"error": {"code", "message"}}` (gateway and
/// data services), or `{"message"}` with the code in `x-amzn-errortype` (the WebSocket
/// management API), or whatever the body says.
pub(crate) fn api_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    let header_code = headers
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(':').next().unwrap_or(value).to_owned());
    let code = text(&json["error"]["code"])
        .or(header_code)
        .unwrap_or_else(|| format!("http_{status}"));
    let message = text(&json["error"]["message"])
        .or_else(|| text(&json["message"]))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    Error::Api {
        status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(error: Error) -> (u16, String, String) {
        match error {
            Error::Api {
                status,
                code,
                message,
            } => (status, code, message),
            other => panic!("not an API error: {other:?}"),
        }
    }

    #[test]
    fn both_error_shapes_are_read() {
        let body =
            br#"{"error":{"code":"version_mismatch","message":"the document is at version 3"}}"#;
        assert_eq!(
            parts(api_error(412, &HeaderMap::new(), body)),
            (
                412,
                "version_mismatch".into(),
                "the document is at version 3".into()
            )
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-amzn-errortype", "GoneException".parse().unwrap());
        assert_eq!(
            parts(api_error(
                410,
                &headers,
                br#"{"message":"connection x is not connected"}"#
            )),
            (
                410,
                "GoneException".into(),
                "connection x is not connected".into()
            )
        );
        assert_eq!(
            parts(api_error(500, &HeaderMap::new(), b"boom\n")),
            (500, "http_500".into(), "boom".into())
        );
    }
}
