//! The panel's static files, compiled into the binary (`include_bytes!`) and served under a
//! fingerprinted name (`/assets/panel.3f2a1b9c4d5e6f70.css`: the first 16 hex digits of the
//! file's SHA-256), so browsers may cache them forever: a changed file has a new URL.
//! Templates get the URLs from [`url`] only, and each `<script>` / `<link>` carries the file's
//! subresource-integrity hash ([`integrity`]), so a file altered on the way is not run.
//! Each file is gzipped once, when first needed, and sent gzipped to browsers that accept it
//! (with its own ETag, as HTTP asks of each content coding).

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256, Sha384};
use std::io::Write;
use std::sync::LazyLock;

/// One embedded file: its plain name (`panel.css`), type and bytes.
struct Source {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const SOURCES: &[Source] = &[
    Source {
        name: "panel.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/panel.css"),
    },
    Source {
        name: "panel.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/panel.js"),
    },
    Source {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/htmx.min.js"),
    },
];

/// A file ready to serve: its fingerprinted file name and its strong ETag.
struct Asset {
    source: &'static Source,
    /// `panel.3f2a1b9c4d5e6f70.css`
    file: String,
    etag: HeaderValue,
    /// The gzipped bytes and their ETag (`"<sha256>-gz"`).
    gzip: Vec<u8>,
    gzip_etag: HeaderValue,
    /// `sha384-<base64>`, for the `integrity` attribute.
    integrity: String,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|source| {
            let digest = hex::encode(Sha256::digest(source.bytes));
            let fingerprint = &digest[..16];
            let (stem, ext) = source
                .name
                .rsplit_once('.')
                .expect("asset names have an extension");
            let integrity = format!(
                "sha384-{}",
                base64::engine::general_purpose::STANDARD.encode(Sha384::digest(source.bytes))
            );
            let mut gz = GzEncoder::new(Vec::new(), Compression::best());
            let gzip = gz
                .write_all(source.bytes)
                .and_then(|_| gz.finish())
                .expect("gzip into memory cannot fail");
            Asset {
                source,
                integrity,
                file: format!("{stem}.{fingerprint}.{ext}"),
                etag: HeaderValue::from_str(&format!("\"{digest}\"")).expect("hex is a header"),
                gzip,
                gzip_etag: HeaderValue::from_str(&format!("\"{digest}-gz\""))
                    .expect("hex is a header"),
            }
        })
        .collect()
});

/// The URL of an embedded file by its plain name: `url("panel.css")` →
/// `/assets/panel.3f2a1b9c4d5e6f70.css`. Panics on a name that is not embedded (a typo in a
/// template shows in the first test that renders it).
pub fn url(name: &str) -> String {
    format!("/assets/{}", asset(name).file)
}

/// The subresource-integrity value of an embedded file (`sha384-…`).
pub fn integrity(name: &str) -> String {
    asset(name).integrity.clone()
}

fn asset(name: &str) -> &'static Asset {
    ASSETS
        .iter()
        .find(|a| a.source.name == name)
        .unwrap_or_else(|| panic!("no embedded asset named {name}"))
}

/// The URLs every page links, for templates.
#[derive(Clone)]
pub struct AssetUrls {
    pub css: String,
    pub css_integrity: String,
    pub js: String,
    pub js_integrity: String,
    pub htmx: String,
    pub htmx_integrity: String,
}

impl AssetUrls {
    pub fn get() -> AssetUrls {
        AssetUrls {
            css: url("panel.css"),
            css_integrity: integrity("panel.css"),
            js: url("panel.js"),
            js_integrity: integrity("panel.js"),
            htmx: url("htmx.min.js"),
            htmx_integrity: integrity("htmx.min.js"),
        }
    }
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /assets/{file}`: the file under its fingerprinted name, cached for a year, gzipped
/// when the browser accepts it; `304` when `If-None-Match` names the ETag of the coding it
/// would get; `404` for anything else (an old fingerprint included: the page that asked is
/// out of date).
pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.file == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let gzip = accepts_gzip(&headers);
    let etag = if gzip { &asset.gzip_etag } else { &asset.etag };
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let common = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let content_type = (
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.source.content_type),
    );
    if gzip {
        let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (common, [content_type, encoding], asset.gzip.as_slice()).into_response();
    }
    (common, [content_type], asset.source.bytes).into_response()
}

/// Whether `Accept-Encoding` lists gzip with a non-zero quality.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !q_zero
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_carry_the_content_hash() {
        let u = super::url("panel.css");
        assert!(
            u.starts_with("/assets/panel.") && u.ends_with(".css"),
            "{u}"
        );
        assert_eq!(u.len(), "/assets/panel..css".len() + 16);
    }
}
