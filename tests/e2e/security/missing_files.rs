//! Info item 5 (second half): `GET`/`DELETE …/files/{id}` answered 404 for a missing id
//! before the rules ran, while an existing file another user owns answered 403: the
//! difference told anyone which ids exist. Missing ids now get the rule's answer first,
//! as documents do.

use crate::backend::{owner_files, signup};
use crate::{Server, http};

#[tokio::test]
async fn a_missing_file_answers_like_one_the_caller_may_not_read() {
    let server = Server::start();
    let files = owner_files(&server, "max_bytes = 1000");
    let owner = signup(&server, "owner@example.org").await;
    let uploaded = http()
        .post(format!("{files}?name=a.txt"))
        .bearer_auth(&owner.access)
        .header("content-type", "text/plain")
        .body("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    let id = uploaded.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Anonymous: the same 401 for an existing and a missing id.
    for target in [id.as_str(), "no-such-file"] {
        let answer = http()
            .get(format!("{files}/{target}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "GET {target}");
        let answer = http()
            .delete(format!("{files}/{target}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "DELETE {target}");
    }
    // Another user: the same 403 for both.
    let other = signup(&server, "other@example.org").await;
    for target in [id.as_str(), "no-such-file"] {
        let answer = http()
            .get(format!("{files}/{target}"))
            .bearer_auth(&other.access)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "GET {target}");
    }
    // The owner still reads the file; a missing id is still 404 to the admin.
    let read = http()
        .get(format!("{files}/{id}"))
        .bearer_auth(&owner.access)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let missing = http()
        .get(format!(
            "{}/api/v1/data/collections/notes/files/no-such-file",
            server.admin_url
        ))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
