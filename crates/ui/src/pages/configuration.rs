//! (in progress)

use axum::Router;
use berth_api::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
