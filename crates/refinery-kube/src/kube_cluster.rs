//! One Kubernetes cluster reached through a kubeconfig context: server-side apply under the field
//! manager `refinery`, reads, deletes and the rollout operations.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ApiResource;
use kube::discovery::{self, Scope};
use kube::{Client, Config};
use serde_json::Value;

use crate::convert::{self, classify};
use crate::kube_error::{KubeError, Result};
use crate::source_manifests::KubeObject;

/// The field manager Refinery applies under.
pub const FIELD_MANAGER: &str = "refinery";

/// A connected cluster.
pub struct KubeCluster {
    client: Client,
    context: String,
    /// (apiVersion, kind) → resource and whether it is namespaced, found by discovery.
    resources: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
    /// Every listable and deletable kind, found by discovery once per connection.
    listable: Mutex<Option<Vec<KindRef>>>,
}

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

/// A kind the server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRef {
    pub api_version: String,
    pub kind: String,
    pub namespaced: bool,
}

impl ObjectRef {
    fn what(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.namespace, self.kind, self.name)
        }
    }
}

impl KubeCluster {
    /// Connects through `kubeconfig` (or `KUBECONFIG`/`~/.kube/config` when `None`) and
    /// `context` (or the current context).
    pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Self> {
        let ctx_name = context.unwrap_or("(current)").to_owned();
        let cfg_err = |source: Box<dyn std::error::Error + Send + Sync>| KubeError::Config {
            context: ctx_name.clone(),
            source,
        };
        let kc = match kubeconfig {
            Some(p) => Kubeconfig::read_from(p).map_err(|e| cfg_err(Box::new(e)))?,
            None => Kubeconfig::read().map_err(|e| cfg_err(Box::new(e)))?,
        };
        let context = context
            .map(str::to_owned)
            .or_else(|| kc.current_context.clone())
            .unwrap_or_default();
        let opts = KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| cfg_err(Box::new(e)))?;
        let client = Client::try_from(config).map_err(|e| cfg_err(Box::new(e)))?;
        Ok(KubeCluster {
            client,
            context,
            resources: Mutex::new(HashMap::new()),
            listable: Mutex::new(None),
        })
    }

    /// The client (cheap to clone: it shares one connection pool).
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// The context's name, the second segment of `k8s/CONTEXT/NS/KIND/NAME`.
    #[must_use]
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The resource behind a kind, and whether it is namespaced.
    pub async fn resource(&self, api_version: &str, kind: &str) -> Result<(ApiResource, bool)> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(r) = self
            .resources
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(r);
        }
        let (ar, caps) = discovery::pinned_kind(&self.client, &convert::gvk(api_version, kind))
            .await
            .map_err(|e| classify(e, "discover", &format!("{api_version} {kind}")))?;
        let r = (ar, caps.scope == Scope::Namespaced);
        if let Ok(mut m) = self.resources.lock() {
            m.insert(key, r.clone());
        }
        Ok(r)
    }

    async fn api(&self, r: &ObjectRef) -> Result<Api<DynamicObject>> {
        let (ar, namespaced) = self.resource(&r.api_version, &r.kind).await?;
        Ok(if namespaced {
            Api::namespaced_with(self.client.clone(), &r.namespace, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        })
    }

    /// Where a declared object goes (its namespace dropped when the kind is cluster-scoped).
    pub async fn locate(&self, o: &KubeObject) -> Result<ObjectRef> {
        let (_, namespaced) = self.resource(&o.api_version, &o.kind).await?;
        let namespace = if namespaced {
            o.namespace.clone().unwrap_or_else(|| "default".to_owned())
        } else {
            String::new()
        };
        Ok(ObjectRef {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace,
            name: o.name.clone(),
        })
    }

    /// Server-side apply (forced, field manager `refinery`); with `dry_run` nothing is stored and
    /// the answer is what the object would become.
    pub async fn apply(&self, o: &KubeObject, dry_run: bool) -> Result<Value> {
        let r = self.locate(o).await?;
        let api = self.api(&r).await?;
        let mut body = o.body.clone();
        if r.namespace.is_empty()
            && let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("namespace");
        }
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        if dry_run {
            pp = pp.dry_run();
        }
        let action = if dry_run { "dry-run apply" } else { "apply" };
        api.patch(&r.name, &pp, &Patch::Apply(&body))
            .await
            .map(|o| convert::to_value(&o))
            .map_err(|e| classify(e, action, &r.what()))
    }

    /// The live object, `None` when absent.
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>> {
        let api = self.api(r).await?;
        api.get_opt(&r.name)
            .await
            .map(|o| o.as_ref().map(convert::to_value))
            .map_err(|e| classify(e, "get", &r.what()))
    }

    /// Every object of a kind in a namespace.
    pub async fn list(&self, api_version: &str, kind: &str, namespace: &str) -> Result<Vec<Value>> {
        let r = ObjectRef {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: String::new(),
        };
        let api = self.api(&r).await?;
        api.list(&ListParams::default())
            .await
            .map(|l| l.items.iter().map(convert::to_value).collect())
            .map_err(|e| classify(e, "list", &format!("{namespace}/{kind}")))
    }

    /// Every kind the server serves (at its group's preferred version) that can be listed and
    /// deleted, and whether it is namespaced; discovered once per connection. A group whose
    /// discovery fails is left out.
    pub async fn listable_kinds(&self) -> Result<Vec<KindRef>> {
        use kube::discovery::{Discovery, verbs};
        if let Some(k) = self.listable.lock().ok().and_then(|m| m.clone()) {
            return Ok(k);
        }
        let mut found = Vec::new();
        match Discovery::new(self.client.clone()).run().await {
            Ok(d) => found.extend(d.groups().flat_map(|g| g.recommended_resources())),
            Err(e) => {
                // One group that does not answer (an aggregated API whose server is down) fails
                // the whole discovery: ask group by group, leaving out those that fail.
                let whole = classify(e, "discover", "the API resources");
                if matches!(whole, KubeError::Unreachable { .. }) {
                    return Err(whole);
                }
                let mut names = vec![String::new()];
                names.extend(
                    self.client
                        .list_api_groups()
                        .await
                        .map_err(|e| classify(e, "list", "the API groups"))?
                        .groups
                        .into_iter()
                        .map(|g| g.name),
                );
                for name in names {
                    match Discovery::new(self.client.clone())
                        .filter(&[name.as_str()])
                        .run()
                        .await
                    {
                        Ok(d) => found.extend(d.groups().flat_map(|g| g.recommended_resources())),
                        Err(e) => {
                            tracing::warn!(group = %name, error = %e, "API group not discovered; its objects are not pruned");
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (ar, caps) in found {
            if !caps.supports_operation(verbs::LIST) || !caps.supports_operation(verbs::DELETE) {
                continue;
            }
            let k = KindRef {
                api_version: ar.api_version.clone(),
                kind: ar.kind.clone(),
                namespaced: caps.scope == Scope::Namespaced,
            };
            if let Ok(mut m) = self.resources.lock() {
                m.insert((k.api_version.clone(), k.kind.clone()), (ar, k.namespaced));
            }
            out.push(k);
        }
        if let Ok(mut m) = self.listable.lock() {
            *m = Some(out.clone());
        }
        Ok(out)
    }

    /// Every object of a kind, in every namespace, matching a label selector
    /// (`refinery.io/source=app`).
    pub async fn list_labelled(&self, k: &KindRef, selector: &str) -> Result<Vec<Value>> {
        let (ar, _) = self.resource(&k.api_version, &k.kind).await?;
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        api.list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items.iter().map(convert::to_value).collect())
            .map_err(|e| classify(e, "list", &format!("{} {}", k.api_version, k.kind)))
    }

    /// Deletes an object (background propagation); `false` when it was already gone.
    pub async fn delete(&self, r: &ObjectRef) -> Result<bool> {
        let api = self.api(r).await?;
        match api.delete(&r.name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(e) => match classify(e, "delete", &r.what()) {
                KubeError::NotFound { .. } => Ok(false),
                e => Err(e),
            },
        }
    }

    /// Deletes the object only while it is the one with `uid` (a precondition: a namesake
    /// created since is left alone); `false` when it was already gone.
    pub async fn delete_exact(&self, r: &ObjectRef, uid: &str) -> Result<bool> {
        let api = self.api(r).await?;
        let dp = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        match api.delete(&r.name, &dp).await {
            Ok(_) => Ok(true),
            Err(e) => match classify(e, "delete", &r.what()) {
                KubeError::NotFound { .. } => Ok(false),
                e => Err(e),
            },
        }
    }

    /// A JSON merge patch (not an apply: the field manager is recorded, no fields are claimed).
    pub async fn merge_patch(&self, r: &ObjectRef, patch: &Value) -> Result<Value> {
        let api = self.api(r).await?;
        api.patch(&r.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|o| convert::to_value(&o))
            .map_err(|e| classify(e, "patch", &r.what()))
    }

    /// A JSON patch (RFC 6902), used to replace a Deployment's pod template on rollout undo.
    pub async fn json_patch(&self, r: &ObjectRef, ops: Value) -> Result<Value> {
        let api = self.api(r).await?;
        let patch = convert::json_patch(ops, &r.what())?;
        api.patch(&r.name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .map(|o| convert::to_value(&o))
            .map_err(|e| classify(e, "patch", &r.what()))
    }

    /// One item per change (added, modified, deleted; and after every re-list) to the objects of
    /// `kinds` (`(apiVersion, kind)`) in `namespaces`: `Namespace/Kind/name`. Watches through
    /// kube-runtime's watcher with its default backoff; a broken watch is retried, never ends the
    /// stream. Kinds the server does not know are left out.
    pub async fn watch_changes(
        &self,
        kinds: &[(String, String)],
        namespaces: &[String],
    ) -> futures_util::stream::BoxStream<'static, String> {
        use futures_util::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let mut streams = Vec::new();
        for (api_version, kind) in kinds {
            let Ok((ar, namespaced)) = self.resource(api_version, kind).await else {
                continue;
            };
            let scopes: Vec<Option<&String>> = if namespaced {
                namespaces.iter().map(Some).collect()
            } else {
                vec![None]
            };
            for ns in scopes {
                let api: Api<DynamicObject> = match ns {
                    Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
                    None => Api::all_with(self.client.clone(), &ar),
                };
                let what = format!("{}/{kind}", ns.map_or("", String::as_str));
                // What each object looked like: status-only updates (a controller reporting
                // progress) change none of it and trigger nothing.
                let mut seen: HashMap<String, u64> = HashMap::new();
                let s = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .filter_map(move |ev| {
                        let out = match ev {
                            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                                let name = o.metadata.name.clone().unwrap_or_default();
                                let fp = fingerprint(&o);
                                let changed = seen.insert(name.clone(), fp) != Some(fp);
                                changed.then(|| format!("{what}/{name}"))
                            }
                            Ok(watcher::Event::Delete(o)) => {
                                let name = o.metadata.name.unwrap_or_default();
                                seen.remove(&name);
                                Some(format!("{what}/{name} (deleted)"))
                            }
                            Ok(watcher::Event::Init) => {
                                seen.clear();
                                None
                            }
                            Ok(watcher::Event::InitDone) => Some(format!("{what} (re-listed)")),
                            Err(_) => None,
                        };
                        std::future::ready(out)
                    });
                streams.push(s.boxed());
            }
        }
        futures_util::stream::select_all(streams).boxed()
    }

    /// Creates an object as given (used by tests and for out-of-band changes in them).
    pub async fn create(&self, r: &ObjectRef, body: &Value) -> Result<Value> {
        let api = self.api(r).await?;
        let obj = convert::from_value(body, &r.what())?;
        api.create(&kube::api::PostParams::default(), &obj)
            .await
            .map(|o| convert::to_value(&o))
            .map_err(|e| classify(e, "create", &r.what()))
    }
}

/// A hash of what a change to an object may be drift in: its generation (spec changes), labels and
/// annotations; for kinds without a generation (ConfigMaps, …) its resource version.
fn fingerprint(o: &DynamicObject) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    let m = &o.metadata;
    match m.generation {
        Some(g) => g.hash(&mut h),
        None => m.resource_version.hash(&mut h),
    }
    m.labels.hash(&mut h);
    m.annotations.hash(&mut h);
    h.finish()
}
