//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::{backend, functions, logs, metering, queue, stats};

/// The control API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "gureum control API", description = "Deploy, version, roll back, invoke and observe functions; usage, prices and quotas. Every call needs `Authorization: Bearer <admin token>`."),
    paths(
        functions::deploy,
        functions::list,
        functions::show,
        functions::versions,
        functions::rollback,
        functions::remove,
        functions::invoke,
        logs::logs,
        logs::invocations,
        logs::invocation,
        stats::stats,
        stats::queue,
        stats::websockets,
        backend::data,
        metering::usage,
        metering::prices,
        metering::set_prices,
        metering::quotas,
        metering::set_global_quota,
        metering::set_function_quota,
        metering::remove_global_quota,
        metering::remove_function_quota,
        queue::schedules,
        backend::users,
        backend::user,
        backend::disable,
        backend::enable,
        backend::collections,
        backend::collection,
        backend::set_collection,
        backend::delete_collection,
        queue::dead_letters,
        queue::dead_letter,
        queue::delete_one,
        queue::delete_all,
        queue::redrive_one,
        queue::redrive_all,
    ),
    modifiers(&BearerAuth),
    security(("admin_token" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Serves the document.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
