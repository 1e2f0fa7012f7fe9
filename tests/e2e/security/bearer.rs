//! Info item 2: `Authorization: bearer …` in another case than `Bearer` was refused by
//! the admin listener (RFC 9110: the scheme is case-insensitive), and the public
//! listener and the management API each parsed the header their own way.

use crate::backend::signup;
use crate::{Server, http};

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_on_both_listeners() {
    let server = Server::start();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let answer = http()
            .get(format!("{}/api/v1/functions", server.admin_url))
            .header("authorization", format!("{scheme} {}", server.token))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "admin listener, {scheme}");
    }
    let wrong = http()
        .get(format!("{}/api/v1/functions", server.admin_url))
        .header("authorization", format!("Basic {}", server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401, "another scheme is not a bearer token");

    let user = signup(&server, "case@example.org").await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = http()
            .get(format!("{}/auth/v1/user", server.public_url))
            .header("authorization", format!("{scheme} {}", user.access))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "public listener, {scheme}");
    }
}
