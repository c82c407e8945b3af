//! Authentication, authorisation and audit against a real node process: every documented route
//! names one permission and is refused without a token (401) and without the permission (403);
//! each built-in role gets exactly its permission set; a revoked token stops at once; bad input
//! changes nothing; every mutation leaves exactly one audit record without secrets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call, call_raw, get, post};

const SUBSCRIBERS: &str = r#"
[[subscribers]]
id = "4915100000001"
products = ["consumer"]
currency = "EUR"
mode = "prepaid"
"#;

const PUBLIC: &[&str] = &["/health", "/ready", "/v1/openapi.json"];

/// The permission matrix of the built-in roles, written out by hand (not read from the node).
fn matrix() -> BTreeMap<&'static str, Vec<&'static str>> {
    let reads = vec![
        "ops.read",
        "customer.read",
        "catalogue.read",
        "access.read",
        "audit.read",
        "mediation.read",
        "billing.read",
        "partner.read",
    ];
    BTreeMap::from([
        (
            "finance",
            vec![
                "customer.read",
                "balance.adjust",
                "catalogue.read",
                "audit.read",
                "mediation.read",
                "mediation.write",
                "billing.read",
                "billing.run",
                "billing.setup",
                "period.close",
                "period.reopen",
                "payment.write",
                "collection.run",
                "partner.read",
                "settlement.run",
                "settlement.approve",
            ],
        ),
        (
            "care",
            vec![
                "customer.read",
                "customer.write",
                "balance.adjust",
                "catalogue.read",
                "billing.read",
            ],
        ),
        (
            "partner-manager",
            vec![
                "partner.read",
                "partner.write",
                "settlement.run",
                "catalogue.read",
            ],
        ),
        (
            "product-manager",
            vec!["catalogue.read", "catalogue.write", "catalogue.publish"],
        ),
        ("network", vec!["usage.write", "sessions.write"]),
        ("read-only", reads),
    ])
}

/// Every (method, path, permission) of the served document.
fn operations(doc: &Value) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let scopes: Vec<String> = op["security"]
                .as_array()
                .map(|reqs| {
                    reqs.iter()
                        .filter_map(|r| r["bearer"].as_array())
                        .flatten()
                        .map(|s| s.as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                scopes.len() <= 1,
                "{method} {path}: several permissions {scopes:?}"
            );
            out.push((
                method.to_uppercase(),
                path.clone(),
                scopes.into_iter().next(),
            ));
        }
    }
    out
}

/// A concrete URL for a path template.
fn concrete(path: &str) -> String {
    path.replace("{version}", "1")
        .replace("{section}", "plans")
        .replace('{', "x-")
        .replace('}', "")
}

fn create_user_token(node: &NodeFiles, name: &str, roles: &[&str]) -> (String, String) {
    let (status, body) = post(
        &node.url("/v1/users"),
        json!({ "name": name, "roles": roles }),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &node.url(&format!("/v1/users/{name}/tokens")),
        json!({ "label": format!("{name} test token") }),
    );
    assert_eq!(status, 201, "{body}");
    (
        body["token"]["id"].as_str().unwrap().to_string(),
        body["secret"].as_str().unwrap().to_string(),
    )
}

fn audit_all(node: &NodeFiles) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => node.url(&format!("/v1/audit?limit=7&cursor={c}")),
            None => node.url("/v1/audit?limit=7"),
        };
        let (status, page) = get(&url);
        assert_eq!(status, 200, "{page}");
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[test]
fn every_route_is_gated_roles_match_the_matrix_and_every_mutation_is_audited() {
    let files = NodeFiles::new(SUBSCRIBERS);
    let _node = files.start();
    let node = &files;

    // The document is public and lists every route with exactly one known permission.
    let (status, doc) = call("GET", &node.url("/v1/openapi.json"), None, None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let (_, permissions) = get(&node.url("/v1/permissions"));
    let known: BTreeSet<String> = permissions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let ops = operations(&doc);
    assert!(ops.len() >= 40, "only {} operations documented", ops.len());
    // The declared permission (before public paths drop it) is in the raw scopes of the
    // non-public operations; public ones are exactly the configured paths.
    for (method, path, scope) in &ops {
        match scope {
            Some(s) => assert!(known.contains(s), "{method} {path}: unknown permission {s}"),
            None => assert!(
                PUBLIC.contains(&path.as_str()),
                "{method} {path} has no permission"
            ),
        }
    }

    // Without a token: 401 with a JSON error, for every non-public route; public ones answer.
    for (method, path, scope) in &ops {
        let (status, body) = call(method, &node.url(&concrete(path)), None, Some(json!({})));
        if scope.is_some() {
            assert_eq!(status, 401, "{method} {path}: {body}");
            assert_eq!(body["error"]["code"], "auth.missing_token");
        } else {
            assert!(status < 400, "{method} {path}: {status} {body}");
        }
    }
    let (status, body) = call(
        "GET",
        &node.url("/v1/users"),
        Some("tg_nobody.nothing"),
        None,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("auth.invalid_token"))
    );

    // A user without roles: 403 naming the permission, on every non-public route.
    let (_, nobody) = create_user_token(node, "nobody", &[]);
    for (method, path, scope) in &ops {
        let Some(scope) = scope else { continue };
        let (status, body) = call(
            method,
            &node.url(&concrete(path)),
            Some(&nobody),
            Some(json!({})),
        );
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "auth.forbidden");
        assert_eq!(
            body["error"]["details"]["permission"],
            scope.as_str(),
            "{method} {path}"
        );
    }

    // Each built-in role: allowed exactly where the matrix says.
    for (role, allowed) in matrix() {
        let (_, token) = create_user_token(node, &format!("user-{role}"), &[role]);
        let allowed: BTreeSet<&str> = allowed.into_iter().collect();
        for (method, path, scope) in &ops {
            let Some(scope) = scope else { continue };
            if method != "GET" && !allowed.contains(scope.as_str()) {
                // Refused before anything runs.
                let (status, _) = call(
                    method,
                    &node.url(&concrete(path)),
                    Some(&token),
                    Some(json!({})),
                );
                assert_eq!(status, 403, "{role}: {method} {path}");
                continue;
            }
            if method != "GET" {
                continue; // allowed mutations are exercised below with real bodies
            }
            let (status, body) = call(method, &node.url(&concrete(path)), Some(&token), None);
            if allowed.contains(scope.as_str()) {
                assert!(
                    status != 401 && status != 403,
                    "{role}: {method} {path}: {status} {body}"
                );
            } else {
                assert_eq!(status, 403, "{role}: {method} {path}: {body}");
            }
        }
    }
    let (_, admin_tok) = create_user_token(node, "ann", &["admin"]);
    let (status, _) = call("GET", &node.url("/v1/audit"), Some(&admin_tok), None);
    assert_eq!(status, 200);

    // A revoked token stops working with the next request.
    let (status, body) = post(
        &node.url("/v1/users/ann/tokens"),
        json!({ "label": "short-lived" }),
    );
    assert_eq!(status, 201);
    let (id, secret) = (
        body["token"]["id"].as_str().unwrap().to_string(),
        body["secret"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        call("GET", &node.url("/v1/users"), Some(&secret), None).0,
        200
    );
    let (status, revoked) = call(
        "DELETE",
        &node.url(&format!("/v1/tokens/{id}")),
        Some(ADMIN_TOKEN),
        None,
    );
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, body) = call("GET", &node.url("/v1/users"), Some(&secret), None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("auth.revoked_token"))
    );

    // Custom role, disabled user.
    let (status, body) = call(
        "PUT",
        &node.url("/v1/roles/auditor"),
        Some(ADMIN_TOKEN),
        Some(json!({ "description": "reads the trail", "permissions": ["audit.read"] })),
    );
    assert_eq!(status, 201, "{body}");
    let (_, auditor) = create_user_token(node, "aud", &["auditor"]);
    // List filters.
    let (_, finance) = get(&node.url("/v1/users?role=finance"));
    assert_eq!(finance["items"].as_array().unwrap().len(), 1, "{finance}");
    assert_eq!(finance["items"][0]["name"], "user-finance");
    let (_, custom) = get(&node.url("/v1/roles?builtin=false"));
    assert_eq!(custom["items"].as_array().unwrap().len(), 1, "{custom}");
    let (_, auditing) = get(&node.url("/v1/roles?permission=audit.read"));
    let names: Vec<&str> = auditing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "auditor", "finance", "read-only"]);
    let (_, page1) = get(&node.url("/v1/users?limit=3"));
    let (_, page2) = get(&node.url(&format!(
        "/v1/users?limit=3&cursor={}",
        page1["next_cursor"].as_str().unwrap()
    )));
    assert_eq!(page1["items"].as_array().unwrap().len(), 3);
    assert!(page1["items"][2]["name"].as_str() < page2["items"][0]["name"].as_str());
    assert_eq!(
        call("GET", &node.url("/v1/audit"), Some(&auditor), None).0,
        200
    );
    assert_eq!(
        call("GET", &node.url("/v1/users"), Some(&auditor), None).0,
        403
    );
    let (status, _) = call(
        "PATCH",
        &node.url("/v1/users/aud"),
        Some(ADMIN_TOKEN),
        Some(json!({ "disabled": true })),
    );
    assert_eq!(status, 200);
    let (status, body) = call("GET", &node.url("/v1/audit"), Some(&auditor), None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("auth.user_disabled"))
    );

    // A top-up, audited with the balance before and after.
    let (status, body) = call(
        "POST",
        &node.url("/v1/accounts/4915100000001/top-ups"),
        Some(&admin_tok),
        Some(json!({ "id": "t-1", "amount": "10.00", "currency": "EUR" })),
    );
    assert_eq!(status, 200, "{body}");

    // Bad input changes nothing and leaks nothing.
    let before = audit_all(node).len();
    let url = node.url("/v1/users");
    let bad: Vec<(u16, &str, Value)> = vec![
        (
            400,
            "request.malformed",
            call_raw(
                "POST",
                &url,
                Some(ADMIN_TOKEN),
                "application/json",
                b"{not json",
            )
            .1,
        ),
        (
            422,
            "request.invalid_field",
            call(
                "POST",
                &url,
                Some(ADMIN_TOKEN),
                Some(json!({ "name": "x", "roles": "admin" })),
            )
            .1,
        ),
        (
            422,
            "request.invalid_field",
            call(
                "POST",
                &url,
                Some(ADMIN_TOKEN),
                Some(json!({ "name": "x", "rolez": [] })),
            )
            .1,
        ),
        (
            413,
            "request.too_large",
            call_raw(
                "POST",
                &url,
                Some(ADMIN_TOKEN),
                "application/json",
                &vec![b' '; (16 << 20) + 1],
            )
            .1,
        ),
        (
            404,
            "route.unknown",
            call("GET", &node.url("/v1/nowhere"), Some(ADMIN_TOKEN), None).1,
        ),
        (
            404,
            "access.unknown_user",
            call("GET", &node.url("/v1/users/ghost"), Some(ADMIN_TOKEN), None).1,
        ),
        (
            422,
            "access.unknown_role",
            call(
                "POST",
                &url,
                Some(ADMIN_TOKEN),
                Some(json!({ "name": "y", "roles": ["nope"] })),
            )
            .1,
        ),
        (
            409,
            "access.user_exists",
            call(
                "POST",
                &url,
                Some(ADMIN_TOKEN),
                Some(json!({ "name": "ann" })),
            )
            .1,
        ),
        (
            401,
            "auth.missing_token",
            call("POST", &url, None, Some(json!({ "name": "z" }))).1,
        ),
        (
            403,
            "auth.forbidden",
            call("POST", &url, Some(&nobody), Some(json!({ "name": "z" }))).1,
        ),
    ];
    for (status, code, body) in &bad {
        assert_eq!(
            body["error"]["code"], *code,
            "expected {status} {code}: {body}"
        );
        let text = body.to_string();
        for leak in ["panicked", "redb", "src/", "backtrace", "tollgate_"] {
            assert!(!text.contains(leak), "{code} leaks {leak:?}: {text}");
        }
    }
    assert_eq!(
        bad[1].2["error"]["details"]["path"], "roles",
        "the field path is reported: {}",
        bad[1].2
    );
    assert_eq!(
        audit_all(node).len(),
        before,
        "refused requests wrote audit records"
    );
    assert_eq!(
        get(&node.url("/v1/users/x")).0,
        404,
        "a refused creation created nothing"
    );

    // The audit trail: one record per mutation, attributed, without secrets.
    let records = audit_all(node);
    let count = |op: &str| records.iter().filter(|r| r["operation"] == op).count();
    let roles_created = matrix().len();
    // users: nobody, 6 matrix users, ann, aud (+ bootstrap at start)
    assert_eq!(
        count("user.create"),
        1 + 1 + roles_created + 2,
        "{records:#?}"
    );
    assert_eq!(count("token.create"), 1 + 1 + roles_created + 2 + 1);
    assert_eq!(count("token.revoke"), 1);
    assert_eq!(count("role.create"), 1);
    assert_eq!(count("user.update"), 1);
    assert_eq!(count("balance.top_up"), 1);
    let top_up = records
        .iter()
        .find(|r| r["operation"] == "balance.top_up")
        .unwrap();
    assert_eq!(top_up["principal"], "ann");
    assert_eq!(top_up["target"], "subscriber/4915100000001");
    assert!(
        top_up["before"].is_object() && top_up["after"].is_object(),
        "{top_up}"
    );
    let revoke = records
        .iter()
        .find(|r| r["operation"] == "token.revoke")
        .unwrap();
    assert_eq!(revoke["principal"], "bootstrap");
    assert!(revoke["before"]["revoked_at"].is_null() && revoke["after"]["revoked_at"].is_string());
    for r in &records {
        assert!(
            r["request_id"].as_str().is_some_and(|s| !s.is_empty()),
            "{r}"
        );
        assert!(r["at"].is_string() && r["principal"].is_string(), "{r}");
    }
    let dump = serde_json::to_string(&records).unwrap();
    for secret in [ADMIN_TOKEN, &nobody, &admin_tok, &secret, &auditor] {
        assert!(
            !dump.contains(secret),
            "a token secret is in the audit trail"
        );
        assert!(
            !dump.contains(&support::sha256_hex(secret.as_bytes())),
            "a token hash is in the audit trail"
        );
    }
    // Filters.
    let (_, only) = get(&node.url("/v1/audit?operation=token.&principal=bootstrap&limit=1000"));
    let only = only["items"].as_array().unwrap();
    assert!(!only.is_empty());
    assert!(
        only.iter()
            .all(|r| r["operation"].as_str().unwrap().starts_with("token.")
                && r["principal"] == "bootstrap")
    );
    let (_, by_target) = get(&node.url("/v1/audit?target=user/ann"));
    assert_eq!(by_target["items"].as_array().unwrap().len(), 1);
}

#[test]
fn request_ids_are_echoed_and_recorded() {
    let files = NodeFiles::new(SUBSCRIBERS);
    let _node = files.start();
    let response = ureq::post(&files.url("/v1/users"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .set("X-Request-Id", "case-42.a")
        .send_json(json!({ "name": "traced", "roles": ["care"] }))
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.header("x-request-id"), Some("case-42.a"));
    let (_, page) = get(&files.url("/v1/audit?request_id=case-42.a"));
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["operation"], "user.create");
    assert_eq!(items[0]["after"]["roles"], json!(["care"]));
    // A generated id when none (or an unusable one) is sent.
    let response = ureq::get(&files.url("/health"))
        .set("X-Request-Id", "bad id with spaces")
        .call()
        .unwrap();
    let generated = response.header("x-request-id").unwrap().to_string();
    assert!(!generated.is_empty() && !generated.contains(' '));
}
