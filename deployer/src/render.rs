//! Templates + values -> the objects, in apply order. No cluster needed.

use crate::config::Plan;
use crate::errors::Error;
use crate::identity::Generated;
use crate::template::{substitute, Mesh, Scope, Step, TEMPLATES};
use crate::values::Values;
use base64::Engine as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The three filters, by file stem, in chain order.
pub const FILTERS: [&str; 3] = ["health", "router", "add_response"];

/// The filters' .wasm bytes.
#[derive(Debug, Clone)]
pub struct Filters(pub BTreeMap<String, Vec<u8>>);

impl Filters {
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let mut m = BTreeMap::new();
        for f in FILTERS {
            let path = dir.join(format!("{f}.wasm"));
            let bytes = std::fs::read(&path).map_err(|e| {
                Error::Local(format!(
                    "cannot read filter {}: {e}\n  hint: build the filters at the repository root with \
                     `cargo build --release --target wasm32-wasip1`, or pass --filters-dir DIR",
                    path.display()
                ))
            })?;
            if !bytes.starts_with(b"\0asm") {
                return Err(Error::Local(format!("{} is not a WebAssembly module", path.display())));
            }
            m.insert(f.to_string(), bytes);
        }
        Ok(Filters(m))
    }

    /// Stand-in bytes for commands that apply no filter objects (`scale`, `down`).
    pub fn placeholder() -> Self {
        Filters(FILTERS.iter().map(|f| (f.to_string(), b"\0asm\x01\0\0\0".to_vec())).collect())
    }

    pub fn sha256(&self, name: &str) -> String {
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &self.0[name]))
    }
}

/// Everything a render needs.
pub struct Input<'a> {
    pub plan: &'a Plan,
    pub generated: &'a Generated,
    pub filters: &'a Filters,
    /// Pod name -> its public swarm multiaddrs (known once the swarm Services have addresses).
    pub announce: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Object {
    pub step: Step,
    pub value: Value,
    /// Applied only where the cluster serves its kind (`Template::if_served`).
    pub if_served: bool,
}

impl Object {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    #[cfg(test)]
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
    /// `Kind/name`, for messages.
    #[cfg(test)]
    pub fn display(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }
}

/// The plan as template values: values.env's defaults with the plan's settings over them.
/// The only place the plan becomes strings.
fn template_values(p: &Plan) -> Values {
    // The defaults and the plan's values; their keys are checked by `every_placeholder_*`.
    let mut v = Values::defaults();
    v.set("NAME", &p.name);
    v.set("NAMESPACE", &p.namespace);
    v.set("DOMAIN", &p.domain);
    v.set("ACME_EMAIL", &p.acme_email);
    v.set("ACME_SERVER", &p.acme_server);
    v.set("REPLICAS", p.replicas.to_string());
    v.set("STORAGE_CLASS", &p.storage_class);
    v.set("KUBO_STORAGE_SIZE", &p.kubo_storage_size);
    v.set("CLUSTER_STORAGE_SIZE", &p.cluster_storage_size);
    v.set("KUBO_IMAGE", &p.kubo_image);
    v.set("CLUSTER_IMAGE", &p.cluster_image);
    v.set("GATEWAY_CLASS", &p.gateway_class);
    v.set("SWARM_SERVICE_TYPE", format!("{:?}", p.swarm_service_type));
    v.set("SWARM_IP", p.swarm_ip.map(|ip| ip.to_string()).unwrap_or_default());
    v.set("RATE_LIMIT_PER_MINUTE", p.rate_limit_per_minute.to_string());
    v.set("GATEWAY_INFRASTRUCTURE", gateway_infrastructure(p).to_string());
    if let Some(router) = &p.router {
        v.set("FILTER_CONFIG_ROUTER", router.to_string());
    }
    if let Some(health) = &p.health {
        v.set("FILTER_CONFIG_HEALTH", health.to_string());
    }
    v
}

/// The Gateway's `infrastructure`: with Envoy Gateway, its EnvoyProxy (envoy-proxy.yaml);
/// `null` (left out) with Istio.
fn gateway_infrastructure(p: &Plan) -> Value {
    match p.mesh {
        crate::template::Mesh::EnvoyGateway => serde_json::json!({
            "parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": format!("{}-proxy", p.name)}
        }),
        crate::template::Mesh::Istio => Value::Null,
    }
}

pub fn render(input: &Input) -> Result<Vec<Object>, Error> {
    let mut values = template_values(input.plan);
    let replicas = input.plan.replicas;
    values.set("CLUSTER_SECRET", input.generated.cluster_secret.clone());
    values.set("PEER_IDENTITIES", input.generated.identities_json().to_string());
    values.set("API_TOKENS", input.generated.api_tokens_json().to_string());
    let announce: BTreeMap<&String, String> =
        input.announce.iter().map(|(k, v)| (k, Value::from(v.clone()).to_string())).collect();
    let announce_json = serde_json::to_string(&announce).expect("strings");
    values.set(
        "ANNOUNCE_SHA256",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, announce_json.as_bytes())),
    );
    values.set("ANNOUNCE_ADDRESSES", announce_json);
    for f in FILTERS {
        values.set(&format!("WASM_SHA256_{}", f.to_uppercase()), input.filters.sha256(f));
    }
    for key in ["FILTER_CONFIG_ADD_RESPONSE", "FILTER_CONFIG_HEALTH", "FILTER_CONFIG_ROUTER"] {
        // Filter configuration is inlined as a YAML flow mapping: it must be a JSON object.
        match serde_json::from_str::<Value>(values.need(key)?) {
            Ok(Value::Object(_)) => {}
            _ => return Err(Error::Usage(format!("{key} must be a JSON object"))),
        }
    }
    let health = health_config(values.need("FILTER_CONFIG_HEALTH")?)?;
    let mut router: Value = serde_json::from_str(values.need("FILTER_CONFIG_ROUTER")?).unwrap_or_default();
    router_health_paths(&mut router, &health)?;
    let tokens = input.generated.api_tokens.clone().unwrap_or_default();
    values.set("FILTER_CONFIG_ROUTER", with_token_digests(&router, &tokens, &[]).to_string());
    let cfg = add_response_config(values.need("FILTER_CONFIG_ADD_RESPONSE")?, &input.plan.kubo_image, values.need("MAX_UPLOAD_BYTES")?)?;
    values.set("FILTER_CONFIG_ADD_RESPONSE", cfg.to_string());
    let (unmarked, marked) = health_matches(&health);
    values.set("HEALTH_MATCHES", unmarked.to_string());
    values.set("HEALTH_MATCHES_MARKED", marked.to_string());
    values.set("HEALTH_MATCHES_FIXED", fixed_health_matches(&health).to_string());
    values.set("HEALTH_OK_BODY", Value::from(edge_logic::health::ok_answer().1).to_string());

    let mut out = Vec::new();
    for t in TEMPLATES.iter().filter(|t| t.mesh.is_none_or(|m| m == input.plan.mesh)) {
        let mut instances = Vec::new();
        match t.scope {
            Scope::Once => instances.push(values.clone()),
            Scope::PerPeer => {
                for i in 0..replicas {
                    let mut v = values.clone();
                    v.set("ORDINAL", i.to_string());
                    v.set("SWARM_PUBLIC_PORT", input.plan.swarm_public_port(i).to_string());
                    instances.push(v);
                }
            }
            Scope::PerFilter => {
                for f in FILTERS {
                    let mut v = values.clone();
                    v.set("FILTER", f);
                    v.set("FILTER_DNS", f.replace('_', "-"));
                    v.set(
                        "FILTER_BASE64",
                        base64::engine::general_purpose::STANDARD.encode(&input.filters.0[f]),
                    );
                    instances.push(v);
                }
            }
        }
        for v in instances {
            let text = substitute(t.path, t.text, &v).map_err(Error::Usage)?;
            for doc in parse_documents(t.path, &text)? {
                out.push(Object { step: t.step, value: finish(doc), if_served: t.if_served });
            }
        }
    }
    active_health_checks(&mut out, input.plan.mesh, &values)?;
    native_reads(&mut out, &values)?;
    fixed_health_answers(&mut out, &health, values.need("NAME")?);
    Ok(out)
}

/// Where the health answers are fixed (`HealthConfig::answers_are_fixed`), Envoy Gateway's
/// probes route answers them (envoy-gateway/native-health.yaml) and the HTTP listener's health
/// policy, which has nothing else, is left out. Otherwise the probes route and its filter are.
/// `up` deletes what an earlier run made and this one leaves out ([`optional_objects`]).
///
/// The HTTPS health policy keeps the health filter either way, though with the probes route it
/// answers nothing (what reaches it is another method): Envoy Gateway names a policy's VMs by
/// their index in its `wasm` list, and a list changed in place (a module taken out, the next
/// moving up) had Envoy run the other module with this one's configuration after a live update
/// (seen: the router given health's active configuration, and refusing it). A stable list
/// leaves every switch between modes a change of configuration only.
fn fixed_health_answers(objects: &mut Vec<Object>, health: &edge_logic::health::HealthConfig, name: &str) {
    let [probes, ok, http_policy] = fixed_health_objects(name);
    let is = |o: &Object, ((_, _, kind), n): &(Gvk, String)| o.kind() == *kind && o.name() == n;
    if health.answers_are_fixed() {
        objects.retain(|o| !is(o, &http_policy));
    } else {
        objects.retain(|o| !is(o, &probes) && !is(o, &ok));
    }
}

/// (group, version, kind) of an object.
pub type Gvk = (&'static str, &'static str, &'static str);

const HTTP_ROUTE: Gvk = ("gateway.networking.k8s.io", "v1", "HTTPRoute");

/// The probes route, its direct response, and the HTTP listener's health policy: the objects
/// [`fixed_health_answers`] chooses between.
fn fixed_health_objects(name: &str) -> [(Gvk, String); 3] {
    [
        (HTTP_ROUTE, format!("{name}-probes")),
        (("gateway.envoyproxy.io", "v1alpha1", "HTTPRouteFilter"), format!("{name}-health-ok")),
        (("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"), format!("{name}-health-http")),
    ]
}

/// Every object a render may leave out, depending on the configuration, as (group, version,
/// kind) and name: what `up` and `down` delete when this render has none of it, so an earlier
/// configuration's object never outlives it (a native read route serving reads the router now
/// refuses, a probes route answering 200 where active health should say 503). Only Envoy
/// Gateway's templates have such objects.
pub fn optional_objects(p: &Plan) -> Vec<(Gvk, String)> {
    if p.mesh != Mesh::EnvoyGateway {
        return Vec::new();
    }
    let mut out = vec![(HTTP_ROUTE, native_reads_route(&p.name))];
    out.extend(fixed_health_objects(&p.name));
    out
}

/// The native read route (envoy-gateway/native-reads.yaml) as the router's policy has it:
/// left out where the gateway is not public, keeping Authorization where the router forwards
/// it (`edge_logic::router::native_read`). `up` deletes one left from an earlier run.
fn native_reads(objects: &mut Vec<Object>, values: &Values) -> Result<(), Error> {
    let name = native_reads_route(values.need("NAME")?);
    let policy = edge_logic::router::Policy::from_json(values.need("FILTER_CONFIG_ROUTER")?.as_bytes())
        .map_err(|e| Error::Usage(format!("FILTER_CONFIG_ROUTER: {e}")))?;
    let is_it = |o: &Object| o.kind() == "HTTPRoute" && o.name() == name;
    match edge_logic::router::native_read::native_reads(&policy) {
        None => objects.retain(|o| !is_it(o)),
        Some(n) if !n.strip_authorization => {
            for o in objects.iter_mut().filter(|o| is_it(o)) {
                for rule in o.value["spec"]["rules"].as_array_mut().into_iter().flatten() {
                    for f in rule["filters"].as_array_mut().into_iter().flatten() {
                        if let Some(m) = f["requestHeaderModifier"].as_object_mut() {
                            m.remove("remove");
                        }
                    }
                }
            }
        }
        Some(_) => {}
    }
    Ok(())
}

/// The name of the native read route for deployment `name`.
pub fn native_reads_route(name: &str) -> String {
    format!("{name}-reads")
}

/// Active health mode without `checks` runs the filter's default checks, which name
/// manifests/envoy/envoy.yaml's clusters. Envoy Gateway names its clusters after the route
/// rules (`httproute/<namespace>/<route>/rule/<index>`), so the deployer writes the same
/// checks with the cluster of the rule each backend's mark selects, and a host name for
/// authority (the API Service's). Istio names its clusters otherwise: there `checks` must be
/// given.
fn active_health_checks(objects: &mut [Object], mesh: Mesh, values: &Values) -> Result<(), Error> {
    let cfg: Value = serde_json::from_str(values.need("FILTER_CONFIG_HEALTH")?).unwrap_or_default();
    if !cfg["active"].is_object() || cfg["active"].get("checks").is_some() {
        return Ok(());
    }
    if mesh == Mesh::Istio {
        return Err(Error::Usage(
            "the health configuration: active mode with Istio needs `active.checks` naming Istio's clusters \
             (`outbound|<port>||<service host>`); the default checks name the static Envoy file's"
                .into(),
        ));
    }
    let cluster_of = |mark: &str| -> Option<String> {
        objects.iter().filter(|o| o.kind() == "HTTPRoute").find_map(|r| {
            let rules = r.value["spec"]["rules"].as_array()?;
            let i = rules.iter().position(|rule| {
                rule["matches"].as_array().into_iter().flatten().any(|m| {
                    m["headers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|h| h["name"] == edge_logic::backend::BACKEND_HEADER && h["value"] == mark)
                })
            })?;
            Some(format!("httproute/{}/{}/rule/{i}", r.value["metadata"]["namespace"].as_str().unwrap_or_default(), r.name()))
        })
    };
    let authority = format!("{}-api.{}.svc.{}", values.need("NAME")?, values.need("NAMESPACE")?, values.need("CLUSTER_DOMAIN")?);
    let mut checks = Vec::new();
    for c in edge_logic::health::default_checks() {
        let mark = edge_logic::health::default_check_backend(&c.name).map(|b| b.header_value());
        let cluster = mark
            .and_then(cluster_of)
            .ok_or_else(|| Error::Usage(format!("no rendered route rule for the health check {:?}: give `active.checks`", c.name)))?;
        checks.push(serde_json::json!({"name": c.name, "cluster": cluster, "authority": authority, "method": c.method, "path": c.path}));
    }
    for o in objects.iter_mut().filter(|o| o.kind() == "EnvoyExtensionPolicy") {
        for w in o.value["spec"]["wasm"].as_array_mut().into_iter().flatten().filter(|w| w["name"] == "health") {
            w["config"]["active"]["checks"] = Value::Array(checks.clone());
        }
    }
    Ok(())
}

/// The router configuration with the deployer's API tokens: the digest (`sha256:<hex>`) of
/// each of `tokens` in `credentials.bearer_tokens` (after the entries already there, each
/// once, in name order), and those of `revoked` taken out. Never a token itself. The one
/// place digests enter the router's configuration (`up`, `render`, `token`).
pub fn with_token_digests(config: &Value, tokens: &BTreeMap<String, String>, revoked: &[&str]) -> Value {
    let mut cfg = config.clone();
    if !cfg.is_object() {
        return cfg; // refused by the router's own check before it is applied
    }
    let gone: Vec<String> = revoked.iter().map(|t| edge_logic::router::bearer_digest(t)).collect();
    let mut list: Vec<Value> = cfg["credentials"]["bearer_tokens"].as_array().cloned().unwrap_or_default();
    list.retain(|e| !e.as_str().is_some_and(|e| gone.iter().any(|g| g == e)));
    for token in tokens.values() {
        let d = Value::from(edge_logic::router::bearer_digest(token));
        if !list.contains(&d) {
            list.push(d);
        }
    }
    if !cfg["credentials"].is_object() {
        if list.is_empty() {
            return cfg;
        }
        cfg["credentials"] = Value::Object(Default::default());
    }
    cfg["credentials"]["bearer_tokens"] = Value::from(list);
    cfg
}

/// Where a policy object holds the router's configuration: an EnvoyExtensionPolicy's
/// `wasm[rootID=router].config`, a WasmPlugin's `pluginConfig` when it runs the router
/// (`pluginName: router`); `None` for any other object. The one place that knows it
/// (`up` reads it back, `token` rewrites it).
pub fn router_config_mut(o: &mut Value) -> Option<&mut Value> {
    match o["kind"].as_str()? {
        "EnvoyExtensionPolicy" => o["spec"]["wasm"].as_array_mut()?.iter_mut().find(|w| w["rootID"] == "router").map(|w| &mut w["config"]),
        "WasmPlugin" if o["spec"]["pluginName"] == "router" => Some(&mut o["spec"]["pluginConfig"]),
        _ => None,
    }
}

/// The policies that carry the router's configuration, for the plan's mesh: (group,
/// version, kind) and names. With Envoy Gateway the router runs in each policy that
/// attaches filters to a set of HTTPS routes (edge/extension-policy.yaml), so a token's
/// digest goes into each; with Istio in its own WasmPlugin. A render test holds this list
/// to the rendered objects.
pub fn router_policy_refs(p: &Plan) -> ((&'static str, &'static str, &'static str), Vec<String>) {
    match p.mesh {
        Mesh::EnvoyGateway => (
            ("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"),
            ["filters", "health", "add"].iter().map(|s| format!("{}-{s}", p.name)).collect(),
        ),
        Mesh::Istio => (("extensions.istio.io", "v1alpha1", "WasmPlugin"), vec![format!("{}-router", p.name)]),
    }
}

/// The router's configuration in a policy object (`router_config_mut`), if it has one.
pub fn router_config(o: &Value) -> Option<Value> {
    router_config_mut(&mut o.clone()).map(|v| v.clone()).filter(|v| !v.is_null())
}

/// add_response's configuration: Kubo's version lives only in KUBO_IMAGE (the `Server`
/// header add_response writes must name the Kubo that actually runs), the upload limit in
/// MAX_UPLOAD_BYTES; keys set in the configuration itself win.
fn add_response_config(base: &str, kubo_image: &str, max_upload: &str) -> Result<Value, Error> {
    let mut cfg: serde_json::Map<String, Value> = serde_json::from_str(base)
        .map_err(|_| Error::Usage("FILTER_CONFIG_ADD_RESPONSE must be a JSON object".into()))?;
    if let Some(version) = kubo_version(kubo_image) {
        cfg.entry("server").or_insert_with(|| format!("kubo/{version}").into());
    }
    let limit: u64 =
        max_upload.parse().map_err(|_| Error::Usage("MAX_UPLOAD_BYTES must be a number of bytes (0: no limit)".into()))?;
    cfg.entry("max_upload_bytes").or_insert_with(|| limit.into());
    Ok(Value::Object(cfg))
}

/// The router marks `health` the paths the health filter answers: one fact, kept in the
/// health filter's `paths`. A router configuration that names other paths is an error (the
/// health route would not match what the router sends to it).
fn router_health_paths(router: &mut Value, health: &edge_logic::health::HealthConfig) -> Result<(), Error> {
    let paths = health.paths.clone();
    let Some(cfg) = router.as_object_mut() else { return Ok(()) };
    match cfg.get("health_paths") {
        None => {
            cfg.insert("health_paths".into(), paths.into());
            Ok(())
        }
        Some(given) if *given == Value::from(paths.clone()) => Ok(()),
        Some(given) => Err(Error::Usage(format!(
            "FILTER_CONFIG_ROUTER's health_paths {given} differ from the paths the health filter answers \
             (FILTER_CONFIG_HEALTH's paths, {}): set the paths there only",
            Value::from(paths)
        ))),
    }
}

/// The health filter's configuration, read by the filter's own code.
fn health_config(config: &str) -> Result<edge_logic::health::HealthConfig, Error> {
    edge_logic::health::HealthConfig::from_json(config.as_bytes()).map_err(|e| Error::Usage(format!("FILTER_CONFIG_HEALTH: {e}")))
}

/// The health route's matches, unmarked and marked `health`: one Exact path per path the
/// health filter answers (its own reading of its configuration, so the route and the filter
/// cannot disagree), so that it runs on those paths only.
fn health_matches(cfg: &edge_logic::health::HealthConfig) -> (Value, Value) {
    let path = |p: &String| serde_json::json!({"type": "Exact", "value": p});
    let unmarked = cfg.paths.iter().map(|p| serde_json::json!({"path": path(p)})).collect();
    let mark = serde_json::json!([{"type": "Exact", "name": edge_logic::backend::BACKEND_HEADER, "value": "health"}]);
    let marked = cfg.paths.iter().map(|p| serde_json::json!({"path": path(p), "headers": mark})).collect();
    (Value::Array(unmarked), Value::Array(marked))
}

/// The probes route's matches: a GET and a HEAD of each path the health filter answers, the
/// requests whose answer is fixed in passive mode (`HealthConfig::takes`; the query is not
/// matched, as the filter ignores it).
fn fixed_health_matches(cfg: &edge_logic::health::HealthConfig) -> Value {
    let m = |p: &String, method: &str| serde_json::json!({"path": {"type": "Exact", "value": p}, "method": method});
    cfg.paths.iter().flat_map(|p| [m(p, "GET"), m(p, "HEAD")]).collect()
}

/// The version in a Kubo image's tag without its `v` (`…/kubo:v0.42.0@sha256:…` -> `0.42.0`);
/// `None` for a digest-only or non-version tag (the filter then keeps its own default).
pub fn kubo_version(image: &str) -> Option<String> {
    let image = image.split('@').next().unwrap_or(image);
    let (repo, tag) = image.rsplit_once(':')?;
    if tag.contains('/') || repo.is_empty() {
        return None; // a registry port, not a tag
    }
    let v = tag.strip_prefix('v').unwrap_or(tag);
    let core = v.split(['-', '+']).next().unwrap_or(v);
    let parts: Vec<&str> = core.split('.').collect();
    (parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        .then(|| v.to_string())
}

fn parse_documents(path: &str, text: &str) -> Result<Vec<Value>, Error> {
    use serde::Deserialize as _;
    let mut docs = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(de)
            .map_err(|e| Error::Usage(format!("{path}: rendered YAML does not parse: {e}")))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// Drops null fields (an empty value such as STORAGE_CLASS means "unset") and turns a
/// Secret's stringData into data, so a re-apply compares equal to what the server stores.
fn finish(mut v: Value) -> Value {
    prune_nulls(&mut v);
    // The server stores an empty `data` as none; sent as `{}` it would count as a change
    // on every re-apply (servers before 1.27).
    if v["kind"] == "ConfigMap" && v["data"].as_object().is_some_and(|m| m.is_empty()) {
        v.as_object_mut().expect("object").remove("data");
    }
    if v["kind"] == "Secret" {
        if let Some(Value::Object(sd)) = v.as_object_mut().and_then(|o| o.remove("stringData")) {
            let data: serde_json::Map<String, Value> = sd
                .into_iter()
                .map(|(k, s)| {
                    let s = s.as_str().map(str::to_string).unwrap_or_else(|| s.to_string());
                    (k, base64::engine::general_purpose::STANDARD.encode(s).into())
                })
                .collect();
            v["data"] = Value::Object(data);
        }
        // As for a ConfigMap: an empty `data` is stored as none (all API tokens revoked).
        if v["data"].as_object().is_some_and(|m| m.is_empty()) {
            v.as_object_mut().expect("object").remove("data");
        }
    }
    v
}

fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(prune_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// Multi-document YAML of the objects.
pub fn to_yaml(objects: &[Object]) -> String {
    let mut s = String::new();
    for o in objects {
        s.push_str("---\n");
        s.push_str(&serde_yaml_ng::to_string(&o.value).expect("JSON values serialize"));
    }
    s
}

/// One file per object: `NN-kind-name.yaml`, NN the apply order.
pub fn write_dir(objects: &[Object], dir: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Local(format!("cannot create {}: {e}", dir.display())))?;
    let mut paths = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let path = dir.join(format!("{:02}-{}-{}.yaml", i, o.kind().to_lowercase(), o.name()));
        std::fs::write(&path, serde_yaml_ng::to_string(&o.value).expect("JSON values serialize"))
            .map_err(|e| Error::Local(format!("cannot write {}: {e}", path.display())))?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::template::Mesh;

    /// Small stand-in modules: the real filters are built by another crate for wasm32.
    pub fn fake_filters() -> Filters {
        Filters(FILTERS.iter().map(|f| (f.to_string(), format!("\0asm\x01\0\0\0{f}").into_bytes())).collect())
    }

    /// Discovery asks only for `k8s::GROUPS`: a template of a group missing there would fail
    /// every `up` at discovery, and a group no template uses costs a request each run.
    #[test]
    fn discovery_groups_are_the_templates_groups() {
        let mut used = std::collections::BTreeSet::new();
        for mesh in [Mesh::EnvoyGateway, Mesh::Istio] {
            for o in sample(mesh, 2) {
                used.insert(crate::k8s::split_api_version(o.api_version()).0.to_string());
            }
        }
        let listed: std::collections::BTreeSet<String> = crate::k8s::GROUPS.iter().map(|g| g.to_string()).collect();
        assert_eq!(used, listed, "groups the templates use vs k8s::GROUPS");
    }

    pub fn sample(mesh: Mesh, replicas: u32) -> Vec<Object> {
        render_plan(&Settings { mesh: Some(mesh), replicas: Some(replicas), ..Default::default() }.plan().unwrap())
    }

    /// The default plan for `mesh` with `replicas` and the health configuration `health`.
    pub fn plan_with_health(mesh: Mesh, replicas: u32, health: &str) -> Plan {
        let mut plan = Settings { mesh: Some(mesh), replicas: Some(replicas), ..Default::default() }.plan().unwrap();
        plan.health = Some(serde_json::from_str(health).unwrap());
        plan
    }

    /// `plan` rendered with fresh identities and the fake filters.
    pub fn render_plan(plan: &Plan) -> Vec<Object> {
        let mut generated = Generated::default();
        generated.ensure(plan.replicas);
        render(&Input { plan, generated: &generated, filters: &fake_filters(), announce: BTreeMap::new() }).unwrap()
    }

    /// The `wasm` entries of every EnvoyExtensionPolicy, of one filter (`rootID`) or all.
    fn eg_wasm(objs: &[Object], root: Option<&str>) -> Vec<Value> {
        let entries = objs.iter().filter(|o| o.kind() == "EnvoyExtensionPolicy").flat_map(|o| o.value["spec"]["wasm"].as_array().unwrap().clone());
        entries.filter(|w| root.is_none_or(|r| w["rootID"] == r)).collect()
    }

    fn find<'a>(objs: &'a [Object], kind: &str, name: &str) -> &'a Value {
        &objs.iter().find(|o| o.kind() == kind && o.name() == name).unwrap_or_else(|| panic!("{kind}/{name}")).value
    }

    fn swarm(objs: &[Object]) -> Vec<&Object> {
        objs.iter().filter(|o| o.name().starts_with("ipfs-cluster-swarm-")).collect()
    }

    #[test]
    fn a_tcp_and_a_udp_service_per_pod_selected_by_pod_name() {
        let objs = sample(Mesh::EnvoyGateway, 4);
        let swarm = swarm(&objs);
        assert_eq!(swarm.len(), 8);
        // GKE refuses mixed protocols in one LoadBalancer Service: one protocol each.
        for s in &swarm {
            let ports = s.value["spec"]["ports"].as_array().unwrap();
            assert_eq!(ports.len(), 1, "{}", s.name());
            let want = if s.name().ends_with("-udp") { "UDP" } else { "TCP" };
            assert_eq!(ports[0]["protocol"], want, "{}", s.name());
            assert_eq!((ports[0]["port"].as_u64(), ports[0]["targetPort"].as_u64()), (Some(4001), Some(4001)));
            assert_eq!(s.value["spec"]["type"], "LoadBalancer");
            assert!(s.value["spec"].get("loadBalancerIP").is_none(), "no shared address unless set");
        }
        let udp3 = find(&objs, "Service", "ipfs-cluster-swarm-3-udp");
        assert_eq!(udp3["spec"]["selector"]["statefulset.kubernetes.io/pod-name"], "ipfs-cluster-3");
        assert_eq!(find(&objs, "Service", "ipfs-cluster-swarm-3")["spec"]["selector"]["statefulset.kubernetes.io/pod-name"], "ipfs-cluster-3");
    }

    #[test]
    fn a_shared_static_ip_gives_each_pod_its_own_port() {
        let s = Settings { swarm_ip: Some("203.0.113.9".parse().unwrap()), replicas: Some(3), ..Default::default() };
        let plan = s.plan().unwrap();
        let mut g = Generated::default();
        g.ensure(3);
        let objs = render(&Input { plan: &plan, generated: &g, filters: &fake_filters(), announce: BTreeMap::new() }).unwrap();
        for (name, port) in [("ipfs-cluster-swarm-0", 4001), ("ipfs-cluster-swarm-2-udp", 4003)] {
            let svc = find(&objs, "Service", name);
            assert_eq!(svc["spec"]["loadBalancerIP"], "203.0.113.9");
            assert_eq!(svc["spec"]["ports"][0]["port"], port, "{name}");
            assert_eq!(svc["spec"]["ports"][0]["targetPort"], 4001, "{name}");
        }
        let node_port = Settings { swarm_ip: Some("203.0.113.9".parse().unwrap()), swarm_service_type: Some(crate::config::SwarmServiceType::NodePort), ..Default::default() };
        assert!(matches!(node_port.plan(), Err(Error::Usage(_))));
    }

    /// The Kubo container's start script, run by `sh` with a stand-in `ipfs` that records
    /// its arguments (the real one is not on this machine's PATH for tests).
    fn kubo_config_calls(pod_ip: &str) -> Vec<String> {
        let objs = sample(Mesh::EnvoyGateway, 1);
        let sts = find(&objs, "StatefulSet", "ipfs-cluster");
        let kubo = &sts["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(kubo["name"], "kubo");
        assert!(kubo["env"].as_array().unwrap().iter().any(|e| e["name"] == "POD_IP" && e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"));
        let script = kubo["args"][0].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("log");
        std::fs::write(bin.join("ipfs"), format!("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\t' \"$a\"; done >> {}\necho >> {}\n", log.display(), log.display())).unwrap();
        std::process::Command::new("chmod").arg("+x").arg(bin.join("ipfs")).status().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        std::fs::write(repo.join("config"), "{}").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("IPFS_PATH", &repo)
            .env("POD_NAME", "ipfs-cluster-0")
            .env("POD_IP", pod_ip)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(&log).unwrap().lines().map(str::to_string).collect()
    }

    #[test]
    fn kubo_lets_peers_of_the_cluster_dial_each_other_over_pod_ips() {
        let server: Vec<String> = crate::values::Values::defaults().req("KUBO_SERVER_ADDR_FILTERS").split(' ').map(str::to_string).collect();
        for (ip, own) in [("10.8.1.7", "/ip4/10.0.0.0/ipcidr/8"), ("100.72.0.9", "/ip4/100.64.0.0/ipcidr/10"), ("172.20.3.4", "/ip4/172.16.0.0/ipcidr/12"), ("fd12::5", "/ip6/fc00::/ipcidr/7")] {
            let calls = kubo_config_calls(ip);
            for key in ["Swarm.AddrFilters", "Addresses.NoAnnounce"] {
                let call = calls.iter().find(|c| c.starts_with(&format!("config\t--json\t{key}\t"))).unwrap_or_else(|| panic!("{key}: {calls:?}"));
                let list: Vec<String> = serde_json::from_str(call.split('\t').nth(3).unwrap()).unwrap();
                let want: Vec<String> = server.iter().filter(|f| *f != own).cloned().collect();
                assert_eq!(list, want, "{ip} {key}");
            }
        }
        // A public pod address keeps the whole server list.
        let calls = kubo_config_calls("34.1.2.3");
        let call = calls.iter().find(|c| c.contains("Swarm.AddrFilters")).unwrap();
        assert_eq!(serde_json::from_str::<Vec<String>>(call.split('\t').nth(3).unwrap()).unwrap(), server);
        assert_eq!(server.len(), 19, "Kubo v0.42.0's defaultServerFilters has 19 entries");
    }

    #[test]
    fn headless_service_publishes_not_ready_peers() {
        let objs = sample(Mesh::EnvoyGateway, 3);
        let s = find(&objs, "Service", "ipfs-cluster-peers");
        assert_eq!(s["spec"]["clusterIP"], "None");
        assert_eq!(s["spec"]["publishNotReadyAddresses"], true);
        let sts = find(&objs, "StatefulSet", "ipfs-cluster");
        assert_eq!(sts["spec"]["serviceName"], "ipfs-cluster-peers");
        assert_eq!(sts["spec"]["replicas"], 3);
        assert_eq!(sts["spec"]["podManagementPolicy"], "Parallel");
    }

    #[test]
    fn empty_storage_class_is_left_out() {
        let objs = sample(Mesh::EnvoyGateway, 1);
        let sts = find(&objs, "StatefulSet", "ipfs-cluster");
        for t in sts["spec"]["volumeClaimTemplates"].as_array().unwrap() {
            assert!(t["spec"].get("storageClassName").is_none());
        }
    }

    #[test]
    fn secrets_are_data_with_every_identity() {
        let objs = sample(Mesh::EnvoyGateway, 3);
        let s = find(&objs, "Secret", "ipfs-cluster-identities");
        assert!(s.get("stringData").is_none());
        let keys: Vec<_> = s["data"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 6, "{keys:?}");
        let cs = find(&objs, "Secret", "ipfs-cluster-cluster-secret");
        let raw = base64::engine::general_purpose::STANDARD.decode(cs["data"]["cluster-secret"].as_str().unwrap()).unwrap();
        assert_eq!(raw.len(), 64);
    }

    #[test]
    fn filters_are_pinned_by_sha256_and_served_in_cluster() {
        let filters = fake_filters();
        let objs = sample(Mesh::EnvoyGateway, 1);
        let wasm = eg_wasm(&objs, None);
        let names: std::collections::BTreeSet<_> = wasm.iter().map(|w| w["rootID"].as_str().unwrap()).collect();
        assert_eq!(names, FILTERS.into_iter().collect());
        for w in &wasm {
            let root = w["rootID"].as_str().unwrap();
            assert_eq!(w["code"]["http"]["sha256"], filters.sha256(root));
            assert_eq!(
                w["code"]["http"]["url"],
                format!("http://ipfs-cluster-filters.ipfs-cluster.svc.cluster.local/{root}.wasm")
            );
        }
        let cm = find(&objs, "ConfigMap", "ipfs-cluster-wasm-add-response");
        let b = cm["binaryData"]["add_response.wasm"].as_str().unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(b).unwrap(), filters.0["add_response"]);
    }

    #[test]
    fn istio_mode_has_wasm_plugins_and_no_envoy_gateway_objects() {
        let objs = sample(Mesh::Istio, 2);
        let kinds: Vec<_> = objs.iter().map(|o| o.kind()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "WasmPlugin").count(), 3);
        for k in ["EnvoyExtensionPolicy", "ClientTrafficPolicy", "BackendTrafficPolicy", "GatewayClass"] {
            assert!(!kinds.contains(&k), "{k} in istio mode");
        }
        assert_eq!(find(&objs, "Gateway", "ipfs-cluster")["spec"]["gatewayClassName"], "istio");
    }

    #[test]
    fn the_filters_metrics_are_scraped_where_each_mesh_serves_them() {
        let values = crate::values::Values::defaults();
        for mesh in [Mesh::EnvoyGateway, Mesh::Istio] {
            let objs = sample(mesh, 1);
            // Only the PodMonitor waits for its kind to be served: everything else is needed.
            let optional: Vec<_> = objs.iter().filter(|o| o.if_served).map(|o| o.display()).collect();
            assert_eq!(optional, ["PodMonitor/ipfs-cluster-edge"], "{}", mesh.as_str());
            let pm = &find(&objs, "PodMonitor", "ipfs-cluster-edge")["spec"];
            assert_eq!(pm["podMetricsEndpoints"][0]["path"], "/stats/prometheus");
            match mesh {
                Mesh::EnvoyGateway => {
                    // The proxies run in Envoy Gateway's namespace, labelled with their Gateway;
                    // the GatewayClass gives them the EnvoyProxy with the tag rules.
                    assert_eq!(pm["namespaceSelector"]["matchNames"][0], values.req("ENVOY_GATEWAY_NAMESPACE"));
                    assert_eq!(pm["selector"]["matchLabels"]["gateway.envoyproxy.io/owning-gateway-name"], "ipfs-cluster");
                    assert_eq!(pm["podMetricsEndpoints"][0]["port"], "metrics");
                    // Named by the Gateway, in its namespace; the shared GatewayClass names none.
                    assert!(find(&objs, "GatewayClass", "envoy-gateway")["spec"].get("parametersRef").is_none());
                    let gw = find(&objs, "Gateway", "ipfs-cluster");
                    let r = &gw["spec"]["infrastructure"]["parametersRef"];
                    let proxy = find(&objs, "EnvoyProxy", r["name"].as_str().unwrap());
                    assert_eq!(r["kind"], "EnvoyProxy");
                    assert_eq!(proxy["metadata"]["namespace"], gw["metadata"]["namespace"]);
                    // values.env's default (for use without the deployer) is what the deployer renders.
                    assert_eq!(serde_json::from_str::<Value>(values.req("GATEWAY_INFRASTRUCTURE")).unwrap(), gw["spec"]["infrastructure"]);
                    let patches = proxy["spec"]["bootstrap"]["jsonPatches"].as_array().unwrap();
                    assert!(!patches.is_empty() && patches.iter().all(|p| p["path"] == "/stats_config/stats_tags/-"));
                }
                Mesh::Istio => {
                    assert_eq!(pm["selector"]["matchLabels"]["gateway.networking.k8s.io/gateway-name"], "ipfs-cluster");
                    assert_eq!(pm["podMetricsEndpoints"][0]["port"], "http-envoy-prom");
                    assert!(!objs.iter().any(|o| o.kind() == "EnvoyProxy"));
                    assert!(find(&objs, "Gateway", "ipfs-cluster")["spec"].get("infrastructure").is_none());
                }
            }
        }
    }

    #[test]
    fn routes_follow_the_router_header_to_each_backend() {
        let objs = sample(Mesh::EnvoyGateway, 1);
        let mut seen = BTreeMap::new();
        for o in objs.iter().filter(|o| o.kind() == "HTTPRoute") {
            for rule in o.value["spec"]["rules"].as_array().unwrap() {
                for m in rule["matches"].as_array().into_iter().flatten() {
                    for h in m["headers"].as_array().into_iter().flatten() {
                        assert_eq!(h["name"], "x-ipfs-edge-backend");
                        let port = rule["backendRefs"][0]["port"].as_u64().unwrap();
                        seen.insert(h["value"].as_str().unwrap().to_string(), port);
                    }
                }
            }
        }
        let want: BTreeMap<String, u64> =
            [("gateway", 8080), ("proxy", 9095), ("kubo", 5001), ("rest", 9094), ("health", 8080)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn announce_addresses_change_the_pod_template() {
        let plan = Settings::default().plan().unwrap();
        let mut g = Generated::default();
        g.ensure(3);
        let f = fake_filters();
        let a = render(&Input { plan: &plan, generated: &g, filters: &f, announce: BTreeMap::new() }).unwrap();
        let announce = BTreeMap::from([("ipfs-cluster-0".to_string(), vec!["/ip4/203.0.113.7/tcp/4001".to_string()])]);
        let b = render(&Input { plan: &plan, generated: &g, filters: &f, announce }).unwrap();
        let ann = |o: &[Object]| find(o, "StatefulSet", "ipfs-cluster")["spec"]["template"]["metadata"]["annotations"].clone();
        assert_ne!(ann(&a), ann(&b));
        let cm = find(&b, "ConfigMap", "ipfs-cluster-announce");
        assert_eq!(cm["data"]["ipfs-cluster-0"], "[\"/ip4/203.0.113.7/tcp/4001\"]");
    }

    #[test]
    fn the_health_route_takes_the_health_filters_paths() {
        // The default, as the README's recipe without the deployer spells it.
        let readme = include_str!("../../manifests/kubernetes/README.md");
        let (unmarked, marked) = health_matches(&health_config("{}").unwrap());
        let fixed = fixed_health_matches(&health_config("{}").unwrap());
        let body = Value::from(edge_logic::health::ok_answer().1);
        for (key, want) in [("HEALTH_MATCHES", &unmarked), ("HEALTH_MATCHES_MARKED", &marked), ("HEALTH_MATCHES_FIXED", &fixed), ("HEALTH_OK_BODY", &body)] {
            let line = readme.lines().find(|l| l.starts_with(&format!("export {key}='"))).unwrap_or_else(|| panic!("README: no {key}"));
            let v: Value = serde_json::from_str(line.split('\'').nth(1).unwrap()).unwrap();
            assert_eq!(&v, want, "README's {key}");
        }
        let (unmarked, marked) = health_matches(&health_config(r#"{"paths": ["/", "/healthz"]}"#).unwrap());
        assert_eq!(unmarked, serde_json::json!([{"path": {"type": "Exact", "value": "/"}}, {"path": {"type": "Exact", "value": "/healthz"}}]));
        assert_eq!(marked[1]["headers"][0]["value"], "health");
        assert!(health_config(r#"{"paths": []}"#).is_err());
    }

    #[test]
    fn the_router_marks_health_where_the_health_filter_answers() {
        let health = &health_config(r#"{"paths": ["/", "/healthz"]}"#).unwrap();
        let mut router = serde_json::json!({"preset": "read-only"});
        router_health_paths(&mut router, health).unwrap();
        assert_eq!(router["health_paths"], serde_json::json!(["/", "/healthz"]));
        // Given and the same: kept; given and different: refused, naming both.
        router_health_paths(&mut router, health).unwrap();
        let mut other = serde_json::json!({"health_paths": ["/"]});
        let e = router_health_paths(&mut other, health).unwrap_err().to_string();
        assert!(e.contains("health_paths") && e.contains("/healthz"), "{e}");
        // The defaults agree, so envoy.yaml's filters (both default) mark and answer alike.
        let (h, r) = (edge_logic::health::HealthConfig::from_json(b"{}").unwrap(), edge_logic::router::Policy::from_json(b"{}").unwrap());
        assert_eq!(h.paths, r.health_paths);
        // Rendered into the route.
        let objs = sample(Mesh::EnvoyGateway, 1);
        let rules = find(&objs, "HTTPRoute", "ipfs-cluster-health")["spec"]["rules"].clone();
        assert_eq!(rules[1]["matches"], serde_json::json!([{"path": {"type": "Exact", "value": "/"}}]));
    }

    #[test]
    fn add_response_server_header_follows_the_kubo_image() {
        assert_eq!(kubo_version("docker.io/ipfs/kubo:v0.42.0").as_deref(), Some("0.42.0"));
        assert_eq!(kubo_version("reg:5000/ipfs/kubo:v0.43.0-rc1@sha256:ab").as_deref(), Some("0.43.0-rc1"));
        assert_eq!(kubo_version("reg:5000/ipfs/kubo"), None);
        assert_eq!(kubo_version("ipfs/kubo:latest"), None);
        // The default image is the latest Kubo, the add_response filter's DEFAULT_SERVER.
        assert_eq!(crate::values::Values::defaults().req("KUBO_IMAGE"), "docker.io/ipfs/kubo:v0.42.0");
        for mesh in [Mesh::EnvoyGateway, Mesh::Istio] {
            let objs = sample(mesh, 1);
            let cfg = match mesh {
                Mesh::EnvoyGateway => eg_wasm(&objs, Some("add_response"))[0]["config"].clone(),
                Mesh::Istio => find(&objs, "WasmPlugin", "ipfs-cluster-add-response")["spec"]["pluginConfig"].clone(),
            };
            assert_eq!(cfg, serde_json::json!({"server": "kubo/0.42.0", "max_upload_bytes": 10737418240u64}), "{}", mesh.as_str());
        }
        let plan = Settings { kubo_image: Some("ipfs/kubo:v0.41.1".into()), ..Default::default() }.plan().unwrap();
        let mut g = Generated::default();
        g.ensure(1);
        let objs = render(&Input { plan: &plan, generated: &g, filters: &fake_filters(), announce: BTreeMap::new() }).unwrap();
        let w = eg_wasm(&objs, Some("add_response"))[0].clone();
        assert_eq!(w["config"], serde_json::json!({"server": "kubo/0.41.1", "max_upload_bytes": 10737418240u64}));
        // Keys of the configuration itself win.
        let cfg = add_response_config(r#"{"max_line_bytes":1024,"server":"x"}"#, "ipfs/kubo:v0.41.1", "5").unwrap();
        assert_eq!(cfg, serde_json::json!({"max_line_bytes": 1024, "server": "x", "max_upload_bytes": 5}));
        assert!(add_response_config("[]", "k", "5").is_err());
    }

    #[test]
    fn active_health_checks_aim_at_envoy_gateways_clusters() {
        let render_with = |health: Value, mesh: Mesh| {
            let mut plan = Settings { mesh: Some(mesh), ..Default::default() }.plan().unwrap();
            plan.health = Some(health);
            let mut g = Generated::default();
            g.ensure(1);
            render(&Input { plan: &plan, generated: &g, filters: &fake_filters(), announce: BTreeMap::new() })
        };
        let objs = render_with(serde_json::json!({"active": {}}), Mesh::EnvoyGateway).unwrap();
        let configs: Vec<Value> = eg_wasm(&objs, Some("health")).iter().map(|w| w["config"].clone()).collect();
        assert_eq!(configs.len(), 2, "the health policies of both listeners");
        let checks = configs[0]["active"]["checks"].as_array().unwrap().clone();
        assert!(configs.iter().all(|c| c["active"]["checks"].as_array() == Some(&checks)));
        // Each default check, on the cluster of the rule its backend's mark selects.
        let rule_of = |route: &str, mark: &str| -> String {
            let r = find(&objs, "HTTPRoute", route);
            let i = r["spec"]["rules"].as_array().unwrap().iter().position(|rule| rule.to_string().contains(&format!("\"value\":\"{mark}\""))).unwrap();
            format!("httproute/ipfs-cluster/{route}/rule/{i}")
        };
        let got: Vec<(&str, &str, &str)> =
            checks.iter().map(|c| (c["name"].as_str().unwrap(), c["cluster"].as_str().unwrap(), c["path"].as_str().unwrap())).collect();
        assert_eq!(
            got,
            vec![
                ("cluster_rest", rule_of("ipfs-cluster-rest", "rest").as_str(), "/health"),
                ("kubo_rpc", rule_of("ipfs-cluster-rpc", "kubo").as_str(), "/api/v0/version"),
                ("gateway", rule_of("ipfs-cluster-gateway", "gateway").as_str(), "/ipfs/bafkqaaa"),
            ]
        );
        assert!(checks.iter().all(|c| c["authority"] == "ipfs-cluster-api.ipfs-cluster.svc.cluster.local"));
        // Checks given are the user's; Istio cannot be guessed for.
        let given = serde_json::json!({"active": {"checks": [{"cluster": "c", "path": "/"}]}});
        let objs = render_with(given.clone(), Mesh::EnvoyGateway).unwrap();
        assert_eq!(eg_wasm(&objs, Some("health"))[0]["config"], given);
        let e = render_with(serde_json::json!({"active": {}}), Mesh::Istio).unwrap_err().to_string();
        assert!(e.contains("active.checks"), "{e}");
        assert!(render_with(given, Mesh::Istio).is_ok());
    }

    #[test]
    fn the_router_configuration_reaches_the_filter_in_both_meshes() {
        let router = serde_json::json!({"preset": "none", "credentials": {"basic": {"op": "correct horse battery"}}});
        for mesh in [Mesh::EnvoyGateway, Mesh::Istio] {
            let mut plan = Settings { mesh: Some(mesh), ..Default::default() }.plan().unwrap();
            plan.router = Some(router.clone());
            let mut g = Generated::default();
            g.ensure(1);
            let objs = render(&Input { plan: &plan, generated: &g, filters: &fake_filters(), announce: BTreeMap::new() }).unwrap();
            let carriers: Vec<String> = objs.iter().filter(|o| router_config(&o.value).is_some()).map(|o| o.name().to_string()).collect();
            let (gvk, names) = router_policy_refs(&plan);
            assert_eq!(carriers, names, "{}: the objects that carry the router's configuration", mesh.as_str());
            // The same configuration in each (Envoy Gateway: one policy per set of routes).
            let all: Vec<Value> = objs.iter().filter_map(|o| router_config(&o.value)).collect();
            assert!(all.iter().all(|c| *c == all[0]), "{}", mesh.as_str());
            assert!(objs.iter().filter(|o| router_config(&o.value).is_some()).all(|o| o.kind() == gvk.2));
            let (name, kind) = (names[0].as_str(), gvk.2);
            let cfg = router_config(find(&objs, kind, name)).unwrap();
            // The configuration given, and the admin token's digest: never the token.
            let token = &g.api_tokens.as_ref().unwrap()[crate::identity::ADMIN_TOKEN];
            let mut expected = router.clone();
            expected["credentials"]["bearer_tokens"] = serde_json::json!([edge_logic::router::bearer_digest(token)]);
            // And the paths the health filter answers (its default).
            expected["health_paths"] = serde_json::json!(["/"]);
            assert_eq!(cfg, expected, "{}", mesh.as_str());
            let secret = find(&objs, "Secret", "ipfs-cluster-api-tokens");
            assert_eq!(secret["data"]["admin"], base64::engine::general_purpose::STANDARD.encode(token));
            for o in objs.iter().filter(|o| o.kind() != "Secret") {
                assert!(!o.value.to_string().contains(token.as_str()), "{} holds the token", o.display());
            }
            // The filter accepts the token, and only it.
            let policy = edge_logic::router::Policy::from_json(cfg.to_string().as_bytes()).unwrap();
            let ok = format!("Bearer {token}");
            assert_eq!(policy.credentials.check(&[ok.as_bytes()]), edge_logic::router::AuthResult::Valid);
            assert_eq!(policy.credentials.check(&[b"Bearer another-token-0123456789"]), edge_logic::router::AuthResult::Invalid);
        }
    }

    /// The native read route: its matches are the router's rule, and it is there only where
    /// the router would send every such read to the gateway.
    #[test]
    fn gateway_reads_go_natively_only_where_the_gateway_is_public() {
        use edge_logic::router::native_read::{METHODS, PATH_REGEX};
        let with = |router: Option<Value>, mesh: Mesh| {
            let mut plan = Settings { mesh: Some(mesh), ..Default::default() }.plan().unwrap();
            plan.router = router;
            render_plan(&plan).into_iter().find(|o| o.kind() == "HTTPRoute" && o.name() == native_reads_route("ipfs-cluster")).map(|o| o.value)
        };
        let route = with(None, Mesh::EnvoyGateway).expect("the default (read-only) gateway is public");
        let rule = &route["spec"]["rules"][0];
        let matches: Vec<(&str, &str, &str)> = rule["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["path"]["type"].as_str().unwrap(), m["path"]["value"].as_str().unwrap(), m["method"].as_str().unwrap()))
            .collect();
        let want: Vec<(&str, &str, &str)> = METHODS.iter().map(|m| ("RegularExpression", PATH_REGEX, *m)).collect();
        assert_eq!(matches, want);
        assert_eq!(rule["backendRefs"][0]["port"], 8080);
        let modifier = &rule["filters"][0]["requestHeaderModifier"];
        assert_eq!(modifier["set"], serde_json::json!([{"name": edge_logic::backend::BACKEND_HEADER, "value": "gateway"}]));
        assert_eq!(modifier["remove"], serde_json::json!(["Authorization"]));
        // No policy targets it: these reads run no filter.
        let objs = sample(Mesh::EnvoyGateway, 1);
        for p in objs.iter().filter(|o| o.kind() == "EnvoyExtensionPolicy") {
            assert!(!p.value["spec"]["targetRefs"].to_string().contains("-reads"), "{}", p.display());
        }
        let forwarding = with(Some(serde_json::json!({"forward_authorization": true})), Mesh::EnvoyGateway).unwrap();
        assert!(forwarding["spec"]["rules"][0]["filters"][0]["requestHeaderModifier"].get("remove").is_none());
        assert!(with(Some(serde_json::json!({"gateway": "credential"})), Mesh::EnvoyGateway).is_none());
        assert!(with(Some(serde_json::json!({"gateway": "deny"})), Mesh::EnvoyGateway).is_none());
        assert!(with(None, Mesh::Istio).is_none(), "with Istio the router runs on every request anyway");
    }

    /// Probes: Envoy Gateway's own answer where the health answers are fixed, the health
    /// filter (in the HTTPS and HTTP policies) where they are not; one or the other, never both,
    /// and every object either leaves out is one `up` deletes when left from an earlier run.
    #[test]
    fn probes_are_envoys_own_answer_only_where_the_health_answers_are_fixed() {
        let with = |health: &str, mesh: Mesh| {
            let plan = plan_with_health(mesh, 1, health);
            (render_plan(&plan), plan)
        };
        let names = |objs: &[Object]| objs.iter().map(|o| format!("{}/{}", o.kind(), o.name())).collect::<Vec<_>>();
        let (fixed, plan) = with(r#"{"paths": ["/", "/healthz"]}"#, Mesh::EnvoyGateway);
        let route = find(&fixed, "HTTPRoute", "ipfs-cluster-probes");
        let sections: Vec<&Value> = route["spec"]["parentRefs"].as_array().unwrap().iter().map(|p| &p["sectionName"]).collect();
        assert_eq!(sections, ["http", "https"]);
        let m = |p: &str, method: &str| serde_json::json!({"path": {"type": "Exact", "value": p}, "method": method});
        assert_eq!(route["spec"]["rules"][0]["matches"], serde_json::json!([m("/", "GET"), m("/", "HEAD"), m("/healthz", "GET"), m("/healthz", "HEAD")]));
        let answer = &find(&fixed, "HTTPRouteFilter", "ipfs-cluster-health-ok")["spec"]["directResponse"];
        assert_eq!(answer["body"]["inline"].as_str(), Some(edge_logic::health::ok_answer().1.as_str()));
        assert!(!names(&fixed).contains(&"EnvoyExtensionPolicy/ipfs-cluster-health-http".to_string()));
        // The HTTPS health policy is the same list of modules in every mode (a live switch
        // changes configuration only): health then the router, for every other method.
        let modules = |objs: &[Object]| find(objs, "EnvoyExtensionPolicy", "ipfs-cluster-health")["spec"]["wasm"].as_array().unwrap().iter().map(|w| w["rootID"].clone()).collect::<Vec<_>>();
        assert_eq!(modules(&fixed), ["health", "router"]);
        let optional: Vec<String> = optional_objects(&plan).iter().map(|((_, _, k), n)| format!("{k}/{n}")).collect();
        for health in [r#"{"answer": "agents"}"#, r#"{"active": {}}"#] {
            let (objs, _) = with(health, Mesh::EnvoyGateway);
            let got = names(&objs);
            for gone in ["HTTPRoute/ipfs-cluster-probes", "HTTPRouteFilter/ipfs-cluster-health-ok"] {
                assert!(!got.contains(&gone.to_string()), "{health}: {gone}");
            }
            assert_eq!(eg_wasm(&objs, Some("health")).len(), 2, "{health}: on both listeners");
            assert_eq!(modules(&objs), modules(&fixed), "{health}");
            // Whatever one configuration has and another has not, `up` knows to delete.
            for n in names(&fixed).iter().filter(|n| !got.contains(n)).chain(got.iter().filter(|n| !names(&fixed).contains(n))) {
                assert!(optional.contains(n), "{n} is in one health mode's render only, and not in optional_objects");
            }
        }
        let (istio, plan) = with("{}", Mesh::Istio);
        assert!(!names(&istio).iter().any(|n| n.ends_with("-probes")), "Istio's health WasmPlugin answers");
        assert!(optional_objects(&plan).is_empty());
    }

    #[test]
    fn token_digests_are_added_once_and_revoked_ones_removed() {
        let d = edge_logic::router::bearer_digest;
        let tokens = BTreeMap::from([("a".to_string(), "token-a".to_string()), ("b".to_string(), "token-b".to_string())]);
        let cfg = serde_json::json!({"preset": "none", "credentials": {"bearer_tokens": ["a-plain-token-of-the-user", d("token-a")]}});
        let out = with_token_digests(&cfg, &tokens, &[]);
        assert_eq!(out["credentials"]["bearer_tokens"], serde_json::json!(["a-plain-token-of-the-user", d("token-a"), d("token-b")]));
        assert_eq!(with_token_digests(&out, &tokens, &[]), out, "applying twice changes nothing");
        let fewer = BTreeMap::from([("b".to_string(), "token-b".to_string())]);
        let out = with_token_digests(&out, &fewer, &["token-a"]);
        assert_eq!(out["credentials"]["bearer_tokens"], serde_json::json!(["a-plain-token-of-the-user", d("token-b")]));
        assert_eq!(out["preset"], "none");
        assert_eq!(with_token_digests(&serde_json::json!({}), &BTreeMap::new(), &[]), serde_json::json!({}));
        // An empty data map is stored as none: sent as {} it would count as a change.
        let mut g = Generated { api_tokens: Some(BTreeMap::new()), ..Default::default() };
        g.ensure(1);
        let plan = Settings::default().plan().unwrap();
        let objs = render(&Input { plan: &plan, generated: &g, filters: &fake_filters(), announce: BTreeMap::new() }).unwrap();
        assert!(find(&objs, "Secret", "ipfs-cluster-api-tokens").get("data").is_none());
    }

    #[test]
    fn rendering_is_deterministic_for_the_same_inputs() {
        let plan = Settings::default().plan().unwrap();
        let mut g = Generated::default();
        g.ensure(3);
        let f = fake_filters();
        let r = || to_yaml(&render(&Input { plan: &plan, generated: &g, filters: &f, announce: BTreeMap::new() }).unwrap());
        assert_eq!(r(), r());
    }
}
