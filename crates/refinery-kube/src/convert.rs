//! The only module that sees kube-rs types besides the cluster client: error classification and
//! object conversion.

use kube::api::DynamicObject;
use kube::core::GroupVersionKind;
use serde_json::Value;

use crate::kube_error::KubeError;

/// Classifies a kube-rs error: 404 → not found, 409 → conflict, transport → unreachable.
pub(crate) fn classify(e: kube::Error, action: &str, what: &str) -> KubeError {
    match e {
        kube::Error::Api(status) => {
            let (action, what) = (action.to_owned(), what.to_owned());
            match status.code {
                404 => KubeError::NotFound { action, what },
                409 => KubeError::Conflict {
                    action,
                    what,
                    message: status.message.clone(),
                },
                _ => KubeError::Other {
                    action,
                    what,
                    message: if status.message.is_empty() {
                        format!("{} ({})", status.reason, status.code)
                    } else {
                        status.message.clone()
                    },
                },
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => KubeError::Unreachable {
            action: action.to_owned(),
            what: what.to_owned(),
            source: Box::new(e),
        },
        other => KubeError::Other {
            action: action.to_owned(),
            what: what.to_owned(),
            message: other.to_string(),
        },
    }
}

/// `apps/v1` + `Deployment` → group `apps`, version `v1`; `v1` is the core group.
pub(crate) fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    match api_version.split_once('/') {
        Some((g, v)) => GroupVersionKind::gvk(g, v, kind),
        None => GroupVersionKind::gvk("", api_version, kind),
    }
}

pub(crate) fn to_value(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

pub(crate) fn from_value(v: &Value, what: &str) -> Result<DynamicObject, KubeError> {
    serde_json::from_value(v.clone()).map_err(|e| KubeError::Other {
        action: "encode".into(),
        what: what.to_owned(),
        message: e.to_string(),
    })
}

/// RFC 6902 operations from JSON.
pub(crate) fn json_patch(ops: Value, what: &str) -> Result<json_patch::Patch, KubeError> {
    serde_json::from_value(ops).map_err(|e| KubeError::Other {
        action: "encode patch for".into(),
        what: what.to_owned(),
        message: e.to_string(),
    })
}
