use super::*;

fn map(h: &[&str]) -> ColumnMap {
    ColumnMap::parse(h).expect("header")
}

#[test]
fn peer_header_names_mean_the_same_fields() {
    let m = map(&[
        "First_Name",
        " last name ",
        "E-mail",
        "Phone Number",
        "Company Name",
        "Labels",
        "External ID",
        "Plan",
    ]);
    assert_eq!(
        m.columns,
        vec![
            Column::FirstName,
            Column::LastName,
            Column::Email,
            Column::Phone,
            Column::Company,
            Column::Tags,
            Column::UserId,
            Column::Metadata("Plan".into())
        ]
    );
    assert_eq!(
        map(&["identifier", "Mobile"]).columns,
        vec![Column::UserId, Column::Phone]
    );
    // A name alone cannot match anybody.
    assert_eq!(
        ColumnMap::parse(&["name", "phone"]).unwrap_err().field,
        "header"
    );
}

#[test]
fn a_header_that_names_nobody_or_a_field_twice_is_refused() {
    let e = ColumnMap::parse(&["ada@example.com", "+14155550100"]).unwrap_err();
    assert_eq!(e.field, "header");
    let e = ColumnMap::parse(&["email", "Email Address"]).unwrap_err();
    assert!(e.message.contains("same field"), "{e}");
}

#[test]
fn first_and_last_name_join_and_a_full_name_wins() {
    let m = map(&["first name", "last name", "email"]);
    let name = |cells: &[&str]| ImportRow::parse(&m, cells).unwrap().name.unwrap();
    assert_eq!(
        name(&["Ada", "Lovelace", "a@b.co"]).as_str(),
        "Ada Lovelace"
    );
    assert_eq!(name(&["", "Lovelace", "a@b.co"]).as_str(), "Lovelace");
    let m = map(&["name", "first name", "user_id"]);
    let row = ImportRow::parse(&m, &["A. Lovelace", "Ada", "u1"]).unwrap();
    assert_eq!(row.name.unwrap().as_str(), "A. Lovelace");
    // A row with neither key cannot be matched, so it is refused.
    let e = ImportRow::parse(&m, &["A. Lovelace", "Ada", ""]).unwrap_err();
    assert_eq!(e.field, "row");
}

#[test]
fn an_invalid_value_refuses_the_row_naming_the_column() {
    let m = map(&["email", "phone"]);
    assert_eq!(
        ImportRow::parse(&m, &["not-an-email", ""])
            .unwrap_err()
            .field,
        "email"
    );
    assert_eq!(
        ImportRow::parse(&m, &["a@b.co", "12"]).unwrap_err().field,
        "phone"
    );
    let m = map(&["email", "metadata"]);
    assert_eq!(
        ImportRow::parse(&m, &["a@b.co", "[1]"]).unwrap_err().field,
        "metadata"
    );
    let long_key = "k".repeat(65);
    let m = map(&["email", &long_key]);
    assert!(ImportRow::parse(&m, &["a@b.co", "x"]).is_err());
    // An empty cell in that column is no value at all.
    assert!(ImportRow::parse(&m, &["a@b.co", " "]).is_ok());
}

#[test]
fn tags_split_on_commas_and_semicolons_or_read_a_json_array() {
    assert_eq!(
        split_tags("vip, trial;beta ,").unwrap(),
        vec!["vip", "trial", "beta"]
    );
    assert_eq!(split_tags(r#"["a,b", "c"]"#).unwrap(), vec!["a,b", "c"]);
    let tags = vec!["a,b".to_string(), "c".to_string()];
    assert_eq!(split_tags(&tags_cell(&tags)).unwrap(), tags);
    let plain = vec!["vip".to_string(), "trial".to_string()];
    assert_eq!(tags_cell(&plain), "vip, trial");
    assert_eq!(split_tags(&tags_cell(&plain)).unwrap(), plain);
}

#[test]
fn the_patch_adds_tags_and_merges_metadata_without_clearing() {
    let m = map(&["email", "tags", "plan"]);
    let row = ImportRow::parse(&m, &["a@b.co", "Trial, new", "pro"]).unwrap();
    let mut current = Profile::default();
    current.tags.insert("trial");
    current.name = Text::parse("name", "Ada").unwrap();
    let patch = row.patch_for(&current).unwrap();
    let mut p = current.clone();
    p.apply_patch(&patch);
    assert_eq!(p.tags.as_slice(), ["trial", "new"]);
    assert_eq!(p.name.unwrap().as_str(), "Ada");
    assert_eq!(p.metadata.get("plan"), Some(&Value::from("pro")));
}

#[test]
fn formula_cells_are_neutralised_and_read_back() {
    for v in ["=1+1", "+14155550100", "-x", "@SUM(A1)"] {
        let safe = spreadsheet_safe(v.to_string());
        assert!(safe.starts_with('\''), "{safe}");
        assert_eq!(unescape_cell(&safe), v);
    }
    assert_eq!(spreadsheet_safe("Ada".into()), "Ada");
    assert_eq!(unescape_cell("'quoted"), "'quoted");
}
