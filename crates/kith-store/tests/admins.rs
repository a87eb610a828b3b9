//! Admins and admin-panel sessions, on both databases: sign-in by email and password,
//! sessions that expire (idle and absolute) and end, adding admins, changing a password.

use kith_store::{AdminError, NewOrg, SessionPolicy, Store};
use kith_testkit::{Backend, TestDb};

macro_rules! both_backends {
    ($(async fn $name:ident($store:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($store: &Store) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = TestDb::new(Backend::Sqlite).await;
                    let store = Store::open(&db.url).await.expect("open");
                    run(&store).await;
                    store.close().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let db = TestDb::new(Backend::Postgres).await;
                    let store = Store::open(&db.url).await.expect("open");
                    run(&store).await;
                    store.close().await;
                }
            }
        )*
    };
}

async fn org(store: &Store, email: &str) -> kith_store::Credentials {
    store
        .create_org(&NewOrg {
            name: "Acme".into(),
            admin_email: email.into(),
            website_name: "Shop".into(),
        })
        .await
        .expect("create org")
}

const HOUR: i64 = 3600 * 1000;

both_backends! {
    async fn the_printed_admin_signs_in_and_nothing_else_does(store) {
        let creds = org(store, "Ann@Acme.test").await;
        let ok = store
            .verify_admin_password(" ann@acme.TEST ", &creds.admin_password)
            .await
            .unwrap()
            .expect("email is case-insensitive and trimmed");
        assert_eq!(ok.org_id, creds.org_id);
        for (email, password) in [
            ("ann@acme.test", "wrong password"),
            ("nobody@acme.test", creds.admin_password.as_str()),
            ("", creds.admin_password.as_str()),
            ("ann@acme.test", ""),
        ] {
            assert!(
                store.verify_admin_password(email, password).await.unwrap().is_none(),
                "{email:?} / {password:?}"
            );
        }
    }

    async fn sessions_live_end_and_expire(store) {
        let creds = org(store, "ann@acme.test").await;
        let admin = store
            .verify_admin_password("ann@acme.test", &creds.admin_password)
            .await
            .unwrap()
            .unwrap();
        let policy = SessionPolicy::default();
        let new = store
            .create_admin_session(&admin.org_id, &admin.admin_id, policy)
            .await
            .unwrap();
        assert!(new.cookie.starts_with(&format!("ks_{}_", creds.org_id)));
        assert!(!format!("{new:?}").contains(&new.cookie), "Debug hides the cookie");
        let s = store.admin_session(&new.cookie, policy).await.unwrap().unwrap();
        assert_eq!((s.email.as_str(), s.org_name.as_str()), ("ann@acme.test", "Acme"));
        assert_eq!(s.csrf_token, new.session.csrf_token);
        assert!(s.csrf_token.len() >= 32);

        // Unknown, forged and other organizations' cookies sign nobody in.
        for forged in ["", "ks_", "garbage", &format!("ks_{}_00", creds.org_id), &new.cookie[..new.cookie.len() - 1]] {
            assert!(store.admin_session(forged, policy).await.unwrap().is_none(), "{forged}");
        }

        // Idle: used 11 hours later it lives (and is touched), 12 idle hours after that it is gone.
        let now = kith_store::now_ms();
        assert!(store.admin_session_at(&new.cookie, now + 11 * HOUR, policy).await.unwrap().is_some());
        assert!(store.admin_session_at(&new.cookie, now + 22 * HOUR, policy).await.unwrap().is_some(),
            "the 11-hour use moved last_seen_at");
        assert!(store.admin_session_at(&new.cookie, now + 35 * HOUR, policy).await.unwrap().is_none());
        assert!(store.admin_session(&new.cookie, policy).await.unwrap().is_none(), "deleted once expired");

        // Absolute: even a session in constant use ends after 7 days.
        let new = store.create_admin_session(&admin.org_id, &admin.admin_id, policy).await.unwrap();
        let mut t = now;
        while t < now + 7 * 24 * HOUR - HOUR {
            t += 10 * HOUR;
            let alive = store.admin_session_at(&new.cookie, t, policy).await.unwrap().is_some();
            assert_eq!(alive, t < now + 7 * 24 * HOUR, "at +{} h", (t - now) / HOUR);
        }
        let t = now + 7 * 24 * HOUR + 1000;
        assert!(store.admin_session_at(&new.cookie, t, policy).await.unwrap().is_none());

        // Sign-out.
        let new = store.create_admin_session(&admin.org_id, &admin.admin_id, policy).await.unwrap();
        store.end_admin_session(&new.cookie).await.unwrap();
        assert!(store.admin_session(&new.cookie, policy).await.unwrap().is_none());
        store.end_admin_session("ks_nobody_00").await.unwrap();
    }

    async fn admins_are_added_once_per_organization(store) {
        let acme = org(store, "ann@acme.test").await;
        let other = org(store, "ann@acme.test").await;
        store.org(&acme.org_id).add_admin("Bob@Acme.test", "correct horse").await.unwrap();
        assert!(matches!(
            store.org(&acme.org_id).add_admin("bob@acme.TEST", "another one").await,
            Err(AdminError::EmailTaken)
        ));
        // The same email may be an admin of another organization.
        store.org(&other.org_id).add_admin("bob@acme.test", "other password").await.unwrap();
        match store.org(&acme.org_id).add_admin("carol@acme.test", "short").await {
            Err(AdminError::Invalid(v)) => assert_eq!(v.field, "password"),
            other => panic!("{other:?}"),
        }
        match store.org(&acme.org_id).add_admin("not an email", "long enough").await {
            Err(AdminError::Invalid(v)) => assert_eq!(v.field, "email"),
            other => panic!("{other:?}"),
        }
        let bob = store.verify_admin_password("bob@acme.test", "correct horse").await.unwrap().unwrap();
        assert_eq!(bob.org_id, acme.org_id);
        let bob2 = store.verify_admin_password("bob@acme.test", "other password").await.unwrap().unwrap();
        assert_eq!(bob2.org_id, other.org_id);
    }

    async fn changing_a_password_needs_the_current_one_and_ends_other_sessions(store) {
        let creds = org(store, "ann@acme.test").await;
        let policy = SessionPolicy::default();
        let admin = store.verify_admin_password("ann@acme.test", &creds.admin_password).await.unwrap().unwrap();
        let here = store.create_admin_session(&admin.org_id, &admin.admin_id, policy).await.unwrap();
        let elsewhere = store.create_admin_session(&admin.org_id, &admin.admin_id, policy).await.unwrap();
        let sid = here.session.session_id.clone();
        assert!(matches!(
            store.org(&admin.org_id).change_admin_password(&admin.admin_id, &sid, "wrong", "new password 1").await,
            Err(AdminError::WrongPassword)
        ));
        assert!(matches!(
            store.org(&admin.org_id).change_admin_password(&admin.admin_id, &sid, &creds.admin_password, "short").await,
            Err(AdminError::Invalid(_))
        ));
        assert!(store.admin_session(&elsewhere.cookie, policy).await.unwrap().is_some(), "failed changes end nothing");
        store
            .org(&admin.org_id).change_admin_password(&admin.admin_id, &sid, &creds.admin_password, "new password 1")
            .await
            .unwrap();
        assert!(store.verify_admin_password("ann@acme.test", &creds.admin_password).await.unwrap().is_none());
        assert!(store.verify_admin_password("ann@acme.test", "new password 1").await.unwrap().is_some());
        assert!(store.admin_session(&here.cookie, policy).await.unwrap().is_some());
        assert!(store.admin_session(&elsewhere.cookie, policy).await.unwrap().is_none());
    }
}
