//! SPEC 1 "Contact creation and matching", one module per numbered rule, through the real
//! HTTP API on a random port, on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends! {
    async fn rule1_no_contact_before_the_first_message(app) {
        let v = app.visitor().await;
        let (s, out) = v.identify(json!({"email": "ada@example.com", "name": "Ada"})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(out, json!({"contact_id": null, "status": null}));
        assert!(app.all_contacts().await.is_empty(), "identify alone created a contact");

        // The remembered identity is applied when the visitor writes.
        let (_, contact_id) = v.say("Hi, I have a question").await;
        let c = app.contact(&contact_id).await;
        assert_eq!(c["email"], "ada@example.com");
        assert_eq!(c["name"], "Ada");
        assert_eq!(c["status"], "lead");
        assert_eq!(c["message_count"], 1);
        assert_eq!(c["conversation_count"], 1);
        assert_eq!(app.timeline_kinds(&contact_id).await, ["conversation_started", "created"]);
    }

    async fn rule1_identify_matching_an_existing_contact_links_at_once(app) {
        let first = app.visitor().await;
        first.identify_verified("u-42", json!({})).await;
        let (_, contact_id) = first.say("hello").await;

        let second = app.visitor().await;
        let out = second.identify_verified("u-42", json!({})).await;
        assert_eq!(out, json!({"contact_id": contact_id, "status": "customer"}));
        let (_, again) = second.say("from my phone").await;
        assert_eq!(again, contact_id);
        assert_eq!(app.all_contacts().await.len(), 1);
    }

    async fn rule2_user_id_then_email_then_visitor(app) {
        let a = app.visitor().await;
        a.identify_verified("u-1", json!({})).await;
        let (_, by_user) = a.say("a").await;
        let b = app.visitor().await;
        b.identify(json!({"email": "bea@example.com"})).await;
        let (_, by_email) = b.say("b").await;

        // user_id and email point at different contacts: the user id wins.
        let c = app.visitor().await;
        let out = c.identify_verified("u-1", json!({"email": "bea@example.com"})).await;
        assert_eq!(out["contact_id"], by_user);
        // Email alone finds its holder (spelled differently).
        let d = app.visitor().await;
        let (_, out) = d.identify(json!({"email": "  BEA@Example.com "})).await;
        assert_eq!(out["contact_id"], by_email);
        // Nothing given: the visitor's own contact.
        let (_, own) = a.say("again").await;
        assert_eq!(own, by_user);
    }

    async fn rule3_merge_moves_conversations_tags_stats_and_timeline(app) {
        // The holder: a customer who wrote once from another browser.
        let known = app.visitor().await;
        known.identify_verified("u-7", json!({"name": "Ada Lovelace", "metadata": {"plan": "pro"}})).await;
        let (holder_conv, holder) = known.say("first question").await;
        app.patch(&holder, json!({"tags": ["VIP"]})).await;

        // An anonymous visitor writes twice in one conversation and gets tagged.
        let anon = app.visitor().await;
        let (anon_conv, absorbed) = anon.say("hello?").await;
        assert_eq!(anon.say_in(&anon_conv, "anyone there?").await.0, StatusCode::CREATED);
        let (s, _) = app.patch(&absorbed, json!({"tags": ["vip", "trial"], "phone": "+14155550100", "metadata": {"plan": "free", "ref": "ad"}})).await;
        assert_eq!(s, StatusCode::OK);
        let absorbed_before = app.contact(&absorbed).await;
        let holder_before = app.contact(&holder).await;

        // It logs in: its contact merges into the user id's holder.
        let out = anon.identify_verified("u-7", json!({})).await;
        assert_eq!(out["contact_id"], holder);

        let c = app.contact(&holder).await;
        assert_eq!(c["conversation_count"], 2);
        assert_eq!(c["message_count"], 3);
        assert_eq!(c["tags"], json!(["VIP", "trial"]));
        assert_eq!(c["name"], "Ada Lovelace");
        assert_eq!(c["phone"], "+14155550100", "absent field filled from the absorbed contact");
        assert_eq!(c["metadata"], json!({"plan": "pro", "ref": "ad"}), "holder's values win");
        let earliest = std::cmp::min(
            holder_before["created_at"].as_str().unwrap().to_string(),
            absorbed_before["created_at"].as_str().unwrap().to_string(),
        );
        assert_eq!(c["created_at"].as_str().unwrap(), earliest);

        // The absorbed id answers 404 merged, naming the holder.
        let (s, err) = app.get(&format!("/api/v1/contacts/{absorbed}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(err["error"]["code"], "merged");
        assert_eq!(err["error"]["merged_into"], holder);

        // Conversations moved, across the organization.
        let (_, convs) = app.get(&format!("/api/v1/contacts/{holder}/conversations")).await;
        let mut ids: Vec<_> = convs["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        let mut want = vec![holder_conv.clone(), anon_conv.clone()];
        want.sort();
        assert_eq!(ids, want);

        // The timeline moved too, with a merged entry naming the absorbed contact and key.
        let (_, tl) = app.get(&format!("/api/v1/contacts/{holder}/timeline?limit=200")).await;
        let items = tl["items"].as_array().unwrap();
        let merged = items.iter().find(|e| e["kind"] == "merged").expect("merged entry");
        assert_eq!(merged["data"]["absorbed_contact_id"], absorbed);
        assert_eq!(merged["data"]["by"], "user_id");
        assert_eq!(merged["actor"], "visitor");
        assert_eq!(items.iter().filter(|e| e["kind"] == "created").count(), 2);
        assert_eq!(items.iter().filter(|e| e["kind"] == "conversation_started").count(), 2);

        // The merged visitor now writes to the holder, and sees both conversations (verified).
        let (_, now) = anon.say("I logged in").await;
        assert_eq!(now, holder);
        assert_eq!(anon.conversation_ids().await.len(), 3);
        assert_eq!(app.all_contacts().await.len(), 1);
        app.assert_builtin_counts().await;
    }

    async fn rule3_no_holder_updates_the_visitors_contact_in_place(app) {
        let v = app.visitor().await;
        let (_, id) = v.say("hi").await;
        let (_, out) = v.identify(json!({"email": "new@example.com", "company": "Acme"})).await;
        assert_eq!(out["contact_id"], id);
        let c = app.contact(&id).await;
        assert_eq!(c["email"], "new@example.com");
        assert_eq!(c["company"], "Acme");
        assert_eq!(app.all_contacts().await.len(), 1);
        let tl = app.timeline_kinds(&id).await;
        assert_eq!(tl[0], "fields_updated");
    }

    async fn rule4_two_user_ids_are_never_merged_the_visitor_switches(app) {
        let shared = app.visitor().await;
        shared.identify_verified("alice", json!({"email": "alice@example.com"})).await;
        let (_, alice) = shared.say("alice here").await;
        let bob_browser = app.visitor().await;
        bob_browser.identify_verified("bob", json!({})).await;
        let (_, bob) = bob_browser.say("bob here").await;
        let alice_before = app.contact(&alice).await;
        let bob_before = app.contact(&bob).await;

        // Alice logs out, Bob logs in on the shared browser.
        let out = shared.identify_verified("bob", json!({})).await;
        assert_eq!(out["contact_id"], bob);
        let (_, now) = shared.say("bob on the shared computer").await;
        assert_eq!(now, bob);
        let a = app.contact(&alice).await;
        assert_eq!(a["user_id"], "alice");
        assert_eq!(a["message_count"], alice_before["message_count"]);
        assert_eq!(app.contact(&bob).await["conversation_count"], bob_before["conversation_count"].as_i64().unwrap() + 1);
        assert_eq!(app.all_contacts().await.len(), 2);

        // A user id nobody holds yet: the visitor leaves Bob; the next message creates Carol.
        let out = shared.identify_verified("carol", json!({})).await;
        assert_eq!(out["contact_id"], serde_json::Value::Null);
        let (_, carol) = shared.say("carol").await;
        assert_ne!(carol, bob);
        assert_eq!(app.contact(&carol).await["user_id"], "carol");
    }

    async fn rule4_an_email_held_by_another_user_id_stays_where_it_is(app) {
        let a = app.visitor().await;
        a.identify_verified("alice", json!({"email": "shared@example.com"})).await;
        let (_, alice) = a.say("a").await;
        let b = app.visitor().await;
        let out = b.identify_verified("bob", json!({"email": "shared@example.com", "name": "Bob"})).await;
        assert_eq!(out["contact_id"], serde_json::Value::Null);
        let (_, bob) = b.say("b").await;
        let bob_c = app.contact(&bob).await;
        assert_eq!(bob_c["email"], serde_json::Value::Null, "the email stayed with alice");
        assert_eq!(bob_c["name"], "Bob", "the rest of the identify applied");
        assert_eq!(app.contact(&alice).await["email"], "shared@example.com");
    }

    async fn rule5_lead_becomes_customer_when_a_user_id_is_set(app) {
        let v = app.visitor().await;
        let (_, id) = v.say("anonymous question").await;
        assert_eq!(app.contact(&id).await["status"], "lead");
        let out = v.identify_verified("u-9", json!({})).await;
        assert_eq!(out["status"], "customer");
        assert_eq!(app.contact(&id).await["status"], "customer");
        let kinds = app.timeline_kinds(&id).await;
        assert_eq!(kinds.iter().filter(|k| *k == "promoted").count(), 1);

        // Created with a user id: only `created`, with its status.
        let w = app.visitor().await;
        w.identify_verified("u-10", json!({})).await;
        let (_, born) = w.say("hello").await;
        let (_, tl) = app.get(&format!("/api/v1/contacts/{born}/timeline")).await;
        let kinds: Vec<_> = tl["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["conversation_started", "created"]);
        assert_eq!(tl["items"][1]["data"]["status"], "customer");

        // Admins may remove the user id: a lead again. Setting one promotes (actor api).
        let (s, c) = app.patch(&born, json!({"user_id": null})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(c["status"], "lead");
        let (_, c) = app.patch(&born, json!({"user_id": "u-11"})).await;
        assert_eq!(c["status"], "customer");
        let (_, tl) = app.get(&format!("/api/v1/contacts/{born}/timeline")).await;
        assert_eq!(tl["items"][0]["kind"], "promoted");
        assert_eq!(tl["items"][0]["actor"], "api");
        app.assert_builtin_counts().await;
    }

    async fn rule6_a_user_id_without_a_valid_hash_is_rejected_and_changes_nothing(app) {
        let v = app.visitor().await;
        let (_, id) = v.say("hi").await;
        let before = app.contact(&id).await;
        let tl_before = app.timeline_kinds(&id).await;
        for body in [
            json!({"user_id": "u-1", "name": "Mallory"}),
            json!({"user_id": "u-1", "user_hash": "", "email": "m@example.com"}),
            json!({"user_id": "u-1", "user_hash": app.user_hash("u-2")}),
        ] {
            let (s, err) = v.identify(body).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED);
            assert_eq!(err["error"]["code"], "identity_unverified");
        }
        assert_eq!(app.contact(&id).await, before);
        assert_eq!(app.timeline_kinds(&id).await, tl_before);
    }

    async fn rule6_an_unverified_email_claim_cannot_read_the_other_visitors_conversations(app) {
        // The real owner, verified, with a private conversation.
        let owner = app.visitor().await;
        owner.identify_verified("owner", json!({"email": "owner@example.com", "name": "Owner"})).await;
        let (private_conv, owner_contact) = owner.say("my invoice number is 1234").await;

        // An attacker claims the owner's email without a hash.
        let attacker = app.visitor().await;
        let (s, out) = attacker.identify(json!({"email": "owner@example.com", "name": "Mallory"})).await;
        assert_eq!(s, StatusCode::OK);
        let (attacker_conv, _) = attacker.say("hello").await;
        assert!(out["contact_id"].is_null() || out["contact_id"] == owner_contact);

        // It sees only the conversation it started...
        assert_eq!(attacker.conversation_ids().await, vec![attacker_conv.clone()]);
        // ...cannot read, write to or escalate the owner's.
        let (s, _) = attacker.call(Method::GET, &format!("/conversations/{private_conv}/messages"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(attacker.say_in(&private_conv, "let me in").await.0, StatusCode::NOT_FOUND);
        let (s, _) = attacker.call(Method::POST, &format!("/conversations/{private_conv}/escalate"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // ...and changed no stored value.
        let c = app.contact(&owner_contact).await;
        assert_eq!(c["name"], "Owner");
        // No widget answer shows the stored profile.
        let (_, convs) = attacker.call(Method::GET, "/conversations", None).await;
        let text = convs.to_string();
        assert!(!text.contains("Owner") && !text.contains("owner@example.com"), "{text}");
    }

    async fn rule6_unverified_identify_only_fills_absent_fields(app) {
        let owner = app.visitor().await;
        owner.identify_verified("u-1", json!({"email": "ada@example.com", "name": "Ada", "metadata": {"plan": "pro"}})).await;
        let (_, id) = owner.say("hi").await;
        let other = app.visitor().await;
        other.identify(json!({"email": "ada@example.com", "name": "Mallory", "phone": "+442071838750", "metadata": {"plan": "free", "seats": 3}})).await;
        other.say("hello").await;
        let c = app.contact(&id).await;
        assert_eq!(c["name"], "Ada");
        assert_eq!(c["phone"], "+442071838750");
        // Nor adds metadata keys to a contact that is not the visitor's own: they would fill the
        // 100-key quota the app's verified writes need (issue 14, hole 8).
        assert_eq!(c["metadata"], json!({"plan": "pro"}));
    }

    async fn rule6_a_verified_visitor_sees_all_of_its_contacts_conversations_on_the_website(app) {
        let laptop = app.visitor().await;
        laptop.identify_verified("u-5", json!({})).await;
        let (c1, _) = laptop.say("from the laptop").await;
        let phone = app.visitor().await;
        let (c2, _) = phone.say("from the phone, before logging in").await;
        // Before verifying, the phone sees only its own conversation.
        assert_eq!(phone.conversation_ids().await, vec![c2.clone()]);
        phone.identify_verified("u-5", json!({})).await;
        let mut want = vec![c1.clone(), c2.clone()];
        want.sort();
        assert_eq!(phone.conversation_ids().await, want);
        assert_eq!(laptop.conversation_ids().await, want);
        let (s, msgs) = phone.call(Method::GET, &format!("/conversations/{c1}/messages"), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(msgs["items"][0]["body"], "from the laptop");
    }

    async fn rule6_conversations_absorbed_through_an_unverified_claim_stay_private(app) {
        // An attacker plants a contact with the victim's email, then verifies its own user id
        // on it: the victim's conversation, which reached that contact through the victim's
        // own unverified email, must stay invisible to the attacker.
        let attacker = app.visitor().await;
        attacker.identify(json!({"email": "victim@example.com"})).await;
        attacker.say("planting").await;
        let victim = app.visitor().await;
        victim.identify(json!({"email": "victim@example.com"})).await;
        let (victim_conv, _) = victim.say("my password reset code is 999").await;
        attacker.identify_verified("attacker", json!({})).await;
        let seen = attacker.conversation_ids().await;
        assert!(!seen.contains(&victim_conv), "attacker sees the victim's conversation");
        let (s, _) = attacker.call(Method::GET, &format!("/conversations/{victim_conv}/messages"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(victim.conversation_ids().await, vec![victim_conv]);
    }

    async fn rule6_an_unverified_email_never_switches_a_verified_visitor(app) {
        let other = app.visitor().await;
        other.identify(json!({"email": "other@example.com"})).await;
        let (other_conv, other_contact) = other.say("other").await;
        let v = app.visitor().await;
        let h = app.user_hash("me@example.com");
        v.identify(json!({"email": "me@example.com", "user_hash": h})).await;
        let (_, mine) = v.say("mine").await;
        let (_, out) = v.identify(json!({"email": "other@example.com"})).await;
        assert_eq!(out["contact_id"], mine);
        assert!(!v.conversation_ids().await.contains(&other_conv));
        assert_eq!(app.contact(&other_contact).await["email"], "other@example.com");
        assert_eq!(app.contact(&mine).await["email"], "me@example.com");
    }

    async fn rule7_user_id_holder_survives_and_keeps_unverified_email_holders_apart(app) {
        let a = app.visitor().await;
        a.identify_verified("u-1", json!({})).await;
        let (_, holder) = a.say("a").await;
        let b = app.visitor().await;
        b.identify(json!({"email": "e@example.com"})).await;
        let (_, email_holder) = b.say("b").await;
        // Verified user id, unverified email (the hash covers only the user id).
        let c = app.visitor().await;
        let out = c.identify_verified("u-1", json!({"email": "e@example.com"})).await;
        assert_eq!(out["contact_id"], holder);
        assert_eq!(app.contact(&email_holder).await["email"], "e@example.com");
        assert_eq!(app.contact(&holder).await["email"], serde_json::Value::Null);
    }

    async fn rule7_a_verified_email_holder_without_user_id_merges_into_the_user_id_holder(app) {
        let site = app.unverified_site().await;
        let a = site.visitor().await;
        a.identify(json!({"user_id": "u-1"})).await;
        let (_, holder) = a.say("a").await;
        let b = site.visitor().await;
        b.identify(json!({"email": "e@example.com", "name": "From email"})).await;
        let (_, email_holder) = b.say("b").await;
        let c = site.visitor().await;
        let (s, out) = c.identify(json!({"user_id": "u-1", "email": "e@example.com"})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(out["contact_id"], holder);
        let h = app.contact(&holder).await;
        assert_eq!(h["email"], "e@example.com");
        assert_eq!(h["name"], "From email");
        assert_eq!(h["message_count"], 2);
        let (s, err) = app.get(&format!("/api/v1/contacts/{email_holder}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(err["error"]["merged_into"], holder);

        // An email holder with its own user id is never merged.
        let d = site.visitor().await;
        d.identify(json!({"user_id": "u-2", "email": "two@example.com"})).await;
        let (_, two) = d.say("d").await;
        let (_, out) = c.identify(json!({"user_id": "u-1", "email": "two@example.com"})).await;
        assert_eq!(out["contact_id"], holder);
        assert_eq!(app.contact(&two).await["email"], "two@example.com");
        app.assert_builtin_counts().await;
    }

    async fn rule8_admin_edits_never_merge(app) {
        let a = app.visitor().await;
        a.identify_verified("u-1", json!({"email": "a@example.com"})).await;
        let (_, ca) = a.say("a").await;
        let b = app.visitor().await;
        let (_, cb) = b.say("b").await;
        let before = app.contact(&cb).await;
        let (s, err) = app.patch(&cb, json!({"email": "A@example.com", "name": "B"})).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(err["error"]["code"], "conflict");
        assert_eq!(err["error"]["field"], "email");
        assert_eq!(err["error"]["contact_id"], ca);
        let (s, err) = app.patch(&cb, json!({"user_id": "u-1"})).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(err["error"]["field"], "user_id");
        assert_eq!(app.contact(&cb).await, before, "nothing changed");
        assert_eq!(app.all_contacts().await.len(), 2);
    }

    async fn rule9_concurrent_first_messages_end_in_one_contact(app) {
        const N: usize = 50;
        let mut visitors = Vec::new();
        for _ in 0..N {
            visitors.push(app.visitor().await);
        }
        // 50 new visitors with the same email, each identify then first message, all at once.
        let tasks: Vec<_> = visitors.iter().cloned().map(|v| tokio::spawn(async move {
            let (s, _) = v.identify(json!({"email": "race@example.com"})).await;
            assert_eq!(s, StatusCode::OK);
            v.say("first!").await.1
        })).collect();
        let mut ids = std::collections::HashSet::new();
        for t in tasks { ids.insert(t.await.unwrap()); }
        assert_eq!(ids.len(), 1, "one contact for one email");
        let id = ids.into_iter().next().unwrap();
        let c = app.contact(&id).await;
        assert_eq!(c["message_count"], N);
        assert_eq!(c["conversation_count"], N);

        // And 50 with the same verified user id.
        let mut visitors = Vec::new();
        for _ in 0..N {
            visitors.push(app.visitor().await);
        }
        let tasks: Vec<_> = visitors.iter().cloned().map(|v| tokio::spawn(async move {
            v.identify_verified("racer", json!({})).await;
            v.say("first!").await.1
        })).collect();
        let mut ids = std::collections::HashSet::new();
        for t in tasks { ids.insert(t.await.unwrap()); }
        assert_eq!(ids.len(), 1, "one contact for one user id");
        let id = ids.into_iter().next().unwrap();
        let c = app.contact(&id).await;
        assert_eq!(c["message_count"], N);
        assert_eq!(c["conversation_count"], N);
        assert_eq!(app.all_contacts().await.len(), 2);
        let kinds = app.timeline_kinds(&id).await;
        assert_eq!(kinds.iter().filter(|k| *k == "created").count(), 1);
        app.assert_builtin_counts().await;
    }

    async fn rule6_following_an_unverified_email_then_verifying_takes_over_nothing(app) {
        // The victim: a customer with a verified conversation.
        let victim = app.visitor().await;
        victim.identify_verified("victim", json!({"email": "victim@example.com", "name": "Victim"})).await;
        let (private, victim_contact) = victim.say("my address is 1 Main St").await;
        let before = app.contact(&victim_contact).await;

        // The attacker follows the victim's email without proof, then verifies its own email
        // (a hash the site hands out for the attacker's own account)...
        let attacker = app.visitor().await;
        attacker.identify(json!({"email": "victim@example.com"})).await;
        let h = app.user_hash("att@evil.example");
        let (s, out) = attacker.identify(json!({"email": "att@evil.example", "user_hash": h, "name": "Mallory"})).await;
        assert_eq!(s, StatusCode::OK);
        assert_ne!(out["contact_id"], victim_contact);
        // ...which leaves the victim's contact as it was, and its conversations out of reach.
        let after = app.contact(&victim_contact).await;
        assert_eq!(after["email"], before["email"]);
        assert_eq!(after["name"], before["name"]);
        assert!(!attacker.conversation_ids().await.contains(&private));
        let (s, _) = attacker.call(Method::GET, &format!("/conversations/{private}/messages"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, mine) = attacker.say("hello").await;
        assert_ne!(mine, victim_contact);

        // Same with the attacker's own verified user id, against an anonymous lead.
        let lead = app.visitor().await;
        lead.identify(json!({"email": "lead@example.com"})).await;
        let (_, lead_contact) = lead.say("pricing?").await;
        let other = app.visitor().await;
        other.identify(json!({"email": "lead@example.com"})).await;
        other.identify_verified("att-2", json!({})).await;
        let c = app.contact(&lead_contact).await;
        assert_eq!(c["user_id"], serde_json::Value::Null, "the lead was not taken over");
        assert_eq!(c["status"], "lead");
        app.assert_builtin_counts().await;
    }

    async fn rule4_after_a_switch_the_previous_persons_conversations_stay_theirs(app) {
        let shared = app.visitor().await;
        shared.identify_verified("alice", json!({})).await;
        let (alice_conv, alice) = shared.say("alice's question").await;
        let alice_phone = app.visitor().await;
        alice_phone.identify_verified("alice", json!({})).await;
        // Bob logs in on the shared browser.
        shared.identify_verified("bob", json!({})).await;
        assert!(!shared.conversation_ids().await.contains(&alice_conv), "bob sees alice's chat");
        assert_eq!(shared.say_in(&alice_conv, "bob writing into alice's chat").await.0, StatusCode::NOT_FOUND);
        // Alice's other browser still sees it.
        assert!(alice_phone.conversation_ids().await.contains(&alice_conv));
        assert_eq!(app.contact(&alice).await["message_count"], 1);
    }

    async fn rule4_a_remembered_identity_does_not_carry_over_to_another_user(app) {
        let shared = app.visitor().await;
        shared.identify_verified("alice", json!({"name": "Alice", "email": "alice@example.com"})).await;
        shared.identify_verified("bob", json!({})).await;
        let (_, bob) = shared.say("hi").await;
        let c = app.contact(&bob).await;
        assert_eq!(c["user_id"], "bob");
        assert_eq!(c["name"], serde_json::Value::Null);
        assert_eq!(c["email"], serde_json::Value::Null);
    }
}
