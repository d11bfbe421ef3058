//! Which instances a fleet run covers: `--filter Name=…,Values=…`, read as
//! the AWS CLI reads it and resolved with `DescribeInstances`, page by page.
//!
//! The filters go to EC2 as they are (`Filter.N.Name`, `Filter.N.Value.M`),
//! so every filter EC2 knows works: `tag:KEY`, `tag-key`,
//! `instance-state-name`, `instance-type`, `vpc-id`, … Terminated and
//! shutting-down instances are left out unless a filter asks about the state
//! (they linger in the answers for an hour and have no console); stopped
//! ones stay in, so the run names them and says how to start them.

use std::str::FromStr;

use super::account::Account;
use super::aws_error;
use super::query::QueryError;
use crate::error::{Error, Result};

/// The most instances EC2 returns in one page (and the default page size).
pub(crate) const MAX_PAGE: u32 = 1000;
/// The fewest a page may be asked to hold.
pub(crate) const MIN_PAGE: u32 = 5;
/// Filter names that ask about the state, so no state is left out.
const STATE_FILTERS: &[&str] = &["instance-state-name", "instance-state-code"];

/// One `--filter`: a name and the values any of which matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    name: String,
    values: Vec<String>,
}

const FILTER_FORM: &str = "Name=NAME,Values=VALUE[,VALUE…] (e.g. Name=tag:Role,Values=web,api)";

impl FromStr for Filter {
    type Err = Error;

    /// The AWS CLI's shorthand: `Name=tag:Role,Values=web,api` (the keys in
    /// either order; the values run to the next key).
    fn from_str(s: &str) -> Result<Filter> {
        let bad =
            |why: &str| Error::usage(format!("--filter {s:?}: {why}; the form is {FILTER_FORM}"));
        let mut name: Option<String> = None;
        let mut values: Option<Vec<String>> = None;
        let mut in_values = false;
        for part in s.split(',') {
            if let Some(n) = part.strip_prefix("Name=") {
                if name.replace(n.to_string()).is_some() {
                    return Err(bad("Name= is given twice"));
                }
                in_values = false;
            } else if let Some(v) = part.strip_prefix("Values=") {
                if values.replace(vec![v.to_string()]).is_some() {
                    return Err(bad("Values= is given twice"));
                }
                in_values = true;
            } else if in_values {
                values.get_or_insert_with(Vec::new).push(part.to_string());
            } else {
                return Err(bad(&format!("{part:?} is neither Name=… nor Values=…")));
            }
        }
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("no Name="))?;
        let values = values.unwrap_or_default();
        if values.is_empty() || values.iter().any(String::is_empty) {
            return Err(bad("Values= needs at least one non-empty value"));
        }
        Ok(Filter { name, values })
    }
}

/// An instance a filter matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    /// `i-…`.
    pub id: String,
    /// `running`, `stopped`, …
    pub state: String,
}

/// Every instance matching all of `filters`, in the order EC2 lists them,
/// asking `page_size` at a time.
pub(crate) async fn list(
    account: &Account,
    filters: &[Filter],
    page_size: u32,
) -> Result<Vec<Instance>> {
    let page_size = page_size.to_string();
    let mut params: Vec<(String, String)> = vec![("MaxResults".into(), page_size)];
    for (i, filter) in filters.iter().enumerate() {
        params.push((format!("Filter.{}.Name", i + 1), filter.name.clone()));
        for (j, value) in filter.values.iter().enumerate() {
            params.push((format!("Filter.{}.Value.{}", i + 1, j + 1), value.clone()));
        }
    }
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut page_params = params.clone();
        if let Some(token) = &token {
            page_params.push(("NextToken".into(), token.clone()));
        }
        let borrowed: Vec<(&str, &str)> = page_params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let xml = account
            .query()
            .await?
            .call("DescribeInstances", &borrowed)
            .await
            .map_err(|e| describe_error(e, account.region()))?;
        let (instances, next) = parse_page(&xml)?;
        found.extend(instances);
        match next {
            Some(next) if Some(&next) != token.as_ref() => token = Some(next),
            _ => break,
        }
    }
    let asks_state = filters
        .iter()
        .any(|f| STATE_FILTERS.contains(&f.name.as_str()));
    if !asks_state {
        let before = found.len();
        found.retain(|i| !matches!(i.state.as_str(), "terminated" | "shutting-down"));
        if found.len() < before {
            tracing::info!(
                "left out {} terminated or shutting-down instances (filter on instance-state-name to include them)",
                before - found.len()
            );
        }
    }
    Ok(found)
}

/// The instances of one `DescribeInstances` page and its `nextToken`.
fn parse_page(xml: &str) -> Result<(Vec<Instance>, Option<String>)> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| {
        aws_error(format!(
            "DescribeInstances answered XML that does not parse ({e}); is the EC2 endpoint \
             (AWS_ENDPOINT_URL_EC2) an EC2 API? Else list the instance ids instead of --filter"
        ))
    })?;
    let root = doc.root_element();
    let mut instances = Vec::new();
    for reservation in items(child(root, "reservationSet")) {
        for instance in items(child(reservation, "instancesSet")) {
            let Some(id) = text(child(instance, "instanceId")) else {
                continue;
            };
            let state = text(child(instance, "instanceState").and_then(|s| child(s, "name")))
                .unwrap_or_else(|| "unknown".into());
            instances.push(Instance { id, state });
        }
    }
    let next = text(child(root, "nextToken")).filter(|t| !t.is_empty());
    Ok((instances, next))
}

/// The first child element of `node` called `name` (namespace aside).
fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The `<item>` children of a `…Set` element (none when it is absent).
fn items<'a, 'i>(set: Option<roxmltree::Node<'a, 'i>>) -> Vec<roxmltree::Node<'a, 'i>> {
    set.into_iter()
        .flat_map(|n| n.children())
        .filter(|c| c.is_element() && c.tag_name().name() == "item")
        .collect()
}

/// The trimmed text of an element.
fn text(node: Option<roxmltree::Node<'_, '_>>) -> Option<String> {
    node.and_then(|n| n.text()).map(|t| t.trim().to_string())
}

/// A failed `DescribeInstances`: the fix for the usual causes.
fn describe_error(e: QueryError, region: &str) -> Error {
    match e {
        QueryError::Service { code, message } => aws_error(match code.as_str() {
            "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => format!(
                "not allowed to call ec2:DescribeInstances ({code}), which --filter needs; grant it \
                 to your IAM identity, or list the instance ids instead of --filter"
            ),
            "InvalidParameterValue" | "InvalidFilter" => format!(
                "EC2 refused the --filter ({code}: {message}); see `aws ec2 describe-instances help` \
                 for the filter names"
            ),
            _ => format!(
                "DescribeInstances failed in {region} ({code}: {message}); check --region and \
                 the credentials, or list the instance ids instead of --filter"
            ),
        }),
        QueryError::Transport(message) => aws_error(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_aws_cli_shorthand() {
        let f: Filter = "Name=tag:Role,Values=web,api".parse().unwrap();
        assert_eq!(f.name, "tag:Role");
        assert_eq!(f.values, ["web", "api"]);
        let f: Filter = "Values=running,Name=instance-state-name".parse().unwrap();
        assert_eq!(f.name, "instance-state-name");
        assert_eq!(f.values, ["running"]);
        for bad in [
            "",
            "tag:Role=web",
            "Name=tag:Role",
            "Name=,Values=x",
            "Name=a,Values=",
            "Name=a,Values=x,,y",
            "Name=a,Name=b,Values=x",
            "x,Name=a,Values=b",
        ] {
            let e = bad.parse::<Filter>().unwrap_err();
            assert_eq!(e.exit_code(), crate::error::ExitCode::Usage, "{bad}");
            assert!(e.to_string().contains("Name=NAME,Values="), "{e}");
        }
    }

    #[test]
    fn reads_every_reservation_and_the_next_token() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r</requestId>
  <reservationSet>
    <item><reservationId>r-1</reservationId><groupSet><item><groupId>sg-1</groupId></item></groupSet>
      <instancesSet>
        <item><instanceId>i-0aaaaaaaaaaaaaaa1</instanceId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <tagSet><item><key>Name</key><value>web-1</value></item></tagSet></item>
        <item><instanceId>i-0aaaaaaaaaaaaaaa2</instanceId>
          <instanceState><code>80</code><name>stopped</name></instanceState></item>
      </instancesSet></item>
    <item><reservationId>r-2</reservationId>
      <instancesSet><item><instanceId>i-0aaaaaaaaaaaaaaa3</instanceId>
        <instanceState><code>48</code><name>terminated</name></instanceState></item></instancesSet></item>
  </reservationSet>
  <nextToken>tok-2</nextToken>
</DescribeInstancesResponse>"#;
        let (instances, next) = parse_page(xml).unwrap();
        let seen: Vec<(&str, &str)> = instances
            .iter()
            .map(|i| (i.id.as_str(), i.state.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("i-0aaaaaaaaaaaaaaa1", "running"),
                ("i-0aaaaaaaaaaaaaaa2", "stopped"),
                ("i-0aaaaaaaaaaaaaaa3", "terminated")
            ]
        );
        assert_eq!(next.as_deref(), Some("tok-2"));
        let last = xml.replace("<nextToken>tok-2</nextToken>", "");
        assert_eq!(parse_page(&last).unwrap().1, None);
        assert!(parse_page("<unclosed").is_err());
    }
}
