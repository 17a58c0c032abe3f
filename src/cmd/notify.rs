//! `flagops notify --retry`, and the lines every command prints about notifications.

use std::time::Duration;

use serde::Serialize;

use crate::ExitStatus;
use crate::cli::{NotifyArgs, ReportFormat};
use crate::load::Workspace;
use crate::notify::Delivery;

/// What `notify --retry` did in one environment.
#[derive(Serialize)]
struct Report {
    environment: String,
    #[serde(flatten)]
    delivery: Delivery,
}

pub(super) fn run(workspace: &Workspace, args: NotifyArgs) -> anyhow::Result<ExitStatus> {
    // Only flagops.yml is needed: pending notifications are sent even while a flag file has
    // an error.
    let (config, _) = super::read_config(workspace)?;
    for name in &args.environments {
        if config.environment(name).is_none() {
            let known: Vec<&str> = config.environment_names().collect();
            anyhow::bail!(
                "unknown environment `{name}`\nhelp: the environments in flagops.yml are {}",
                known.join(", ")
            );
        }
    }
    let mut reports = Vec::new();
    for environment in config.environment_names() {
        if !args.environments.is_empty() && !args.environments.iter().any(|name| name == environment) {
            continue;
        }
        let lock_timeout = Duration::from_secs(args.lock_timeout);
        let delivery =
            crate::notify::retry(&workspace.root, &config, environment, lock_timeout).unwrap_or_else(|error| {
                Some(Delivery {
                    error: Some(crate::sync::error_chain(&error)),
                    ..Delivery::default()
                })
            });
        if let Some(delivery) = delivery {
            reports.push(Report {
                environment: environment.to_string(),
                delivery,
            });
        }
    }
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&reports)? + "\n",
        ReportFormat::Human => {
            let mut text = String::new();
            for report in &reports {
                text.push_str(&format!("{}:\n", report.environment));
                for line in lines(&report.delivery) {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            if reports.is_empty() {
                text.push_str("nothing to send: no environment has an outbox\n");
            }
            text
        }
    };
    super::print(&text)?;
    let stuck = reports
        .iter()
        .any(|report| report.delivery.error.is_some() || !report.delivery.pending.is_empty());
    Ok(if stuck { ExitStatus::Error } else { ExitStatus::Success })
}

/// What `delivery` sent and what is still pending, as indented lines.
pub(super) fn lines(delivery: &Delivery) -> Vec<String> {
    let mut lines = Vec::new();
    if delivery.sent > 0 || (delivery.pending.is_empty() && delivery.error.is_none()) {
        lines.push(format!(
            "  notified     {} sent",
            crate::plan::render::count(delivery.sent, "notification")
        ));
    }
    if let Some(error) = &delivery.error {
        lines.push("  ! notifications not sent:".to_string());
        lines.extend(error.lines().map(|line| format!("      {line}")));
    }
    if !delivery.pending.is_empty() {
        lines.push(format!(
            "  ! {} pending, kept for `flagops notify --retry`:",
            crate::plan::render::count(delivery.pending.len(), "notification")
        ));
        for pending in &delivery.pending {
            lines.push(format!("    {} about `{}`:", pending.notifier, pending.about));
            lines.extend(pending.error.lines().map(|line| format!("      {line}")));
        }
    }
    lines
}
