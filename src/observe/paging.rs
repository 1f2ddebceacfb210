//! Paged list reads: `limit` + `continue`, each page folded into an aggregate and dropped, so memory
//! follows the aggregate, not the number of objects. An expired continue token (410) restarts the list
//! from the beginning with a fresh aggregate.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::Client;
use kube::api::ListParams;
use kube::core::Request;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::client::is_expired;

/// Objects per page, as kubectl's `--chunk-size` default.
pub const PAGE_SIZE: u32 = 500;

/// How often an expired list is restarted before giving up (each restart reads from the start).
const MAX_RESTARTS: u32 = 3;

/// One page of a list; `T` carries only the fields a fold reads, so the rest of each object is skipped
/// while parsing.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Page<T> {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    items: Vec<T>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Which representation to ask the server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Full,
    /// `PartialObjectMetadataList`: names, labels, annotations and owners only.
    Metadata,
}

/// Lists `path` (for example `/api/v1/pods`) page by page, folding each object into `A`.
pub async fn fold_pages<T, A>(
    client: &Client,
    path: &str,
    selector: Option<&str>,
    shape: Shape,
    mut fold: impl FnMut(&mut A, T),
) -> Result<A, kube::Error>
where
    T: DeserializeOwned,
    A: Default,
{
    let mut acc = A::default();
    let mut token: Option<String> = None;
    let mut restarts = 0;
    loop {
        let mut lp = ListParams::default().limit(PAGE_SIZE);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let request = Request::new(path);
        let request = match shape {
            Shape::Full => request.list(&lp),
            Shape::Metadata => request.list_metadata(&lp),
        }
        .map_err(kube::Error::BuildRequest)?;
        match client.request::<Page<T>>(request).await {
            Ok(page) => {
                for item in page.items {
                    fold(&mut acc, item);
                }
                match page.metadata.continue_ {
                    Some(next) if !next.is_empty() => token = Some(next),
                    _ => return Ok(acc),
                }
            }
            Err(e) if token.is_some() && is_expired(&e) && restarts < MAX_RESTARTS => {
                tracing::info!(path, "continue token expired; restarting the list");
                restarts += 1;
                token = None;
                acc = A::default();
            }
            Err(e) => return Err(e),
        }
    }
}

/// The metadata every fold needs; other fields are skipped while parsing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub owner_references: Vec<OwnerRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
    pub controller: Option<bool>,
}

/// Any object, read for its metadata only.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MetaOnly {
    pub metadata: Meta,
}

pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A collection path: `/apis/apps/v1` + optional `/namespaces/NS` + `/deployments`.
pub fn collection(group_version_path: &str, namespace: Option<&str>, plural: &str) -> String {
    match namespace {
        Some(ns) => format!("{group_version_path}/namespaces/{ns}/{plural}"),
        None => format!("{group_version_path}/{plural}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_with_null_items_and_skip_unread_fields() {
        let page: Page<MetaOnly> = serde_json::from_str(
            r#"{"kind":"PodList","metadata":{"continue":"abc"},"items":null}"#,
        )
        .unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.metadata.continue_.as_deref(), Some("abc"));
        let page: Page<MetaOnly> = serde_json::from_str(
            r#"{"metadata":{},"items":[{"metadata":{"name":"a","namespace":"n","labels":null,
              "managedFields":[{"manager":"x"}]},"spec":{"huge":[1,2,3]}}]}"#,
        )
        .unwrap();
        assert_eq!(page.items[0].metadata.name, "a");
        assert!(page.items[0].metadata.labels.is_empty());
    }

    #[test]
    fn collection_paths() {
        assert_eq!(
            collection("/apis/apps/v1", Some("istio-system"), "deployments"),
            "/apis/apps/v1/namespaces/istio-system/deployments"
        );
        assert_eq!(collection("/api/v1", None, "pods"), "/api/v1/pods");
    }
}
