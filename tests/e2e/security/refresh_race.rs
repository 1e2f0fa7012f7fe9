//! Finding 13: two tabs refreshing with the same token at once were taken for token
//! theft: the loser revoked every session of the account, and the winner's new token
//! failed too. Within a short window (10 s, as Supabase), a token presented again
//! answers the same successor; after it, reuse still signs the account out everywhere.

use serde_json::Value;

use crate::backend::{error_code, refresh_grant, signup};
use crate::{Server, http};

async fn refreshed(answer: reqwest::Response) -> String {
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    body["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_both_stay_signed_in() {
    let server = Server::start();
    let user = signup(&server, "tabs@example.org").await;
    let (one, two) = tokio::join!(
        refresh_grant(&server, &user.refresh),
        refresh_grant(&server, &user.refresh)
    );
    let (one, two) = (refreshed(one).await, refreshed(two).await);
    assert_eq!(one, two, "both tabs get the same successor");
    // That successor works, and so does its own (one tab refreshed again).
    let next = refreshed(refresh_grant(&server, &one).await).await;
    refreshed(refresh_grant(&server, &next).await).await;
    // A token revoked by logout is not "rotated": presenting it is reuse.
    let other = signup(&server, "logout@example.org").await;
    let logout = http()
        .post(format!("{}/auth/v1/logout", server.public_url))
        .bearer_auth(&other.access)
        .json(&serde_json::json!({"refresh_token": other.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(
        error_code(refresh_grant(&server, &other.refresh).await).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn after_the_window_reuse_still_signs_the_account_out() {
    let server = Server::start_with(&["--no-examples", "--refresh-reuse-interval", "1s"]);
    let user = signup(&server, "late@example.org").await;
    let rotated = refreshed(refresh_grant(&server, &user.refresh).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        error_code(refresh_grant(&server, &user.refresh).await).await,
        "invalid_grant"
    );
    assert_eq!(
        error_code(refresh_grant(&server, &rotated).await).await,
        "invalid_grant",
        "the reuse revoked the successor too"
    );
}
