//! Reads and deletes, each failure mapped once (`error::map`).

use super::error::{is_not_found, retrying, Call};
use super::Cluster;
use crate::errors::Error;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::Resource;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

fn ar_of<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

/// A kind's API as dynamic objects, namespaced or not (one generic path for both scopes).
fn api_of<K: Resource<DynamicType = ()>>(cl: &Cluster, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(cl.client.clone(), ns, &ar_of::<K>()),
        None => Api::all_with(cl.client.clone(), &ar_of::<K>()),
    }
}

/// An answer that is not the object it should be: the server is not a usable API server.
fn typed<K: DeserializeOwned>(cl: &Cluster, o: DynamicObject) -> Result<K, Error> {
    serde_json::to_value(o).and_then(serde_json::from_value).map_err(|e| Error::Unreachable {
        server: cl.server.clone(),
        context: cl.context.clone(),
        reason: format!("unexpected answer: {e}"),
    })
}

/// One object of a built-in kind; `None` when it does not exist.
pub async fn get<K>(cl: &Cluster, ns: Option<&str>, name: &str) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api = api_of::<K>(cl, ns);
    retrying(|| api.get_opt(name))
        .await
        .map_err(|e| cl.error(e, &Call::new("get", &ar_of::<K>(), ns, format!("reading {}/{name}", K::kind(&())))))?
        .map(|o| typed(cl, o))
        .transpose()
}

/// Objects of a built-in kind in a namespace (`None`: all namespaces).
pub async fn list<K>(cl: &Cluster, ns: Option<&str>, lp: &ListParams) -> Result<Vec<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api = api_of::<K>(cl, ns);
    retrying(|| api.list(lp))
        .await
        .map_err(|e| cl.error(e, &Call::new("list", &ar_of::<K>(), ns, format!("listing {}s", K::kind(&())))))?
        .items
        .into_iter()
        .map(|o| typed(cl, o))
        .collect()
}

/// Deletes an object of a built-in kind; `false` when it was not there.
pub async fn delete<K>(cl: &Cluster, ns: Option<&str>, name: &str) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api = api_of::<K>(cl, ns);
    let dp = DeleteParams::background();
    match retrying(|| api.delete(name, &dp)).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(cl.error(e, &Call::new("delete", &ar_of::<K>(), ns, format!("deleting {}/{name}", K::kind(&()))))),
    }
}

/// Deletes a rendered object of any kind; `false` when it was not there or its kind is not
/// served (nothing to delete).
pub async fn delete_object(cl: &Cluster, o: &serde_json::Value) -> Result<bool, Error> {
    let Ok((ar, caps)) = cl.resolve(o) else { return Ok(false) };
    let ns = o["metadata"]["namespace"].as_str();
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    let api = cl.api(&ar, &caps, ns);
    let dp = DeleteParams::background();
    match retrying(|| api.delete(name, &dp)).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(cl.error(e, &Call::new("delete", &ar, ns, format!("deleting {}", super::display(o))))),
    }
}

/// One custom resource; `None` when it does not exist or its kind is not served.
pub async fn get_dynamic(cl: &Cluster, gvk: (&str, &str, &str), ns: Option<&str>, name: &str) -> Result<Option<DynamicObject>, Error> {
    let Some((ar, caps)) = cl.discovery.resolve_gvk(&GroupVersionKind::gvk(gvk.0, gvk.1, gvk.2)) else { return Ok(None) };
    let api = cl.api(&ar, &caps, ns);
    retrying(|| api.get_opt(name))
        .await
        .map_err(|e| cl.error(e, &Call::new("get", &ar, ns, format!("reading {}/{name}", gvk.2))))
}

/// Objects of a custom kind in a namespace; empty when the kind is not served.
pub async fn list_dynamic(cl: &Cluster, gvk: (&str, &str, &str), ns: &str, lp: &ListParams) -> Result<Vec<DynamicObject>, Error> {
    let Some((ar, caps)) = cl.discovery.resolve_gvk(&GroupVersionKind::gvk(gvk.0, gvk.1, gvk.2)) else { return Ok(Vec::new()) };
    let api = cl.api(&ar, &caps, Some(ns));
    Ok(retrying(|| api.list(lp))
        .await
        .map_err(|e| cl.error(e, &Call::new("list", &ar, Some(ns), format!("listing {}s", gvk.2))))?
        .items)
}

/// Every object of a kind given by group/version/kind, whether discovery knows it or not
/// (CRDs: `apiextensions.k8s.io` is not among the discovered groups).
pub async fn list_gvk(cl: &Cluster, gvk: (&str, &str, &str), plural: &str) -> Result<Vec<DynamicObject>, Error> {
    let mut ar = ApiResource::from_gvk(&GroupVersionKind::gvk(gvk.0, gvk.1, gvk.2));
    ar.plural = plural.into();
    let api: Api<DynamicObject> = Api::all_with(cl.client.clone(), &ar);
    let lp = ListParams::default();
    Ok(retrying(|| api.list(&lp))
        .await
        .map_err(|e| cl.error(e, &Call::new("list", &ar, None, format!("listing {}s", gvk.2))))?
        .items)
}

/// GET through the API server's pod proxy (no port-forward, no exec); `None` when the pod
/// does not answer (not running, port closed).
pub async fn pod_proxy(cl: &Cluster, ns: &str, pod: &str, port: u16, method: &str, path: &str) -> Option<String> {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy{path}"))
        .body(Vec::new())
        .ok()?;
    cl.client.request_text(req).await.ok()
}
