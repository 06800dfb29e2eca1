//! Whether a cert-manager that runs already can solve HTTP-01 through the Gateway API: its
//! controller needs Gateway API support, which is off by default (cert-manager v1.21.1:
//! the `--enable-gateway-api` flag, or in the controller's configuration file given with
//! `--config` `gatewayAPI: {enabled: true}` (v1.21's field) or the deprecated
//! `enableGatewayAPI: true`, which counts only when `gatewayAPI.enabled` is unset (upstream's
//! defaulting); a flag set on the command line wins over the file; the `ExperimentalGatewayAPISupport` feature gate, on by default since 1.15, must not
//! be turned off). Without it the Issuer fails only later, with "gateway api is not enabled".

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use serde_json::Value;

/// The controller container: the one running cert-manager's controller image, else the
/// first.
fn controller(d: &Deployment) -> Option<&Container> {
    let cs = &d.spec.as_ref()?.template.spec.as_ref()?.containers;
    cs.iter().find(|c| c.image.as_deref().is_some_and(|i| i.contains("cert-manager-controller"))).or(cs.first())
}

fn args(d: &Deployment) -> Vec<String> {
    controller(d).map(|c| c.args.clone().unwrap_or_default().into_iter().chain(c.command.clone().unwrap_or_default()).collect()).unwrap_or_default()
}

/// A bool flag as pflag reads it: `--name`, `--name=true|false`; the last one counts.
fn flag(args: &[String], name: &str) -> Option<bool> {
    let mut out = None;
    for a in args {
        let Some(rest) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else { continue };
        if rest == name {
            out = Some(true);
        } else if let Some(v) = rest.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            out = v.parse().ok().or(out);
        }
    }
    out
}

fn value_of<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().rev().find_map(|a| a.strip_prefix("--").and_then(|r| r.strip_prefix(name)).and_then(|r| r.strip_prefix('=')))
}

/// The ConfigMap (name, key) holding the file `--config` names, if it is one.
pub fn config_source(d: &Deployment) -> Option<(String, String)> {
    let path = value_of(&args(d), "config")?.to_string();
    let c = controller(d)?;
    let pod = d.spec.as_ref()?.template.spec.as_ref()?;
    for m in c.volume_mounts.clone().unwrap_or_default() {
        let Some(file) = path.strip_prefix(&m.mount_path).map(|r| r.trim_start_matches('/').to_string()) else { continue };
        let v = pod.volumes.as_ref()?.iter().find(|v| v.name == m.name)?;
        let cm = v.config_map.as_ref()?;
        // An `items` entry maps a key to another file name.
        let key = cm.items.clone().unwrap_or_default().into_iter().find(|i| i.path == file).map(|i| i.key).unwrap_or(file);
        return Some((cm.name.clone(), key));
    }
    None
}

/// `Ok` when Gateway API support is on; else what is wrong and the exact fix.
/// `config` is the parsed `--config` file, when there is one and it could be read.
pub fn gateway_api_support(d: &Deployment, config: Option<&Value>) -> Result<(), String> {
    let args = args(d);
    let ns = d.metadata.namespace.clone().unwrap_or_else(|| "cert-manager".into());
    let name = d.metadata.name.clone().unwrap_or_else(|| "cert-manager".into());
    let gates = value_of(&args, "feature-gates").unwrap_or_default();
    if gates.split(',').any(|g| g.trim() == "ExperimentalGatewayAPISupport=false") {
        return Err(format!(
            "cert-manager's controller (Deployment {ns}/{name}) turns its Gateway API support off with \
             --feature-gates=...ExperimentalGatewayAPISupport=false\n  fix: remove that gate from the controller's \
             arguments (`kubectl -n {ns} edit deployment {name}`), then rerun `deployer up`"
        ));
    }
    let on = match flag(&args, "enable-gateway-api") {
        Some(v) => v,
        None => config.is_some_and(|c| c["gatewayAPI"]["enabled"].as_bool().or(c["enableGatewayAPI"].as_bool()) == Some(true)),
    };
    if on {
        return Ok(());
    }
    let via_config = value_of(&args, "config").is_some();
    Err(format!(
        "cert-manager runs without Gateway API support (Deployment {ns}/{name}: no --enable-gateway-api{}): the \
         HTTP-01 solver through the Gateway would fail later with \"gateway api is not enabled\"\n  fix: kubectl -n {ns} \
         patch deployment {name} --type=json -p '[{{\"op\":\"add\",\"path\":\"/spec/template/spec/containers/{i}/args/-\",\
         \"value\":\"--enable-gateway-api\"}}]'\n  or, installed with Helm: helm upgrade cert-manager jetstack/cert-manager -n {ns} \
         --reuse-values --set config.apiVersion=controller.config.cert-manager.io/v1alpha1 \
         --set config.kind=ControllerConfiguration --set config.gatewayAPI.enabled=true\n  then rerun `deployer up` \
         (nothing was changed)",
        if via_config { ", and its --config file does not set gatewayAPI.enabled: true" } else { "" },
        i = controller_index(d),
    ))
}

fn controller_index(d: &Deployment) -> usize {
    let Some(cs) = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).map(|p| &p.containers) else { return 0 };
    cs.iter().position(|c| c.image.as_deref().is_some_and(|i| i.contains("cert-manager-controller"))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The controller Deployment as cert-manager v1.21.1's release manifest has it (args
    /// of `cert-manager.yaml`), plus `extra` arguments and optionally the Helm chart's
    /// config volume.
    fn deployment(extra: &[&str], config_volume: bool) -> Deployment {
        let mut args = vec!["--v=2", "--cluster-resource-namespace=$(POD_NAMESPACE)", "--leader-election-namespace=kube-system",
            "--acme-http01-solver-image=quay.io/jetstack/cert-manager-acmesolver:v1.21.1", "--max-concurrent-challenges=60"];
        args.extend_from_slice(extra);
        let mut d = json!({"metadata": {"name": "cert-manager", "namespace": "cert-manager"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "cert-manager-controller", "image": "quay.io/jetstack/cert-manager-controller:v1.21.1", "args": args}]}}}});
        if config_volume {
            d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "config", "mountPath": "/var/cert-manager/config"}]);
            d["spec"]["template"]["spec"]["volumes"] = json!([{"name": "config", "configMap": {"name": "cert-manager"}}]);
        }
        serde_json::from_value(d).unwrap()
    }

    #[test]
    fn the_release_manifest_as_is_lacks_gateway_api_support_and_says_the_fix() {
        let e = gateway_api_support(&deployment(&[], false), None).unwrap_err();
        assert!(e.contains("kubectl -n cert-manager patch deployment cert-manager --type=json"), "{e}");
        assert!(e.contains("/spec/template/spec/containers/0/args/-") && e.contains("config.gatewayAPI.enabled=true"), "{e}");
        assert!(gateway_api_support(&deployment(&["--enable-gateway-api"], false), None).is_ok());
        assert!(gateway_api_support(&deployment(&["--enable-gateway-api=true"], false), None).is_ok());
        assert!(gateway_api_support(&deployment(&["--enable-gateway-api=false"], false), None).is_err());
        let gate = deployment(&["--enable-gateway-api", "--feature-gates=AdditionalCertificateOutputFormats=true,ExperimentalGatewayAPISupport=false"], false);
        assert!(gateway_api_support(&gate, None).unwrap_err().contains("ExperimentalGatewayAPISupport=false"));
    }

    #[test]
    fn the_config_file_counts_unless_a_flag_says_otherwise() {
        let d = deployment(&["--config=/var/cert-manager/config/config.yaml"], true);
        assert_eq!(config_source(&d), Some(("cert-manager".into(), "config.yaml".into())));
        let on = json!({"apiVersion": "controller.config.cert-manager.io/v1alpha1", "kind": "ControllerConfiguration", "enableGatewayAPI": true});
        assert!(gateway_api_support(&d, Some(&on)).is_ok());
        let e = gateway_api_support(&d, Some(&json!({"kind": "ControllerConfiguration"}))).unwrap_err();
        assert!(e.contains("--config file does not set gatewayAPI.enabled"), "{e}");
        // v1.21's own field, which wins over the deprecated one.
        let new = json!({"kind": "ControllerConfiguration", "gatewayAPI": {"enabled": true}});
        assert!(gateway_api_support(&d, Some(&new)).is_ok());
        let both = json!({"kind": "ControllerConfiguration", "gatewayAPI": {"enabled": false}, "enableGatewayAPI": true});
        assert!(gateway_api_support(&d, Some(&both)).is_err());
        let off = deployment(&["--config=/var/cert-manager/config/config.yaml", "--enable-gateway-api=false"], true);
        assert!(gateway_api_support(&off, Some(&on)).is_err());
        assert_eq!(config_source(&deployment(&[], false)), None);
    }
}
