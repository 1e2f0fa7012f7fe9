//! The public HTTP data plane: `/fn/NAME[@VERSION]/…` and manifest routes go to the
//! invoker; body limits, JSON errors and the `x-gureum-*` headers are applied here.
//! HTTP/1.1 keep-alive and HTTP/2 (h2c) are served on the same port.

mod body;
mod server;

pub use body::{BodyTooLarge, LimitedBody};
pub use server::{
    DEFAULT_MAX_BODY_BYTES, GatewaySettings, ResponseBody, error_response, handle,
    serve_connections,
};
