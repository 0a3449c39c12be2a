use crate::{
    ActiveCalls, Binding, BindingOp, CallRecord, CallRecordQuery, NoCalls, RingGroup,
    RingGroupPatch, RingGroupSpec, RingStrategy, Store, StoreError, StoreEvent,
};

async fn open() -> (Store, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    (Store::open(&url).await.unwrap(), dir)
}

mod tempdir {
    pub struct Dir {
        pub path: std::path::PathBuf,
    }
    impl Dir {
        pub fn new() -> Dir {
            let path =
                std::env::temp_dir().join(format!("orbit-store-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&path).unwrap();
            Dir { path }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[tokio::test]
async fn tenants_and_extensions_round_trip_and_survive_reopen() {
    let (store, dir) = open().await;
    let t = store.create_tenant("Acme", "Acme.Test").await.unwrap();
    assert_eq!(t.domain, "acme.test");
    assert!(matches!(
        store.create_tenant("Again", "acme.test").await,
        Err(StoreError::Conflict("domain"))
    ));
    let e = store
        .create_extension(&t.id, "101", "Alice", "secret-101")
        .await
        .unwrap();
    assert_eq!(
        e.ha1_md5,
        orbit_auth::digest::ha1(orbit_auth::Algorithm::Md5, "101", "acme.test", "secret-101")
    );
    assert!(matches!(
        store.create_extension(&t.id, "101", "x", "y").await,
        Err(StoreError::Conflict("number"))
    ));
    // Renaming the domain keeps the realm the HA1 values were made with.
    let renamed = store
        .update_tenant(&t.id, None, Some("acme2.test"))
        .await
        .unwrap();
    assert_eq!(renamed.realm, "acme.test");
    drop(store);
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    let dir_view = again.directory();
    assert_eq!(dir_view.tenant_by_domain("acme2.test").unwrap().id, t.id);
    assert_eq!(
        dir_view.extension(&t.id, "101").unwrap().display_name,
        "Alice"
    );
}

#[tokio::test]
async fn deleting_cascades_and_announces() {
    let (store, _dir) = open().await;
    let mut events = store.subscribe();
    let t = store.create_tenant("Acme", "acme.test").await.unwrap();
    store
        .create_extension(&t.id, "101", "Alice", "secret-101")
        .await
        .unwrap();
    let b = Binding {
        tenant_id: t.id.clone(),
        extension: "101".into(),
        contact: "sip:101@192.0.2.1".into(),
        contact_params: String::new(),
        expires_at: crate::now_ms() + 60_000,
        call_id: "c".into(),
        cseq: 1,
        source: "udp:192.0.2.1:5060".into(),
        transport: "udp".into(),
        user_agent: "test".into(),
        registered_at: crate::now_ms(),
    };
    store
        .apply_bindings(&[BindingOp::Upsert(b.clone()), BindingOp::Upsert(b.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.bindings(Some(&t.id), crate::now_ms()).await.unwrap(),
        vec![b]
    );
    store.delete_extension(&t.id, "101").await.unwrap();
    assert_eq!(
        events.recv().await.unwrap(),
        StoreEvent::ExtensionDeleted {
            tenant_id: t.id.clone(),
            number: "101".into()
        }
    );
    assert!(store
        .bindings(Some(&t.id), crate::now_ms())
        .await
        .unwrap()
        .is_empty());
    let (_, token) = store.create_token(&t.id, "ci").await.unwrap();
    assert_eq!(
        store.token_tenant(&token).await.unwrap(),
        Some(t.id.clone())
    );
    store.delete_tenant(&t.id).await.unwrap();
    assert_eq!(store.token_tenant(&token).await.unwrap(), None);
    assert!(store.directory().tenant(&t.id).is_none());
}

#[tokio::test]
async fn expired_bindings_are_not_listed_and_can_be_purged() {
    let (store, _dir) = open().await;
    let t = store.create_tenant("Acme", "acme.test").await.unwrap();
    let now = crate::now_ms();
    let b = Binding {
        tenant_id: t.id.clone(),
        extension: "101".into(),
        contact: "sip:a@b".into(),
        contact_params: ";q=0.5".into(),
        expires_at: now - 1,
        call_id: "c".into(),
        cseq: 1,
        source: "s".into(),
        transport: "udp".into(),
        user_agent: "".into(),
        registered_at: now - 10,
    };
    store.apply_bindings(&[BindingOp::Upsert(b)]).await.unwrap();
    assert!(store.bindings(None, now).await.unwrap().is_empty());
    store
        .apply_bindings(&[BindingOp::Expire { now_ms: now }])
        .await
        .unwrap();
}

fn spec(number: &str, members: &[&str]) -> RingGroupSpec {
    RingGroupSpec {
        number: number.into(),
        name: format!("Group {number}"),
        members: members.iter().map(|m| m.to_string()).collect(),
        strategy: RingStrategy::Sequential,
        ring_time_s: 15,
        no_answer_destination: None,
    }
}

#[tokio::test]
async fn ring_groups_round_trip_keep_member_order_and_survive_reopen() {
    let (store, dir) = open().await;
    let t = store.create_tenant("Acme", "acme.test").await.unwrap();
    for n in ["101", "102", "103"] {
        store
            .create_extension(&t.id, n, "", "secret-xyz")
            .await
            .unwrap();
    }
    let g = store
        .create_ring_group(
            &t.id,
            RingGroupSpec {
                no_answer_destination: Some("101".into()),
                ..spec("600", &["103", "101", "102"])
            },
        )
        .await
        .unwrap();
    assert_eq!(g.members, ["103", "101", "102"]);
    let other = store
        .create_ring_group(
            &t.id,
            RingGroupSpec {
                no_answer_destination: Some("600".into()),
                ..spec("7", &[])
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .directory()
            .ring_groups(&t.id)
            .iter()
            .map(|g| g.number.clone())
            .collect::<Vec<_>>(),
        ["7", "600"]
    );
    // Patch: members replaced as a whole, other fields kept.
    let p = store
        .update_ring_group(
            &t.id,
            "600",
            RingGroupPatch {
                members: Some(vec!["102".into(), "103".into()]),
                strategy: Some(RingStrategy::RingAll),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.members, ["102", "103"]);
    assert_eq!(p.strategy, RingStrategy::RingAll);
    assert_eq!((p.name.as_str(), p.ring_time_s), ("Group 600", 15));
    assert_eq!(p.no_answer_destination.as_deref(), Some("101"));
    let p = store
        .update_ring_group(
            &t.id,
            "600",
            RingGroupPatch {
                no_answer_destination: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.no_answer_destination, None);
    assert_eq!(p.members, ["102", "103"]);
    drop(store);
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(*again.directory().ring_group(&t.id, "600").unwrap(), p);
    assert_eq!(*again.directory().ring_group(&t.id, "7").unwrap(), other);
}

#[tokio::test]
async fn ring_group_rules() {
    let (store, _dir) = open().await;
    let t = store.create_tenant("Acme", "acme.test").await.unwrap();
    let u = store.create_tenant("Other", "other.test").await.unwrap();
    store
        .create_extension(&t.id, "101", "", "secret-xyz")
        .await
        .unwrap();
    store
        .create_extension(&u.id, "102", "", "secret-xyz")
        .await
        .unwrap();
    let invalid = |r: Result<RingGroup, StoreError>| match r {
        Err(StoreError::Invalid { field, message }) => (field, message),
        other => panic!("{other:?}"),
    };
    // Number shared with extensions, both ways.
    assert!(matches!(
        store.create_ring_group(&t.id, spec("101", &[])).await,
        Err(StoreError::Conflict("number"))
    ));
    store
        .create_ring_group(&t.id, spec("600", &["101"]))
        .await
        .unwrap();
    assert!(matches!(
        store.create_ring_group(&t.id, spec("600", &[])).await,
        Err(StoreError::Conflict("number"))
    ));
    assert!(matches!(
        store.create_extension(&t.id, "600", "", "secret-xyz").await,
        Err(StoreError::Conflict("number"))
    ));
    // Another tenant may use the same number.
    store
        .create_extension(&u.id, "600", "", "secret-xyz")
        .await
        .unwrap();
    // Members: exist in this tenant, no duplicates, at most 50.
    let (f, m) = invalid(store.create_ring_group(&t.id, spec("601", &["102"])).await);
    assert_eq!(f, "members");
    assert!(m.contains("102"), "{m}");
    let (f, _) = invalid(
        store
            .create_ring_group(&t.id, spec("601", &["101", "101"]))
            .await,
    );
    assert_eq!(f, "members");
    let mut many = spec("601", &[]);
    many.members = (0..51).map(|i| format!("9{i}")).collect();
    assert_eq!(
        invalid(store.create_ring_group(&t.id, many).await).0,
        "members"
    );
    let mut slow = spec("601", &[]);
    slow.ring_time_s = 301;
    assert_eq!(
        invalid(store.create_ring_group(&t.id, slow).await).0,
        "ring_time_s"
    );
    // No-answer destination: an extension or ring group here, not itself.
    for bad in ["601", "102", "999"] {
        let s = RingGroupSpec {
            no_answer_destination: Some(bad.into()),
            ..spec("601", &[])
        };
        assert_eq!(
            invalid(store.create_ring_group(&t.id, s).await).0,
            "no_answer_destination",
            "{bad}"
        );
    }
    let err = store
        .update_ring_group(
            &t.id,
            "600",
            RingGroupPatch {
                no_answer_destination: Some(Some("600".into())),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(invalid(err).0, "no_answer_destination");
    assert!(matches!(
        store
            .update_ring_group(&t.id, "601", RingGroupPatch::default())
            .await,
        Err(StoreError::NotFound("ring group"))
    ));
    assert!(matches!(
        store.delete_ring_group(&u.id, "600").await,
        Err(StoreError::NotFound("ring group"))
    ));
    // Nothing half-written by the refusals.
    assert_eq!(store.directory().ring_groups(&t.id).len(), 1);
    assert_eq!(
        store.directory().ring_group(&t.id, "600").unwrap().members,
        ["101"]
    );
}

#[tokio::test]
async fn deleting_extensions_groups_and_tenants_cleans_ring_groups() {
    let (store, dir) = open().await;
    let t = store.create_tenant("Acme", "acme.test").await.unwrap();
    for n in ["101", "102", "103"] {
        store
            .create_extension(&t.id, n, "", "secret-xyz")
            .await
            .unwrap();
    }
    store
        .create_ring_group(
            &t.id,
            RingGroupSpec {
                no_answer_destination: Some("102".into()),
                ..spec("600", &["101", "102", "103"])
            },
        )
        .await
        .unwrap();
    store
        .create_ring_group(
            &t.id,
            RingGroupSpec {
                no_answer_destination: Some("600".into()),
                ..spec("601", &["102"])
            },
        )
        .await
        .unwrap();
    store.delete_extension(&t.id, "102").await.unwrap();
    let g = store.directory().ring_group(&t.id, "600").unwrap();
    assert_eq!(g.members, ["101", "103"]);
    assert_eq!(g.no_answer_destination, None);
    assert!(store
        .directory()
        .ring_group(&t.id, "601")
        .unwrap()
        .members
        .is_empty());
    // The number is free again for either kind.
    store
        .create_extension(&t.id, "102", "", "secret-xyz")
        .await
        .unwrap();
    // Deleting a group clears destinations naming it.
    store.delete_ring_group(&t.id, "600").await.unwrap();
    assert!(store.directory().ring_group(&t.id, "600").is_none());
    assert_eq!(
        store
            .directory()
            .ring_group(&t.id, "601")
            .unwrap()
            .no_answer_destination,
        None
    );
    // The database agrees with the directory.
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(
        *again.directory().ring_group(&t.id, "601").unwrap(),
        *store.directory().ring_group(&t.id, "601").unwrap()
    );
    assert!(again.directory().ring_group(&t.id, "600").is_none());
    drop(again);
    store
        .update_ring_group(
            &t.id,
            "601",
            RingGroupPatch {
                members: Some(vec!["101".into(), "103".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store.delete_tenant(&t.id).await.unwrap();
    assert!(store.directory().ring_groups(&t.id).is_empty());
    let again = Store::open(&url).await.unwrap();
    assert!(again.directory().ring_groups(&t.id).is_empty());
    let rows: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) FROM ring_group_members")
            .fetch_one(&again.pool)
            .await
            .unwrap(),
        0,
    );
    assert_eq!(rows, 0);
}

fn record(tenant_id: &str, id: &str, started_at: i64) -> CallRecord {
    CallRecord {
        id: id.into(),
        tenant_id: tenant_id.into(),
        caller: "101".into(),
        caller_name: "Alice".into(),
        callee: "102".into(),
        answered_by: Some("102".into()),
        started_at,
        answered_at: Some(started_at + 2_000),
        ended_at: started_at + 60_000,
        end_reason: "caller_hangup".into(),
        transfers: Vec::new(),
    }
}

async fn count_call_records(store: &Store) -> i64 {
    sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) FROM call_records")
            .fetch_one(&store.pool)
            .await
            .unwrap(),
        0,
    )
}

#[tokio::test]
async fn call_records_round_trip_and_survive_reopen() {
    let (store, dir) = open().await;
    let t = store.create_tenant("Acme", "acme.test").await.unwrap();
    let answered = CallRecord {
        transfers: vec![
            "103".into(),
            "say \"hi\" \\ back\n\t\u{1}".into(),
            "Zoë 📞".into(),
            String::new(),
        ],
        end_reason: "transferred".into(),
        ..record(&t.id, "c1", 1_000)
    };
    let unanswered = CallRecord {
        answered_by: None,
        answered_at: None,
        end_reason: "no_answer".into(),
        caller_name: String::new(),
        ..record(&t.id, "c2", 2_000)
    };
    store
        .append_call_records(&[answered.clone(), unanswered.clone()])
        .await
        .unwrap();
    store.append_call_records(&[]).await.unwrap();
    let q = CallRecordQuery::default();
    let want = vec![unanswered, answered];
    assert_eq!(store.call_records(&t.id, &q).await.unwrap(), want);
    drop(store);
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(again.call_records(&t.id, &q).await.unwrap(), want);
    // Stored as a JSON array of strings.
    let raw: String = sqlx::Row::get(
        &sqlx::query("SELECT transfers FROM call_records WHERE id = 'c1'")
            .fetch_one(&again.pool)
            .await
            .unwrap(),
        0,
    );
    assert!(raw.starts_with("[\"103\","), "{raw}");
    assert_eq!(NoCalls.active_calls(&t.id), Vec::new());
}

#[tokio::test]
async fn appending_call_records_is_idempotent_and_all_or_nothing() {
    let (store, _dir) = open().await;
    let t = store.create_tenant("Acme", "acme.test").await.unwrap();
    let first = record(&t.id, "c1", 1_000);
    store
        .append_call_records(std::slice::from_ref(&first))
        .await
        .unwrap();
    // A retry, even with other content, leaves the stored record as it is;
    // within one batch the first of an id wins.
    let changed = CallRecord {
        end_reason: "failed".into(),
        ..first.clone()
    };
    let second = record(&t.id, "c2", 2_000);
    let second_again = CallRecord {
        callee: "999".into(),
        ..second.clone()
    };
    store
        .append_call_records(&[changed, second.clone(), second_again])
        .await
        .unwrap();
    assert_eq!(
        store
            .call_records(&t.id, &CallRecordQuery::default())
            .await
            .unwrap(),
        vec![second, first]
    );
    // More rows than one statement takes, failing in the last statement:
    // nothing of the batch is stored.
    sqlx::query(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON call_records WHEN NEW.callee = 'boom' \
         BEGIN SELECT RAISE(ABORT, 'boom'); END",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    let mut batch: Vec<CallRecord> = (0..70)
        .map(|i| record(&t.id, &format!("b{i:02}"), 10_000 + i))
        .collect();
    batch[69].callee = "boom".into();
    assert!(matches!(
        store.append_call_records(&batch).await,
        Err(StoreError::Db(_))
    ));
    assert_eq!(count_call_records(&store).await, 2);
    batch[69].callee = "102".into();
    store.append_call_records(&batch).await.unwrap();
    store.append_call_records(&batch).await.unwrap();
    assert_eq!(count_call_records(&store).await, 72);
}

#[tokio::test]
async fn call_record_filters_order_and_limits() {
    let (store, _dir) = open().await;
    let t = store.create_tenant("Acme", "acme.test").await.unwrap();
    let mut records = vec![
        // 101 calls 102, answered by 102.
        record(&t.id, "a", 1_000),
        // 102 calls ring group 600, answered by 103.
        CallRecord {
            caller: "102".into(),
            callee: "600".into(),
            answered_by: Some("103".into()),
            ..record(&t.id, "b", 2_000)
        },
        // 104 calls 105, unanswered.
        CallRecord {
            caller: "104".into(),
            callee: "105".into(),
            answered_by: None,
            answered_at: None,
            ..record(&t.id, "c", 3_000)
        },
        // 104 calls 101, answered by 101; same start as "c": the id orders them.
        CallRecord {
            caller: "104".into(),
            callee: "101".into(),
            answered_by: Some("101".into()),
            ..record(&t.id, "d", 3_000)
        },
    ];
    store.append_call_records(&records).await.unwrap();
    let ids = |v: Vec<CallRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let get = |q: CallRecordQuery| {
        let store = store.clone();
        let id = t.id.clone();
        async move { ids(store.call_records(&id, &q).await.unwrap()) }
    };
    assert_eq!(get(CallRecordQuery::default()).await, ["d", "c", "b", "a"]);
    let ext = |e: &str| CallRecordQuery {
        extension: Some(e.into()),
        ..Default::default()
    };
    // Caller, callee or who answered.
    assert_eq!(get(ext("101")).await, ["d", "a"]);
    assert_eq!(get(ext("102")).await, ["b", "a"]);
    assert_eq!(get(ext("103")).await, ["b"]);
    assert_eq!(get(ext("105")).await, ["c"]);
    assert!(get(ext("10")).await.is_empty());
    // since <= started_at < until.
    let window = |since: Option<i64>, until: Option<i64>| CallRecordQuery {
        since_ms: since,
        until_ms: until,
        ..Default::default()
    };
    assert_eq!(get(window(Some(2_000), None)).await, ["d", "c", "b"]);
    assert_eq!(get(window(None, Some(3_000))).await, ["b", "a"]);
    assert_eq!(get(window(Some(2_000), Some(3_000))).await, ["b"]);
    assert!(get(window(Some(3_001), None)).await.is_empty());
    assert_eq!(
        get(CallRecordQuery {
            extension: Some("101".into()),
            since_ms: Some(1_001),
            limit: 1,
            ..Default::default()
        })
        .await,
        ["d"]
    );
    assert_eq!(
        get(CallRecordQuery {
            limit: 2,
            ..Default::default()
        })
        .await,
        ["d", "c"]
    );
    // limit 0 means 100; any limit is capped to 1000.
    records = (0..1100)
        .map(|i| record(&t.id, &format!("m{i:04}"), 10_000 + i))
        .collect();
    store.append_call_records(&records).await.unwrap();
    assert_eq!(get(CallRecordQuery::default()).await.len(), 100);
    let all = get(CallRecordQuery {
        limit: u32::MAX,
        ..Default::default()
    })
    .await;
    assert_eq!(all.len(), 1000);
    assert_eq!((all[0].as_str(), all[999].as_str()), ("m1099", "m0100"));
}

#[tokio::test]
async fn call_records_are_confined_to_their_tenant_and_deleted_with_it() {
    let (store, dir) = open().await;
    let t = store.create_tenant("Acme", "acme.test").await.unwrap();
    let u = store.create_tenant("Other", "other.test").await.unwrap();
    store
        .append_call_records(&[
            record(&t.id, "t1", 1_000),
            record(&u.id, "u1", 2_000),
            // A tenant that is gone (or never was): dropped, the rest stored.
            record("no-such-tenant", "x1", 3_000),
        ])
        .await
        .unwrap();
    let q = CallRecordQuery::default();
    assert_eq!(
        store.call_records(&t.id, &q).await.unwrap(),
        vec![record(&t.id, "t1", 1_000)]
    );
    assert_eq!(
        store.call_records(&u.id, &q).await.unwrap(),
        vec![record(&u.id, "u1", 2_000)]
    );
    assert!(matches!(
        store.call_records("no-such-tenant", &q).await,
        Err(StoreError::NotFound("tenant"))
    ));
    assert_eq!(count_call_records(&store).await, 2);
    store.delete_tenant(&t.id).await.unwrap();
    assert_eq!(count_call_records(&store).await, 1);
    // A late record of the deleted tenant does not come back.
    store
        .append_call_records(&[record(&t.id, "t2", 4_000)])
        .await
        .unwrap();
    assert_eq!(count_call_records(&store).await, 1);
    drop(store);
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(
        again.call_records(&u.id, &q).await.unwrap(),
        vec![record(&u.id, "u1", 2_000)]
    );
}

#[test]
fn transfers_json() {
    use crate::calls::{decode_strings, encode_strings};
    for v in [
        vec![],
        vec![String::new()],
        vec!["101".to_string(), "sip:bob@example.com".to_string()],
        vec!["\"\\/\u{0}\u{1f}\u{7f}\r\n\t é 😀".to_string()],
    ] {
        let s = encode_strings(&v);
        assert_eq!(decode_strings(&s), Some(v), "{s}");
    }
    assert_eq!(encode_strings(&["a\"b".into()]), r#"["a\"b"]"#);
    assert_eq!(
        decode_strings(r#" [ "a" , "\u00e9\ud83d\ude00\/\b\f" ] "#),
        Some(vec!["a".to_string(), "é😀/\u{8}\u{c}".to_string()])
    );
    for bad in [
        "",
        "[",
        "]",
        "[\"a\"",
        "[\"a\",]",
        "[1]",
        "[\"a\"] x",
        "{}",
        "[\"\\x\"]",
        "[\"\\ud83d\"]",
        "[\"\\u12\"]",
        "[\"a\nb\"]",
        "[,\"a\"]",
    ] {
        assert_eq!(decode_strings(bad), None, "{bad:?}");
    }
}

// ---- call park ----

use crate::{
    ParkEventQuery, ParkEventRecord, ParkGroup, ParkGroupPatch, ParkGroupSpec, ParkSettings,
    ParkSettingsSpec, RecallSettings, RecallTo,
};

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::Row::get(
        &sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&store.pool)
            .await
            .unwrap(),
        0,
    )
}

/// A tenant with extensions 101..=105 and ring groups 600 (members 101,
/// 102) and 601.
async fn park_tenant(store: &Store, domain: &str) -> String {
    let t = store.create_tenant(domain, domain).await.unwrap();
    for n in ["101", "102", "103", "104", "105"] {
        store
            .create_extension(&t.id, n, "", "secret-xyz")
            .await
            .unwrap();
    }
    store
        .create_ring_group(&t.id, spec("600", &["101", "102"]))
        .await
        .unwrap();
    store
        .create_ring_group(&t.id, spec("601", &[]))
        .await
        .unwrap();
    t.id
}

fn invalid_field<T: std::fmt::Debug>(r: Result<T, StoreError>) -> (&'static str, String) {
    match r {
        Err(StoreError::Invalid { field, message }) => (field, message),
        other => panic!("{other:?}"),
    }
}

fn group_spec(name: &str, members: &[&str]) -> ParkGroupSpec {
    ParkGroupSpec {
        name: name.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        recall: None,
    }
}

#[tokio::test]
async fn park_settings_default_then_stored_and_survive_reopen() {
    let (store, dir) = open().await;
    let t = park_tenant(&store, "acme.test").await;
    // Nothing stored: the defaults, also for a tenant the directory does not know.
    let d = store.directory().park_settings(&t);
    assert_eq!(*d, ParkSettings::defaults(&t));
    assert_eq!(
        (
            d.enabled,
            d.park_code.as_str(),
            d.group_park_code.as_str(),
            d.retrieve_code.as_str(),
            d.notify_parker,
            d.max_parked_per_extension,
            d.updated_at
        ),
        (true, "*68", "*58", "*88", false, 10, 0)
    );
    assert_eq!(
        d.recall,
        RecallSettings {
            recall_time_s: 45,
            recall_to: RecallTo::ParkerOnly,
            recall_number: None,
            ring_group: None,
            ring_group_wait_s: 20,
            ring_s: 20,
            retry_interval_s: 10,
            max_recall_attempts: 3,
            final_destination: None,
            display_prefix: "Recall:".into(),
        }
    );
    assert_eq!(count(&store, "park_settings").await, 0);
    let spec = ParkSettingsSpec {
        enabled: false,
        park_code: "#7".into(),
        group_park_code: "*580000".into(),
        retrieve_code: "*89".into(),
        notify_parker: true,
        max_parked_per_extension: 100,
        recall: RecallSettings {
            recall_time_s: 900,
            recall_to: RecallTo::ParkerThenRingGroup,
            recall_number: Some("103".into()),
            ring_group: Some("600".into()),
            ring_group_wait_s: 300,
            ring_s: 5,
            retry_interval_s: 1,
            max_recall_attempts: 20,
            final_destination: Some("601".into()),
            display_prefix: "Zurück ↩ \u{e9}".into(),
        },
    };
    let s = store.put_park_settings(&t, spec.clone()).await.unwrap();
    assert!(s.updated_at > 0);
    assert_eq!(*store.directory().park_settings(&t), s);
    // A second put replaces the row.
    let s2 = store
        .put_park_settings(
            &t,
            ParkSettingsSpec {
                enabled: true,
                ..spec
            },
        )
        .await
        .unwrap();
    assert_eq!(count(&store, "park_settings").await, 1);
    drop(store);
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(*again.directory().park_settings(&t), s2);
    assert!(matches!(
        again
            .put_park_settings("no-such-tenant", ParkSettingsSpec::default())
            .await,
        Err(StoreError::NotFound("tenant"))
    ));
}

#[tokio::test]
async fn park_settings_rules_name_the_field() {
    let (store, _dir) = open().await;
    let t = park_tenant(&store, "acme.test").await;
    let u = park_tenant(&store, "other.test").await;
    store.create_ring_group(&u, spec("700", &[])).await.unwrap();
    store
        .create_extension(&u, "200", "", "secret-xyz")
        .await
        .unwrap();
    let codes = |p: &str, g: &str, r: &str| ParkSettingsSpec {
        park_code: p.into(),
        group_park_code: g.into(),
        retrieve_code: r.into(),
        ..Default::default()
    };
    let recall = |r: RecallSettings| ParkSettingsSpec {
        recall: r,
        ..Default::default()
    };
    let base = RecallSettings::default();
    let cases: Vec<(ParkSettingsSpec, &str)> = vec![
        (codes("68", "*58", "*88"), "park_code"),
        (codes("*", "*58", "*88"), "park_code"),
        (codes("*1234567", "*58", "*88"), "park_code"),
        (codes("*6a", "*58", "*88"), "park_code"),
        (codes("*68", "#", "*88"), "group_park_code"),
        (codes("*68", "*58", "**88"), "retrieve_code"),
        // Equal, or one the beginning of another (either way round).
        (codes("*68", "*68", "*88"), "group_park_code"),
        (codes("*6", "*68", "*88"), "group_park_code"),
        (codes("*68", "*6", "*88"), "group_park_code"),
        (codes("*68", "*58", "*681"), "retrieve_code"),
        (codes("*68", "*58", "*5"), "retrieve_code"),
        (
            ParkSettingsSpec {
                max_parked_per_extension: 0,
                ..Default::default()
            },
            "max_parked_per_extension",
        ),
        (
            ParkSettingsSpec {
                max_parked_per_extension: 101,
                ..Default::default()
            },
            "max_parked_per_extension",
        ),
        (
            recall(RecallSettings {
                recall_time_s: 0,
                ..base.clone()
            }),
            "recall.recall_time_s",
        ),
        (
            recall(RecallSettings {
                recall_time_s: 901,
                ..base.clone()
            }),
            "recall.recall_time_s",
        ),
        (
            recall(RecallSettings {
                ring_group_wait_s: 4,
                ..base.clone()
            }),
            "recall.ring_group_wait_s",
        ),
        (
            recall(RecallSettings {
                ring_s: 301,
                ..base.clone()
            }),
            "recall.ring_s",
        ),
        (
            recall(RecallSettings {
                retry_interval_s: 0,
                ..base.clone()
            }),
            "recall.retry_interval_s",
        ),
        (
            recall(RecallSettings {
                max_recall_attempts: 21,
                ..base.clone()
            }),
            "recall.max_recall_attempts",
        ),
        (
            recall(RecallSettings {
                display_prefix: "x".repeat(17),
                ..base.clone()
            }),
            "recall.display_prefix",
        ),
        (
            recall(RecallSettings {
                display_prefix: "a\"b".into(),
                ..base.clone()
            }),
            "recall.display_prefix",
        ),
        (
            recall(RecallSettings {
                display_prefix: "a\nb".into(),
                ..base.clone()
            }),
            "recall.display_prefix",
        ),
        // The ring group modes need a ring group; NUMBER needs a number.
        (
            recall(RecallSettings {
                recall_to: RecallTo::ParkerThenRingGroup,
                ..base.clone()
            }),
            "recall.ring_group",
        ),
        (
            recall(RecallSettings {
                recall_to: RecallTo::RingGroupOnly,
                recall_number: Some("600".into()),
                ..base.clone()
            }),
            "recall.ring_group",
        ),
        (
            recall(RecallSettings {
                recall_to: RecallTo::Number,
                ring_group: Some("600".into()),
                ..base.clone()
            }),
            "recall.recall_number",
        ),
        // References: this tenant's, of the right kind.
        (
            recall(RecallSettings {
                ring_group: Some("101".into()),
                ..base.clone()
            }),
            "recall.ring_group",
        ),
        (
            recall(RecallSettings {
                ring_group: Some("700".into()),
                ..base.clone()
            }),
            "recall.ring_group",
        ),
        (
            recall(RecallSettings {
                recall_to: RecallTo::Number,
                recall_number: Some("200".into()),
                ..base.clone()
            }),
            "recall.recall_number",
        ),
        (
            recall(RecallSettings {
                final_destination: Some("999".into()),
                ..base.clone()
            }),
            "recall.final_destination",
        ),
    ];
    for (spec, field) in cases {
        let (f, m) = invalid_field(store.put_park_settings(&t, spec.clone()).await);
        assert_eq!(f, field, "{spec:?}: {m}");
        assert!(m.starts_with(field), "{m}");
    }
    let (_, m) = invalid_field(store.put_park_settings(&t, codes("*6", "*68", "*88")).await);
    assert!(m.contains("*6") && m.contains("park_code"), "{m}");
    // Nothing written by the refusals.
    assert_eq!(count(&store, "park_settings").await, 0);
    // Every mode with what it needs; unused fields may stay set.
    for (mode, number) in [
        (RecallTo::ParkerOnly, None),
        (RecallTo::ParkerThenRingGroup, None),
        (RecallTo::RingGroupOnly, Some("101")),
        (RecallTo::Number, Some("601")),
        (RecallTo::Number, Some("105")),
    ] {
        let r = RecallSettings {
            recall_to: mode,
            ring_group: Some("601".into()),
            recall_number: number.map(String::from),
            final_destination: Some("600".into()),
            display_prefix: String::new(),
            ..base.clone()
        };
        let s = store
            .put_park_settings(&t, recall(r.clone()))
            .await
            .unwrap();
        assert_eq!(s.recall, r);
    }
}

#[tokio::test]
async fn park_groups_round_trip_keep_member_order_and_survive_reopen() {
    let (store, dir) = open().await;
    let t = park_tenant(&store, "acme.test").await;
    let override_ = RecallSettings {
        recall_time_s: 30,
        recall_to: RecallTo::RingGroupOnly,
        ring_group: Some("600".into()),
        final_destination: Some("105".into()),
        display_prefix: "Park:".into(),
        ..Default::default()
    };
    let sales = store
        .create_park_group(
            &t,
            ParkGroupSpec {
                recall: Some(override_.clone()),
                ..group_spec("Sales", &["103", "101", "102"])
            },
        )
        .await
        .unwrap();
    assert_eq!(sales.members, ["103", "101", "102"]);
    assert_eq!(sales.recall.as_ref(), Some(&override_));
    assert_eq!(sales.id.len(), 32);
    let admin = store
        .create_park_group(&t, group_spec("admin", &[]))
        .await
        .unwrap();
    let names = |store: &Store| {
        store
            .directory()
            .park_groups(&t)
            .iter()
            .map(|g| g.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&store), ["admin", "Sales"]);
    assert_eq!(
        store.directory().park_group_of(&t, "101").unwrap().id,
        sales.id
    );
    assert!(store.directory().park_group_of(&t, "104").is_none());
    assert_eq!(*store.directory().park_group(&t, &sales.id).unwrap(), sales);
    assert!(store.directory().park_group("other", &sales.id).is_none());
    // Patch: members replaced as a whole, other fields kept; a change of
    // case only is the same name.
    let p = store
        .update_park_group(
            &t,
            &sales.id,
            ParkGroupPatch {
                members: Some(vec!["102".into(), "104".into()]),
                name: Some("SALES".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.members, ["102", "104"]);
    assert_eq!(p.name, "SALES");
    assert_eq!(p.recall.as_ref(), Some(&override_));
    assert_eq!(p.created_at, sales.created_at);
    assert!(store.directory().park_group_of(&t, "101").is_none());
    assert_eq!(
        store.directory().park_group_of(&t, "104").unwrap().id,
        sales.id
    );
    // Drop the override.
    let p = store
        .update_park_group(
            &t,
            &sales.id,
            ParkGroupPatch {
                recall: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.recall, None);
    assert_eq!(p.members, ["102", "104"]);
    // A freed extension may join another group.
    let admin = store
        .update_park_group(
            &t,
            &admin.id,
            ParkGroupPatch {
                members: Some(vec!["101".into()]),
                recall: Some(Some(RecallSettings::default())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    drop(store);
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(*again.directory().park_group(&t, &sales.id).unwrap(), p);
    assert_eq!(*again.directory().park_group(&t, &admin.id).unwrap(), admin);
    assert_eq!(
        again.directory().park_group_of(&t, "101").unwrap().id,
        admin.id
    );
    again.delete_park_group(&t, &admin.id).await.unwrap();
    assert!(again.directory().park_group(&t, &admin.id).is_none());
    assert!(again.directory().park_group_of(&t, "101").is_none());
    assert!(matches!(
        again.delete_park_group(&t, &admin.id).await,
        Err(StoreError::NotFound("park group"))
    ));
    assert_eq!(count(&again, "park_group_members").await, 2);
    // The freed extension can go elsewhere.
    again
        .create_park_group(&t, group_spec("Front desk", &["101"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn park_group_rules() {
    let (store, _dir) = open().await;
    let t = park_tenant(&store, "acme.test").await;
    let u = park_tenant(&store, "other.test").await;
    store
        .create_extension(&u, "200", "", "secret-xyz")
        .await
        .unwrap();
    let sales = store
        .create_park_group(&t, group_spec("Sales", &["101", "102"]))
        .await
        .unwrap();
    // Names are unique per tenant, ignoring case; other tenants may reuse them.
    for name in ["Sales", "sALES"] {
        assert!(matches!(
            store.create_park_group(&t, group_spec(name, &[])).await,
            Err(StoreError::Conflict("name"))
        ));
    }
    let theirs = store
        .create_park_group(&u, group_spec("sales", &["101"]))
        .await
        .unwrap();
    // An extension is in at most one group: 409 naming it and the group.
    match store
        .create_park_group(&t, group_spec("Support", &["103", "102"]))
        .await
    {
        Err(StoreError::Clash { field, message }) => {
            assert_eq!(field, "members");
            assert!(
                message.contains("102") && message.contains("Sales"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let support = store
        .create_park_group(&t, group_spec("Support", &["103"]))
        .await
        .unwrap();
    assert!(matches!(
        store
            .update_park_group(
                &t,
                &support.id,
                ParkGroupPatch {
                    members: Some(vec!["103".into(), "101".into()]),
                    ..Default::default()
                },
            )
            .await,
        Err(StoreError::Clash {
            field: "members",
            ..
        })
    ));
    assert!(matches!(
        store
            .update_park_group(
                &t,
                &support.id,
                ParkGroupPatch {
                    name: Some("sales".into()),
                    ..Default::default()
                },
            )
            .await,
        Err(StoreError::Conflict("name"))
    ));
    // Members: this tenant's extensions, no duplicates, at most 100.
    for (members, needle) in [(vec!["104", "200"], "200"), (vec!["104", "600"], "600")] {
        let (f, m) = invalid_field(store.create_park_group(&t, group_spec("X", &members)).await);
        assert_eq!(f, "members");
        assert!(m.contains(needle), "{m}");
    }
    let (f, _) = invalid_field(
        store
            .create_park_group(&t, group_spec("X", &["104", "104"]))
            .await,
    );
    assert_eq!(f, "members");
    let mut many = group_spec("X", &[]);
    many.members = (0..101).map(|i| format!("9{i}")).collect();
    assert_eq!(
        invalid_field(store.create_park_group(&t, many).await).0,
        "members"
    );
    for name in ["", &"x".repeat(65)] {
        assert_eq!(
            invalid_field(store.create_park_group(&t, group_spec(name, &[])).await).0,
            "name"
        );
    }
    // The override follows the settings' rules.
    let bad = ParkGroupSpec {
        recall: Some(RecallSettings {
            recall_to: RecallTo::RingGroupOnly,
            ..Default::default()
        }),
        ..group_spec("X", &["104"])
    };
    assert_eq!(
        invalid_field(store.create_park_group(&t, bad).await).0,
        "recall.ring_group"
    );
    let bad = ParkGroupPatch {
        recall: Some(Some(RecallSettings {
            max_recall_attempts: 0,
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_eq!(
        invalid_field(store.update_park_group(&t, &sales.id, bad).await).0,
        "recall.max_recall_attempts"
    );
    // Another tenant's group is not found.
    for r in [
        store
            .update_park_group(&t, &theirs.id, ParkGroupPatch::default())
            .await
            .map(|_| ()),
        store.delete_park_group(&t, &theirs.id).await,
    ] {
        assert!(
            matches!(r, Err(StoreError::NotFound("park group"))),
            "{r:?}"
        );
    }
    assert!(matches!(
        store.create_park_group("nope", group_spec("X", &[])).await,
        Err(StoreError::NotFound("tenant"))
    ));
    // Nothing half-written by the refusals.
    let groups: Vec<ParkGroup> = store
        .directory()
        .park_groups(&t)
        .iter()
        .map(|g| (**g).clone())
        .collect();
    assert_eq!(groups, [sales, support]);
    assert_eq!(count(&store, "park_group_members").await, 4);
}

#[tokio::test]
async fn deleting_extensions_ring_groups_and_tenants_cleans_park_config() {
    let (store, dir) = open().await;
    let t = park_tenant(&store, "acme.test").await;
    store
        .put_park_settings(
            &t,
            ParkSettingsSpec {
                recall: RecallSettings {
                    recall_to: RecallTo::Number,
                    recall_number: Some("102".into()),
                    ring_group: Some("600".into()),
                    final_destination: Some("102".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let to_group = |mode| RecallSettings {
        recall_to: mode,
        ring_group: Some("600".into()),
        recall_number: Some("601".into()),
        final_destination: Some("600".into()),
        ..Default::default()
    };
    let a = store
        .create_park_group(
            &t,
            ParkGroupSpec {
                recall: Some(to_group(RecallTo::ParkerThenRingGroup)),
                ..group_spec("A", &["101", "102", "103"])
            },
        )
        .await
        .unwrap();
    let b = store
        .create_park_group(
            &t,
            ParkGroupSpec {
                recall: Some(to_group(RecallTo::Number)),
                ..group_spec("B", &["104"])
            },
        )
        .await
        .unwrap();
    let untouched = store
        .create_park_group(&t, group_spec("C", &["105"]))
        .await
        .unwrap();
    // Extension 102: out of group A; settings lose the number, and NUMBER
    // without a number falls back to PARKER_ONLY.
    store.delete_extension(&t, "102").await.unwrap();
    let s = store.directory().park_settings(&t);
    assert_eq!(s.recall.recall_to, RecallTo::ParkerOnly);
    assert_eq!(s.recall.recall_number, None);
    assert_eq!(s.recall.final_destination, None);
    assert_eq!(s.recall.ring_group.as_deref(), Some("600"));
    let ga = store.directory().park_group(&t, &a.id).unwrap();
    assert_eq!(ga.members, ["101", "103"]);
    assert_eq!(ga.recall, a.recall);
    assert!(store.directory().park_group_of(&t, "102").is_none());
    // Ring group 600: cleared everywhere; a ring group mode without its
    // group falls back to PARKER_ONLY, NUMBER with its number stays.
    store.delete_ring_group(&t, "600").await.unwrap();
    let s = store.directory().park_settings(&t);
    assert_eq!(s.recall.ring_group, None);
    assert_eq!(s.recall.recall_to, RecallTo::ParkerOnly);
    let ra = store
        .directory()
        .park_group(&t, &a.id)
        .unwrap()
        .recall
        .clone()
        .unwrap();
    assert_eq!(
        (
            ra.recall_to,
            ra.ring_group,
            ra.recall_number.as_deref(),
            ra.final_destination
        ),
        (RecallTo::ParkerOnly, None, Some("601"), None)
    );
    let rb = store
        .directory()
        .park_group(&t, &b.id)
        .unwrap()
        .recall
        .clone()
        .unwrap();
    assert_eq!(
        (
            rb.recall_to,
            rb.ring_group,
            rb.recall_number.as_deref(),
            rb.final_destination
        ),
        (RecallTo::Number, None, Some("601"), None)
    );
    // Ring group 601: B's NUMBER loses its number.
    store.delete_ring_group(&t, "601").await.unwrap();
    let rb = store
        .directory()
        .park_group(&t, &b.id)
        .unwrap()
        .recall
        .clone()
        .unwrap();
    assert_eq!(
        (rb.recall_to, rb.recall_number),
        (RecallTo::ParkerOnly, None)
    );
    assert_eq!(
        *store.directory().park_group(&t, &untouched.id).unwrap(),
        untouched
    );
    // The database agrees with the directory.
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(
        again.directory().park_settings(&t),
        store.directory().park_settings(&t)
    );
    for g in store.directory().park_groups(&t) {
        assert_eq!(again.directory().park_group(&t, &g.id).unwrap(), g);
    }
    drop(again);
    // Deleting the tenant takes all of it along.
    store
        .append_park_events(&[event(&t, "e1", 1_000, "parked", "101")])
        .await
        .unwrap();
    store.delete_tenant(&t).await.unwrap();
    assert!(store.directory().park_groups(&t).is_empty());
    assert_eq!(store.directory().park_settings(&t).updated_at, 0);
    for table in [
        "park_settings",
        "park_groups",
        "park_group_members",
        "park_events",
    ] {
        assert_eq!(count(&store, table).await, 0, "{table}");
    }
    let again = Store::open(&url).await.unwrap();
    assert!(again.directory().park_groups(&t).is_empty());
}

fn event(tenant_id: &str, id: &str, at_ms: i64, kind: &str, extension: &str) -> ParkEventRecord {
    ParkEventRecord {
        id: id.into(),
        tenant_id: tenant_id.into(),
        at_ms,
        kind: kind.into(),
        park_id: Some(format!("p-{id}")),
        extension: extension.into(),
        call_id: format!("call-{id}"),
        parker: "101".into(),
        parked_number: "+4930123".into(),
        parked_name: "Zoë \"Z\"".into(),
        detail: String::new(),
    }
}

#[tokio::test]
async fn park_events_round_trip_filter_and_order() {
    let (store, dir) = open().await;
    let t = store.create_tenant("Acme", "acme.test").await.unwrap().id;
    let u = store.create_tenant("Other", "other.test").await.unwrap().id;
    let events = vec![
        event(&t, "a", 1_000, "parked", "103"),
        ParkEventRecord {
            detail: "104".into(),
            ..event(&t, "b", 2_000, "retrieved", "103")
        },
        ParkEventRecord {
            parker: "102".into(),
            park_id: None,
            detail: "no member available".into(),
            ..event(&t, "c", 3_000, "park_failed", "105")
        },
        // Same time as "c": the id orders them.
        ParkEventRecord {
            parker: "104".into(),
            ..event(&t, "d", 3_000, "parked", "101")
        },
        event(&u, "u1", 2_500, "parked", "103"),
        // A tenant that is gone (or never was): dropped, the rest stored.
        event("no-such-tenant", "x", 2_600, "parked", "103"),
    ];
    store.append_park_events(&events).await.unwrap();
    store.append_park_events(&[]).await.unwrap();
    let ids = |v: Vec<ParkEventRecord>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let get = |q: ParkEventQuery| {
        let store = store.clone();
        let t = t.clone();
        async move { ids(store.park_events(&t, &q).await.unwrap()) }
    };
    assert_eq!(get(ParkEventQuery::default()).await, ["d", "c", "b", "a"]);
    assert_eq!(
        store
            .park_events(&t, &ParkEventQuery::default())
            .await
            .unwrap()[1],
        events[2]
    );
    let ext = |e: &str| ParkEventQuery {
        extension: Some(e.into()),
        ..Default::default()
    };
    // Parked on, or parked by.
    assert_eq!(get(ext("103")).await, ["b", "a"]);
    assert_eq!(get(ext("101")).await, ["d", "b", "a"]);
    assert_eq!(get(ext("102")).await, ["c"]);
    assert!(get(ext("10")).await.is_empty());
    assert_eq!(
        get(ParkEventQuery {
            since_ms: Some(2_000),
            until_ms: Some(3_000),
            ..Default::default()
        })
        .await,
        ["b"]
    );
    assert_eq!(
        get(ParkEventQuery {
            kinds: vec!["parked".into(), "park_failed".into()],
            ..Default::default()
        })
        .await,
        ["d", "c", "a"]
    );
    assert_eq!(
        get(ParkEventQuery {
            kinds: vec!["parked".into()],
            extension: Some("101".into()),
            limit: 1,
            ..Default::default()
        })
        .await,
        ["d"]
    );
    assert_eq!(
        ids(store
            .park_events(&u, &ParkEventQuery::default())
            .await
            .unwrap()),
        ["u1"]
    );
    assert!(matches!(
        store
            .park_events("no-such-tenant", &ParkEventQuery::default())
            .await,
        Err(StoreError::NotFound("tenant"))
    ));
    assert_eq!(count(&store, "park_events").await, 5);
    // Idempotent by id: a retry with other content leaves the stored one.
    store
        .append_park_events(&[
            ParkEventRecord {
                kind: "ended".into(),
                ..events[0].clone()
            },
            event(&t, "e", 4_000, "ended", "103"),
            event(&t, "e", 5_000, "abandoned", "103"),
        ])
        .await
        .unwrap();
    assert_eq!(
        get(ParkEventQuery::default()).await,
        ["e", "d", "c", "b", "a"]
    );
    assert_eq!(
        store.park_events(&t, &ext("103")).await.unwrap()[0].kind,
        "ended"
    );
    // All or nothing across statements.
    sqlx::query(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON park_events WHEN NEW.detail = 'boom' \
         BEGIN SELECT RAISE(ABORT, 'boom'); END",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    let mut batch: Vec<ParkEventRecord> = (0..1100)
        .map(|i| event(&t, &format!("m{i:04}"), 10_000 + i, "parked", "101"))
        .collect();
    batch[1099].detail = "boom".into();
    assert!(store.append_park_events(&batch).await.is_err());
    assert_eq!(count(&store, "park_events").await, 6);
    batch[1099].detail = String::new();
    store.append_park_events(&batch).await.unwrap();
    // limit 0 means 100; any limit is capped to 1000.
    assert_eq!(get(ParkEventQuery::default()).await.len(), 100);
    let all = get(ParkEventQuery {
        limit: u32::MAX,
        ..Default::default()
    })
    .await;
    assert_eq!(
        (all.len(), all[0].as_str(), all[999].as_str()),
        (1000, "m1099", "m0100")
    );
    drop(store);
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(
        again
            .park_events(&u, &ParkEventQuery::default())
            .await
            .unwrap(),
        vec![events[4].clone()]
    );
}

// ---- phones ----

use crate::{Phone, PhoneKey, PhoneKeyKind, PhonePatch, PhoneSpec};

fn key(kind: PhoneKeyKind, target: Option<&str>) -> PhoneKey {
    PhoneKey {
        kind,
        target: target.map(str::to_string),
        label: None,
    }
}

fn phone_spec(mac: &str, extension: &str) -> PhoneSpec {
    PhoneSpec {
        mac: mac.into(),
        vendor: "snom".into(),
        model: "D785".into(),
        extension: Some(extension.into()),
        label: "Reception".into(),
        keys: vec![
            key(PhoneKeyKind::VisualPark, None),
            key(PhoneKeyKind::VisualGroupPark, None),
            key(PhoneKeyKind::Blf, Some("102")),
            PhoneKey {
                kind: PhoneKeyKind::SpeedDial,
                target: Some("+4930123456".into()),
                label: Some("Hotline \"24/7\"".into()),
            },
        ],
    }
}

#[tokio::test]
async fn phones_round_trip_keep_key_order_and_survive_reopen() {
    let (store, dir) = open().await;
    let t = park_tenant(&store, "acme.test").await;
    let (p, password) = store
        .create_phone(&t, phone_spec("000413a1b2c3", "101"))
        .await
        .unwrap();
    assert_eq!(password.len(), 24);
    assert_eq!(p.password_hash, crate::tokens::token_hash(&password));
    assert_eq!((p.config_version, p.provisioned_at), (1, None));
    assert_eq!(
        store.directory().phone_by_mac("000413a1b2c3").unwrap().id,
        p.id
    );
    let p2 = store
        .update_phone(
            &t,
            &p.id,
            PhonePatch {
                label: Some("Desk 2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((p2.config_version, p2.label.as_str()), (2, "Desk 2"));
    let p3 = store.reprovision_phone(&t, &p.id).await.unwrap();
    assert_eq!(p3.config_version, 3);
    store
        .phone_provisioned(&p.id, 1_700_000_000_000)
        .await
        .unwrap();
    let (p4, pw2) = store.reset_phone_password(&t, &p.id).await.unwrap();
    assert_ne!(pw2, password);
    assert_eq!(
        p4.config_version, 3,
        "a new password is not a config change"
    );
    drop(store);
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("orbit.db").display());
    let again = Store::open(&url).await.unwrap();
    let back: Phone = (*again.directory().phone(&t, &p.id).unwrap()).clone();
    assert_eq!(back.keys, phone_spec("x", "101").keys);
    assert_eq!(back.label, "Desk 2");
    assert_eq!(back.config_version, 3);
    assert_eq!(back.provisioned_at, Some(1_700_000_000_000));
    assert_eq!(back.password_hash, crate::tokens::token_hash(&pw2));
}

#[tokio::test]
async fn phone_rules_name_the_field_and_macs_are_global() {
    let (store, _dir) = open().await;
    let a = park_tenant(&store, "a.test").await;
    let b = park_tenant(&store, "b.test").await;
    store
        .create_phone(&a, phone_spec("000413a1b2c3", "101"))
        .await
        .unwrap();
    // One physical phone: the MAC is taken in every tenant.
    assert!(matches!(
        store
            .create_phone(&b, phone_spec("000413a1b2c3", "101"))
            .await,
        Err(StoreError::Conflict("mac"))
    ));
    let with = |f: &dyn Fn(&mut PhoneSpec)| {
        let mut s = phone_spec("000413a1b2c4", "101");
        f(&mut s);
        s
    };
    let cases: Vec<(PhoneSpec, &str)> = vec![
        (with(&|s| s.mac = "00:04:13:a1:b2:c4".into()), "mac"),
        (with(&|s| s.mac = "000413A1B2C4".into()), "mac"),
        (with(&|s| s.vendor = "polycom".into()), "vendor"),
        (with(&|s| s.model = "D 785".into()), "model"),
        (with(&|s| s.model = String::new()), "model"),
        (with(&|s| s.extension = Some("999".into())), "extension"),
        (with(&|s| s.label = "a\u{7}".into()), "label"),
        (
            with(&|s| s.keys = vec![key(PhoneKeyKind::Blf, None)]),
            "keys",
        ),
        (
            with(&|s| s.keys = vec![key(PhoneKeyKind::Blf, Some("999"))]),
            "keys",
        ),
        (
            with(&|s| {
                s.keys = vec![
                    key(PhoneKeyKind::Blf, Some("102")),
                    key(PhoneKeyKind::Blf, Some("102")),
                ]
            }),
            "keys",
        ),
        (
            with(&|s| s.keys = vec![key(PhoneKeyKind::VisualPark, Some("999"))]),
            "keys",
        ),
        (
            with(&|s| s.keys = vec![key(PhoneKeyKind::VisualGroupPark, Some("101"))]),
            "keys",
        ),
        (
            with(&|s| s.keys = vec![key(PhoneKeyKind::SpeedDial, None)]),
            "keys",
        ),
        (
            with(&|s| s.keys = vec![key(PhoneKeyKind::SpeedDial, Some("12a"))]),
            "keys",
        ),
        (
            with(&|s| s.keys = vec![key(PhoneKeyKind::SpeedDial, Some("1")); 121]),
            "keys",
        ),
    ];
    for (spec, field) in cases {
        let shown = format!("{spec:?}");
        assert_eq!(
            invalid_field(store.create_phone(&a, spec).await).0,
            field,
            "{shown}"
        );
    }
    // An extension of another tenant is no extension here.
    let c = store.create_tenant("c", "c.test").await.unwrap();
    store
        .create_extension(&c.id, "700", "", "secret-xyz")
        .await
        .unwrap();
    let mut s = phone_spec("000413a1b2c5", "101");
    s.extension = Some("700".into());
    assert_eq!(
        invalid_field(store.create_phone(&a, s).await).0,
        "extension"
    );
    // No extension at all is allowed (a phone waiting for its user).
    let mut s = phone_spec("000413a1b2c6", "101");
    s.extension = None;
    store.create_phone(&a, s).await.unwrap();
    // Another tenant's phone is not found by id.
    let p = store.directory().phone_by_mac("000413a1b2c3").unwrap();
    assert!(store.directory().phone(&b, &p.id).is_none());
    assert!(matches!(
        store.update_phone(&b, &p.id, PhonePatch::default()).await,
        Err(StoreError::NotFound("phone"))
    ));
    assert!(matches!(
        store.delete_phone(&b, &p.id).await,
        Err(StoreError::NotFound("phone"))
    ));
}

#[tokio::test]
async fn deleting_an_extension_leaves_its_phones_without_identity_and_tenant_takes_them() {
    let (store, _dir) = open().await;
    let t = park_tenant(&store, "acme.test").await;
    let (p, _) = store
        .create_phone(&t, phone_spec("000413a1b2c3", "101"))
        .await
        .unwrap();
    let (q, _) = store
        .create_phone(&t, phone_spec("000413a1b2c4", "103"))
        .await
        .unwrap();
    store.delete_extension(&t, "101").await.unwrap();
    let p2 = store.directory().phone(&t, &p.id).unwrap();
    assert_eq!(p2.extension, None);
    assert_eq!(p2.config_version, 2);
    store.delete_extension(&t, "102").await.unwrap();
    // The BLF key watching 102 is gone from both phones.
    for id in [&p.id, &q.id] {
        let ph = store.directory().phone(&t, id).unwrap();
        assert!(ph.keys.iter().all(|k| k.target.as_deref() != Some("102")));
        assert_eq!(ph.keys.len(), 3);
    }
    store.reload().await.unwrap();
    assert_eq!(store.directory().phone(&t, &p.id).unwrap().extension, None);
    assert_eq!(
        store
            .directory()
            .phone(&t, &q.id)
            .unwrap()
            .extension
            .as_deref(),
        Some("103")
    );
    store.delete_tenant(&t).await.unwrap();
    assert_eq!(count(&store, "phones").await, 0);
    assert!(store.directory().phone_by_mac("000413a1b2c4").is_none());
    // The MAC is free again.
    let u = park_tenant(&store, "u.test").await;
    store
        .create_phone(&u, phone_spec("000413a1b2c4", "101"))
        .await
        .unwrap();
}

#[test]
fn phone_keys_json() {
    use crate::phones::{decode_keys, encode_keys};
    let keys = vec![
        key(PhoneKeyKind::VisualPark, None),
        PhoneKey {
            kind: PhoneKeyKind::SpeedDial,
            target: Some("*88".into()),
            label: Some("q\"\\\n\u{1}é😀".into()),
        },
    ];
    let s = encode_keys(&keys);
    assert_eq!(decode_keys(&s).unwrap(), keys);
    assert_eq!(decode_keys("[]").unwrap(), vec![]);
    assert_eq!(
        decode_keys(" [ { \"label\" : null , \"type\" : \"blf\", \"target\": \"1\\u0030\\ud83d\\ude00\" } ] ")
            .unwrap(),
        vec![PhoneKey {
            kind: PhoneKeyKind::Blf,
            target: Some("10😀".into()),
            label: None
        }]
    );
    for bad in [
        "",
        "[",
        "[{}]",
        "[{\"type\":\"nope\"}]",
        "[{\"type\":\"blf\",\"x\":null}]",
        "[{\"type\":\"blf\"}]x",
        "[{\"type\":null}]",
        "[{\"type\":\"blf\",\"target\":nul}]",
    ] {
        assert!(decode_keys(bad).is_none(), "{bad}");
    }
    assert!(crate::normalize_mac("00:04:13:AB:CD:EF").as_deref() == Some("000413abcdef"));
    assert!(crate::normalize_mac("0004-13ab-cdef").is_some());
    assert!(crate::normalize_mac("000413abcde").is_none());
    assert!(crate::normalize_mac("000413abcdeg").is_none());
    assert!(
        crate::is_dial_string("+4930*1#")
            && !crate::is_dial_string("+")
            && !crate::is_dial_string("1 2")
    );
}
