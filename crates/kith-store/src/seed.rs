//! Synthetic data for demos and benchmarks (`kith seed`): realistic contacts (names, emails,
//! companies, phones, tags from a small vocabulary, metadata, skewed last-seen times) with
//! conversations and messages, written in large batches so a million contacts take well
//! under a minute on SQLite.

use crate::conn::{Arg, Conn};
use crate::dialect::after_bulk_rid;
use crate::ids::{new_id, now_ms};
use crate::{transact, Store, StoreError};
use kith_core::{Email, Metadata, Phone, Profile, Tags, Text};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "John",
    "Hedy",
    "Tim",
    "Radia",
    "Guido",
    "Zoë",
    "José",
    "Ångström",
    "Mary",
    "Edsger",
    "Donald",
    "Sophie",
    "Yukihiro",
    "Anders",
    "Bjarne",
    "Niklaus",
    "Karen",
    "Annie",
    "Claude",
    "Jean",
    "Lena",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "McCarthy",
    "Lamarr",
    "Berners-Lee",
    "Perlman",
    "van Rossum",
    "Müller",
    "García",
    "Nakamura",
    "Hejlsberg",
    "Stroustrup",
    "Wirth",
    "Spärck Jones",
    "Easley",
    "Shannon",
    "Sammet",
    "Johnson",
    "Wilson",
    "Brown",
    "Martin",
    "Anderson",
    "Smith",
];
const COMPANIES: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Pied Piper",
    "Aperture",
    "Black Mesa",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example",
    "corp.example",
    "inbox.example",
];
/// Tags and the share of contacts carrying each.
const TAGS: &[(&str, f64)] = &[
    ("enterprise", 0.10),
    ("trial", 0.25),
    ("churned", 0.05),
    ("vip", 0.02),
    ("newsletter", 0.40),
    ("beta", 0.08),
    ("partner", 0.01),
    ("support-priority", 0.15),
];
const PLANS: &[&str] = &["free", "starter", "pro", "enterprise"];
const MESSAGES: &[&str] = &[
    "Hi, I have a question about my invoice",
    "How do I reset my password?",
    "Can I upgrade my plan?",
    "The export button does nothing",
    "Thanks, that fixed it!",
    "Do you offer discounts for non-profits?",
];

pub struct SeedReport {
    pub contacts: u64,
    pub conversations: u64,
    pub messages: u64,
}

/// Rows of one table, flushed as multi-row INSERTs.
struct Batch {
    table: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Arg>>,
}

impl Batch {
    fn new(table: &'static str, columns: &'static [&'static str]) -> Self {
        Batch {
            table,
            columns,
            rows: Vec::new(),
        }
    }

    async fn flush<C: Conn>(&mut self, c: &mut C) -> Result<(), StoreError> {
        // Statements of a few hundred parameters: SQLite looks parameter names up linearly,
        // so binding costs grow with the square of their number.
        let per_stmt = (400 / self.columns.len()).max(1);
        let rows = std::mem::take(&mut self.rows);
        for chunk in rows.chunks(per_stmt) {
            let mut sql = format!(
                "INSERT INTO {} ({}) VALUES ",
                self.table,
                self.columns.join(", ")
            );
            let mut args = Vec::with_capacity(chunk.len() * self.columns.len());
            for (i, row) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for j in 0..row.len() {
                    if j > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${}", args.len() + j + 1));
                }
                sql.push(')');
                args.extend(row.iter().cloned());
            }
            c.execute(&sql, args).await?;
        }
        Ok(())
    }
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

impl Store {
    /// Adds `count` synthetic contacts to `org_id` (deterministic for a given `seed`), with
    /// conversations on the organization's first website.
    pub async fn seed(
        &self,
        org_id: &str,
        count: u64,
        seed: u64,
    ) -> Result<SeedReport, StoreError> {
        let websites = self.websites(org_id).await?;
        let website = websites.first().ok_or(StoreError::NotFound)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let now = now_ms();
        let day = 86_400_000i64;
        let mut report = SeedReport {
            contacts: 0,
            conversations: 0,
            messages: 0,
        };
        let batch_contacts = 20_000u64;
        // Unique values (emails, user ids) continue after the contacts already there.
        let offset = self.count_contacts(org_id, &Default::default()).await? as u64;
        let mut done = 0u64;
        while done < count {
            let n = batch_contacts.min(count - done);
            let first_index = done;
            let (c_added, conv_added, msg_added) = transact!(self, |c| {
                async {
                let (max_rid,): (Option<i64>,) =
                    c.fetch_one("SELECT max(rid) FROM contacts", vec![]).await?;
                let mut rid = max_rid.unwrap_or(0);
                let mut contacts = Batch::new("contacts", &[
                    "org_id", "id", "user_id", "email", "email_lower", "name", "phone", "company",
                    "tags", "metadata", "conversation_count", "message_count", "last_seen_at",
                    "created_at", "updated_at", "status", "name_lower", "search_text", "rid",
                ]);
                let mut tags_b = Batch::new("contact_tags", &["org_id", "contact_id", "tag"]);
                let mut visitors = Batch::new("visitors", &[
                    "org_id", "id", "website_id", "contact_id", "verified", "pending_claim",
                    "created_at", "last_seen_at",
                ]);
                let mut convs = Batch::new("conversations", &[
                    "org_id", "id", "website_id", "contact_id", "visitor_id", "status",
                    "message_count", "last_message_preview", "last_message_at", "created_at",
                    "updated_at",
                ]);
                let mut msgs = Batch::new("messages", &[
                    "org_id", "id", "conversation_id", "author", "author_id", "body", "created_at",
                ]);
                let (mut conv_n, mut msg_n) = (0u64, 0u64);
                for i in 0..n {
                    let idx = offset + first_index + i;
                    rid += 1;
                    let first = pick(&mut rng, FIRST);
                    let last = pick(&mut rng, LAST);
                    let customer = rng.gen_bool(0.4);
                    let mut p = Profile {
                        name: Text::parse("name", &format!("{first} {last}"))?,
                        email: Email::parse(
                            "email",
                            &format!(
                                "{}.{}.{idx}@{}",
                                first.to_lowercase().replace(['ë', 'é', 'Å', 'å', 'ö'], "o"),
                                last.to_lowercase().replace([' ', 'ü', 'í', 'ä'], ""),
                                pick(&mut rng, DOMAINS)
                            ),
                        )?,
                        company: rng.gen_bool(0.7).then(|| Text::from_stored(pick(&mut rng, COMPANIES).to_string())),
                        phone: if rng.gen_bool(0.3) {
                            Phone::parse("phone", &format!("+1415{:07}", rng.gen_range(0..10_000_000)))?
                        } else {
                            None
                        },
                        user_id: customer.then(|| Text::from_stored(format!("usr_{idx}"))),
                        ..Profile::default()
                    };
                    let mut tags = Tags::default();
                    for (t, share) in TAGS {
                        if rng.gen_bool(*share) {
                            tags.insert(t);
                        }
                    }
                    p.tags = tags;
                    p.metadata = Metadata::from_stored(
                        json!({"plan": pick(&mut rng, PLANS), "seats": rng.gen_range(1..200), "source": if rng.gen_bool(0.5) {"ads"} else {"organic"}})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    );
                    // Skewed activity: most contacts were seen recently, a long tail long ago,
                    // and a few (imported) never.
                    let age_days = (-(1.0 - rng.gen::<f64>()).ln() * 20.0).min(720.0);
                    let last_seen = now - (age_days * day as f64) as i64;
                    let created = last_seen - rng.gen_range(0..90) * day;
                    let never_seen = rng.gen_bool(0.02);
                    let id = new_id();
                    let visitor_id = new_id();
                    let has_conv = !never_seen && rng.gen_bool(0.6);
                    let (conv_count, msg_count) = if has_conv { (1i64, rng.gen_range(1..4i64)) } else { (0, 0) };
                    contacts.rows.push(vec![
                        org_id.into(), id.clone().into(),
                        p.user_id.as_ref().map(|t| t.as_str().to_string()).into(),
                        p.email.as_ref().map(|e| e.as_str().to_string()).into(),
                        p.email.as_ref().map(|e| e.key()).into(),
                        p.name.as_ref().map(|t| t.as_str().to_string()).into(),
                        p.phone.as_ref().map(|t| t.as_str().to_string()).into(),
                        p.company.as_ref().map(|t| t.as_str().to_string()).into(),
                        serde_json::to_string(&p.tags).unwrap_or_default().into(),
                        p.metadata.to_json().to_string().into(),
                        conv_count.into(), msg_count.into(),
                        (!never_seen).then_some(last_seen).into(),
                        created.into(), last_seen.into(),
                        p.status().as_str().into(),
                        p.name.as_ref().map(|t| t.as_str().to_lowercase()).into(),
                        p.search_text().into(),
                        rid.into(),
                    ]);
                    for t in p.tags.as_slice() {
                        tags_b.rows.push(vec![org_id.into(), id.clone().into(), t.to_lowercase().into()]);
                    }
                    if has_conv {
                        visitors.rows.push(vec![
                            org_id.into(), visitor_id.clone().into(), website.id.clone().into(),
                            id.clone().into(), customer.into(), Arg::Text(None), created.into(), last_seen.into(),
                        ]);
                        let conv_id = new_id();
                        let body = pick(&mut rng, MESSAGES);
                        convs.rows.push(vec![
                            org_id.into(), conv_id.clone().into(), website.id.clone().into(),
                            id.clone().into(), visitor_id.clone().into(),
                            pick(&mut rng, &["open", "open", "resolved", "escalated"]).into(),
                            msg_count.into(), body.into(), last_seen.into(), created.into(), last_seen.into(),
                        ]);
                        for _ in 0..msg_count {
                            msgs.rows.push(vec![
                                org_id.into(), new_id().into(), conv_id.clone().into(), "visitor".into(),
                                Arg::Text(None), body.into(), last_seen.into(),
                            ]);
                        }
                        conv_n += 1;
                        msg_n += msg_count as u64;
                    }
                }
                contacts.flush(c).await?;
                tags_b.flush(c).await?;
                visitors.flush(c).await?;
                convs.flush(c).await?;
                msgs.flush(c).await?;
                if let Some(sql) = after_bulk_rid(c.dialect()) {
                    c.execute(sql, vec![]).await?;
                }
                Ok::<_, StoreError>((n, conv_n, msg_n))
            }
            .await
            })?;
            report.contacts += c_added;
            report.conversations += conv_added;
            report.messages += msg_added;
            done += n;
        }
        Ok(report)
    }
}
