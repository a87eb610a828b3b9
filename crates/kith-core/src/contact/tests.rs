use super::*;
use crate::limits::*;
use crate::validate::ValidationError;
use serde_json::json;
use serde_json::Value;

#[test]
fn email_is_trimmed_and_keyed_lower_case() {
    let e = Email::parse("email", "  Ada@Example.COM ")
        .unwrap()
        .unwrap();
    assert_eq!(e.as_str(), "Ada@Example.COM");
    assert_eq!(e.key(), "ada@example.com");
    assert_eq!(Email::parse("email", "   ").unwrap(), None);
    for bad in [
        "ada",
        "ada@",
        "@x.io",
        "a b@x.io",
        "ada@x",
        "ada@x..io",
        "a@-x.io",
    ] {
        assert!(Email::parse("email", bad).is_err(), "{bad} accepted");
    }
    let long = format!("{}@example.com", "a".repeat(250));
    assert_eq!(Email::parse("email", &long).unwrap_err().field, "email");
}

#[test]
fn phone_must_be_e164() {
    assert_eq!(
        Phone::parse("phone", "+1 (415) 555-0100")
            .unwrap()
            .unwrap()
            .as_str(),
        "+14155550100"
    );
    for bad in ["4155550100", "+0123", "+1", "+1234567890123456", "+1abc"] {
        assert!(Phone::parse("phone", bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn tags_keep_first_spelling_and_are_unique_ignoring_case() {
    let t = Tags::parse(
        "tags",
        &json!([" Enterprise", "trial", "enterprise ", "TRIAL"]),
    )
    .unwrap();
    assert_eq!(t.as_slice(), ["Enterprise", "trial"]);
    assert!(Tags::parse("tags", &json!(["", "x"])).is_err());
    assert!(Tags::parse("tags", &json!(["x".repeat(65)])).is_err());
    let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    assert!(Tags::parse("tags", &json!(many)).is_err());
}

#[test]
fn tags_parse_in_linear_time_and_stop_at_the_limit() {
    // 200 k spellings of one tag (about 1 MiB of JSON) are one tag.
    let dupes: Vec<&str> = (0..200_000)
        .map(|i| if i % 2 == 0 { "Same" } else { "SAME" })
        .collect();
    assert_eq!(
        Tags::parse("tags", &json!(dupes)).unwrap().as_slice(),
        ["Same"]
    );
    // The 101st distinct tag is refused at once: the item after it (not a string) would
    // give another error if parsing went on.
    let mut items: Vec<Value> = (0..101).map(|i| json!(format!("t{i}"))).collect();
    items.push(json!(42));
    let e = Tags::parse("tags", &Value::Array(items)).unwrap_err();
    assert!(e.message.contains("at most 100"), "{e:?}");
}

fn meta(n: usize, prefix: &str) -> MetadataPatch {
    (0..n)
        .map(|i| (format!("{prefix}{i}"), Some(json!(i))))
        .collect()
}

fn write_meta(
    p: &mut Profile,
    keys: NewKeys,
    m: &MetadataPatch,
) -> Result<Changes, ValidationError> {
    let mode = match keys {
        NewKeys::RefuseOverLimit => WriteMode::Overwrite,
        _ => WriteMode::FillAbsent,
    };
    p.write_identity(mode, keys, &None, (&None, false), &None, &None, &None, m)
}

#[test]
fn new_metadata_keys_follow_who_writes() {
    // An unverified claim on somebody else's contact adds no keys (and fills no quota).
    let mut p = Profile::default();
    write_meta(&mut p, NewKeys::None, &meta(100, "junk")).unwrap();
    assert!(p.metadata.is_empty());
    // On the visitor's own contact it adds keys while there is room, silently.
    write_meta(&mut p, NewKeys::UpToLimit, &meta(150, "own")).unwrap();
    assert_eq!(p.metadata.len(), 100);
    // A verified write that would pass the limit is refused whole, never cut.
    let before = p.clone();
    let e = write_meta(&mut p, NewKeys::RefuseOverLimit, &meta(1, "app")).unwrap_err();
    assert_eq!(e.field, "metadata");
    assert_eq!(p, before);
    // Removing keys in the same write makes room for as many new ones.
    let mut m = meta(2, "app");
    m.insert("own0".into(), None);
    m.insert("own1".into(), None);
    write_meta(&mut p, NewKeys::RefuseOverLimit, &m).unwrap();
    assert_eq!(p.metadata.len(), 100);
    assert!(p.metadata.get("app1").is_some() && p.metadata.get("own1").is_none());
}

#[test]
fn metadata_is_flat_and_limited() {
    let p =
        Metadata::parse_patch("metadata", &json!({"plan": "pro", "seats": 3, "x": null})).unwrap();
    assert_eq!(p["plan"], Some(json!("pro")));
    assert_eq!(p["x"], None);
    let err = Metadata::parse_patch("metadata", &json!({"nested": {"a": 1}})).unwrap_err();
    assert_eq!(err.field, "metadata.nested");
    assert!(Metadata::parse_patch("metadata", &json!({"k": "v".repeat(1001)})).is_err());
    assert!(Metadata::parse_patch("metadata", &json!([1])).is_err());
}

#[test]
fn fill_absent_never_overwrites() {
    let mut p = Profile {
        name: Text::parse("name", "Ada").unwrap(),
        ..Profile::default()
    };
    let meta = Metadata::parse_patch("m", &json!({"plan": "free", "seats": 2})).unwrap();
    let mut stored = MetadataPatch::new();
    stored.insert("plan".into(), Some(json!("pro")));
    p.write_identity(
        WriteMode::Overwrite,
        NewKeys::RefuseOverLimit,
        &None,
        (&None, false),
        &None,
        &None,
        &None,
        &stored,
    )
    .unwrap();
    let ch = p
        .write_identity(
            WriteMode::FillAbsent,
            NewKeys::UpToLimit,
            &None,
            (&None, false),
            &Text::parse("name", "Mallory").unwrap(),
            &None,
            &Text::parse("company", "Acme").unwrap(),
            &meta,
        )
        .unwrap();
    assert_eq!(p.name.as_ref().unwrap().as_str(), "Ada");
    assert_eq!(p.company.as_ref().unwrap().as_str(), "Acme");
    assert_eq!(p.metadata.get("plan"), Some(&json!("pro")));
    assert_eq!(p.metadata.get("seats"), Some(&json!(2)));
    let fields: Vec<_> = ch.0.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["company", "metadata"]);
}

#[test]
fn absorb_fills_only_absent_values_and_unites_tags() {
    let mut holder = Profile {
        name: Text::parse("name", "Ada").unwrap(),
        tags: Tags::from_stored(vec!["VIP".into()]),
        metadata: Metadata::from_stored(json!({"plan": "pro"}).as_object().unwrap().clone()),
        ..Profile::default()
    };
    let absorbed = Profile {
        name: Text::parse("name", "Anon").unwrap(),
        company: Text::parse("company", "Acme").unwrap(),
        tags: Tags::from_stored(vec!["vip".into(), "trial".into()]),
        metadata: Metadata::from_stored(
            json!({"plan": "free", "ref": "ad"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        ..Profile::default()
    };
    holder.absorb(&absorbed);
    assert_eq!(holder.name.unwrap().as_str(), "Ada");
    assert_eq!(holder.company.unwrap().as_str(), "Acme");
    assert_eq!(holder.tags.as_slice(), ["VIP", "trial"]);
    assert_eq!(holder.metadata.get("plan"), Some(&json!("pro")));
    assert_eq!(holder.metadata.get("ref"), Some(&json!("ad")));
}

#[test]
fn search_text_has_every_searchable_field_lower_cased() {
    let p = Profile {
        name: Text::parse("name", "Zoë Ångström").unwrap(),
        email: Email::parse("email", "Zoe@Example.com").unwrap(),
        phone: Phone::parse("phone", "+14155550100").unwrap(),
        metadata: Metadata::from_stored(
            json!({"plan": "Pro\nPlus", "seats": 12, "beta": true})
                .as_object()
                .unwrap()
                .clone(),
        ),
        ..Profile::default()
    };
    let t = p.search_text();
    for part in [
        "zoë ångström",
        "zoe@example.com",
        "+14155550100",
        "pro plus",
        "12",
        "true",
    ] {
        assert!(t.lines().any(|l| l == part), "{part:?} missing from {t:?}");
    }
}

#[test]
fn stats_add_up_and_keep_extreme_times() {
    let mut a = Stats {
        conversation_count: 1,
        message_count: 3,
        last_seen_at: Some(100),
        created_at: 50,
    };
    a.absorb(&Stats {
        conversation_count: 2,
        message_count: 4,
        last_seen_at: Some(200),
        created_at: 10,
    });
    assert_eq!(
        a,
        Stats {
            conversation_count: 3,
            message_count: 7,
            last_seen_at: Some(200),
            created_at: 10
        }
    );
}

#[test]
fn patch_parses_clears_and_ignores_server_fields() {
    let p = ProfilePatch::parse(
        &json!({"name": null, "email": " A@B.io ", "status": "customer", "message_count": 9}),
    )
    .unwrap();
    assert_eq!(p.name, Some(None));
    assert_eq!(p.email.unwrap().unwrap().as_str(), "A@B.io");
    assert_eq!(p.user_id, None);
    assert_eq!(
        ProfilePatch::parse(&json!({"phone": "12"}))
            .unwrap_err()
            .field,
        "phone"
    );
    assert_eq!(
        ProfilePatch::parse(&json!({"name": 5})).unwrap_err().field,
        "name"
    );
}

#[test]
fn message_body_and_preview() {
    assert!(parse_message_body("   ").is_err());
    assert!(parse_message_body(&"x".repeat(10_001)).is_err());
    assert_eq!(parse_message_body(" hi ").unwrap(), "hi");
    let p = preview(&"word ".repeat(100));
    assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
    assert!(p.ends_with('…'));
}
