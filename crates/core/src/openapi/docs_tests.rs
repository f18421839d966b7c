//! The written route list (`docs/routes.md`, and any table in `docs/`) against the OpenAPI
//! document: every path and method the worker serves must have a row, and every row of
//! `docs/routes.md` must name a route that exists, so the prose cannot drift from the code.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::tests::parsed;

const METHODS: &[&str] = &["get", "put", "post", "patch", "delete"];

fn docs_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs"))
}

/// `(METHOD, path)` of every table row `| METHOD | `path` | …` in `text`.
fn rows(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .strip_prefix('|')?
                .split('|')
                .map(str::trim)
                .collect();
            let method = cells.first()?;
            let path = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            METHODS
                .contains(&method.to_ascii_lowercase().as_str())
                .then(|| (method.to_string(), path.to_owned()))
        })
        .collect()
}

fn documented() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(docs_dir()).expect("docs/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            out.extend(rows(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

fn served() -> BTreeSet<(String, String)> {
    let doc = parsed();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(*method).is_some() {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_of_the_openapi_document_has_a_row_in_docs() {
    let documented = documented();
    let missing: Vec<String> = served()
        .into_iter()
        .filter(|route| !documented.contains(route))
        .map(|(m, p)| format!("| {m} | `{p}` |"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes in the OpenAPI document with no row in docs/ (add them to docs/routes.md):\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_row_of_routes_md_is_a_served_route() {
    let served = served();
    let text = std::fs::read_to_string(docs_dir().join("routes.md")).unwrap();
    let listed = rows(&text);
    let stale: Vec<String> = listed
        .iter()
        .filter(|route| !served.contains(route))
        .map(|(m, p)| format!("| {m} | `{p}` |"))
        .collect();
    assert!(
        stale.is_empty(),
        "rows of docs/routes.md that the OpenAPI document does not describe:\n{}",
        stale.join("\n")
    );
    // The table is read, not skipped: a parser that found nothing would pass vacuously.
    assert!(!listed.is_empty(), "no route rows read from docs/routes.md");
}

#[test]
fn the_row_reader_takes_method_and_exact_path_only() {
    let text = "| GET | `/a/{id}` | admin | x |\n| method | path |\n|---|---|\n| POST | `/b` (also `/c`) | — |\n  | DELETE | `/d` |\nGET `/e`";
    let want: BTreeSet<(String, String)> = [("GET", "/a/{id}"), ("DELETE", "/d")]
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    assert_eq!(rows(text), want);
}
