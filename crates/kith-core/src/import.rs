//! CSV import and export, the pure part: which column means which field (the names of the
//! peers' exports included), how one row's cells become a profile edit, and how a contact is
//! written back as cells that import reads again. The store reads the file and applies the
//! edits; nothing here touches a file or a database.

use crate::contact::{Email, Metadata, MetadataPatch, Phone, Profile, ProfilePatch, Tags, Text};
use crate::limits::TAGS_MAX;
use crate::validate::ValidationError;
use serde_json::Value;

/// What one column of an import file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Name,
    FirstName,
    LastName,
    Email,
    Phone,
    Company,
    Tags,
    UserId,
    /// A JSON object of metadata (what export writes).
    MetadataJson,
    /// Read-only columns export writes (id, stats, times): not imported.
    Ignored,
    /// Anything else: a metadata key, named as the header spells it (trimmed).
    Metadata(String),
}

/// The header names understood, compared lower-cased with `_`, `-` and runs of spaces read as
/// one space. Documented in docs/import-export.md.
fn known(normalized: &str) -> Option<Column> {
    Some(match normalized {
        "name" | "full name" => Column::Name,
        "first name" | "firstname" | "given name" => Column::FirstName,
        "last name" | "lastname" | "family name" | "surname" => Column::LastName,
        "email" | "email address" | "e mail" => Column::Email,
        "phone" | "phone number" | "mobile" | "mobile phone" | "mobile phone number" => {
            Column::Phone
        }
        "company" | "company name" => Column::Company,
        "tags" | "tag" | "labels" | "label" => Column::Tags,
        "user id" | "userid" | "external id" | "identifier" => Column::UserId,
        "metadata" => Column::MetadataJson,
        "id" | "status" | "created at" | "updated at" | "last seen at" | "conversation count"
        | "message count" => Column::Ignored,
        _ => return None,
    })
}

fn normalize(header: &str) -> String {
    header
        .trim()
        .to_lowercase()
        .replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The meaning of every column of a file, from its header row.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    pub columns: Vec<Column>,
}

impl ColumnMap {
    /// Reads a header row. Refuses a header without a user_id or email column (rows could not
    /// be matched, and a file without a header row looks like that), and a field named by two
    /// columns (which one would win is a guess).
    pub fn parse<S: AsRef<str>>(headers: &[S]) -> Result<ColumnMap, ValidationError> {
        let mut columns = Vec::with_capacity(headers.len());
        for h in headers {
            let raw = h.as_ref();
            let col = known(&normalize(raw)).unwrap_or_else(|| Column::Metadata(raw.trim().into()));
            if !matches!(col, Column::Ignored | Column::Metadata(_)) && columns.contains(&col) {
                return Err(ValidationError::new(
                    "header",
                    format!("two columns mean the same field (the second is {raw:?}); keep one"),
                ));
            }
            if let Column::Metadata(k) = &col {
                if k.is_empty() {
                    // An unnamed column: nothing to call its values, so they are not imported.
                    columns.push(Column::Ignored);
                    continue;
                }
            }
            columns.push(col);
        }
        let identifies = columns
            .iter()
            .any(|c| matches!(c, Column::UserId | Column::Email));
        if !identifies {
            return Err(ValidationError::new(
                "header",
                "the first row must be a header naming the columns, with a user_id or an email \
                 column to match contacts by (see docs/import-export.md for the names understood)",
            ));
        }
        Ok(ColumnMap { columns })
    }

    pub fn has(&self, col: &Column) -> bool {
        self.columns.contains(col)
    }
}

/// One row, validated: the values it gives (empty cells give nothing and clear nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportRow {
    pub user_id: Option<Text>,
    pub email: Option<Email>,
    pub name: Option<Text>,
    pub phone: Option<Phone>,
    pub company: Option<Text>,
    /// Added to the contact's tags (a union; import never removes a tag).
    pub tags: Vec<String>,
    pub metadata: MetadataPatch,
}

/// Splits a tags cell: a JSON array of strings (what export writes when a tag holds a comma
/// or semicolon), else labels separated by commas or semicolons (Chatwoot writes commas,
/// HubSpot multi-selects semicolons).
pub fn split_tags(cell: &str) -> Result<Vec<String>, ValidationError> {
    let t = cell.trim();
    if t.starts_with('[') {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(t) {
            return items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(ValidationError::new(
                        "tags",
                        "a JSON array of tags holds only strings",
                    )),
                })
                .collect();
        }
    }
    Ok(t.split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

impl ImportRow {
    /// Validates one row's cells (as many as the header; a ragged row is refused before
    /// this). Any invalid value refuses the whole row, naming the column.
    pub fn parse<S: AsRef<str>>(
        map: &ColumnMap,
        cells: &[S],
    ) -> Result<ImportRow, ValidationError> {
        let mut row = ImportRow::default();
        let (mut first, mut last, mut full) = (None, None, None);
        for (col, cell) in map.columns.iter().zip(cells) {
            let cell = cell.as_ref();
            if cell.trim().is_empty() {
                continue;
            }
            match col {
                Column::Name => full = Text::parse("name", cell)?,
                Column::FirstName => first = Text::parse("first name", cell)?,
                Column::LastName => last = Text::parse("last name", cell)?,
                Column::Email => row.email = Email::parse("email", cell)?,
                Column::Phone => row.phone = Phone::parse("phone", cell)?,
                Column::Company => row.company = Text::parse("company", cell)?,
                Column::UserId => row.user_id = Text::parse("user_id", cell)?,
                Column::Tags => {
                    let tags = split_tags(cell)?;
                    // The domain's own checks (length, controls, count).
                    Tags::parse("tags", &Value::from(tags.clone()))?;
                    row.tags = tags;
                }
                Column::MetadataJson => {
                    let v: Value = serde_json::from_str(cell.trim()).map_err(|_| {
                        ValidationError::new(
                            "metadata",
                            "must be a JSON object like {\"plan\": \"pro\"}",
                        )
                    })?;
                    for (k, v) in Metadata::parse_patch("metadata", &v)? {
                        row.metadata.insert(k, v);
                    }
                }
                Column::Metadata(key) => {
                    let one = serde_json::json!({ key.as_str(): cell.trim() });
                    row.metadata
                        .extend(Metadata::parse_patch("metadata", &one)?);
                }
                Column::Ignored => {}
            }
        }
        row.name = match (full, first, last) {
            (Some(n), _, _) => Some(n),
            (None, Some(f), Some(l)) => {
                Text::parse("name", &format!("{} {}", f.as_str(), l.as_str()))?
            }
            (None, Some(n), None) | (None, None, Some(n)) => Some(n),
            (None, None, None) => None,
        };
        if row.user_id.is_none() && row.email.is_none() {
            // Nothing to match it by: importing the file again would add the person again.
            return Err(ValidationError::new(
                "row",
                "has neither a user_id nor an email, so it cannot be matched to a contact",
            ));
        }
        if row.metadata.len() > crate::limits::METADATA_MAX_KEYS {
            return Err(ValidationError::new(
                "metadata",
                format!("at most {} keys", crate::limits::METADATA_MAX_KEYS),
            ));
        }
        Ok(row)
    }

    /// The admin-like edit this row makes to `current`: given fields overwrite, tags are
    /// added, metadata keys merged. Refuses what would pass a contact's limits.
    pub fn patch_for(&self, current: &Profile) -> Result<ProfilePatch, ValidationError> {
        let mut tags = current.tags.clone();
        for t in &self.tags {
            if !tags.insert(t) {
                continue;
            }
            if tags.as_slice().len() > TAGS_MAX {
                return Err(ValidationError::new(
                    "tags",
                    format!("the contact would have more than {TAGS_MAX} tags"),
                ));
            }
        }
        let after = {
            let mut keys: std::collections::BTreeSet<&str> =
                current.metadata.iter().map(|(k, _)| k.as_str()).collect();
            for (k, v) in &self.metadata {
                match v {
                    Some(_) => keys.insert(k),
                    None => keys.remove(k.as_str()),
                };
            }
            keys.len()
        };
        if after > crate::limits::METADATA_MAX_KEYS {
            return Err(ValidationError::new(
                "metadata",
                format!(
                    "the contact would have more than {} metadata keys",
                    crate::limits::METADATA_MAX_KEYS
                ),
            ));
        }
        Ok(ProfilePatch {
            user_id: self.user_id.clone().map(Some),
            email: self.email.clone().map(Some),
            name: self.name.clone().map(Some),
            phone: self.phone.clone().map(Some),
            company: self.company.clone().map(Some),
            tags: (!self.tags.is_empty()).then_some(tags),
            metadata: (!self.metadata.is_empty()).then(|| self.metadata.clone()),
        })
    }
}

/// The columns export writes, in order; import reads back the writable ones.
pub const EXPORT_COLUMNS: [&str; 14] = [
    "id",
    "user_id",
    "email",
    "name",
    "phone",
    "company",
    "tags",
    "metadata",
    "status",
    "created_at",
    "updated_at",
    "last_seen_at",
    "conversation_count",
    "message_count",
];

/// The tags cell: joined by ", " unless a tag holds a separator, then a JSON array (which
/// `split_tags` reads back exactly).
pub fn tags_cell(tags: &[String]) -> String {
    if tags
        .iter()
        .any(|t| t.contains([',', ';']) || t.starts_with('['))
    {
        serde_json::to_string(tags).unwrap_or_default()
    } else {
        tags.join(", ")
    }
}

/// A cell as written to a file people open in spreadsheets: a value starting with `=`, `+`,
/// `-` or `@` (or a tab or carriage return) would run as a formula there, so it gets a
/// leading `'` (OWASP's advice for CSV injection). Import takes the `'` off again.
pub fn spreadsheet_safe(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// Undoes `spreadsheet_safe` on a cell read from a file.
pub fn unescape_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests;
