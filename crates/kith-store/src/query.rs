//! Compiling a `ListFilter` into SQL conditions with numbered placeholders.

use crate::conn::{Arg, Dialect};
use crate::dialect::{metadata_condition, search_condition};
use kith_core::filter::{ListFilter, Range};

/// SQL text under construction and its arguments; `arg` hands out `$n` in order.
#[derive(Default)]
pub(crate) struct Sql {
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn arg(&mut self, a: impl Into<Arg>) -> String {
        self.args.push(a.into());
        format!("${}", self.args.len())
    }
}

fn range(q: &mut Sql, column: &str, r: &Range, out: &mut Vec<String>) {
    if let Some(min) = r.min {
        let p = q.arg(min);
        out.push(format!("{column} >= {p}"));
    }
    if let Some(max) = r.max {
        let p = q.arg(max);
        out.push(format!("{column} <= {p}"));
    }
}

/// How a tag condition is written, for the plan that suits the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagPlan {
    /// `EXISTS` per contact: a page walks the sort index and stops after one page of
    /// matches, probing the tag index once per contact it visits.
    Probe,
    /// `c.id IN (set)`: a count visits every match, so the set is built once from the tag
    /// index instead.
    Set,
}

fn tag_condition(q: &mut Sql, org: &str, tags: &[String], plan: TagPlan) -> String {
    let list: Vec<String> = tags.iter().map(|t| q.arg(t.clone())).collect();
    match plan {
        TagPlan::Probe => format!(
            "EXISTS (SELECT 1 FROM contact_tags t WHERE t.org_id = c.org_id \
             AND t.contact_id = c.id AND t.tag IN ({}))",
            list.join(", ")
        ),
        TagPlan::Set => format!(
            "c.id IN (SELECT t.contact_id FROM contact_tags t WHERE t.org_id = {org} \
             AND t.tag IN ({}))",
            list.join(", ")
        ),
    }
}

/// Contacts with every one of `tags` (distinct): one grouped look-up however many there are.
/// A condition per tag made PostgreSQL plan a join per tag: 100 tags (the cap) took seconds
/// to plan on an empty database, for every count of such a list.
fn all_tags_condition(q: &mut Sql, org: &str, tags: &[String], plan: TagPlan) -> String {
    let list: Vec<String> = tags.iter().map(|t| q.arg(t.clone())).collect();
    let n = tags.len();
    // (org_id, contact_id, tag) is the key of contact_tags: counting rows counts tags.
    match plan {
        TagPlan::Probe => format!(
            "(SELECT count(*) FROM contact_tags t WHERE t.org_id = c.org_id \
             AND t.contact_id = c.id AND t.tag IN ({})) = {n}",
            list.join(", ")
        ),
        TagPlan::Set => format!(
            "c.id IN (SELECT t.contact_id FROM contact_tags t WHERE t.org_id = {org} \
             AND t.tag IN ({}) GROUP BY t.contact_id HAVING count(*) = {n})",
            list.join(", ")
        ),
    }
}

/// `c.org_id = $1 AND …`: the conditions of `f` over `contacts c` of one organization.
pub(crate) fn where_clause(
    d: Dialect,
    org_id: &str,
    f: &ListFilter,
    plan: TagPlan,
    q: &mut Sql,
) -> String {
    let org = q.arg(org_id);
    let mut parts = vec![format!("c.org_id = {org}")];
    for s in &f.status {
        let p = q.arg(s.as_str());
        parts.push(format!("c.status = {p}"));
    }
    let mut all: Vec<String> = f.tags_all.clone();
    all.sort();
    all.dedup();
    match all.len() {
        0 => {}
        1 => parts.push(tag_condition(q, &org, &all, plan)),
        _ => parts.push(all_tags_condition(q, &org, &all, plan)),
    }
    for group in &f.tags_any {
        parts.push(tag_condition(q, &org, group, plan));
    }
    if !f.tags_none.is_empty() {
        parts.push(format!(
            "NOT {}",
            tag_condition(q, &org, &f.tags_none, plan)
        ));
    }
    for term in &f.q {
        parts.push(search_condition(d, term, q));
    }
    for cond in &f.metadata {
        parts.push(metadata_condition(d, cond, q));
    }
    range(q, "c.last_seen_at", &f.last_seen_at, &mut parts);
    range(q, "c.created_at", &f.created_at, &mut parts);
    range(q, "c.message_count", &f.message_count, &mut parts);
    range(q, "c.conversation_count", &f.conversation_count, &mut parts);
    for w in &f.website_ids {
        let p = q.arg(w.clone());
        parts.push(format!(
            "EXISTS (SELECT 1 FROM conversations cv WHERE cv.org_id = c.org_id \
             AND cv.contact_id = c.id AND cv.website_id = {p})"
        ));
    }
    parts.join(" AND ")
}
