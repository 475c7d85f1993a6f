pub mod alert;
pub mod apply;
pub mod audit;
pub mod chaos;
pub mod cleanup;
pub mod handover;
pub mod ledger;
pub mod nodes;
pub mod plan;
pub mod resume;
pub mod run;
pub mod status;
pub mod validate;

use crate::error::CliError;
use crate::render::{self, Styles};
use crate::settings::Settings;
use refinery_controller::desired::{self, Desired};

/// Loads the desired state, makes its `registries:` the logins pulls send, and prints its
/// warnings on stderr.
pub fn load_desired(settings: &Settings) -> Result<Desired, CliError> {
    let d = desired::load(&settings.repo, &settings.rev)?;
    refinery_controller::registries::use_manifest(&d.manifest);
    if !settings.quiet {
        let styles = Styles {
            color: settings.color,
        };
        eprint!("{}", render::issues(&d.warnings, &styles.warn("warning")));
        for f in &d.uncommitted {
            eprintln!(
                "{}: `{f}` in the work tree differs from commit `{}`: uncommitted changes are not enforced",
                styles.warn("warning"),
                d.commit.short
            );
        }
    }
    Ok(d)
}

/// Asks `prompt [y/N]` on stderr and reads the answer from stdin; only `y`/`yes` is yes.
pub fn confirm(prompt: &str) -> Result<bool, CliError> {
    use std::io::Write;
    eprint!("{prompt} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|source| CliError::Io {
            action: "read the answer".into(),
            source,
        })?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
