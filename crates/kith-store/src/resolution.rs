//! Applying identity resolution inside one transaction: gather the candidates, ask
//! `kith_core::identity::resolve`, then merge, write fields, link the visitor and record the
//! timeline. The contact row primitives it uses live in `contact_rows`.

use crate::conn::{args, Conn};
use crate::contact_rows::{
    contact_by, create_contact, insert_event, record_changes, touch_contact,
    touch_contact_at_most_every, write_profile, LAST_SEEN_INTERVAL_MS,
};
use crate::model::ContactRow;
use crate::StoreError;
use kith_core::contact::{NewKeys, WriteMode};
use kith_core::identity::{resolve, Candidate, Claim, Found, MergeKey, Target, VisitorFacts};
use kith_core::merge::{plan_merge, MergePlan};
use kith_core::timeline::{Actor, EventKind};
use kith_core::Profile;
use serde_json::json;

/// Whether a merge was backed by proof that both contacts are one person: a verified key of
/// the claim joined them. Proof is about one contact, so it only travels with such a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MergeProof {
    Verified,
    Unproven,
}

/// Merge rule 3: `absorbed` moves into `holder` (visitors, conversations, tags, stats,
/// timeline; absent fields and missing metadata keys filled) and stops existing; its id
/// answers `merged` from now on. An `Unproven` merge (an unverified email moved the visitor's
/// own contact) carries no proof into the holder: the absorbed contact's visitors arrive
/// unproven and its conversations as not verified-started, so nobody verified for the
/// absorbed contact reads the holder's conversations, and the holder's verified visitors do
/// not inherit the absorbed contact's.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn merge_contacts<C: Conn>(
    c: &mut C,
    org_id: &str,
    absorbed_id: &str,
    holder_id: &str,
    by: MergeKey,
    proof: MergeProof,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    let absorbed = contact_by(c, org_id, "id", absorbed_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let holder = contact_by(c, org_id, "id", holder_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let plan = plan_merge(
        &holder.profile()?,
        &holder.stats(),
        &absorbed.profile()?,
        &absorbed.stats(),
    );

    if proof == MergeProof::Unproven {
        c.execute(
            "UPDATE visitors SET link_proven = FALSE WHERE org_id = $1 AND contact_id = $2",
            args![org_id, absorbed_id],
        )
        .await?;
        c.execute(
            "UPDATE conversations SET verified_start = FALSE WHERE org_id = $1 AND contact_id = $2",
            args![org_id, absorbed_id],
        )
        .await?;
    }
    absorb_into(c, org_id, &absorbed, holder_id, &plan, now).await?;
    insert_event(
        c,
        org_id,
        holder_id,
        EventKind::Merged,
        actor,
        // The absorbed contact is deleted: its name and email stay here, so the timeline
        // can say whom the contact merged with.
        json!({"absorbed_contact_id": absorbed_id, "by": by.as_str(),
               "absorbed_name": absorbed.name, "absorbed_email": absorbed.email}),
        now,
    )
    .await?;
    Ok(())
}

/// What a merge moved from the absorbed contact to the holder, by id: what an undo moves
/// back. `merge_records` are earlier merges into the absorbed contact, now pointing at the
/// holder.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Moved {
    pub visitors: Vec<String>,
    pub conversations: Vec<String>,
    pub events: Vec<String>,
    pub notes: Vec<String>,
    pub merge_records: Vec<String>,
}

/// The writes of every merge, automatic or manual: moves what `absorbed` has to the holder,
/// deletes `absorbed` (its id now answers `merged`) and writes the holder as `plan` says.
/// Writes no timeline entry: the caller says why the merge happened.
pub(crate) async fn absorb_into<C: Conn>(
    c: &mut C,
    org_id: &str,
    absorbed: &ContactRow,
    holder_id: &str,
    plan: &MergePlan,
    now: i64,
) -> Result<Moved, StoreError> {
    let absorbed_id = absorbed.id.as_str();
    let mut moved = Moved::default();
    for (table, ids) in [
        ("visitors", &mut moved.visitors),
        ("conversations", &mut moved.conversations),
        ("contact_events", &mut moved.events),
        ("contact_notes", &mut moved.notes),
    ] {
        let sql = format!(
            "UPDATE {table} SET contact_id = $3 WHERE org_id = $1 AND contact_id = $2 RETURNING id"
        );
        let rows: Vec<(String,)> = c
            .fetch_all(&sql, args![org_id, absorbed_id, holder_id])
            .await?;
        *ids = rows.into_iter().map(|(id,)| id).collect();
    }
    // Earlier merges into the absorbed contact now point at the holder: one hop always.
    let rows: Vec<(String,)> = c
        .fetch_all(
            "UPDATE contact_merges SET merged_into = $3 WHERE org_id = $1 AND merged_into = $2 \
             RETURNING absorbed_id",
            args![org_id, absorbed_id, holder_id],
        )
        .await?;
    moved.merge_records = rows.into_iter().map(|(id,)| id).collect();
    // Delete before writing the holder, so the absorbed email or user id is free to move.
    c.execute(
        "DELETE FROM contact_tags WHERE org_id = $1 AND contact_id = $2",
        args![org_id, absorbed_id],
    )
    .await?;
    c.execute(
        "DELETE FROM contacts WHERE org_id = $1 AND id = $2",
        args![org_id, absorbed_id],
    )
    .await?;
    c.execute(
        "INSERT INTO contact_merges (org_id, absorbed_id, merged_into, merged_at) \
         VALUES ($1, $2, $3, $4)",
        args![org_id, absorbed_id, holder_id, now],
    )
    .await?;
    write_profile(c, org_id, holder_id, &plan.profile, now).await?;
    let stats = &plan.stats;
    c.execute(
        "UPDATE contacts SET conversation_count = $3, message_count = $4, last_seen_at = $5, \
         created_at = $6 WHERE org_id = $1 AND id = $2",
        args![
            org_id,
            holder_id,
            stats.conversation_count,
            stats.message_count,
            stats.last_seen_at,
            stats.created_at
        ],
    )
    .await?;
    // Events still waiting for the absorbed contact go out as the holder's, ahead of
    // the merge's own.
    crate::webhooks::move_pending(c, org_id, absorbed_id, holder_id).await?;
    Ok(moved)
}

fn candidate(row: &Option<ContactRow>) -> Option<Candidate> {
    row.as_ref().map(|r| Candidate {
        id: r.id.clone(),
        has_user_id: r.user_id.is_some(),
        email_verified: r.email.is_some() && r.email_verified,
    })
}

/// Why a resolution runs: an identify call (no match → remember) or a visitor's first
/// message (no match → create).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Occasion {
    Identify,
    FirstMessage,
}

/// The visitor a resolution is for, as stored before it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VisitorState<'a> {
    pub id: &'a str,
    pub contact_id: Option<&'a str>,
    pub verified: bool,
    pub link_proven: bool,
}

pub(crate) struct Resolved {
    /// The contact the visitor is now linked to (`None`: identity remembered).
    pub contact_id: Option<String>,
    pub visitor_verified: bool,
    pub link_proven: bool,
}

/// Resolves `claim` for a visitor and applies the answer. The visitor row must exist; it is
/// linked (or unlinked, with the claim remembered) here.
pub(crate) async fn resolve_and_apply<C: Conn>(
    c: &mut C,
    org_id: &str,
    visitor: VisitorState<'_>,
    claim: &Claim,
    occasion: Occasion,
    now: i64,
) -> Result<Resolved, StoreError> {
    let actor = Actor::Visitor;
    let by_user_id = match &claim.user_id {
        Some(u) => contact_by(c, org_id, "user_id", u.as_str()).await?,
        None => None,
    };
    let by_email = match &claim.email {
        Some(e) => contact_by(c, org_id, "email_lower", &e.key()).await?,
        None => None,
    };
    let own = match visitor.contact_id {
        Some(id) => contact_by(c, org_id, "id", id).await?,
        None => None,
    };
    let found = Found {
        by_user_id: candidate(&by_user_id),
        by_email: candidate(&by_email),
        visitor_contact: candidate(&own),
    };
    let facts = VisitorFacts {
        verified: visitor.verified,
        link_proven: visitor.link_proven,
    };
    let resolution = resolve(claim, facts, &found);

    let email = if resolution.take_email {
        claim.email.clone()
    } else {
        None
    };
    if let Some(holder) = &resolution.strip_email_of {
        strip_unproven_email(c, org_id, holder, now).await?;
    }
    if let Some(holder) = &resolution.distrust_others_on {
        distrust_others(c, org_id, holder, visitor.id).await?;
    }
    let contact_id = match &resolution.target {
        Target::Existing(target) => {
            for m in &resolution.merges {
                // A user id reaches resolution only verified; an email may not be.
                let proof = match m.by {
                    MergeKey::UserId => MergeProof::Verified,
                    MergeKey::Email if claim.email_verified => MergeProof::Verified,
                    MergeKey::Email => MergeProof::Unproven,
                };
                merge_contacts(c, org_id, &m.absorbed, target, m.by, proof, &actor, now).await?;
            }
            let row = contact_by(c, org_id, "id", target)
                .await?
                .ok_or(StoreError::NotFound)?;
            let mut profile = row.profile()?;
            let before = profile.status();
            let keys = if !claim.verified && !resolution.link_proven {
                // Somebody else's contact as far as Kith knows: fill absent fields only.
                NewKeys::None
            } else if claim.verified && occasion == Occasion::Identify {
                NewKeys::RefuseOverLimit
            } else {
                // Unverified on its own contact, or a remembered identity applied by a first
                // message (which must not fail): keys beyond the limit are not stored.
                NewKeys::UpToLimit
            };
            let proof_before = profile.email_verified;
            let changes = claim.apply_to(&mut profile, claim.write_mode(), keys, &email)?;
            if !changes.is_empty() || profile.email_verified != proof_before {
                write_profile(c, org_id, target, &profile, now).await?;
            }
            if occasion == Occasion::Identify {
                // Apps identify on every page view: an identify that changes nothing writes
                // nothing, and moves `last_seen_at` at most once a minute, as `session` does.
                touch_contact_at_most_every(c, org_id, target, now, LAST_SEEN_INTERVAL_MS).await?;
            } else {
                touch_contact(c, org_id, target, now).await?;
            }
            record_changes(
                c,
                org_id,
                target,
                (before, profile.status()),
                &changes,
                &actor,
                now,
            )
            .await?;
            Some(target.clone())
        }
        Target::Nobody if occasion == Occasion::FirstMessage => {
            let mut profile = Profile::default();
            claim.apply_to(
                &mut profile,
                WriteMode::Overwrite,
                NewKeys::UpToLimit,
                &email,
            )?;
            Some(create_contact(c, org_id, &profile, &actor, now).await?)
        }
        Target::Nobody => None,
    };

    // Created by this visitor's own first message, or reached by proof: its own contact.
    let link_proven = match &resolution.target {
        Target::Existing(_) => resolution.link_proven,
        Target::Nobody => contact_id.is_some(),
    };
    let pending = match (&contact_id, occasion) {
        (None, Occasion::Identify) => {
            Some(serde_json::to_string(claim).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        }
        _ => None,
    };
    // Only a visitor whose state changes (or whose last_seen_at is a minute old) is written.
    c.execute(
        "UPDATE visitors SET contact_id = $3, verified = $4, pending_claim = $5, last_seen_at = $6, \
         link_proven = $7 WHERE org_id = $1 AND id = $2 \
         AND (contact_id IS DISTINCT FROM $3 OR verified <> $4 \
              OR pending_claim IS DISTINCT FROM $5 OR link_proven <> $7 OR last_seen_at <= $8)",
        args![
            org_id,
            visitor.id,
            contact_id.clone(),
            resolution.visitor_verified,
            pending,
            now,
            link_proven,
            now - LAST_SEEN_INTERVAL_MS
        ],
    )
    .await?;
    if let (Some(id), true, true) = (&contact_id, resolution.visitor_verified, link_proven) {
        // The visitor proved who it is: what it wrote under this contact is that person's.
        c.execute(
            "UPDATE conversations SET verified_start = TRUE \
             WHERE org_id = $1 AND visitor_id = $2 AND contact_id = $3 AND NOT verified_start",
            args![org_id, visitor.id, id.as_str()],
        )
        .await?;
    }
    Ok(Resolved {
        contact_id,
        visitor_verified: resolution.visitor_verified,
        link_proven,
    })
}

/// A proven email outranks an unproven hold on it: the holder (a contact with a user id,
/// which a verified email never joins) gives the address up, recorded in its timeline.
async fn strip_unproven_email<C: Conn>(
    c: &mut C,
    org_id: &str,
    holder_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let row = contact_by(c, org_id, "id", holder_id)
        .await?
        .ok_or(StoreError::Raced)?;
    let mut profile = row.profile()?;
    let before = profile.status();
    let changes = profile.apply_patch(&kith_core::contact::ProfilePatch {
        email: Some(None),
        ..Default::default()
    });
    write_profile(c, org_id, holder_id, &profile, now).await?;
    record_changes(
        c,
        org_id,
        holder_id,
        (before, profile.status()),
        &changes,
        &Actor::System,
        now,
    )
    .await
}

/// The visitors linked to `contact_id` (but `except`) and its conversations lose their proof:
/// they were proven only by having created the contact, which now turns out to hold an
/// address somebody else proved.
async fn distrust_others<C: Conn>(
    c: &mut C,
    org_id: &str,
    contact_id: &str,
    except_visitor: &str,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE visitors SET link_proven = FALSE \
         WHERE org_id = $1 AND contact_id = $2 AND id <> $3 AND link_proven",
        args![org_id, contact_id, except_visitor],
    )
    .await?;
    c.execute(
        "UPDATE conversations SET verified_start = FALSE \
         WHERE org_id = $1 AND contact_id = $2 AND visitor_id <> $3 AND verified_start",
        args![org_id, contact_id, except_visitor],
    )
    .await?;
    Ok(())
}
