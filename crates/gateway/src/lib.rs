//! The public HTTP data plane: `/fn/NAME[@VERSION]/…` and manifest routes go to the
//! invoker; body limits, JSON errors and the `x-gureum-*` headers are applied here.
//! The backend services (`/auth/v1`, `/data/v1`, `/kv/v1`) are routed to their crates
//! with the caller resolved here. HTTP/1.1 keep-alive and HTTP/2 (h2c) are served on the
//! same port.

mod body;
mod connections;
mod server;
mod services;

pub use body::{BodyTooLarge, DrainOnDrop, LimitedBody, MAX_DRAIN_BYTES, MAX_DRAIN_TIME};
pub use connections::{
    ConnectionSettings, DEFAULT_ADMIN_MAX_CONNECTIONS, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, serve, serve_router,
};
pub use server::{
    DEFAULT_MAX_ASYNC_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, GatewaySettings, ListenerOptions,
    PublicPlane, ResponseBody, error_response, handle, serve_connections,
};
pub use services::Services;
