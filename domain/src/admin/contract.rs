//! The contract every [`AdminStore`] must keep; run it against each backend, on a fresh store.
//!
//! It returns the first broken promise instead of panicking, like the ledger's
//! [`crate::ledger::contract`], so it can live in the library and be called from any crate's tests.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::json;
use smol_str::SmolStr;

use super::store::{AdminChange, AdminStore, AdminWrite};
use super::{
    ApiToken, AuditFilter, AuditId, AuditRecord, CatalogueDraft, CatalogueVersion, Permission,
    PrefixTableInfo, Role, TableOwner, User,
};

fn ensure(condition: bool, what: &str) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn at(offset_seconds: i64) -> Result<Timestamp, String> {
    Timestamp::from_second(1_800_000_000 + offset_seconds).map_err(|e| e.to_string())
}

fn record(
    offset_seconds: i64,
    principal: &str,
    operation: &str,
    target: &str,
) -> Result<AuditRecord, String> {
    Ok(AuditRecord::new(
        at(offset_seconds)?,
        principal,
        operation,
        target,
        &format!("req-{offset_seconds}-{operation}"),
        None,
        Some(json!({ "target": target })),
    ))
}

fn user(name: &str, roles: &[&str], disabled: bool) -> Result<User, String> {
    Ok(User {
        name: name.into(),
        roles: roles.iter().map(SmolStr::new).collect(),
        disabled,
        created_at: at(0)?,
        created_by: "contract".into(),
    })
}

fn token(id: &str, user: &str, revoked_at: Option<Timestamp>) -> Result<ApiToken, String> {
    Ok(ApiToken {
        id: id.into(),
        user: user.into(),
        label: format!("token {id}"),
        secret_sha256: "0".repeat(64),
        created_at: at(0)?,
        expires_at: None,
        revoked_at,
    })
}

fn role(name: &str, description: &str, permissions: &[Permission]) -> Role {
    Role {
        name: name.into(),
        description: description.into(),
        permissions: permissions.iter().copied().collect(),
        builtin: false,
    }
}

fn table_info(csv: &[u8]) -> PrefixTableInfo {
    PrefixTableInfo {
        rows: 1,
        bytes: csv.len() as u64,
        sha256: "f".repeat(64),
    }
}

fn draft(id: &str, tables: &[(&str, &[u8])]) -> Result<CatalogueDraft, String> {
    Ok(CatalogueDraft {
        id: id.into(),
        based_on: None,
        document: json!({ "currency": "EUR", "draft": id }),
        prefix_tables: tables
            .iter()
            .map(|(name, csv)| (name.to_string(), table_info(csv)))
            .collect(),
        created_at: at(0)?,
        created_by: "contract".into(),
        updated_at: at(1)?,
        revision: 1,
    })
}

fn version(number: u64, notes: &str) -> Result<CatalogueVersion, String> {
    Ok(CatalogueVersion {
        version: number,
        effective_from: at(number as i64 * 100)?,
        published_at: at(number as i64)?,
        published_by: "carol".into(),
        draft: format!("draft-{number}").into(),
        notes: notes.into(),
        document: json!({ "version": number }),
        prefix_tables: BTreeMap::from([("de".to_string(), table_info(b"prefix\n49\n"))]),
    })
}

fn table(owner: TableOwner, name: &str, csv: &[u8]) -> AdminChange {
    AdminChange::PutPrefixTable {
        owner,
        name: name.to_string(),
        csv: csv.to_vec(),
    }
}

fn draft_owner(id: &str) -> TableOwner {
    TableOwner::Draft(id.into())
}

/// Every record of `store` matching `filter`, read `page` at a time through the `after` cursor.
fn read_paged(
    store: &dyn AdminStore,
    filter: &AuditFilter,
    page: usize,
) -> Result<Vec<AuditRecord>, String> {
    let mut all = Vec::new();
    let mut after: Option<AuditId> = None;
    loop {
        let chunk = store
            .audit(filter, after, page)
            .map_err(|e| e.to_string())?;
        if chunk.len() > page {
            return Err(format!("a page of {page} returned {} records", chunk.len()));
        }
        let Some(last) = chunk.last() else { break };
        after = Some(last.id);
        let full = chunk.len() == page;
        all.extend(chunk);
        if !full {
            break;
        }
        if all.len() > 10_000 {
            return Err("pagination does not end".into());
        }
    }
    Ok(all)
}

/// The tracked state of the run: writes are committed through it so the audit records of every
/// successful commit are remembered.
struct Run<'a> {
    store: &'a dyn AdminStore,
    audit: Vec<AuditRecord>,
}

impl Run<'_> {
    fn commit(&mut self, changes: Vec<AdminChange>, audit: Vec<AuditRecord>) -> Result<(), String> {
        self.store
            .commit(AdminWrite {
                changes,
                audit: audit.clone(),
            })
            .map_err(|e| format!("commit failed: {e}"))?;
        self.audit.extend(audit);
        Ok(())
    }

    fn table(&self, owner: &TableOwner, name: &str) -> Result<Option<Vec<u8>>, String> {
        self.store
            .prefix_table(owner, name)
            .map_err(|e| e.to_string())
    }
}

/// Runs the contract on a fresh (empty) store; returns the first broken promise.
pub fn run(store: &dyn AdminStore) -> Result<(), String> {
    let mut run = Run {
        store,
        audit: Vec::new(),
    };
    let err = |e: crate::ledger::StoreError| e.to_string();
    ensure(
        store.users().map_err(err)?.is_empty()
            && store.tokens().map_err(err)?.is_empty()
            && store.roles().map_err(err)?.is_empty()
            && store.drafts().map_err(err)?.is_empty()
            && store.versions().map_err(err)?.is_empty()
            && store
                .audit(&AuditFilter::default(), None, usize::MAX)
                .map_err(err)?
                .is_empty(),
        "a fresh store is empty",
    )?;

    users_tokens_roles(&mut run)?;
    drafts_and_tables(&mut run)?;
    versions(&mut run)?;
    delete_draft(&mut run)?;
    audit_trail(&run)?;
    Ok(())
}

fn users_tokens_roles(run: &mut Run<'_>) -> Result<(), String> {
    let store = run.store;
    let err = |e: crate::ledger::StoreError| e.to_string();
    let alice = user("alice", &["admin"], false)?;
    let bob = user("bob", &["care", "finance"], false)?;
    run.commit(
        vec![
            AdminChange::PutUser(bob.clone()),
            AdminChange::PutUser(alice.clone()),
        ],
        vec![
            record(10, "system", "user.create", "user/alice")?,
            record(11, "system", "user.create", "user/bob")?,
        ],
    )?;
    let mut users = store.users().map_err(err)?;
    users.sort_by(|a, b| a.name.cmp(&b.name));
    ensure(users == [alice.clone(), bob.clone()], "users are stored")?;
    let alice_disabled = user("alice", &["admin", "read-only"], true)?;
    run.commit(
        vec![AdminChange::PutUser(alice_disabled.clone())],
        vec![record(12, "bob", "user.update", "user/alice")?],
    )?;
    let mut users = store.users().map_err(err)?;
    users.sort_by(|a, b| a.name.cmp(&b.name));
    ensure(
        users == [alice_disabled, bob],
        "putting an existing user replaces it",
    )?;

    let t1 = token("tg_one", "alice", None)?;
    let t2 = token("tg_two", "bob", None)?;
    run.commit(
        vec![
            AdminChange::PutToken(t1.clone()),
            AdminChange::PutToken(t2.clone()),
        ],
        vec![record(13, "alice", "token.create", "token/tg_one")?],
    )?;
    let t1_revoked = token("tg_one", "alice", Some(at(14)?))?;
    run.commit(
        vec![AdminChange::PutToken(t1_revoked.clone())],
        vec![record(14, "alice", "token.revoke", "token/tg_one")?],
    )?;
    let mut tokens = store.tokens().map_err(err)?;
    tokens.sort_by(|a, b| a.id.cmp(&b.id));
    ensure(
        tokens == [t1_revoked, t2],
        "tokens are stored, a put replaces, revoked tokens are listed",
    )?;

    let auditor = role("auditor", "Reads the trail.", &[Permission::AuditRead]);
    let ops = role(
        "ops",
        "Operations.",
        &[Permission::OpsRead, Permission::MediationRead],
    );
    run.commit(
        vec![
            AdminChange::PutRole(auditor),
            AdminChange::PutRole(ops.clone()),
        ],
        vec![record(15, "alice", "role.create", "role/auditor")?],
    )?;
    let auditor = role(
        "auditor",
        "Reads the trail and users.",
        &[Permission::AuditRead, Permission::AccessRead],
    );
    run.commit(
        vec![AdminChange::PutRole(auditor.clone())],
        vec![record(16, "alice", "role.update", "role/auditor")?],
    )?;
    let mut roles = store.roles().map_err(err)?;
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    ensure(
        roles == [auditor.clone(), ops],
        "roles are stored and a put replaces",
    )?;
    run.commit(
        vec![AdminChange::DeleteRole("ops".into())],
        vec![record(17, "alice", "role.delete", "role/ops")?],
    )?;
    ensure(
        store.roles().map_err(err)? == [auditor],
        "a deleted role is gone, the others stay",
    )?;
    Ok(())
}

fn drafts_and_tables(run: &mut Run<'_>) -> Result<(), String> {
    let store = run.store;
    let err = |e: crate::ledger::StoreError| e.to_string();
    // `d1` is a prefix of `d10`: their tables must never mix.
    let d1 = draft("d1", &[("de", b"prefix\n49\n"), ("fr", b"prefix\n33\n")])?;
    let d10 = draft("d10", &[("de", b"prefix\n4930\n")])?;
    let d2 = draft("d2", &[("de", b"prefix\n491\n")])?;
    run.commit(
        vec![
            AdminChange::PutDraft(d1.clone()),
            table(draft_owner("d1"), "de", b"prefix\n49\n"),
            table(draft_owner("d1"), "fr", b"prefix\n33\n"),
            AdminChange::PutDraft(d10.clone()),
            table(draft_owner("d10"), "de", b"prefix\n4930\n"),
            AdminChange::PutDraft(d2.clone()),
            table(draft_owner("d2"), "de", b"prefix\n491\n"),
        ],
        vec![
            record(20, "carol", "catalogue.draft.create", "catalogue/draft/d1")?,
            record(20, "carol", "catalogue.draft.create", "catalogue/draft/d10")?,
            record(21, "dave", "catalogue.draft.create", "catalogue/draft/d2")?,
        ],
    )?;
    ensure(
        store.draft("d1").map_err(err)? == Some(d1.clone()),
        "a draft round-trips",
    )?;
    ensure(
        store.draft("d").map_err(err)?.is_none() && store.draft("nope").map_err(err)?.is_none(),
        "an unknown draft is absent",
    )?;
    let ids: BTreeSet<SmolStr> = store
        .drafts()
        .map_err(err)?
        .into_iter()
        .map(|d| d.id)
        .collect();
    ensure(
        ids == BTreeSet::from(["d1".into(), "d10".into(), "d2".into()]),
        "drafts lists every draft once",
    )?;
    ensure(
        run.table(&draft_owner("d1"), "de")?.as_deref() == Some(b"prefix\n49\n".as_slice())
            && run.table(&draft_owner("d1"), "fr")?.as_deref() == Some(b"prefix\n33\n".as_slice())
            && run.table(&draft_owner("d10"), "de")?.as_deref()
                == Some(b"prefix\n4930\n".as_slice())
            && run.table(&draft_owner("d2"), "de")?.as_deref() == Some(b"prefix\n491\n".as_slice()),
        "prefix tables are stored per owner and name",
    )?;
    ensure(
        run.table(&draft_owner("d1"), "d")?.is_none()
            && run.table(&draft_owner("d2"), "fr")?.is_none()
            && run.table(&TableOwner::Version(1), "de")?.is_none(),
        "an unknown prefix table is absent",
    )?;

    // Replace one table, delete another, change the draft.
    let mut d1_changed = draft("d1", &[("de", b"prefix\n49\n491\n")])?;
    d1_changed.revision = 2;
    run.commit(
        vec![
            AdminChange::PutDraft(d1_changed.clone()),
            table(draft_owner("d1"), "de", b"prefix\n49\n491\n"),
            AdminChange::DeletePrefixTable {
                owner: draft_owner("d1"),
                name: "fr".into(),
            },
        ],
        vec![record(
            22,
            "carol",
            "catalogue.draft.update",
            "catalogue/draft/d1",
        )?],
    )?;
    ensure(
        store.draft("d1").map_err(err)? == Some(d1_changed),
        "a put replaces the draft",
    )?;
    ensure(
        run.table(&draft_owner("d1"), "de")?.as_deref() == Some(b"prefix\n49\n491\n".as_slice()),
        "a put replaces the prefix table",
    )?;
    ensure(
        run.table(&draft_owner("d1"), "fr")?.is_none()
            && run.table(&draft_owner("d10"), "de")?.is_some()
            && run.table(&draft_owner("d2"), "de")?.is_some(),
        "a deleted prefix table is gone, others stay",
    )?;
    Ok(())
}

fn versions(run: &mut Run<'_>) -> Result<(), String> {
    let store = run.store;
    let err = |e: crate::ledger::StoreError| e.to_string();
    let v1 = version(1, "first")?;
    let v2 = version(2, "second")?;
    let v10 = version(10, "tenth")?;
    // Published out of order on purpose: versions() orders by number, not by insertion or text.
    for (v, offset) in [(&v1, 30), (&v10, 31), (&v2, 32)] {
        run.commit(
            vec![
                AdminChange::PutVersion(v.clone()),
                table(
                    TableOwner::Version(v.version),
                    "de",
                    format!("prefix\n49{}\n", v.version).as_bytes(),
                ),
            ],
            vec![record(
                offset,
                "carol",
                "catalogue.publish",
                &format!("catalogue/version/{}", v.version),
            )?],
        )?;
    }
    let numbers: Vec<u64> = store
        .versions()
        .map_err(err)?
        .iter()
        .map(|v| v.version)
        .collect();
    ensure(numbers == [1, 2, 10], "versions are listed oldest first")?;
    ensure(
        store.versions().map_err(err)? == [v1.clone(), v2.clone(), v10.clone()],
        "versions round-trip",
    )?;
    ensure(
        store.version(2).map_err(err)? == Some(v2)
            && store.version(3).map_err(err)?.is_none()
            && store.version(0).map_err(err)?.is_none(),
        "version(n) reads one version",
    )?;
    ensure(
        run.table(&TableOwner::Version(10), "de")?.as_deref() == Some(b"prefix\n4910\n".as_slice()),
        "a version's prefix tables are stored",
    )?;

    // A duplicate version is refused whole: nothing of the write, audit records included.
    let refused = AdminWrite {
        changes: vec![
            AdminChange::PutUser(user("mallory", &["admin"], false)?),
            table(TableOwner::Version(1), "de", b"prefix\nreplaced\n"),
            table(draft_owner("d2"), "de", b"prefix\nreplaced\n"),
            AdminChange::DeleteDraft("d10".into()),
            AdminChange::PutVersion(version(1, "again")?),
        ],
        audit: vec![record(
            33,
            "mallory",
            "catalogue.publish",
            "catalogue/version/1",
        )?],
    };
    let refused_id = refused.audit.first().map(|r| r.id);
    ensure(
        store.commit(refused).is_err(),
        "a version number that exists is refused",
    )?;
    // Two versions of one number in one write are refused as well.
    let twice = AdminWrite {
        changes: vec![
            AdminChange::PutVersion(version(3, "one")?),
            AdminChange::PutVersion(version(3, "two")?),
        ],
        audit: vec![record(
            34,
            "mallory",
            "catalogue.publish",
            "catalogue/version/3",
        )?],
    };
    let twice_id = twice.audit.first().map(|r| r.id);
    ensure(
        store.commit(twice).is_err(),
        "a version number given twice in one write is refused",
    )?;
    ensure(
        store.version(1).map_err(err)? == Some(v1)
            && store.version(3).map_err(err)?.is_none()
            && store.versions().map_err(err)?.len() == 3,
        "a refused write leaves the versions unchanged",
    )?;
    ensure(
        !store
            .users()
            .map_err(err)?
            .iter()
            .any(|u| u.name == "mallory")
            && run.table(&TableOwner::Version(1), "de")?.as_deref()
                == Some(b"prefix\n491\n".as_slice())
            && run.table(&draft_owner("d2"), "de")?.as_deref() == Some(b"prefix\n491\n".as_slice())
            && store.draft("d10").map_err(err)?.is_some()
            && run.table(&draft_owner("d10"), "de")?.is_some(),
        "a refused write applies none of its changes",
    )?;
    let stored = store
        .audit(&AuditFilter::default(), None, usize::MAX)
        .map_err(err)?;
    ensure(
        !stored
            .iter()
            .any(|r| Some(r.id) == refused_id || Some(r.id) == twice_id),
        "a refused write stores none of its audit records",
    )?;
    Ok(())
}

fn delete_draft(run: &mut Run<'_>) -> Result<(), String> {
    let store = run.store;
    let err = |e: crate::ledger::StoreError| e.to_string();
    run.commit(
        vec![AdminChange::DeleteDraft("d1".into())],
        vec![record(
            40,
            "dave",
            "catalogue.draft.delete",
            "catalogue/draft/d1",
        )?],
    )?;
    ensure(
        store.draft("d1").map_err(err)?.is_none()
            && run.table(&draft_owner("d1"), "de")?.is_none()
            && run.table(&draft_owner("d1"), "fr")?.is_none(),
        "a deleted draft is gone with its prefix tables",
    )?;
    ensure(
        store.draft("d10").map_err(err)?.is_some()
            && run.table(&draft_owner("d10"), "de")?.is_some()
            && run.table(&draft_owner("d2"), "de")?.is_some()
            && run.table(&TableOwner::Version(1), "de")?.is_some()
            && run.table(&TableOwner::Version(10), "de")?.is_some(),
        "deleting a draft keeps other drafts' and versions' tables",
    )?;
    ensure(
        store.drafts().map_err(err)?.len() == 2,
        "a deleted draft is not listed",
    )?;
    // A write with only audit records (e.g. a login) stores them.
    run.commit(
        Vec::new(),
        vec![record(41, "bob", "session.login", "user/bob")?],
    )?;
    Ok(())
}

fn audit_trail(run: &Run<'_>) -> Result<(), String> {
    let store = run.store;
    let err = |e: crate::ledger::StoreError| e.to_string();
    let mut expected = run.audit.clone();
    expected.sort_by_key(|r| r.id);
    let all = store
        .audit(&AuditFilter::default(), None, usize::MAX)
        .map_err(err)?;
    ensure(
        all == expected,
        "every committed write's audit records are stored, in id order",
    )?;
    ensure(
        store
            .audit(&AuditFilter::default(), None, 0)
            .map_err(err)?
            .is_empty(),
        "a limit of 0 returns nothing",
    )?;
    for page in [1, 2, 3, 7, expected.len(), expected.len() + 1] {
        ensure(
            read_paged(store, &AuditFilter::default(), page)? == expected,
            &format!("pages of {page} return every record exactly once, in id order"),
        )?;
    }
    let last = expected.last().map(|r| r.id);
    ensure(
        store
            .audit(&AuditFilter::default(), last, usize::MAX)
            .map_err(err)?
            .is_empty(),
        "nothing comes after the last record",
    )?;

    let check = |filter: AuditFilter, count: usize, what: &str| -> Result<(), String> {
        let want: Vec<AuditRecord> = expected
            .iter()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        ensure(
            want.len() == count,
            &format!("{what}: the run wrote {count}"),
        )?;
        ensure(
            store
                .audit(&filter, None, usize::MAX)
                .map_err(|e| e.to_string())?
                == want,
            what,
        )?;
        for page in [1, 2] {
            ensure(
                read_paged(store, &filter, page)? == want,
                &format!("{what}, in pages of {page}"),
            )?;
        }
        Ok(())
    };
    check(
        AuditFilter {
            principal: Some("alice".into()),
            ..Default::default()
        },
        5,
        "filter by principal",
    )?;
    check(
        AuditFilter {
            operation: Some("catalogue.".into()),
            ..Default::default()
        },
        8,
        "filter by operation prefix",
    )?;
    check(
        AuditFilter {
            operation: Some("user.create".into()),
            ..Default::default()
        },
        2,
        "filter by exact operation",
    )?;
    check(
        AuditFilter {
            target_prefix: Some("catalogue/draft/d1".into()),
            ..Default::default()
        },
        4,
        "filter by target prefix",
    )?;
    check(
        AuditFilter {
            from: Some(at(20)?),
            ..Default::default()
        },
        9,
        "filter from a time (inclusive)",
    )?;
    check(
        AuditFilter {
            to: Some(at(20)?),
            ..Default::default()
        },
        8,
        "filter to a time (exclusive)",
    )?;
    check(
        AuditFilter {
            from: Some(at(14)?),
            to: Some(at(31)?),
            ..Default::default()
        },
        9,
        "filter between two times",
    )?;
    check(
        AuditFilter {
            principal: Some("carol".into()),
            operation: Some("catalogue.publish".into()),
            from: Some(at(31)?),
            ..Default::default()
        },
        2,
        "filters combine",
    )?;
    check(
        AuditFilter {
            from: Some(at(1_000)?),
            ..Default::default()
        },
        0,
        "a filter after every record matches none",
    )?;
    // A cursor beyond `from` wins: the scan starts after the cursor.
    let from = AuditFilter {
        from: Some(at(12)?),
        ..Default::default()
    };
    let t20 = at(20)?;
    let cursor = expected.iter().find(|r| r.at >= t20);
    let cursor_id = cursor.map(|r| r.id);
    let after_cursor: Vec<AuditRecord> = expected
        .iter()
        .filter(|r| Some(r.id) > cursor_id)
        .cloned()
        .collect();
    ensure(
        store.audit(&from, cursor_id, usize::MAX).map_err(err)? == after_cursor,
        "a cursor later than `from` starts after the cursor",
    )?;
    // A cursor before `from` is overtaken by it.
    let first = expected.first().map(|r| r.id);
    let from_on: Vec<AuditRecord> = expected
        .iter()
        .filter(|r| from.matches(r))
        .cloned()
        .collect();
    ensure(
        store.audit(&from, first, usize::MAX).map_err(err)? == from_on,
        "a cursor earlier than `from` starts at `from`",
    )?;
    Ok(())
}
