//! Backend services end to end, against a real `gureum up` (SQLite, and PostgreSQL where
//! the store's SQL differs in substance): auth, the rules matrix, realtime, filters and
//! paging, files, key-value from both runtimes, and functions behind auth.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Server, deploy, http};
use crate::lambda::{Guest, lambda_dir};

/// A signed-in user of the tests.
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) access: String,
    pub(crate) refresh: String,
}

pub(crate) async fn signup(server: &Server, email: &str) -> User {
    let answer = http()
        .post(format!("{}/auth/v1/signup", server.public_url))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED, "signup {email}");
    session(answer.json().await.unwrap())
}

fn session(body: Value) -> User {
    User {
        id: body["user"]["id"].as_str().unwrap().to_string(),
        access: body["access_token"].as_str().unwrap().to_string(),
        refresh: body["refresh_token"].as_str().unwrap().to_string(),
    }
}

pub(crate) async fn password_grant(
    server: &Server,
    email: &str,
    password: &str,
) -> reqwest::Response {
    http()
        .post(format!(
            "{}/auth/v1/token?grant_type=password",
            server.public_url
        ))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn refresh_grant(server: &Server, token: &str) -> reqwest::Response {
    http()
        .post(format!(
            "{}/auth/v1/token?grant_type=refresh_token",
            server.public_url
        ))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"].as_str().unwrap_or("").to_string()
}

async fn user_with(server: &Server, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}/auth/v1/user", server.public_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The installation's signing key, from `DATA_DIR/jwt.key`.
pub(crate) fn installation_key(server: &Server) -> gureum_auth::SigningKey {
    use base64::Engine;
    let pem = std::fs::read_to_string(server.data_dir.join("jwt.key")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    gureum_auth::SigningKey::from_pkcs8(&der).unwrap()
}

#[tokio::test]
async fn auth_signs_up_signs_in_rotates_and_revokes() {
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("server.log");
    // Without the reuse window (tested in security::refresh_race): a token presented
    // again is reuse at once.
    let server = Server::start_in_logged(
        &log_dir.path().join("data"),
        &["--no-examples", "--refresh-reuse-interval", "0s"],
        &log,
    );
    let email = "Alice@Example.org";
    let alice = signup(&server, email).await;

    // Duplicate (case-insensitive), weak password, bad email: each named.
    let again = http()
        .post(format!("{}/auth/v1/signup", server.public_url))
        .json(&json!({"email": "alice@example.org", "password": "another good one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(again).await, "email_taken");
    for (body, code) in [
        (
            json!({"email": "bob@example.org", "password": "short"}),
            "weak_password",
        ),
        (
            json!({"email": "bob@example.org", "password": "password123"}),
            "weak_password",
        ),
        (
            json!({"email": "not-an-email", "password": "correct horse battery"}),
            "invalid_email",
        ),
    ] {
        let answer = http()
            .post(format!("{}/auth/v1/signup", server.public_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{body}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 10,
            "{body}"
        );
    }

    // The access token works; the user shows; the password is not stored in clear.
    let me: Value = user_with(&server, &alice.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "alice@example.org");
    assert_eq!(me["id"], alice.id.as_str());
    let jwks: Value = server.get("/auth/v1/jwks.json").await.json().await.unwrap();
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");

    // Wrong password and unknown account answer the same.
    let wrong = password_grant(&server, email, "wrong horse battery").await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let wrong: Value = wrong.json().await.unwrap();
    let unknown: Value = password_grant(&server, "nobody@example.org", "correct horse battery")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        wrong, unknown,
        "bad credentials never tell which part was wrong"
    );
    assert_eq!(wrong["error"]["code"], "invalid_credentials");

    // INTERFACE.md's form: no grant_type means the password grant.
    let plain = http()
        .post(format!("{}/auth/v1/token", server.public_url))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    let signed_in = password_grant(&server, email, "correct horse battery").await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let second = session(signed_in.json().await.unwrap());

    // Refresh rotates; the old refresh token then fails and revokes every session.
    let rotated = refresh_grant(&server, &alice.refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated = session(rotated.json().await.unwrap());
    assert_ne!(rotated.refresh, alice.refresh);
    let reused = refresh_grant(&server, &alice.refresh).await;
    assert_eq!(error_code(reused).await, "invalid_grant");
    assert_eq!(
        error_code(refresh_grant(&server, &rotated.refresh).await).await,
        "invalid_grant",
        "reuse of a rotated token revoked the rotated one too"
    );
    assert_eq!(
        error_code(refresh_grant(&server, &second.refresh).await).await,
        "invalid_grant",
        "and every other session"
    );

    // Logout revokes the refresh token it names.
    let third = session(
        password_grant(&server, email, "correct horse battery")
            .await
            .json()
            .await
            .unwrap(),
    );
    let logout = http()
        .post(format!("{}/auth/v1/logout", server.public_url))
        .bearer_auth(&third.access)
        .json(&json!({"refresh_token": third.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        error_code(refresh_grant(&server, &third.refresh).await).await,
        "invalid_grant"
    );

    // Tampered, expired and foreign tokens are refused.
    let mut parts: Vec<String> = alice.access.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    let tampered = parts.join(".");
    let key = installation_key(&server);
    let now = gureum_model::now_ms() as u64 / 1000;
    let expired = key.sign(&gureum_auth::Claims::new(
        &alice.id,
        "alice@example.org",
        now - 3_600,
    ));
    let (foreign, _) = gureum_auth::SigningKey::generate();
    let foreign = foreign.sign(&gureum_auth::Claims::new(
        &alice.id,
        "alice@example.org",
        now,
    ));
    for (token, code) in [
        (tampered.as_str(), "invalid_token"),
        (expired.as_str(), "token_expired"),
        (foreign.as_str(), "invalid_token"),
        ("garbage", "invalid_token"),
    ] {
        let answer = user_with(&server, token).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{code}");
        assert_eq!(error_code(answer).await, code);
    }
    let valid = key.sign(&gureum_auth::Claims::new(
        &alice.id,
        "alice@example.org",
        now,
    ));
    assert_eq!(user_with(&server, &valid).await.status(), StatusCode::OK);

    // Five failures lock the account for a while.
    for _ in 0..5 {
        password_grant(&server, email, "wrong horse battery").await;
    }
    let locked = password_grant(&server, email, "correct horse battery").await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers().get("retry-after").is_some());

    // Admin: list and disable through the CLI; a disabled user cannot refresh.
    let fourth_body: Value = http()
        .post(format!("{}/auth/v1/signup", server.public_url))
        .json(&json!({"email": "carol@example.org", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let carol = session(fourth_body);
    let listed = server.cli(&["users", "ls"]);
    assert!(
        listed.success && listed.stdout.contains("carol@example.org"),
        "{listed:?}"
    );
    let disabled = server.cli(&["users", "disable", "carol@example.org"]);
    assert!(
        disabled.success && disabled.stdout.contains("(disabled)"),
        "{disabled:?}"
    );
    assert_eq!(
        error_code(refresh_grant(&server, &carol.refresh).await).await,
        "invalid_grant"
    );
    assert_eq!(
        password_grant(&server, "carol@example.org", "correct horse battery")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Sign-ups from one address are limited too: 20 per 15 minutes, counting alice's,
    // the refused duplicate (it cost a hash) and carol's.
    let mut refused_at = None;
    for i in 0..25 {
        let answer = http()
            .post(format!("{}/auth/v1/signup", server.public_url))
            .json(&json!({"email": format!("bulk{i}@example.org"), "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            refused_at = Some(i);
            break;
        }
    }
    assert_eq!(
        refused_at,
        Some(17),
        "3 earlier sign-ups and 17 more make 20"
    );

    // No password in clear in the database file or the server's data dir.
    let db = std::fs::read(server.data_dir.join("gureum.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("gureum.db-wal")).unwrap_or_default();
    for haystack in [&db, &wal] {
        assert!(
            !haystack
                .windows(b"correct horse battery".len())
                .any(|w| w == b"correct horse battery"),
            "a password is stored in clear"
        );
        assert!(
            !haystack
                .windows(alice.refresh.len())
                .any(|w| w == alice.refresh.as_bytes()),
            "a refresh token is stored in clear"
        );
    }
    // Nor in the server's debug log.
    assert_eq!(server.stop(), Some(0));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("DEBUG") || logged.contains("INFO"),
        "the log was captured"
    );
    assert!(
        !logged.contains("correct horse battery"),
        "a password was logged"
    );
    assert!(
        !logged.contains(&alice.refresh),
        "a refresh token was logged"
    );
}

/// Who calls, for the rules matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Actor {
    Anonymous,
    A,
    B,
    Function,
    Admin,
}

struct Actors {
    a: User,
    b: User,
    function_token: String,
    admin: String,
}

impl Actors {
    fn token(&self, actor: Actor) -> Option<&str> {
        match actor {
            Actor::Anonymous => None,
            Actor::A => Some(&self.a.access),
            Actor::B => Some(&self.b.access),
            Actor::Function => Some(&self.function_token),
            Actor::Admin => Some(&self.admin),
        }
    }
}

async fn call(
    server: &Server,
    actors: &Actors,
    actor: Actor,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    // The admin token works on the admin listener only (audit, info 1).
    let url = match actor {
        Actor::Admin => format!(
            "{}{}",
            server.admin_url,
            path.replacen("/data/v1/", "/api/v1/data/", 1)
        ),
        _ => format!("{}{path}", server.public_url),
    };
    let mut request = http().request(method, url);
    if let Some(token) = actors.token(actor) {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// A function token: the testbed reads its own `GUREUM_FUNCTION_TOKEN`. It is granted
/// `notes:write` (every document of `notes`, rules skipped) and nothing else.
async fn function_token(server: &Server) -> String {
    let _dir = deploy(
        server,
        "tokenbed",
        "[permissions]\ndata = [\"notes:write\"]",
    );
    let echo: Value = server
        .get("/fn/tokenbed/echo?env=GUREUM_FUNCTION_TOKEN")
        .await
        .json()
        .await
        .unwrap();
    echo["env_value"]
        .as_str()
        .expect("the function token")
        .to_string()
}

pub(crate) fn write_config(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

const OWNER_RULES: &str = r#"
indexes = ["done"]
[rules]
list   = "auth != null && doc.owner == auth.uid"
get    = "auth != null && doc.owner == auth.uid"
create = "auth != null && data.text.size() > 0"
update = "auth != null && doc.owner == auth.uid && data.text.size() > 0"
delete = "auth != null && doc.owner == auth.uid"
"#;

async fn rules_matrix(server: Server) {
    let actors = Actors {
        a: signup(&server, "a@example.org").await,
        b: signup(&server, "b@example.org").await,
        function_token: function_token(&server).await,
        admin: server.token.clone(),
    };
    let config = write_config(OWNER_RULES);
    let set = server.cli(&[
        "collections",
        "set",
        "notes",
        config.path().to_str().unwrap(),
    ]);
    assert!(set.success, "{set:?}");
    // A syntax error names the rule and the position; nothing changes.
    let bad = write_config("[rules]\nlist = \"auth != null &&\"\nget = \"uath.uid == 1\"\n");
    let refused = server.cli(&["collections", "set", "notes", bad.path().to_str().unwrap()]);
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("rules.list: 1:") && refused.stderr.contains("uath"),
        "{refused:?}"
    );

    use Actor::*;
    use reqwest::Method;
    let docs = "/data/v1/collections/notes/docs";
    // create
    let mut created = std::collections::HashMap::new();
    for (actor, status) in [
        (Anonymous, 401),
        (A, 201),
        (B, 201),
        (Function, 201),
        (Admin, 201),
    ] {
        let answer = call(
            &server,
            &actors,
            actor,
            Method::POST,
            docs,
            Some(json!({"text": format!("by {actor:?}")})),
        )
        .await;
        assert_eq!(answer.status().as_u16(), status, "create as {actor:?}");
        if status == 201 {
            let doc: Value = answer.json().await.unwrap();
            created.insert(format!("{actor:?}"), doc);
        }
    }
    assert_eq!(created["A"]["owner"], actors.a.id.as_str());
    assert_eq!(created["Function"]["owner"], "fn:tokenbed");
    let empty = call(
        &server,
        &actors,
        A,
        Method::POST,
        docs,
        Some(json!({"text": ""})),
    )
    .await;
    assert_eq!(
        empty.status(),
        StatusCode::FORBIDDEN,
        "the create rule checks data"
    );
    let a_doc = format!("{docs}/{}", created["A"]["id"].as_str().unwrap());
    // A missing document answers like a forbidden one, except to trusted callers.
    let missing = format!("{docs}/no-such-document");
    for (actor, status) in [(Anonymous, 401), (B, 403), (Admin, 404)] {
        let answer = call(&server, &actors, actor, Method::GET, &missing, None).await;
        assert_eq!(
            answer.status().as_u16(),
            status,
            "get a missing doc as {actor:?}"
        );
    }
    // get
    for (actor, status) in [
        (Anonymous, 401),
        (A, 200),
        (B, 403),
        (Function, 200),
        (Admin, 200),
    ] {
        let answer = call(&server, &actors, actor, Method::GET, &a_doc, None).await;
        assert_eq!(answer.status().as_u16(), status, "get A's doc as {actor:?}");
    }
    // list: users list their own documents, saying so in the query (rules are not
    // filters); trusted callers see all four.
    for (actor, expected) in [(A, 1), (B, 1), (Function, 4), (Admin, 4)] {
        let own = match actor {
            A => format!("{docs}?where=owner%20%3D%20%22{}%22", actors.a.id),
            B => format!("{docs}?where=owner%20%3D%20%22{}%22", actors.b.id),
            _ => docs.to_string(),
        };
        let answer = call(&server, &actors, actor, Method::GET, &own, None).await;
        assert_eq!(answer.status(), StatusCode::OK, "list as {actor:?}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(
            body["docs"].as_array().unwrap().len(),
            expected,
            "list as {actor:?}: {body}"
        );
    }
    assert_eq!(
        call(&server, &actors, Anonymous, Method::GET, docs, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // A user's listing that leaves the owner open, or names another, is refused.
    let theirs = format!("{docs}?where=owner%20%3D%20%22{}%22", actors.b.id);
    for path in [docs, theirs.as_str()] {
        let answer = call(&server, &actors, A, Method::GET, path, None).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "list {path} as A");
    }
    // update
    for (actor, status) in [
        (Anonymous, 401),
        (B, 403),
        (A, 200),
        (Function, 200),
        (Admin, 200),
    ] {
        let answer = call(
            &server,
            &actors,
            actor,
            Method::PATCH,
            &a_doc,
            Some(json!({"text": format!("edited by {actor:?}")})),
        )
        .await;
        assert_eq!(
            answer.status().as_u16(),
            status,
            "update A's doc as {actor:?}"
        );
    }
    // delete: one document of A's per allowed deleter.
    for (actor, status) in [
        (Anonymous, 401),
        (B, 403),
        (A, 204),
        (Function, 204),
        (Admin, 204),
    ] {
        let doc: Value = call(
            &server,
            &actors,
            A,
            Method::POST,
            docs,
            Some(json!({"text": "to delete"})),
        )
        .await
        .json()
        .await
        .unwrap();
        let path = format!("{docs}/{}", doc["id"].as_str().unwrap());
        let answer = call(&server, &actors, actor, Method::DELETE, &path, None).await;
        assert_eq!(answer.status().as_u16(), status, "delete as {actor:?}");
    }
    // A collection without rules denies users, not trusted callers.
    let open = "/data/v1/collections/unconfigured/docs";
    assert_eq!(
        call(
            &server,
            &actors,
            A,
            Method::POST,
            open,
            Some(json!({"x": 1}))
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &server,
            &actors,
            Admin,
            Method::POST,
            open,
            Some(json!({"x": 1}))
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    // The function's grant covers notes only: another collection is refused with the
    // grant to add, whatever that collection's rules say.
    let refused = call(
        &server,
        &actors,
        Function,
        Method::POST,
        open,
        Some(json!({"x": 1})),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("data = [\"unconfigured:write\"]"),
        "{body}"
    );
}

#[tokio::test]
async fn rules_matrix_on_sqlite() {
    rules_matrix(Server::start()).await;
}

#[tokio::test]
async fn rules_matrix_on_postgres() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("data"), Some(&url));
    rules_matrix(server).await;
    gureum_store::testing::drop_postgres(&url).await;
}

/// Reads server-sent events until `until` holds for the events so far (bounded).
pub(crate) async fn read_events(
    response: &mut reqwest::Response,
    events: &mut Vec<(String, Value)>,
    until: impl Fn(&[(String, Value)]) -> bool,
) {
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !until(events) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("the expected events within 10 s")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !name.is_empty() {
                events.push((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
    }
}

#[tokio::test]
async fn realtime_subscribers_get_exactly_what_their_rules_allow() {
    let server = Server::start();
    let actors = Actors {
        a: signup(&server, "a@example.org").await,
        b: signup(&server, "b@example.org").await,
        function_token: String::new(),
        admin: server.token.clone(),
    };
    let config = write_config(OWNER_RULES);
    assert!(
        server
            .cli(&[
                "collections",
                "set",
                "notes",
                config.path().to_str().unwrap()
            ])
            .success
    );
    let stream = |token: &str| {
        http()
            .get(format!(
                "{}/data/v1/collections/notes/stream?access_token={token}",
                server.public_url
            ))
            .send()
    };
    let mut a_stream = stream(&actors.a.access).await.unwrap();
    let mut b_stream = stream(&actors.b.access).await.unwrap();
    assert_eq!(a_stream.headers()["content-type"], "text/event-stream");
    let mut a_events = Vec::new();
    let mut b_events = Vec::new();
    read_events(&mut a_stream, &mut a_events, |e| !e.is_empty()).await;
    read_events(&mut b_stream, &mut b_events, |e| !e.is_empty()).await;
    assert_eq!(a_events[0].0, "ready");

    use reqwest::Method;
    let docs = "/data/v1/collections/notes/docs";
    let a_doc: Value = call(
        &server,
        &actors,
        Actor::A,
        Method::POST,
        docs,
        Some(json!({"text": "a1"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let a_path = format!("{docs}/{}", a_doc["id"].as_str().unwrap());
    call(
        &server,
        &actors,
        Actor::A,
        Method::PATCH,
        &a_path,
        Some(json!({"text": "a1 edited"})),
    )
    .await;
    let b_doc: Value = call(
        &server,
        &actors,
        Actor::B,
        Method::POST,
        docs,
        Some(json!({"text": "b1"})),
    )
    .await
    .json()
    .await
    .unwrap();
    call(&server, &actors, Actor::A, Method::DELETE, &a_path, None).await;
    read_events(&mut a_stream, &mut a_events, |e| e.len() >= 4).await;
    // B's own event came after A's three changes: had B been sent any of A's, it would
    // be before it.
    read_events(&mut b_stream, &mut b_events, |e| e.len() >= 2).await;
    let names: Vec<&str> = a_events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        ["ready", "created", "updated", "deleted"],
        "{a_events:?}"
    );
    assert_eq!(a_events[2].1["data"]["text"], "a1 edited");
    assert_eq!(b_events.len(), 2, "{b_events:?}");
    assert_eq!(b_events[1].0, "created");
    assert_eq!(b_events[1].1["id"], b_doc["id"]);
    // A filtered subscription sees only matching documents.
    let mut filtered = http()
        .get(format!(
            "{}/data/v1/collections/notes/stream?where=text%20%3D%20%22match%22&access_token={}",
            server.public_url, actors.a.access
        ))
        .send()
        .await
        .unwrap();
    let mut f_events = Vec::new();
    read_events(&mut filtered, &mut f_events, |e| !e.is_empty()).await;
    call(
        &server,
        &actors,
        Actor::A,
        Method::POST,
        docs,
        Some(json!({"text": "no match"})),
    )
    .await;
    call(
        &server,
        &actors,
        Actor::A,
        Method::POST,
        docs,
        Some(json!({"text": "match"})),
    )
    .await;
    read_events(&mut filtered, &mut f_events, |e| e.len() >= 2).await;
    assert_eq!(f_events[1].1["data"]["text"], "match", "{f_events:?}");
    // Anonymous subscribers are refused up front.
    let anonymous = http()
        .get(format!(
            "{}/data/v1/collections/notes/stream",
            server.public_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn listing_filters_and_pages_return_every_document_once() {
    let server = Server::start();
    let client = http();
    let docs = format!("{}/api/v1/data/collections/items/docs", server.admin_url);
    for i in 0..120 {
        let answer = client
            .post(&docs)
            .bearer_auth(&server.token)
            .json(&json!({"n": i % 10, "group": if i % 3 == 0 { "x" } else { "y" }, "i": i}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
    }
    let list_all = |query: String| {
        let client = client.clone();
        let docs = docs.clone();
        let token = server.token.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut url = format!("{docs}?{query}&limit=7");
                if let Some(cursor) = &cursor {
                    url.push_str(&format!("&cursor={cursor}"));
                }
                let page: Value = client
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                for doc in page["docs"].as_array().unwrap() {
                    seen.push(doc["data"]["i"].as_i64().unwrap());
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_string()),
                    None => break,
                }
                assert!(seen.len() <= 200, "paging does not end");
            }
            seen
        }
    };
    // Cursors are sealed: no document value shows, and a changed one is refused.
    let first: Value = client
        .get(format!("{docs}?sort=group&limit=3"))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&cursor)
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(
            !text.contains("\"x\"") && !text.contains("group"),
            "the cursor is readable: {text}"
        );
    }
    let mut tampered = cursor.into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let refused = client
        .get(format!("{docs}?sort=group&limit=3&cursor={tampered}"))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let all = list_all("sort=-n".into()).await;
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 120);
    assert_eq!(all.len(), 120);
    let ns: Vec<i64> = all.iter().map(|i| i % 10).collect();
    assert!(
        ns.windows(2).all(|w| w[0] >= w[1]),
        "sorted by n descending"
    );
    let filtered = list_all("where=n%20%3E%3D%207&where=group%20%3D%20x&sort=i".into()).await;
    let expected: Vec<i64> = (0..120).filter(|i| i % 10 >= 7 && i % 3 == 0).collect();
    assert_eq!(filtered, expected);
    let listed_in = list_all("where=n%20in%20%5B1%2C2%5D".into()).await;
    assert_eq!(listed_in.len(), 24);
    // A bad condition is named.
    let bad = client
        .get(format!("{docs}?where=n%20~%201"))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("operator"),
        "{body}"
    );

    // Versions: ETag, If-Match, merge patch.
    let created: Value = client
        .post(&docs)
        .bearer_auth(&server.token)
        .json(&json!({"a": {"b": 1, "c": 2}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("{docs}/{}", created["id"].as_str().unwrap());
    let got = client
        .get(&path)
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["etag"], "\"1\"");
    let patched = client
        .patch(&path)
        .bearer_auth(&server.token)
        .header("if-match", "\"1\"")
        .json(&json!({"a": {"c": null, "d": 3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["data"], json!({"a": {"b": 1, "d": 3}}));
    assert_eq!(patched["version"], 2);
    let stale = client
        .put(&path)
        .bearer_auth(&server.token)
        .header("if-match", "\"1\"")
        .json(&json!({"x": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(error_code(stale).await, "version_mismatch");
    let not_object = client
        .post(&docs)
        .bearer_auth(&server.token)
        .json(&json!([1, 2]))
        .send()
        .await
        .unwrap();
    assert_eq!(not_object.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn files_upload_download_range_and_signed_urls() {
    let server = Server::start();
    let actors = Actors {
        a: signup(&server, "a@example.org").await,
        b: signup(&server, "b@example.org").await,
        function_token: String::new(),
        admin: server.token.clone(),
    };
    let files = owner_files(
        &server,
        "max_bytes = 100000\ntypes = [\"text/plain\", \"image/*\"]",
    );
    let content: Vec<u8> = (0..50_000_u32).map(|i| b'a' + (i % 26) as u8).collect();
    let uploaded = http()
        .post(format!("{files}?name=letters.txt"))
        .bearer_auth(&actors.a.access)
        .header("content-type", "text/plain")
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let meta: Value = uploaded.json().await.unwrap();
    assert_eq!(meta["size"], 50_000);
    assert_eq!(meta["name"], "letters.txt");
    let file = format!("{files}/{}", meta["id"].as_str().unwrap());

    let whole = http()
        .get(&file)
        .bearer_auth(&actors.a.access)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "text/plain");
    assert_eq!(whole.headers()["x-content-type-options"], "nosniff");
    assert!(
        whole.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
    assert!(
        whole.headers().get("content-disposition").is_none(),
        "plain text may show inline"
    );
    assert_eq!(whole.bytes().await.unwrap().as_ref(), content.as_slice());
    let part = http()
        .get(&file)
        .bearer_auth(&actors.a.access)
        .header("range", "bytes=100-109")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], "bytes 100-109/50000");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &content[100..110]);
    assert_eq!(
        http()
            .get(&file)
            .bearer_auth(&actors.b.access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        http().get(&file).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // A signed URL needs no token, and a changed signature or time fails.
    let signed: Value = http()
        .post(format!("{file}/sign?ttl=60"))
        .bearer_auth(&actors.a.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{}{}", server.public_url, signed["url"].as_str().unwrap());
    let by_link = http().get(&url).send().await.unwrap();
    assert_eq!(by_link.status(), StatusCode::OK);
    assert_eq!(by_link.bytes().await.unwrap().len(), 50_000);
    let forged = url.replace("&sig=", "&sig=00");
    assert_eq!(
        http().get(&forged).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let later = url.replace(
        &format!("exp={}", signed["expires"]),
        &format!("exp={}", signed["expires"].as_u64().unwrap() + 1000),
    );
    assert_eq!(
        http().get(&later).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // Limits: size and type, named.
    let big = http()
        .post(&files)
        .bearer_auth(&actors.a.access)
        .header("content-type", "text/plain")
        .body(vec![b'x'; 100_001])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let html = http()
        .post(&files)
        .bearer_auth(&actors.a.access)
        .header("content-type", "text/html")
        .body("<p>")
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_code(html).await.contains("media_type"));
    // Multipart: the file part's name and type.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![0x89, b'P', b'N', b'G'])
            .file_name("dot.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let multipart = http()
        .post(&files)
        .bearer_auth(&actors.a.access)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(multipart.status(), StatusCode::CREATED);
    let png: Value = multipart.json().await.unwrap();
    assert_eq!(
        (
            png["name"].as_str(),
            png["content_type"].as_str(),
            png["size"].as_u64()
        ),
        (Some("dot.png"), Some("image/png"), Some(4))
    );
    // Delete: B may not, A may; then it is gone.
    assert_eq!(
        http()
            .delete(&file)
            .bearer_auth(&actors.b.access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        http()
            .delete(&file)
            .bearer_auth(&actors.a.access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    // Gone: the owner rule cannot hold without a file, so a user gets the rule's 403
    // (as for a missing document; a 404 would tell anyone which ids exist); the admin
    // sees the 404.
    assert_eq!(
        http()
            .get(&file)
            .bearer_auth(&actors.a.access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let admin_file = file.replacen(
        &format!("{}/data/v1", server.public_url),
        &format!("{}/api/v1/data", server.admin_url),
        1,
    );
    assert_eq!(
        http()
            .get(&admin_file)
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// Configures `notes` with [`OWNER_RULES`] where anyone signed in may upload, and these
/// `[files]` settings; returns the collection's files URL on the public listener.
pub(crate) fn owner_files(server: &Server, files_settings: &str) -> String {
    let config = write_config(
        &format!("{OWNER_RULES}\n[files]\n{files_settings}\n")
            .replace("data.text.size() > 0", "true"),
    );
    let set = server.cli(&[
        "collections",
        "set",
        "notes",
        config.path().to_str().unwrap(),
    ]);
    assert!(set.success, "{set:?}");
    format!("{}/data/v1/collections/notes/files", server.public_url)
}

async fn concurrent_increments(server: &Server) {
    let _dir = deploy(server, "kvbed", "max_instances = 50");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let url = format!("{}/fn/kvbed/kv/incr/counters/hits?by=1", server.public_url);
        tasks.push(tokio::spawn(async move {
            let answer = http().post(url).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{:?}", answer.text().await);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = server
        .get("/fn/kvbed/kv/get/counters/hits")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(total, "100", "every increment counted exactly once");
    // The same store over HTTP, with the function's token; buckets are per function.
    let token: Value = server
        .get("/fn/kvbed/echo?env=GUREUM_FUNCTION_TOKEN")
        .await
        .json()
        .await
        .unwrap();
    let token = token["env_value"].as_str().unwrap();
    let key = format!("{}/kv/v1/buckets/counters/keys/hits", server.public_url);
    let via_api = http().get(&key).bearer_auth(token).send().await.unwrap();
    assert_eq!(via_api.text().await.unwrap(), "100");
    let bumped: Value = http()
        .post(format!("{key}/increment"))
        .bearer_auth(token)
        .json(&json!({"delta": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bumped["value"], 105);
    assert_eq!(
        http()
            .get(&key)
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let other_token = function_token(server).await;
    assert_eq!(
        http()
            .get(&key)
            .bearer_auth(&other_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND,
        "another function's bucket is its own"
    );
}

#[tokio::test]
async fn kv_increments_are_exact_on_sqlite() {
    concurrent_increments(&Server::start()).await;
}

#[tokio::test]
async fn kv_increments_are_exact_on_postgres() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("data"), Some(&url));
    concurrent_increments(&server).await;
    drop(server);
    gureum_store::testing::drop_postgres(&url).await;
}

#[tokio::test]
async fn functions_behind_auth_see_verified_claims() {
    let server = Server::start();
    let alice = signup(&server, "alice@example.org").await;
    let bob = signup(&server, "bob@other.net").await;
    let _user = deploy(&server, "private", "auth = \"user\"");
    let _expr = deploy(
        &server,
        "orgonly",
        "auth = 'auth.email.endsWith(\"@example.org\")'",
    );
    let _open = deploy(&server, "open", "");

    let anonymous = server.get("/fn/private/echo").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // WebSockets to it need the token too (checked before the upgrade).
    assert_eq!(
        server.get("/ws/private").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let upgrade = http()
        .get(format!(
            "{}/ws/private?access_token={}",
            server.public_url, alice.access
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        upgrade.status(),
        StatusCode::UPGRADE_REQUIRED,
        "authorized, then refused only as not a WebSocket"
    );
    let with_token: Value = http()
        .get(format!("{}/fn/private/echo", server.public_url))
        .bearer_auth(&alice.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims: Value = serde_json::from_str(
        with_token["headers"]["x-gureum-auth-claims"][0]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["email"], "alice@example.org");
    assert_eq!(
        http()
            .get(format!("{}/fn/private/echo", server.public_url))
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The expression decides; a false one is 403 and the function never runs.
    let allowed = http()
        .get(format!("{}/fn/orgonly/echo", server.public_url))
        .bearer_auth(&alice.access)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let denied = http()
        .get(format!("{}/fn/orgonly/echo", server.public_url))
        .bearer_auth(&bob.access)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert!(
        denied.headers().get("x-gureum-invocation-id").is_none(),
        "not invoked"
    );
    // A forged claims header never reaches a function.
    let forged: Value = http()
        .get(format!("{}/fn/open/echo", server.public_url))
        .header("x-gureum-auth-claims", "{\"sub\":\"admin\"}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        forged["headers"].get("x-gureum-auth-claims").is_none(),
        "{forged}"
    );
    // A bad expression is refused at deploy with its position.
    let dir = crate::harness::function_dir("badauth", "auth = 'auth.uid =='");
    let refused = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(
        !refused.success && refused.stderr.contains("auth"),
        "{refused:?}"
    );

    // Lambda: the claims arrive where API Gateway's JWT authorizer puts them, and the
    // function reaches the key-value API with its token.
    let dir = lambda_dir("pyauth", Guest::Python, "auth = \"user\"");
    let deployed = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(deployed.success, "{deployed:?}");
    let authorizer: Value = http()
        .get(format!("{}/fn/pyauth/authorizer", server.public_url))
        .bearer_auth(&alice.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        authorizer["jwt"]["claims"]["sub"],
        alice.id.as_str(),
        "{authorizer}"
    );
    for expected in 1..=3 {
        let counted: Value = http()
            .get(format!(
                "{}/fn/pyauth/kv-incr?key=visits",
                server.public_url
            ))
            .bearer_auth(&alice.access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(counted["value"], expected);
    }
}

#[tokio::test]
async fn realtime_reaches_subscribers_on_another_node() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let writer = Server::start_in(&dirs.0.path().join("data"), Some(&url));
    let reader = Server::start_in(&dirs.1.path().join("data"), Some(&url));
    let config = write_config(OWNER_RULES);
    assert!(
        writer
            .cli(&[
                "collections",
                "set",
                "notes",
                config.path().to_str().unwrap()
            ])
            .success
    );
    // One user, signed in on the writer; the token is valid on every node.
    let user = signup(&writer, "a@example.org").await;
    let actors = Actors {
        a: user,
        b: signup(&writer, "b@example.org").await,
        function_token: String::new(),
        admin: writer.token.clone(),
    };
    let mut stream = http()
        .get(format!(
            "{}/data/v1/collections/notes/stream?access_token={}",
            reader.public_url, actors.a.access
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut events = Vec::new();
    read_events(&mut stream, &mut events, |e| !e.is_empty()).await;
    use reqwest::Method;
    let docs = "/data/v1/collections/notes/docs";
    // B's note (not for A's eyes) and then A's, written through the other node.
    call(
        &writer,
        &actors,
        Actor::B,
        Method::POST,
        docs,
        Some(json!({"text": "b's"})),
    )
    .await;
    let big = "x".repeat(20_000);
    let created: Value = call(
        &writer,
        &actors,
        Actor::A,
        Method::POST,
        docs,
        Some(json!({"text": big})),
    )
    .await
    .json()
    .await
    .unwrap();
    let path = format!("{docs}/{}", created["id"].as_str().unwrap());
    call(&writer, &actors, Actor::A, Method::DELETE, &path, None).await;
    read_events(&mut stream, &mut events, |e| e.len() >= 3).await;
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["ready", "created", "deleted"], "{events:?}");
    assert_eq!(events[1].1["id"], created["id"]);
    assert_eq!(
        events[1].1["data"]["text"].as_str().map(str::len),
        Some(20_000),
        "a document over the notice limit is read from the store"
    );
    drop(stream);
    drop((writer, reader));
    gureum_store::testing::drop_postgres(&url).await;
}
