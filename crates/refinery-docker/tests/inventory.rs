//! The inventory part of `DockerRuntime` against the real engine: lists scoped by label, usage
//! counted over every container, removals that refuse what is in use and accept what is gone.

use std::collections::BTreeMap;

use refinery_core::{
    ContainerRuntime, CreateRequest, LabelSelector, Mount, MountKind, RuntimeError,
};
use refinery_docker::DockerRuntime;
use refinery_docker::testsupport::{self, TestRun, minimal_spec};

const IMAGE: &str = "refinery-test-busybox:latest";
/// A label only this test's images and volumes carry.
const INV_LABEL: &str = "io.refinery.test.inventory";

async fn setup() -> (DockerRuntime, TestRun) {
    let rt = DockerRuntime::from_env().expect("DOCKER_HOST must name a supported endpoint");
    if let Err(e) = rt.info().await {
        panic!(
            "these tests need a running Docker engine at `{}`: {e}",
            rt.endpoint()
        );
    }
    testsupport::build_busybox_image(&rt, IMAGE)
        .await
        .expect("build the busybox test image");
    let run = TestRun::new(&rt);
    (rt, run)
}

#[tokio::test]
async fn inventory_lists_are_scoped_and_usage_counts_every_container() {
    let (rt, run) = setup().await;
    let id = run.id().to_owned();
    // Images and volumes carry a label of their own; the container does not.
    let inv = BTreeMap::from([(INV_LABEL.to_owned(), id.clone())]);
    let mut image_labels = run.labels();
    image_labels.extend(inv.clone());
    let image = format!("tmp-{id}-img:1");
    run.track_image(&image);
    let image_id = testsupport::build_busybox_image_labelled(&rt, &image, &image_labels)
        .await
        .expect("build");
    let volume = format!("tmp-{id}-vol");
    run.create_volume(&rt, &volume, &inv)
        .await
        .expect("create volume");
    let unused = format!("tmp-{id}-unused");
    run.create_volume(&rt, &unused, &inv)
        .await
        .expect("create volume");
    // A stopped container the lists' selector does not show still uses the volume: usage is
    // never scoped. (A container inherits its image's labels, so it runs the shared image.)
    let user = format!("user-{id}");
    let mut spec = minimal_spec(&user, IMAGE);
    spec.mounts = vec![Mount {
        kind: MountKind::Volume,
        source: volume.clone(),
        target: "/data".into(),
        read_only: false,
    }];
    rt.create(&CreateRequest {
        name: user.clone(),
        spec,
        labels: run.labels(),
    })
    .await
    .expect("create container");
    let image_user = format!("image-user-{id}");
    rt.create(&CreateRequest {
        name: image_user.clone(),
        spec: minimal_spec(&image_user, &image),
        labels: run.labels(),
    })
    .await
    .expect("create container");

    let sel = LabelSelector {
        key: INV_LABEL.to_owned(),
        value: Some(id.clone()),
    };
    assert!(
        !rt.observe(Some(&sel))
            .await
            .expect("observe")
            .containers
            .iter()
            .any(|c| c.name == user)
    );
    let images = rt.list_images(Some(&sel)).await.expect("list images");
    assert_eq!(images.len(), 1, "{images:#?}");
    assert_eq!(images[0].id, image_id);
    assert_eq!(images[0].tags, vec![image.clone()]);
    assert_eq!(images[0].used_by, vec![image_user.clone()]);
    assert!(images[0].size.is_some_and(|s| s > 0));
    assert!(images[0].created.is_some());

    let mut volumes = rt.list_volumes(Some(&sel)).await.expect("list volumes");
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    let got: Vec<(&str, Vec<String>)> = volumes
        .iter()
        .map(|v| (v.name.as_str(), v.used_by.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (unused.as_str(), vec![]),
            (volume.as_str(), vec![user.clone()])
        ]
    );
    assert!(volumes.iter().all(|v| v.created.is_some()));

    // Without a selector the built-in networks are there.
    let networks = rt.list_networks(None).await.expect("list networks");
    assert!(networks.iter().any(|n| n.name == "bridge"), "{networks:#?}");

    // Never by force: in use is a conflict, and nothing goes.
    let err = rt.remove_image(&image).await.expect_err("in use");
    assert!(matches!(err, RuntimeError::Conflict { .. }), "{err}");
    let err = rt.remove_volume(&volume).await.expect_err("in use");
    assert!(matches!(err, RuntimeError::Conflict { .. }), "{err}");
    assert_eq!(rt.list_images(Some(&sel)).await.expect("list").len(), 1);

    // Unused goes; gone again is fine.
    rt.remove_volume(&unused)
        .await
        .expect("remove unused volume");
    rt.remove_volume(&unused).await.expect("gone is fine");
    rt.remove(&image_user).await.expect("remove container");
    rt.remove_image(&image).await.expect("remove unused image");
    rt.remove_image(&image).await.expect("gone is fine");
    assert!(rt.list_images(Some(&sel)).await.expect("list").is_empty());
}
