//! The public HTTP data plane: `/fn/NAME[@VERSION]/…` and manifest routes go to the
//! invoker; body limits, JSON errors and the `x-gureum-*` headers are applied here.
//! HTTP/1.1 keep-alive and HTTP/2 (h2c) are served on the same port.

mod body;
mod server;

pub use body::{LimitedBody, BodyTooLarge};
pub use server::{GatewaySettings, DEFAULT_MAX_BODY_BYTES, ResponseBody, error_response, serve_connections, handle};
