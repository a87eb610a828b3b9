//! Size limits from the product contract (SPEC "Limits"). One place, so the validation
//! messages and the OpenAPI document agree.

/// Characters allowed in name, email, phone, company and user_id.
pub const FIELD_MAX_CHARS: usize = 255;
/// Characters allowed in one message body.
pub const MESSAGE_MAX_CHARS: usize = 10_000;
/// Tags on one contact.
pub const TAGS_MAX: usize = 100;
/// Characters in one tag.
pub const TAG_MAX_CHARS: usize = 64;
/// Keys in one contact's metadata.
pub const METADATA_MAX_KEYS: usize = 100;
/// Characters in one metadata key.
pub const METADATA_KEY_MAX_CHARS: usize = 64;
/// Characters in one metadata string value.
pub const METADATA_VALUE_MAX_CHARS: usize = 1_000;
/// Characters of the last message kept as a conversation's preview.
pub const PREVIEW_CHARS: usize = 140;
/// The most items one page of a list answers (`limit`), and how many when `limit` is absent.
pub const PAGE_LIMIT_MAX: i64 = 200;
pub const PAGE_LIMIT_DEFAULT: i64 = 50;

/// Characters of a message's `Idempotency-Key` header (SPEC, widget API).
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 64;
