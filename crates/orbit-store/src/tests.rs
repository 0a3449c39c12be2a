use crate::{
    Binding, BindingOp, RingGroup, RingGroupPatch, RingGroupSpec, RingStrategy, Store, StoreError,
    StoreEvent,
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
