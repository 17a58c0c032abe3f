//! `flagops adopt`.

use crate::ExitStatus;
use crate::cli::AdoptArgs;
use crate::load::Workspace;

pub(super) fn run(_workspace: &Workspace, _args: AdoptArgs) -> anyhow::Result<ExitStatus> {
    todo!()
}
