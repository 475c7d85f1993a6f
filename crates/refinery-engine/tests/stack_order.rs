//! Compose stacks in a plan: dependencies are created first, whatever the plan's order.

use refinery_core::testing::{self, spec};
use refinery_core::{Dependency, DependencyCondition, StackMember, Step};
use refinery_engine::dependency_order;

fn member(deps: &[&str]) -> Option<Box<StackMember>> {
    Some(Box::new(StackMember {
        project: "p".into(),
        service: "s".into(),
        number: 1,
        working_dir: "/repo".into(),
        config_files: "docker-compose.yml".into(),
        depends_on: deps
            .iter()
            .map(|d| Dependency {
                container: (*d).to_owned(),
                condition: DependencyCondition::ServiceHealthy,
                restart: false,
                required: true,
            })
            .collect(),
        build: None,
    }))
}

#[test]
fn dependency_order_puts_dependencies_first() {
    let mut web = spec("web");
    web.stack = member(&["db", "cache"]);
    let mut cache = spec("cache");
    cache.stack = member(&["db"]);
    let db = spec("db");
    let m = testing::manifest(vec![web, cache, db]);
    let steps: Vec<Step> = ["web", "cache", "db", "other"]
        .iter()
        .map(|n| Step {
            id: refinery_core::ResourceId::container(testing::NODE, n),
            kind: refinery_core::StepKind::Create,
            container_id: None,
            drifts: Vec::new(),
            details: Vec::new(),
            changes: Vec::new(),
            reason: String::new(),
        })
        .collect();
    let order: Vec<&str> = dependency_order(&m, &steps)
        .into_iter()
        .map(|i| steps[i].id.name())
        .collect();
    assert_eq!(order, ["db", "cache", "web", "other"]);
}
