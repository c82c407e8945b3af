//! `tollgate user add|list|revoke` on a stopped node's store, and the tokens it prints working
//! (and then not) against the node.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;

use serde_json::json;
use support::{NodeFiles, call};

const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4930111111"
products = ["consumer"]
currency = "EUR"
"#;

fn tollgate(files: &NodeFiles, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .args(["--config", files.config.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_users_get_working_tokens_that_revoke() {
    let files = NodeFiles::new(SUBSCRIBERS);
    let (ok, stdout, stderr) = tollgate(
        &files,
        &[
            "user",
            "add",
            "fin",
            "--role",
            "finance",
            "--label",
            "month-end",
        ],
    );
    assert!(ok, "{stderr}");
    let token = stdout.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("tg_"), "{stdout}");
    assert!(stderr.contains("shown once"), "{stderr}");
    let (ok, _, stderr) = tollgate(&files, &["user", "add", "bad", "--role", "no-such-role"]);
    assert!(!ok && stderr.contains("unknown role"), "{stderr}");

    let node = files.start();
    let (status, page) = call(
        "GET",
        &files.url("/v1/audit?principal=cli"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{page}");
    let ops: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        ["user.create", "token.create"],
        "the CLI's changes are audited"
    );
    let (status, body) = call(
        "POST",
        &files.url("/v1/catalogue/drafts"),
        Some(&token),
        Some(json!({})),
    );
    assert_eq!(
        (status, body["error"]["details"]["permission"].as_str()),
        (403, Some("catalogue.write"))
    );
    // The store admits one process: the CLI says so while the node runs.
    let (ok, _, stderr) = tollgate(&files, &["user", "list"]);
    assert!(!ok && stderr.contains("is a node running"), "{stderr}");
    drop(node);

    let (ok, listing, _) = tollgate(&files, &["user", "list"]);
    assert!(
        ok && listing.contains("fin") && listing.contains("month-end"),
        "{listing}"
    );
    assert!(!listing.contains(&token), "the list shows no secret");
    let id = token
        .trim_start_matches("tg_")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let (ok, out, stderr) = tollgate(&files, &["user", "revoke", &id]);
    assert!(ok && out.contains("revoked"), "{stderr}");
    let _node = files.start();
    let (status, body) = call("GET", &files.url("/v1/audit"), Some(&token), None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("auth.revoked_token"))
    );
}
