//! Merging two contacts: what the merged contact holds and where each value came from.
//!
//! One pure function, [`plan_merge`], answers both the automatic merge of SPEC rule 3 and an
//! admin's manual merge, and both its dry run and its real run: the store computes the plan
//! from the rows it locked and writes exactly what the plan says, so a preview cannot differ
//! from the merge it previews. [`check_manual_merge`] holds the refusals of a manual merge.

use crate::contact::{Profile, Stats, Status};
use serde_json::Value;

/// Which of the two contacts a value of the merged contact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Survivor,
    Other,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Survivor => "survivor",
            Side::Other => "other",
        }
    }
}

/// One field of the merged contact that holds a value, and whose value it is.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldWin {
    pub field: &'static str,
    pub value: Value,
    pub from: Side,
}

/// What merging `other` into the survivor gives.
#[derive(Debug, Clone, PartialEq)]
pub struct MergePlan {
    /// The survivor's profile after the merge.
    pub profile: Profile,
    /// The survivor's stats after the merge.
    pub stats: Stats,
    /// Each field that holds a value after the merge (user_id, email, name, phone, company),
    /// in that order, with the side it came from.
    pub fields: Vec<FieldWin>,
    /// Tags the survivor gains (spelled as the other contact spells them).
    pub tags_added: Vec<String>,
    /// Metadata keys the survivor gains.
    pub metadata_added: Vec<String>,
    /// The survivor was a lead and takes the other's user_id: it becomes a customer.
    pub promoted: bool,
}

/// Merge rule 3 with `survivor` surviving: its values win; absent fields and missing
/// metadata keys are filled from `other`; tags are united; counts add up, `last_seen_at` is
/// the later and `created_at` the earlier.
pub fn plan_merge(
    survivor: &Profile,
    survivor_stats: &Stats,
    other: &Profile,
    other_stats: &Stats,
) -> MergePlan {
    let mut profile = survivor.clone();
    profile.absorb(other);
    let mut stats = *survivor_stats;
    stats.absorb(other_stats);

    let before = survivor.to_json();
    let after = profile.to_json();
    let fields = ["user_id", "email", "name", "phone", "company"]
        .into_iter()
        .filter_map(|field| {
            let value = after.get(field).cloned().unwrap_or(Value::Null);
            if value.is_null() {
                return None;
            }
            let from = if before.get(field) == Some(&value) {
                Side::Survivor
            } else {
                Side::Other
            };
            Some(FieldWin { field, value, from })
        })
        .collect();
    let had_tag = |t: &str| {
        survivor
            .tags
            .as_slice()
            .iter()
            .any(|s| s.to_lowercase() == t.to_lowercase())
    };
    let tags_added = profile
        .tags
        .as_slice()
        .iter()
        .filter(|t| !had_tag(t))
        .cloned()
        .collect();
    let metadata_added = profile
        .metadata
        .iter()
        .filter(|(k, _)| survivor.metadata.get(k).is_none())
        .map(|(k, _)| k.clone())
        .collect();
    let promoted = survivor.status() == Status::Lead && profile.status() == Status::Customer;
    MergePlan {
        profile,
        stats,
        fields,
        tags_added,
        metadata_added,
        promoted,
    }
}

/// Why an admin's merge is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeRefusal {
    /// A contact cannot be merged into itself.
    SameContact,
    /// Both contacts hold a user_id, and they differ: two people (SPEC rule 4).
    UserIdConflict,
}

/// Whether an admin may merge `other` into `survivor`.
pub fn check_manual_merge(
    survivor_id: &str,
    survivor: &Profile,
    other_id: &str,
    other: &Profile,
) -> Result<(), MergeRefusal> {
    if survivor_id == other_id {
        return Err(MergeRefusal::SameContact);
    }
    match (&survivor.user_id, &other.user_id) {
        (Some(a), Some(b)) if a.as_str() != b.as_str() => Err(MergeRefusal::UserIdConflict),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Email, Metadata, Tags, Text};
    use serde_json::json;

    fn profile(v: Value) -> Profile {
        let text = |k: &str| v[k].as_str().map(|s| Text::from_stored(s.into()));
        Profile {
            user_id: text("user_id"),
            email: v["email"].as_str().map(|s| Email::from_stored(s.into())),
            name: text("name"),
            phone: None,
            company: text("company"),
            tags: Tags::from_stored(
                v["tags"]
                    .as_array()
                    .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            ),
            metadata: Metadata::from_stored(v["metadata"].as_object().cloned().unwrap_or_default()),
            email_verified: false,
        }
    }

    fn stats(conversations: i64, messages: i64, seen: Option<i64>, created: i64) -> Stats {
        Stats {
            conversation_count: conversations,
            message_count: messages,
            last_seen_at: seen,
            created_at: created,
        }
    }

    #[test]
    fn the_survivors_values_win_and_absent_ones_come_from_the_other() {
        let survivor =
            profile(json!({"name": "Ada", "tags": ["vip"], "metadata": {"plan": "pro"}}));
        let other = profile(json!({"name": "Ada L.", "email": "ada@example.com",
            "tags": ["VIP", "trial"], "metadata": {"plan": "free", "seats": 3}}));
        let plan = plan_merge(
            &survivor,
            &stats(1, 2, Some(50), 10),
            &other,
            &stats(2, 5, Some(40), 5),
        );
        assert_eq!(
            plan.fields,
            vec![
                FieldWin {
                    field: "email",
                    value: json!("ada@example.com"),
                    from: Side::Other
                },
                FieldWin {
                    field: "name",
                    value: json!("Ada"),
                    from: Side::Survivor
                },
            ]
        );
        assert_eq!(plan.tags_added, vec!["trial".to_string()]);
        assert_eq!(plan.metadata_added, vec!["seats".to_string()]);
        assert_eq!(plan.profile.metadata.get("plan"), Some(&json!("pro")));
        assert_eq!(plan.stats, stats(3, 7, Some(50), 5));
        assert!(!plan.promoted);
    }

    #[test]
    fn a_lead_survivor_takes_the_others_user_id_and_is_promoted() {
        let survivor = profile(json!({"email": "a@example.com"}));
        let other = profile(json!({"user_id": "u1"}));
        let plan = plan_merge(
            &survivor,
            &stats(0, 0, None, 1),
            &other,
            &stats(0, 0, None, 2),
        );
        assert!(plan.promoted);
        assert_eq!(plan.fields[0].field, "user_id");
        assert_eq!(plan.fields[0].from, Side::Other);
        assert_eq!(plan.profile.status(), Status::Customer);
    }

    #[test]
    fn two_user_ids_never_merge_and_a_contact_never_merges_with_itself() {
        let a = profile(json!({"user_id": "u1"}));
        let b = profile(json!({"user_id": "u2"}));
        let lead = profile(json!({}));
        assert_eq!(
            check_manual_merge("a", &a, "b", &b),
            Err(MergeRefusal::UserIdConflict)
        );
        assert_eq!(
            check_manual_merge("a", &a, "a", &a),
            Err(MergeRefusal::SameContact)
        );
        assert_eq!(check_manual_merge("a", &a, "c", &lead), Ok(()));
        assert_eq!(check_manual_merge("c", &lead, "a", &a), Ok(()));
    }
}
