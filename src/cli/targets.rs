//! The targets of a command that takes many (`doctor`, `run`): the
//! arguments, a `--targets` file, the EC2 instances `--filter` matches, each
//! once, then this `--shard`'s slice; and the connect options they share.

use std::collections::HashMap;
use std::time::Duration;

use super::{Common, FleetArgs};
use crate::connect::ConnectOptions;
use crate::ec2::inventory::Filter;
use crate::error::{Error, Result};
use crate::fleet::PerTarget;
use crate::target::Target;

/// How long a fleet run waits for an instance's other serial console
/// session to end, unless `--wait-for-session` says otherwise: AWS needs
/// about 30 s after a session ends before the next one, so a run that
/// follows another (or a colleague's session) waits rather than failing.
const FLEET_WAIT_FOR_SESSION: Duration = Duration::from_secs(35);

/// Whether the command runs as a fleet: anything but one plain target.
pub(super) fn is_many(targets: &[String], fleet: &FleetArgs) -> bool {
    targets.len() != 1
        || fleet.targets_file.is_some()
        || !fleet.filters.is_empty()
        || fleet.out_dir.is_some()
        || fleet.shard.is_some()
}

/// What [`resolve`] gives: each target with its name, the connect options
/// they share, and what a `--targets` line said for its own target
/// (by name).
pub(super) struct Resolved {
    pub(super) targets: Vec<(String, Target)>,
    pub(super) connect: ConnectOptions,
    pub(super) per_target: HashMap<String, PerTarget>,
}

/// The targets, parsed, and the connect options every one of them shares.
/// Bad input (a one-target flag, a filter, a shard, a target, a line's own
/// options where the job takes none or two lines that disagree) is refused
/// before anything connects; only `--filter` asks AWS. `takes_own`: the
/// job reads a `--targets` line's own options (the doctor).
pub(super) async fn resolve(
    targets: &[String],
    fleet: &FleetArgs,
    common: &Common,
    takes_own: bool,
) -> Result<Resolved> {
    if common.transcript.is_some() {
        return Err(Error::usage(
            "--transcript is for one target; with several, --out-dir DIR records one transcript per target",
        ));
    }
    let filters: Vec<Filter> = fleet
        .filters
        .iter()
        .map(|f| f.parse())
        .collect::<Result<_>>()?;
    let shard = fleet
        .shard
        .as_deref()
        .map(str::parse::<crate::fleet::Shard>)
        .transpose()?;
    let mut connect = super::connect_options(common).await?;
    connect
        .ec2
        .wait_for_session
        .get_or_insert(FLEET_WAIT_FOR_SESSION);
    let mut all = targets.to_vec();
    let mut options = HashMap::new();
    if let Some(path) = &fleet.targets_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("cannot read --targets {}: {e}", path.display())))?;
        for (target, own) in crate::fleet::read_targets(&text, &path.display().to_string())? {
            if !own.is_empty() && !takes_own {
                return Err(Error::usage(format!(
                    "--targets {}: the line of {target} says login_user= or public_key=, which \
                     are doctor options; a script takes its values with --var",
                    path.display()
                )));
            }
            match options.get(&target) {
                Some(earlier) if earlier != &own => {
                    return Err(Error::usage(format!(
                        "--targets {}: {target} is listed twice with different login_user= or \
                         public_key=; list it once",
                        path.display()
                    )))
                }
                _ => options.insert(target.clone(), own),
            };
            all.push(target);
        }
    }
    if !filters.is_empty() {
        all.extend(matching(&filters, fleet, &connect).await?);
    }
    let (mut all, dropped) = crate::fleet::dedup(all);
    for target in dropped {
        let shown = target
            .parse::<Target>()
            .map_or_else(|_| "a target".to_string(), |t| t.to_string());
        tracing::warn!("{shown} is listed more than once: done once");
    }
    if let Some(shard) = shard {
        all = shard.select(all);
    }
    let parsed = all
        .iter()
        .map(|t| t.parse::<Target>())
        .collect::<Result<Vec<_>>>()?;
    let targets = named(parsed);
    let per_target = targets
        .iter()
        .zip(&all)
        .filter_map(|((name, _), text)| {
            let own = options.get(text).filter(|own| !own.is_empty())?;
            Some((name.clone(), own.clone()))
        })
        .collect();
    Ok(Resolved {
        targets,
        connect,
        per_target,
    })
}

/// Each target with the name it is shown and filed under: what it displays
/// ([`Target`]'s `Display`: no userinfo, query, secret or control
/// character), made unique with ` #2`, ` #3`… when two targets differ only
/// in what is hidden (the same host with two tokens).
fn named(targets: Vec<Target>) -> Vec<(String, Target)> {
    let mut taken = std::collections::HashSet::new();
    targets
        .into_iter()
        .map(|target| {
            let shown = target.to_string();
            let mut name = shown.clone();
            let mut n = 1;
            while !taken.insert(name.clone()) {
                n += 1;
                name = format!("{shown} #{n}");
            }
            (name, target)
        })
        .collect()
}

/// The ids of the instances every filter matches.
async fn matching(
    filters: &[Filter],
    fleet: &FleetArgs,
    connect: &ConnectOptions,
) -> Result<Vec<String>> {
    let account = connect.ec2.account.get(&connect.ec2).await?;
    let found = crate::ec2::inventory::list(account, filters, fleet.page_size).await?;
    if found.is_empty() {
        return Err(Error::usage(format!(
            "no instance in {} matches --filter {}: check the filters and the Region (--region)",
            account.region(),
            fleet.filters.join(" --filter ")
        )));
    }
    tracing::info!("--filter matched {} instances", found.len());
    Ok(found.into_iter().map(|i| i.id).collect())
}

/// Whether every target is a recording (then the clock may run virtual:
/// see `runtime_for`). A `--targets` file that cannot be read, or a
/// `--filter`, says no.
pub(super) fn only_replays(targets: &[String], fleet: &FleetArgs) -> bool {
    let mut all = targets.to_vec();
    if let Some(path) = &fleet.targets_file {
        match std::fs::read_to_string(path)
            .ok()
            .and_then(|text| crate::fleet::read_targets(&text, "").ok())
            .map(|lines| {
                lines
                    .into_iter()
                    .map(|(target, _)| target)
                    .collect::<Vec<_>>()
            }) {
            Some(lines) => all.extend(lines),
            None => return false,
        }
    }
    fleet.filters.is_empty()
        && !all.is_empty()
        && all
            .iter()
            .all(|t| matches!(t.parse(), Ok(Target::Replay { .. })))
}
