//! One reconciliation pass over a node: observe, diff, decide, plan, apply. Depends only on the
//! core; adapters come in through [`refinery_core::ContainerRuntime`].

mod apply;
mod evaluate;
pub mod inventory_actions;
mod port_probe;
mod recover;
mod stack_order;

pub use apply::{
    ApplyEvent, START_FIRST_SETTLE, StepResult, apply_plan, recreate_temp_name,
    start_first_temp_name,
};
pub use evaluate::{
    EvalInputs, Evaluation, Held, Subject, decide_and_plan, evaluate, evaluate_in, hold_back,
    node_selector, nothing_held,
};
pub use port_probe::{PortProbe, free_primary_ports, primary_port_free};
pub use recover::{Recovered, interrupted_base, recover_interrupted};
pub use stack_order::{dependency_order, prepare_stack_resources, wait_for_dependencies};
