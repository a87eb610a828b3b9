//! The query string of `GET /api/v1/contacts` as the handler reads it: decoded by
//! `QueryMap::parse`, turned into a filter, order and page size by `filter_from_query`.
//!
//! Invariants: bad input is a 4xx answer (never a 500 or a panic); an accepted query has a
//! limit of 1–200 and tags and search terms within their limits and stable; its filter's
//! stored form parses again.
#![no_main]

use axum::response::IntoResponse;
use kith_core::filter::{search_term, tag_key, ListFilter};
use kith_server::extract::QueryMap;
use kith_server::routes::admin::filter_from_query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    match filter_from_query(&QueryMap::parse(query)) {
        Ok(q) => {
            assert!((1..=200).contains(&q.limit), "limit {}", q.limit);
            let f = &q.filter;
            for t in f
                .tags_all
                .iter()
                .chain(&f.tags_none)
                .chain(f.tags_any.iter().flatten())
            {
                assert_eq!(tag_key("tag", t).as_deref(), Ok(t.as_str()));
            }
            for t in &f.q {
                assert_eq!(
                    search_term("q", t).ok().flatten().as_deref(),
                    Some(t.as_str())
                );
            }
            // The ad-hoc filter's first of each kind is what a saved list would store.
            let stored = f.to_json();
            ListFilter::parse(&stored)
                .unwrap_or_else(|e| panic!("stored form {stored} does not parse: {e}"));
        }
        Err(e) => {
            let status = e.into_response().status();
            assert!(status.is_client_error(), "{query:?} answered {status}");
        }
    }
});
