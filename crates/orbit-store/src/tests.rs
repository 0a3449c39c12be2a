use crate::{Binding, BindingOp, Store, StoreError, StoreEvent};

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
