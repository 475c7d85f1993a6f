//! One reconciliation pass over a node: observe, diff, decide, plan, apply. Depends only on the
//! core; adapters come in through [`refinery_core::ContainerRuntime`].

mod apply;
mod evaluate;
mod recover;

pub use apply::{ApplyEvent, StepResult, apply_plan, recreate_temp_name};
pub use evaluate::{Evaluation, evaluate, node_selector};
pub use recover::{Recovered, recover_interrupted};
