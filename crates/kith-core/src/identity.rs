//! Identity resolution (SPEC 1, "Contact creation and matching"): which contact an identify
//! call or a first message belongs to, which contacts merge, and what may be written.
//!
//! The store looks up the candidates (holder of the user id, holder of the email, the
//! visitor's own contact), calls [`resolve`], and applies the [`Resolution`] in one
//! transaction. Everything that decides lives here, so it can be read against the spec.
//!
//! One deliberate tightening beyond the spec's text: a visitor that is already verified never
//! follows an *unverified* email to another contact (not even from no contact at all), because
//! a verified visitor sees its contact's conversations: following would let a visitor that
//! proved one identity read the contact of an email it merely typed.

use crate::contact::{Email, Metadata, MetadataPatch, NewKeys, Phone, Text, WriteMode};
use crate::limits::METADATA_MAX_KEYS;
use crate::validate::ValidationError;
use crate::verify::hash_matches_any;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a visitor says about itself, after parsing and verification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub user_id: Option<Text>,
    pub email: Option<Email>,
    pub name: Option<Text>,
    pub phone: Option<Phone>,
    pub company: Option<Text>,
    #[serde(default)]
    pub metadata: MetadataPatch,
    /// The user id is covered by a valid hash (or verification is off).
    #[serde(default)]
    pub user_id_verified: bool,
    /// The email is covered by a valid hash (or verification is off).
    #[serde(default)]
    pub email_verified: bool,
    /// Every value of the claim may overwrite stored ones (a verified identify).
    #[serde(default)]
    pub verified: bool,
    /// Profile values sent beside an identity token but outside it: the token proves only
    /// what it carries, so these only fill fields the contact lacks, whatever `verified` says.
    #[serde(default, skip_serializing_if = "Unverified::is_empty")]
    pub unverified: Unverified,
}

/// Profile values nobody proved, riding along with a verified claim (see [`Claim::unverified`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unverified {
    pub name: Option<Text>,
    pub phone: Option<Phone>,
    pub company: Option<Text>,
    #[serde(default)]
    pub metadata: MetadataPatch,
}

impl Unverified {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.phone.is_none()
            && self.company.is_none()
            && self.metadata.is_empty()
    }

    /// The newer values win, key by key.
    fn overlay(self, newer: Unverified) -> Unverified {
        let mut metadata = self.metadata;
        metadata.extend(newer.metadata);
        Unverified {
            name: newer.name.or(self.name),
            phone: newer.phone.or(self.phone),
            company: newer.company.or(self.company),
            metadata,
        }
    }
}

/// Why an identify call is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentifyError {
    /// A value is malformed or too long (422).
    Invalid(ValidationError),
    /// A `user_id` without a valid `user_hash` while verification is enforced (401).
    Unverified,
}

impl From<ValidationError> for IdentifyError {
    fn from(e: ValidationError) -> Self {
        IdentifyError::Invalid(e)
    }
}

fn string_field<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, ValidationError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        // The hash covers the user id exactly as sent, so a number would be ambiguous
        // (42 vs 42.0); ask for the text the app hashed.
        Some(Value::Number(_)) if key == "user_id" => Err(ValidationError::new(
            key,
            "must be a string (send numeric ids as text, e.g. \"42\")",
        )),
        Some(_) => Err(ValidationError::new(key, "must be a string or null")),
    }
}

impl Claim {
    /// Parses the body of `POST /api/widget/v1/identify` and checks its `user_hash`.
    /// `identity_secret` is `None` when the website turned verification off: then every
    /// identify counts as verified.
    pub fn from_identify(
        body: &Value,
        identity_secret: Option<&str>,
    ) -> Result<Claim, IdentifyError> {
        match identity_secret {
            None => Claim::from_identify_with(body, None),
            Some(secret) => Claim::from_identify_with(body, Some(&[secret])),
        }
    }

    /// [`Claim::from_identify`] with every secret that verifies a hash: the current one and,
    /// while a rotation is under way, the previous one. `None`: verification is off.
    pub fn from_identify_with(
        body: &Value,
        identity_secrets: Option<&[&str]>,
    ) -> Result<Claim, IdentifyError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ValidationError::new("body", "must be a JSON object"))?;
        let raw_user_id = string_field(obj, "user_id")?;
        let raw_email = string_field(obj, "email")?;
        let user_hash = string_field(obj, "user_hash")?.unwrap_or("");
        let mut claim = Claim {
            user_id: raw_user_id
                .map(|s| Text::parse("user_id", s))
                .transpose()?
                .flatten(),
            email: raw_email
                .map(|s| Email::parse("email", s))
                .transpose()?
                .flatten(),
            name: string_field(obj, "name")?
                .map(|s| Text::parse("name", s))
                .transpose()?
                .flatten(),
            phone: string_field(obj, "phone")?
                .map(|s| Phone::parse("phone", s))
                .transpose()?
                .flatten(),
            company: string_field(obj, "company")?
                .map(|s| Text::parse("company", s))
                .transpose()?
                .flatten(),
            metadata: match obj.get("metadata") {
                None | Some(Value::Null) => MetadataPatch::new(),
                Some(v) => Metadata::parse_patch("metadata", v)?,
            },
            ..Claim::default()
        };
        match identity_secrets {
            None => {
                claim.user_id_verified = true;
                claim.email_verified = true;
                claim.verified = true;
            }
            Some(secrets) => {
                // The hash covers the user id exactly as sent, or the email when there is no
                // user id; it verifies nothing else as an identity key.
                if let (Some(raw), Some(_)) = (raw_user_id, &claim.user_id) {
                    if !hash_matches_any(secrets, raw, user_hash) {
                        return Err(IdentifyError::Unverified);
                    }
                    claim.user_id_verified = true;
                    claim.verified = true;
                } else if let (Some(raw), Some(_)) = (raw_email, &claim.email) {
                    if hash_matches_any(secrets, raw, user_hash) {
                        claim.email_verified = true;
                        claim.verified = true;
                    }
                }
            }
        }
        Ok(claim)
    }

    /// Combines a remembered identity with a newer identify: the newer values win. Values
    /// kept from an unverified older claim keep the whole claim from overwriting anything.
    /// The remembered identity obeys the same limits as a contact: more than 100 metadata keys
    /// in all is refused, so repeated identifies cannot grow it without end.
    pub fn overlay(self, newer: Claim) -> Result<Claim, ValidationError> {
        // Another person logged in before writing: nothing of the first one carries over.
        if matches!((&self.user_id, &newer.user_id), (Some(a), Some(b)) if a != b) {
            return Ok(newer);
        }
        let added = newer
            .metadata
            .keys()
            .filter(|k| !self.metadata.contains_key(*k))
            .count();
        let added_unverified = newer
            .unverified
            .metadata
            .keys()
            .filter(|k| !self.unverified.metadata.contains_key(*k))
            .count();
        if self.metadata.len() + added > METADATA_MAX_KEYS
            || self.unverified.metadata.len() + added_unverified > METADATA_MAX_KEYS
        {
            return Err(ValidationError::new(
                "metadata",
                format!(
                    "the identity given before the first message would hold more than \
                     {METADATA_MAX_KEYS} metadata keys"
                ),
            ));
        }
        let older_only_values = (self.name.is_some() && newer.name.is_none())
            || (self.phone.is_some() && newer.phone.is_none())
            || (self.company.is_some() && newer.company.is_none())
            || self
                .metadata
                .keys()
                .any(|k| !newer.metadata.contains_key(k))
            || (self.email.is_some() && newer.email.is_none())
            || (self.user_id.is_some() && newer.user_id.is_none());
        let verified = newer.verified && (self.verified || !older_only_values);
        let (user_id, user_id_verified) = match newer.user_id {
            Some(u) => (Some(u), newer.user_id_verified),
            None => (self.user_id, self.user_id_verified),
        };
        let (email, email_verified) = match newer.email {
            Some(e) => (Some(e), newer.email_verified),
            None => (self.email, self.email_verified),
        };
        let mut metadata = self.metadata;
        metadata.extend(newer.metadata);
        Ok(Claim {
            user_id,
            email,
            name: newer.name.or(self.name),
            phone: newer.phone.or(self.phone),
            company: newer.company.or(self.company),
            metadata,
            user_id_verified,
            email_verified,
            verified,
            unverified: self.unverified.overlay(newer.unverified),
        })
    }

    /// Writes this claim's values to `profile` in `mode`; `email` is the claim's email when the
    /// resolution lets the contact take it.
    pub fn apply_to(
        &self,
        profile: &mut crate::contact::Profile,
        mode: WriteMode,
        keys: NewKeys,
        email: &Option<Email>,
    ) -> Result<crate::contact::Changes, ValidationError> {
        let mut changes = profile.write_identity(
            mode,
            keys,
            &self.user_id,
            (email, self.email_verified),
            &self.name,
            &self.phone,
            &self.company,
            &self.metadata,
        )?;
        if !self.unverified.is_empty() {
            // After the proven values, so a value the token carries always wins; keys past
            // the limit are dropped rather than failing the proven part.
            let keys = match keys {
                NewKeys::None => NewKeys::None,
                _ => NewKeys::UpToLimit,
            };
            let u = &self.unverified;
            changes.merge_later(profile.write_identity(
                WriteMode::FillAbsent,
                keys,
                &None,
                (&None, false),
                &u.name,
                &u.phone,
                &u.company,
                &u.metadata,
            )?);
        }
        Ok(changes)
    }

    pub fn write_mode(&self) -> WriteMode {
        if self.verified {
            WriteMode::Overwrite
        } else {
            WriteMode::FillAbsent
        }
    }
}

/// A contact the store found for one of the claim's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    /// The contact has a `user_id` (it is not anonymous).
    pub has_user_id: bool,
    /// Its email is proven (a verified identify covered it, or an admin set it).
    pub email_verified: bool,
}

/// What the store found, in the spec's order of precedence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The contact holding the claim's user id.
    pub by_user_id: Option<Candidate>,
    /// The contact holding the claim's email.
    pub by_email: Option<Candidate>,
    /// The contact the visitor is linked to.
    pub visitor_contact: Option<Candidate>,
}

/// What is known about the visitor a claim comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VisitorFacts {
    /// It made a verified identify at some point (spec rule 6).
    pub verified: bool,
    /// Its link to its current contact is its own: it created that contact with its first
    /// message, or a verified identify put it there. A link made by following an unverified
    /// email is not: such a contact belongs to somebody else as far as Kith knows.
    pub link_proven: bool,
}

/// Which key joined two contacts, for the `merged` timeline entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKey {
    UserId,
    Email,
}

impl MergeKey {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeKey::UserId => "user_id",
            MergeKey::Email => "email",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub absorbed: String,
    pub by: MergeKey,
}

/// The contact the claim lands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Existing(String),
    /// Nobody matches: a first message creates a contact; an identify remembers the claim
    /// for the visitor (and unlinks it from a contact of another user id).
    Nobody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub target: Target,
    /// Contacts merged into the target, in order.
    pub merges: Vec<Merge>,
    /// Whether the target may take the claim's email (no other contact keeps it).
    pub take_email: bool,
    /// Whether the visitor counts as verified from now on.
    pub visitor_verified: bool,
    /// Whether the visitor's link to the target is its own (see [`VisitorFacts`]).
    pub link_proven: bool,
    /// A contact that held the claim's (verified) email without proof and has a user id: it
    /// loses the email, which goes where the claim lands. Applied before everything else.
    pub strip_email_of: Option<String>,
    /// A contact without a user id that held the claim's (verified) email without proof: its
    /// other visitors' links and its conversations lose their proof before the claim lands
    /// on it or absorbs it, since they proved nothing about this person.
    pub distrust_others_on: Option<String>,
}

fn same(a: &Option<Candidate>, b: &Option<Candidate>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x.id == y.id)
}

/// Decides where `claim` lands, given what is known of the visitor and what the store found.
///
/// Only a contact the visitor proved (or created) counts as its own: only that one is updated
/// in place by a verified claim or merged into another contact. A contact the visitor reached
/// by an unverified email is somebody else's; a verified claim takes the visitor away from it,
/// and an unverified one may only fill its absent fields.
pub fn resolve(claim: &Claim, visitor: VisitorFacts, found: &Found) -> Resolution {
    let linked = &found.visitor_contact;
    let own = if visitor.link_proven {
        linked.clone()
    } else {
        None
    };
    // A proven email outranks an unproven hold on it: the holder was given the address by a
    // claim nobody proved, so it is not known to be this person. Unless it is the visitor's
    // own contact (then the claim simply proves its email).
    let mut strip_email_of = None;
    let mut distrust_others_on = None;
    let mut by_email = if claim.email.is_some() {
        found.by_email.clone()
    } else {
        None
    };
    if let Some(email_holder) = &by_email {
        if claim.email_verified && !email_holder.email_verified && !same(&by_email, &own) {
            if email_holder.has_user_id {
                strip_email_of = Some(email_holder.id.clone());
                by_email = None;
            } else {
                distrust_others_on = Some(email_holder.id.clone());
            }
        }
    }
    let mut r = resolve_with(claim, visitor, found, &by_email, &own);
    r.strip_email_of = strip_email_of;
    r.distrust_others_on = distrust_others_on;
    r
}

fn resolve_with(
    claim: &Claim,
    visitor: VisitorFacts,
    found: &Found,
    by_email: &Option<Candidate>,
    own_candidate: &Option<Candidate>,
) -> Resolution {
    let visitor_verified = visitor.verified;
    let holder_of_user_id = &found.by_user_id;
    let holder_of_email = by_email;
    let linked = &found.visitor_contact;
    let own_contact = own_candidate;
    let anonymous = |c: &Option<Candidate>| c.as_ref().is_some_and(|c| !c.has_user_id);

    if claim.user_id.is_some() {
        // A user id reaches here only verified (or with verification off). Rule 2: its holder
        // first; else the email's holder, but only when the email is verified and that holder
        // is anonymous (rule 7's protection applies before the user id has a holder too);
        // else the visitor's own anonymous contact, updated in place.
        let target = if holder_of_user_id.is_some() {
            holder_of_user_id.clone()
        } else if claim.email_verified && anonymous(holder_of_email) {
            holder_of_email.clone()
        } else if anonymous(own_contact) {
            own_contact.clone()
        } else {
            None
        };
        let mut merges = Vec::new();
        let mut email_free = holder_of_email.is_none() || same(holder_of_email, &target);
        if let Some(target_contact) = &target {
            // Rule 3: the visitor's own anonymous contact moves into the holder.
            if anonymous(own_contact) && !same(own_contact, &target) {
                let by = if same(holder_of_user_id, &target) {
                    MergeKey::UserId
                } else {
                    MergeKey::Email
                };
                merges.push(Merge {
                    absorbed: own_contact.as_ref().unwrap().id.clone(),
                    by,
                });
                if same(holder_of_email, own_contact) {
                    email_free = true;
                }
            }
            // Rule 7: another contact holding the email joins only when the email is
            // verified and that contact has no user id; otherwise it keeps its email.
            if let Some(email_holder) = holder_of_email {
                if email_holder.id != target_contact.id
                    && !same(holder_of_email, own_contact)
                    && claim.email_verified
                    && !email_holder.has_user_id
                {
                    merges.push(Merge {
                        absorbed: email_holder.id.clone(),
                        by: MergeKey::Email,
                    });
                    email_free = true;
                }
            }
        }
        return Resolution {
            link_proven: target.is_some(),
            target: target.map_or(Target::Nobody, |c| Target::Existing(c.id)),
            merges,
            take_email: email_free,
            visitor_verified: true,
            strip_email_of: None,
            distrust_others_on: None,
        };
    }

    // No user id: the email's holder, then the visitor's contact.
    let may_follow_email = claim.email_verified || !visitor_verified;
    let visitor_verified = visitor_verified || claim.verified;
    let email_verified = claim.email_verified;
    let (target, merges, take_email, proven) = match (holder_of_email, own_contact) {
        (None, own_contact) => (own_contact.clone(), vec![], true, own_contact.is_some()),
        (Some(email_holder), None) if may_follow_email => {
            (Some(email_holder.clone()), vec![], true, email_verified)
        }
        (Some(_), None) => (None, vec![], false, false),
        (Some(email_holder), Some(own)) if email_holder.id == own.id => {
            (Some(own.clone()), vec![], true, true)
        }
        (Some(email_holder), Some(own)) if !own.has_user_id => {
            if may_follow_email {
                let merge = Merge {
                    absorbed: own.id.clone(),
                    by: MergeKey::Email,
                };
                (
                    Some(email_holder.clone()),
                    vec![merge],
                    true,
                    email_verified,
                )
            } else {
                (Some(own.clone()), vec![], false, true)
            }
        }
        (Some(email_holder), Some(own)) => {
            // The visitor's contact has a user id. A verified email pulls an anonymous holder
            // in (the user id outranks the email); otherwise the email stays where it is.
            if email_verified && !email_holder.has_user_id {
                let merge = Merge {
                    absorbed: email_holder.id.clone(),
                    by: MergeKey::Email,
                };
                (Some(own.clone()), vec![merge], true, true)
            } else {
                (Some(own.clone()), vec![], false, true)
            }
        }
    };
    // An unverified claim from a visitor linked to somebody else's contact stays there and
    // may only fill absent fields; a verified one takes it away (target Nobody above).
    if target.is_none() && !claim.verified && !visitor.link_proven {
        if let Some(linked_contact) = linked {
            let take_email = holder_of_email.is_none() || same(holder_of_email, linked);
            return Resolution {
                target: Target::Existing(linked_contact.id.clone()),
                merges: vec![],
                take_email,
                visitor_verified,
                link_proven: false,
                strip_email_of: None,
                distrust_others_on: None,
            };
        }
    }
    Resolution {
        link_proven: proven && target.is_some(),
        target: target.map_or(Target::Nobody, |c| Target::Existing(c.id)),
        merges,
        take_email,
        visitor_verified,
        strip_email_of: None,
        distrust_others_on: None,
    }
}

#[cfg(test)]
mod tests {
    //! One test per rule of SPEC 1 "Contact creation and matching", read against the spec.
    use super::*;
    use serde_json::json;

    fn cand(id: &str, has_user_id: bool) -> Option<Candidate> {
        Some(Candidate {
            id: id.into(),
            has_user_id,
            email_verified: true,
        })
    }

    /// A contact that holds its email only because a claim nobody proved gave it to it.
    fn unproven(id: &str, has_user_id: bool) -> Option<Candidate> {
        Some(Candidate {
            id: id.into(),
            has_user_id,
            email_verified: false,
        })
    }

    fn claim(user_id: Option<&str>, email: Option<&str>, email_verified: bool) -> Claim {
        Claim {
            user_id: user_id.map(|u| Text::parse("user_id", u).unwrap().unwrap()),
            email: email.map(|e| Email::parse("email", e).unwrap().unwrap()),
            user_id_verified: user_id.is_some(),
            email_verified,
            verified: user_id.is_some() || email_verified,
            ..Claim::default()
        }
    }

    /// A visitor whose link to its contact is its own.
    fn own(verified: bool) -> VisitorFacts {
        VisitorFacts {
            verified,
            link_proven: true,
        }
    }

    fn merge(id: &str, by: MergeKey) -> Merge {
        Merge {
            absorbed: id.into(),
            by,
        }
    }

    #[test]
    fn rule2_user_id_outranks_email_outranks_visitor() {
        let found = Found {
            by_user_id: cand("U", true),
            by_email: cand("E", true),
            visitor_contact: cand("V", true),
        };
        let r = resolve(&claim(Some("u1"), Some("a@x.io"), true), own(true), &found);
        assert_eq!(r.target, Target::Existing("U".into()));
        let found = Found {
            by_email: cand("E", false),
            visitor_contact: None,
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("a@x.io"), false), own(false), &found);
        assert_eq!(r.target, Target::Existing("E".into()));
    }

    #[test]
    fn rule3_anonymous_visitor_contact_merges_into_holder() {
        let found = Found {
            by_user_id: cand("U", true),
            by_email: None,
            visitor_contact: cand("V", false),
        };
        let r = resolve(&claim(Some("u1"), None, false), own(false), &found);
        assert_eq!(r.target, Target::Existing("U".into()));
        assert_eq!(r.merges, vec![merge("V", MergeKey::UserId)]);

        // An unverified email moves the visitor's own anonymous contact too (rule 6 allows it).
        let found = Found {
            by_email: cand("E", false),
            visitor_contact: cand("V", false),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("a@x.io"), false), own(false), &found);
        assert_eq!(r.target, Target::Existing("E".into()));
        assert_eq!(r.merges, vec![merge("V", MergeKey::Email)]);
    }

    #[test]
    fn rule3_no_holder_updates_in_place() {
        let found = Found {
            visitor_contact: cand("V", false),
            ..Found::default()
        };
        let r = resolve(
            &claim(Some("u1"), Some("a@x.io"), false),
            own(false),
            &found,
        );
        assert_eq!(r.target, Target::Existing("V".into()));
        assert!(r.merges.is_empty());
        assert!(r.take_email);
    }

    #[test]
    fn rule4_different_user_ids_switch_and_never_merge() {
        let found = Found {
            by_user_id: cand("U2", true),
            visitor_contact: cand("U1", true),
            ..Found::default()
        };
        let r = resolve(&claim(Some("u2"), None, false), own(true), &found);
        assert_eq!(r.target, Target::Existing("U2".into()));
        assert!(r.merges.is_empty());

        // The other user id has no contact yet: the visitor leaves U1 and remembers the claim.
        let found = Found {
            visitor_contact: cand("U1", true),
            ..Found::default()
        };
        let r = resolve(&claim(Some("u2"), None, false), own(true), &found);
        assert_eq!(r.target, Target::Nobody);
        assert!(r.merges.is_empty());
    }

    #[test]
    fn rule4_email_of_another_user_id_stays_where_it_is() {
        let found = Found {
            by_email: cand("E", true),
            visitor_contact: cand("V", true),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("a@x.io"), true), own(true), &found);
        assert_eq!(r.target, Target::Existing("V".into()));
        assert!(r.merges.is_empty());
        assert!(!r.take_email);
    }

    #[test]
    fn rule6_unverified_email_never_pulls_another_contact_in() {
        let found = Found {
            by_email: cand("E", false),
            visitor_contact: cand("V", true),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("a@x.io"), false), own(true), &found);
        assert_eq!(r.target, Target::Existing("V".into()));
        assert!(r.merges.is_empty());
        assert!(!r.take_email);
    }

    #[test]
    fn rule6_unverified_email_never_switches_a_verified_visitor() {
        let found = Found {
            by_email: cand("E", false),
            visitor_contact: cand("V", false),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("b@x.io"), false), own(true), &found);
        assert_eq!(r.target, Target::Existing("V".into()));
        assert!(r.merges.is_empty());
        // Nor links it from no contact at all.
        let found = Found {
            by_email: cand("E", false),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("b@x.io"), false), own(true), &found);
        assert_eq!(r.target, Target::Nobody);
        assert!(!r.take_email);
    }

    #[test]
    fn rule6_visitor_becomes_verified_only_by_a_verified_claim() {
        let r = resolve(
            &claim(None, Some("a@x.io"), false),
            own(false),
            &Found::default(),
        );
        assert!(!r.visitor_verified);
        let r = resolve(
            &claim(None, Some("a@x.io"), true),
            own(false),
            &Found::default(),
        );
        assert!(r.visitor_verified);
        let r = resolve(
            &claim(Some("u"), None, false),
            own(false),
            &Found::default(),
        );
        assert!(r.visitor_verified);
    }

    #[test]
    fn rule7_user_id_holder_survives_and_takes_only_verified_anonymous_email_holders() {
        let base = Found {
            by_user_id: cand("U", true),
            by_email: cand("E", false),
            visitor_contact: None,
        };
        let r = resolve(&claim(Some("u"), Some("a@x.io"), true), own(true), &base);
        assert_eq!(r.target, Target::Existing("U".into()));
        assert_eq!(r.merges, vec![merge("E", MergeKey::Email)]);
        assert!(r.take_email);

        // Unverified email: E keeps it.
        let r = resolve(&claim(Some("u"), Some("a@x.io"), false), own(true), &base);
        assert!(r.merges.is_empty());
        assert!(!r.take_email);

        // E has its own user id: never merged.
        let other = Found {
            by_email: cand("E", true),
            ..base
        };
        let r = resolve(&claim(Some("u"), Some("a@x.io"), true), own(true), &other);
        assert!(r.merges.is_empty());
        assert!(!r.take_email);
    }

    #[test]
    fn unheld_user_id_does_not_take_over_an_unverified_emails_holder() {
        // The visitor's own anonymous contact takes the user id; the email's holder keeps
        // its email because only the user id is verified.
        let found = Found {
            by_email: cand("E", false),
            visitor_contact: cand("V", false),
            ..Found::default()
        };
        let r = resolve(&claim(Some("u"), Some("a@x.io"), false), own(false), &found);
        assert_eq!(r.target, Target::Existing("V".into()));
        assert!(r.merges.is_empty());
        assert!(!r.take_email);
        // With the email verified too, the spec's order applies: V merges into E.
        let r = resolve(&claim(Some("u"), Some("a@x.io"), true), own(false), &found);
        assert_eq!(r.target, Target::Existing("E".into()));
        assert_eq!(r.merges, vec![merge("V", MergeKey::Email)]);
    }

    #[test]
    fn a_verified_claim_never_takes_over_a_contact_reached_by_an_unverified_email() {
        // The visitor followed the victim's email without proof, then verifies its own email
        // (or user id) that nobody holds: it leaves the victim's contact instead of rewriting it.
        let followed = VisitorFacts {
            verified: false,
            link_proven: false,
        };
        let found = Found {
            visitor_contact: cand("VICTIM", false),
            ..Found::default()
        };
        for c in [
            claim(None, Some("att@x.io"), true),
            claim(Some("att"), None, false),
        ] {
            let r = resolve(&c, followed, &found);
            assert_eq!(r.target, Target::Nobody, "{c:?}");
            assert!(r.merges.is_empty());
        }
        // An unverified claim stays on it, filling only absent fields.
        let r = resolve(&claim(None, Some("att@x.io"), false), followed, &found);
        assert_eq!(r.target, Target::Existing("VICTIM".into()));
        assert!(!r.link_proven);
        // Nor is it merged anywhere by another unverified email.
        let found = Found {
            by_email: cand("OTHER", false),
            visitor_contact: cand("VICTIM", false),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("o@x.io"), false), followed, &found);
        assert!(r.merges.is_empty());
    }

    #[test]
    fn a_proven_email_takes_the_address_from_a_customer_that_held_it_unproven() {
        // Somebody logged in as their own user id and claimed the victim's email without proof;
        // the victim now proves it. The customer gives the email up; the victim does not land
        // on somebody else's account.
        let found = Found {
            by_email: unproven("MALLORY", true),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("v@corp.io"), true), own(false), &found);
        assert_eq!(r.strip_email_of.as_deref(), Some("MALLORY"));
        assert_eq!(r.target, Target::Nobody);
        assert!(r.take_email);
        // The same holder with the email proven is the person (rule 2).
        let found = Found {
            by_email: cand("ADA", true),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("v@corp.io"), true), own(false), &found);
        assert_eq!(r.target, Target::Existing("ADA".into()));
        assert_eq!(r.strip_email_of, None);
    }

    #[test]
    fn a_proven_email_lands_on_an_anonymous_unproven_holder_only_after_distrusting_it() {
        let found = Found {
            by_email: unproven("LEAD", false),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("v@corp.io"), true), own(false), &found);
        assert_eq!(r.target, Target::Existing("LEAD".into()));
        assert_eq!(r.distrust_others_on.as_deref(), Some("LEAD"));
        // Its own contact: the claim just proves the email.
        let found = Found {
            by_email: unproven("MINE", false),
            visitor_contact: unproven("MINE", false),
            ..Found::default()
        };
        let r = resolve(&claim(None, Some("v@corp.io"), true), own(false), &found);
        assert_eq!(r.target, Target::Existing("MINE".into()));
        assert_eq!(r.distrust_others_on, None);
    }

    #[test]
    fn overlay_forgets_a_different_person() {
        let alice = Claim {
            name: Text::parse("name", "Alice").unwrap(),
            ..claim(Some("alice"), None, false)
        };
        let c = alice.overlay(claim(Some("bob"), None, false)).unwrap();
        assert_eq!(c.user_id.unwrap().as_str(), "bob");
        assert_eq!(c.name, None);
        assert!(c.verified);
    }

    #[test]
    fn remembered_identity_stays_within_the_metadata_limit() {
        let with_keys = |from: usize, n: usize| Claim {
            metadata: (from..from + n)
                .map(|i| (format!("k{i}"), Some(json!(i))))
                .collect(),
            ..Claim::default()
        };
        // Repeating keys already remembered never counts twice.
        let c = with_keys(0, 60).overlay(with_keys(0, 100)).unwrap();
        assert_eq!(c.metadata.len(), 100);
        // New keys past 100 in all are refused, naming the field.
        let e = c.overlay(with_keys(100, 1)).unwrap_err();
        assert_eq!(e.field, "metadata");
    }

    #[test]
    fn nothing_matches_means_nobody() {
        let r = resolve(&Claim::default(), own(false), &Found::default());
        assert_eq!(r.target, Target::Nobody);
        assert!(r.take_email);
    }

    #[test]
    fn identify_requires_a_valid_hash_for_a_user_id() {
        let secret = "s3cret";
        let body = json!({"user_id": "u1", "user_hash": "nope"});
        assert_eq!(
            Claim::from_identify(&body, Some(secret)),
            Err(IdentifyError::Unverified)
        );
        let body = json!({"user_id": "u1", "user_hash": ""});
        assert_eq!(
            Claim::from_identify(&body, Some(secret)),
            Err(IdentifyError::Unverified)
        );
        let good = crate::verify::user_hash(secret, "u1");
        let c = Claim::from_identify(
            &json!({"user_id": "u1", "email": "a@x.io", "user_hash": good}),
            Some(secret),
        )
        .unwrap();
        assert!(c.user_id_verified && c.verified && !c.email_verified);
        // The hash covers the email exactly as sent when there is no user id.
        let h = crate::verify::user_hash(secret, " A@x.io");
        let c = Claim::from_identify(&json!({"email": " A@x.io", "user_hash": h}), Some(secret))
            .unwrap();
        assert!(c.email_verified && c.verified);
        let c = Claim::from_identify(&json!({"email": "a@x.io"}), Some(secret)).unwrap();
        assert!(!c.email_verified && !c.verified);
        // Verification off: everything counts as verified.
        let c = Claim::from_identify(&json!({"user_id": "u1"}), None).unwrap();
        assert!(c.user_id_verified && c.verified);
    }

    #[test]
    fn identify_rejects_bad_values_naming_the_field() {
        let e = Claim::from_identify(&json!({"email": "nope"}), None).unwrap_err();
        assert!(matches!(e, IdentifyError::Invalid(v) if v.field == "email"));
        let e = Claim::from_identify(&json!({"name": 3}), None).unwrap_err();
        assert!(matches!(e, IdentifyError::Invalid(v) if v.field == "name"));
    }

    #[test]
    fn unverified_values_beside_a_proven_claim_only_fill_absent_fields() {
        use crate::contact::Profile;
        let mut profile = Profile {
            company: Text::parse("company", "Real Co").unwrap(),
            ..Profile::default()
        };
        let mut proven = claim(Some("u"), None, false);
        proven.name = Text::parse("name", "Ann").unwrap();
        proven.unverified = Unverified {
            name: Text::parse("name", "Mallory").unwrap(),
            company: Text::parse("company", "Fake Co").unwrap(),
            phone: Phone::parse("phone", "+14155550100").unwrap(),
            metadata: [("plan".to_string(), Some(json!("pro")))]
                .into_iter()
                .collect(),
        };
        let changes = proven
            .apply_to(
                &mut profile,
                WriteMode::Overwrite,
                NewKeys::RefuseOverLimit,
                &None,
            )
            .unwrap();
        assert_eq!(
            profile.name.as_ref().unwrap().as_str(),
            "Ann",
            "the proven value wins"
        );
        assert_eq!(
            profile.company.as_ref().unwrap().as_str(),
            "Real Co",
            "never overwritten"
        );
        assert_eq!(
            profile.phone.as_ref().unwrap().as_str(),
            "+14155550100",
            "absent: filled"
        );
        assert_eq!(profile.metadata.get("plan"), Some(&json!("pro")));
        // One entry per field in the timeline, whichever step wrote it.
        let fields: Vec<&str> = changes.0.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields.iter().filter(|f| **f == "metadata").count(),
            1,
            "{fields:?}"
        );
        assert!(!fields.contains(&"company"), "{fields:?}");
    }

    #[test]
    fn overlay_keeps_unverified_extras_apart_from_the_proof() {
        let mut token = claim(Some("u"), None, false);
        token.unverified.name = Text::parse("name", "Extra").unwrap();
        // The same token again, without extras: still verified, the extras remembered.
        let c = token
            .clone()
            .overlay(claim(Some("u"), None, false))
            .unwrap();
        assert!(c.verified);
        assert_eq!(c.unverified.name.as_ref().unwrap().as_str(), "Extra");
        assert_eq!(
            c.name, None,
            "an unverified value never becomes a proven one"
        );
        // Another person: nothing of the first carries over.
        let c = token.overlay(claim(Some("v"), None, false)).unwrap();
        assert!(c.unverified.is_empty());
    }

    #[test]
    fn overlay_keeps_unverified_older_values_from_overwriting() {
        let older = Claim {
            name: Text::parse("name", "Mallory").unwrap(),
            ..Claim::default()
        };
        let newer = claim(Some("u"), None, false);
        let c = older.clone().overlay(newer.clone()).unwrap();
        assert_eq!(c.user_id, newer.user_id);
        assert!(c.user_id_verified);
        assert!(!c.verified, "an unverified name must not overwrite");
        let c = Claim::default().overlay(newer).unwrap();
        assert!(c.verified);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // The space is small (three contacts, a handful of flags): sample it densely.
            #![proptest_config(ProptestConfig::with_cases(8192))]
            /// Invariants that must hold for every combination of what the store can find.
            #[test]
            fn resolution_invariants(
                hu in proptest::option::of(0usize..3), he in proptest::option::of(0usize..3),
                vc in proptest::option::of(0usize..3), mut with_uid in any::<[bool; 3]>(),
                email_proven in any::<[bool; 3]>(),
                has_uid in any::<bool>(), has_email in any::<bool>(),
                ev in any::<bool>(), visitor_verified in any::<bool>(), link_proven in any::<bool>(),
            ) {
                // Three contacts c0..c2; the store finds the user id's holder only for a user
                // id, and that holder has a user id.
                let hu = if has_uid { hu } else { None };
                if let Some(i) = hu { with_uid[i] = true; }
                let he = if has_email { he } else { None };
                let mk = |i: Option<usize>| i.map(|i| Candidate { id: format!("c{i}"), has_user_id: with_uid[i], email_verified: email_proven[i] });
                let (hu, he, vc) = (mk(hu), mk(he), mk(vc));
                let found = Found { by_user_id: hu.clone(), by_email: he.clone(), visitor_contact: vc.clone() };
                let c = claim(has_uid.then_some("u"), has_email.then_some("a@x.io"), ev);
                let r = resolve(&c, VisitorFacts { verified: visitor_verified, link_proven }, &found);
                let all = [&hu, &he, &vc];
                let has_uid_of = |id: &str| all.iter().any(|c| matches!(c, Some(x) if x.id == id && x.has_user_id));
                for m in &r.merges {
                    // Rule 4: a contact with a user id is never absorbed.
                    prop_assert!(!has_uid_of(&m.absorbed));
                    // Nothing merges into itself.
                    prop_assert_ne!(Target::Existing(m.absorbed.clone()), r.target.clone());
                    // Rule 6: without a verified key, only the visitor's own contact moves.
                    if !c.verified {
                        prop_assert!(matches!(&vc, Some(v) if v.id == m.absorbed));
                    }
                    // A contact the visitor reached through an unverified email is absorbed only
                    // when a verified key of this claim names it (rule 7), never through the link.
                    if matches!(&vc, Some(v) if v.id == m.absorbed) && !link_proven {
                        prop_assert!(ev && he.as_ref().is_some_and(|h| h.id == m.absorbed));
                    }
                }
                // A verified claim never updates a contact the visitor did not prove.
                if c.verified && !link_proven {
                    if let (Target::Existing(t), Some(v)) = (&r.target, &vc) {
                        let reached_by_key = hu.as_ref().is_some_and(|h| &h.id == t)
                            || (ev && he.as_ref().is_some_and(|h| &h.id == t));
                        prop_assert!(t != &v.id || reached_by_key, "verified claim landed on a contact the visitor did not prove");
                    }
                }
                // A verified visitor stays verified.
                if visitor_verified { prop_assert!(r.visitor_verified); }
                // Unverified claims never move a verified visitor to another contact.
                if visitor_verified && !c.verified {
                    match (&r.target, &vc) {
                        (Target::Existing(t), Some(v)) => prop_assert_eq!(t, &v.id),
                        (Target::Existing(_), None) => prop_assert!(false, "linked by unverified claim"),
                        _ => {}
                    }
                }
                // A proven email never lands on, or merges, a contact that held it without proof
                // unless that contact is anonymous and its other visitors lose their proof first;
                // one with a user id gives the email up instead.
                if let Some(h) = he.as_ref().filter(|h| c.email.is_some() && ev && !h.email_verified) {
                    let own = link_proven && vc.as_ref().is_some_and(|v| v.id == h.id);
                    let reached = r.target == Target::Existing(h.id.clone())
                        || r.merges.iter().any(|m| m.absorbed == h.id);
                    if !own && h.has_user_id {
                        prop_assert_eq!(r.strip_email_of.as_deref(), Some(h.id.as_str()));
                        prop_assert!(!r.merges.iter().any(|m| m.absorbed == h.id));
                    }
                    if !own && reached {
                        prop_assert!(!h.has_user_id || hu.as_ref().is_some_and(|u| u.id == h.id));
                        if !h.has_user_id {
                            prop_assert_eq!(r.distrust_others_on.as_deref(), Some(h.id.as_str()));
                        }
                    }
                }
                // The user id's holder, when there is one, is always the target.
                if let Some(h) = &hu { prop_assert_eq!(&r.target, &Target::Existing(h.id.clone())); }
                // The target takes the email only when no other contact keeps it.
                if r.take_email {
                    if let Some(h) = &he {
                        let kept_elsewhere = Target::Existing(h.id.clone()) != r.target
                            && !r.merges.iter().any(|m| m.absorbed == h.id)
                            && r.strip_email_of.as_deref() != Some(h.id.as_str());
                        prop_assert!(!kept_elsewhere);
                    }
                }
            }
        }
    }
}
