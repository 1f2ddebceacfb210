//! An istiod revision's configuration read back from the cluster (mesh config, env, resources): what
//! a new revision installed by istioctl must be given to behave like the one it replaces, when the
//! IstioOperator it was installed from is no longer in the cluster (istioctl stopped storing it).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;

use crate::redact;
use crate::snapshot::IstiodConfig;

/// `installed-state` for the default revision, `installed-state-<rev>` otherwise: the IstioOperator
/// istioctl (before 1.24) stored beside the control plane it installed.
pub fn installed_state_name(revision: &str) -> String {
    if revision == "default" {
        "installed-state".to_string()
    } else {
        format!("installed-state-{revision}")
    }
}

/// An installed-state IstioOperator's `spec`, credential-looking values redacted.
pub fn installed_state_spec(object: &serde_json::Value) -> Option<serde_json::Value> {
    let mut spec = object.get("spec")?.clone();
    redact::json(&mut spec);
    Some(spec)
}

/// `istio` for the default revision, `istio-<rev>` otherwise: the ConfigMap the istiod chart renders.
pub fn config_map_name(revision: &str) -> String {
    if revision == "default" {
        "istio".to_string()
    } else {
        format!("istio-{revision}")
    }
}

/// The `mesh` key's YAML as a document, credential-looking values redacted.
pub fn parse_mesh(text: &str) -> Result<serde_json::Value, String> {
    let mut mesh: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| format!("its `mesh` key is not YAML: {e}"))?;
    if mesh.is_null() {
        mesh = serde_json::Value::Object(Default::default());
    }
    redact::json(&mut mesh);
    Ok(mesh)
}

/// The literal env (redacted) and the resources of istiod's `discovery` container.
pub fn from_container(container: Option<&Container>) -> IstiodConfig {
    let mut env = BTreeMap::new();
    for var in container.and_then(|c| c.env.as_ref()).into_iter().flatten() {
        if let Some(value) = &var.value {
            env.insert(var.name.clone(), value.clone());
        }
    }
    let mut env_doc = serde_json::to_value(&env).unwrap_or_default();
    redact::json(&mut env_doc);
    let env = serde_json::from_value(env_doc).unwrap_or_default();
    let resources = container
        .and_then(|c| c.resources.as_ref())
        .and_then(|r| serde_json::to_value(r).ok())
        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()));
    IstiodConfig {
        env,
        resources,
        ..IstiodConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_config_and_container_settings_are_read_back() {
        let mesh = parse_mesh(
            "accessLogFile: /dev/stdout\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\ndefaultConfig:\n  discoveryAddress: istiod-1-30-4.istio-system.svc:15012\n",
        )
        .unwrap();
        assert_eq!(mesh["accessLogFile"], "/dev/stdout");
        assert_eq!(mesh["outboundTrafficPolicy"]["mode"], "REGISTRY_ONLY");
        assert!(parse_mesh("a: [").is_err());
        assert_eq!(parse_mesh("").unwrap(), serde_json::json!({}));

        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "discovery",
            "env": [
                {"name": "PILOT_ENABLE_AMBIENT", "value": "true"},
                {"name": "REVISION", "value": "1-30-4"},
                {"name": "API_TOKEN", "value": "s3cr3t"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
            ],
            "resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": "500m"}}
        }))
        .unwrap();
        let config = from_container(Some(&container));
        assert_eq!(config.env["PILOT_ENABLE_AMBIENT"], "true");
        assert_eq!(config.env["API_TOKEN"], crate::redact::REDACTED);
        assert!(!config.env.contains_key("POD_NAME"));
        assert_eq!(config.resources.unwrap()["limits"]["memory"], "1Gi");
        assert_eq!(config_map_name("default"), "istio");
        assert_eq!(config_map_name("1-30-4"), "istio-1-30-4");
    }
}
