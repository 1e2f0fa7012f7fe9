//! Info item 3: routes under prefixes the gateway serves itself (`/kv/`,
//! `/@connections/`, `/channels/`, `/.gureum/`, ACME challenges) were accepted at
//! deploy and then silently shadowed.

use crate::{Server, function_dir};

#[tokio::test]
async fn routes_the_platform_serves_itself_are_refused_at_deploy() {
    let server = Server::start();
    for route in [
        "/kv/v1/*",
        "/@connections/x",
        "/channels/*",
        "/.gureum/websocket",
        "/.well-known/acme-challenge/*",
    ] {
        let dir = function_dir("shadowed", &format!("routes = [\"/fine\", \"{route}\"]\n"));
        let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
        assert!(!output.success, "{route} was accepted: {output:?}");
        let text = format!("{}{}", output.stdout, output.stderr);
        assert!(
            text.contains("routes[1]") && text.contains("reserved by the platform"),
            "{route}: {text}"
        );
    }
    let dir = function_dir("shadowed", "routes = [\"/fine\", \"/kvstore/*\"]\n");
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(output.success, "{output:?}");
}
