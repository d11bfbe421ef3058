//! Where each Region's serial console listens, and the host key it must show.
//!
//! AWS publishes one SSH endpoint per Region and the SHA256 fingerprint of its
//! host key ("EC2 Serial Console endpoints and fingerprints" in the EC2 User
//! Guide). We pin the fingerprint instead of trusting on first use: a
//! connection whose host key does not match is refused. New Regions and test
//! stand-ins are reached with `--serial-endpoint HOST[:PORT]` and
//! `--host-key-fingerprint SHA256:…`.

use crate::error::{Error, Result};

/// The SSH port of every published endpoint (implied by AWS's examples).
pub(crate) const SSH_PORT: u16 = 22;

/// `(Region, endpoint host, host-key fingerprint)`, as AWS publishes them.
pub(crate) const REGIONS: &[(&str, &str, &str)] = &[
    (
        "us-east-2",
        "serial-console.ec2-instance-connect.us-east-2.aws",
        "SHA256:EhwPkTzRtTY7TRSzz26XbB0/HvV9jRM7mCZN0xw/d/0",
    ),
    (
        "us-east-1",
        "serial-console.ec2-instance-connect.us-east-1.aws",
        "SHA256:dXwn5ma/xadVMeBZGEru5l2gx+yI5LDiJaLUcz0FMmw",
    ),
    (
        "us-west-1",
        "serial-console.ec2-instance-connect.us-west-1.aws",
        "SHA256:OHldlcMET8u7QLSX3jmRTRAPFHVtqbyoLZBMUCqiH3Y",
    ),
    (
        "us-west-2",
        "serial-console.ec2-instance-connect.us-west-2.aws",
        "SHA256:EMCIe23TqKaBI6yGHainqZcMwqNkDhhAVHa1O2JxVUc",
    ),
    (
        "af-south-1",
        "ec2-serial-console.af-south-1.api.aws",
        "SHA256:RMWWZ2fVePeJUqzjO5jL2KIgXsczoHlz21Ed00biiWI",
    ),
    (
        "ap-east-1",
        "ec2-serial-console.ap-east-1.api.aws",
        "SHA256:T0Q1lpiXxChoZHplnAkjbP7tkm2xXViC9bJFsjYnifk",
    ),
    (
        "ap-east-2",
        "ec2-serial-console.ap-east-2.api.aws",
        "SHA256:z1rsF5DE8aQqsHwBr/D40tR2GnyMqnScCUa1z1eFwDQ",
    ),
    (
        "ap-south-2",
        "ec2-serial-console.ap-south-2.api.aws",
        "SHA256:WJgPBSwV4/shN+OPITValoewAuYj15DVW845JEhDKRs",
    ),
    (
        "ap-southeast-3",
        "ec2-serial-console.ap-southeast-3.api.aws",
        "SHA256:5ZwgrCh+lfns32XITqL/4O0zIfbx4bZgsYFqy3o8mIk",
    ),
    (
        "ap-southeast-5",
        "ec2-serial-console.ap-southeast-5.api.aws",
        "SHA256:cQXTHQMRcqRdIjmAGoAMBSExeoRobYyRwT67yTjnEiA",
    ),
    (
        "ap-southeast-4",
        "ec2-serial-console.ap-southeast-4.api.aws",
        "SHA256:Avaq27hFgLvjn5gTSShZ0oV7h90p0GG46wfOeT6ZJvM",
    ),
    (
        "ap-south-1",
        "serial-console.ec2-instance-connect.ap-south-1.aws",
        "SHA256:oBLXcYmklqHHEbliARxEgH8IsO51rezTPiSM35BsU40",
    ),
    (
        "ap-northeast-3",
        "ec2-serial-console.ap-northeast-3.api.aws",
        "SHA256:Am0/jiBKBnBuFnHr9aXsgEV3G8Tu/vVHFXE/3UcyjsQ",
    ),
    (
        "ap-northeast-2",
        "serial-console.ec2-instance-connect.ap-northeast-2.aws",
        "SHA256:FoqWXNX+DZ++GuNTztg9PK49WYMqBX+FrcZM2dSrqrI",
    ),
    (
        "ap-southeast-1",
        "serial-console.ec2-instance-connect.ap-southeast-1.aws",
        "SHA256:PLFNn7WnCQDHx3qmwLu1Gy/O8TUX7LQgZuaC6L45CoY",
    ),
    (
        "ap-southeast-2",
        "serial-console.ec2-instance-connect.ap-southeast-2.aws",
        "SHA256:yFvMwUK9lEUQjQTRoXXzuN+cW9/VSe9W984Cf5Tgzo4",
    ),
    (
        "ap-southeast-7",
        "ec2-serial-console.ap-southeast-7.api.aws",
        "SHA256:KCAZiRYrR1Q2lqsg7vTwixWmvc2wmjVT31XRgSdEfDY",
    ),
    (
        "ap-northeast-1",
        "serial-console.ec2-instance-connect.ap-northeast-1.aws",
        "SHA256:RQfsDCZTOfQawewTRDV1t9Em/HMrFQe+CRlIOT5um4k",
    ),
    (
        "ca-central-1",
        "serial-console.ec2-instance-connect.ca-central-1.aws",
        "SHA256:P2O2jOZwmpMwkpO6YW738FIOTHdUTyEv2gczYMMO7s4",
    ),
    (
        "ca-west-1",
        "ec2-serial-console.ca-west-1.api.aws",
        "SHA256:s3rc8lI2xhbhr3iedjJNxGAFLPGOLjx7IxxXrGckk6Q",
    ),
    (
        "cn-north-1",
        "ec2-serial-console.cn-north-1.api.amazonwebservices.com.cn",
        "SHA256:2gHVFy4H7uU3+WaFUxD28v/ggMeqjvSlgngpgLgGT+Y",
    ),
    (
        "cn-northwest-1",
        "ec2-serial-console.cn-northwest-1.api.amazonwebservices.com.cn",
        "SHA256:TdgrNZkiQOdVfYEBUhO4SzUA09VWI5rYOZGTogpwmiM",
    ),
    (
        "eu-central-1",
        "serial-console.ec2-instance-connect.eu-central-1.aws",
        "SHA256:aCMFS/yIcOdOlkXvOl8AmZ1Toe+bBnrJJ3Fy0k0De2c",
    ),
    (
        "eu-west-1",
        "serial-console.ec2-instance-connect.eu-west-1.aws",
        "SHA256:h2AaGAWO4Hathhtm6ezs3Bj7udgUxi2qTrHjZAwCW6E",
    ),
    (
        "eu-west-2",
        "serial-console.ec2-instance-connect.eu-west-2.aws",
        "SHA256:a69rd5CE/AEG4Amm53I6lkD1ZPvS/BCV3tTPW2RnJg8",
    ),
    (
        "eu-south-1",
        "ec2-serial-console.eu-south-1.api.aws",
        "SHA256:lC0kOVJnpgFyBVrxn0A7n99ecLbXSX95cuuS7X7QK30",
    ),
    (
        "eu-west-3",
        "serial-console.ec2-instance-connect.eu-west-3.aws",
        "SHA256:q8ldnAf9pymeNe8BnFVngY3RPAr/kxswJUzfrlxeEWs",
    ),
    (
        "eu-south-2",
        "ec2-serial-console.eu-south-2.api.aws",
        "SHA256:GoCW2DFRlu669QNxqFxEcsR6fZUz/4F4n7T45ZcwoEc",
    ),
    (
        "eu-north-1",
        "serial-console.ec2-instance-connect.eu-north-1.aws",
        "SHA256:tkGFFUVUDvocDiGSS3Cu8Gdl6w2uI32EPNpKFKLwX84",
    ),
    (
        "eu-central-2",
        "ec2-serial-console.eu-central-2.api.aws",
        "SHA256:8Ppx2mBMf6WdCw0NUlzKfwM4/IfRz4OaXFutQXWp6mk",
    ),
    (
        "il-central-1",
        "ec2-serial-console.il-central-1.api.aws",
        "SHA256:JR6q8v6kNNPi8+QSFQ4dj5dimNmZPTgwgsM1SNvtYyU",
    ),
    (
        "mx-central-1",
        "ec2-serial-console.mx-central-1.api.aws",
        "SHA256:BCuVl13iQNk+CcVnt18Ef4p2ZHUrBBAOxlFetB32GS0",
    ),
    (
        "me-south-1",
        "ec2-serial-console.me-south-1.api.aws",
        "SHA256:nPjLLKHu2QnLdUq2kVArsoK5xvPJOMRJKCBzCDqC3k8",
    ),
    (
        "me-central-1",
        "ec2-serial-console.me-central-1.api.aws",
        "SHA256:zpb5duKiBZ+l0dFwPeyykB4MPBYhI/XzXNeFSDKBvLE",
    ),
    (
        "sa-east-1",
        "serial-console.ec2-instance-connect.sa-east-1.aws",
        "SHA256:rd2+/32Ognjew1yVIemENaQzC+Botbih62OqAPDq1dI",
    ),
    (
        "us-gov-east-1",
        "serial-console.ec2-instance-connect.us-gov-east-1.amazonaws.com",
        "SHA256:tIwe19GWsoyLClrtvu38YEEh+DHIkqnDcZnmtebvF28",
    ),
    (
        "us-gov-west-1",
        "serial-console.ec2-instance-connect.us-gov-west-1.amazonaws.com",
        "SHA256:kfOFRWLaOZfB+utbd3bRf8OlPf8nGO2YZLqXZiIw5DQ",
    ),
];

/// Where to SSH for one Region's serial console, and what host key to expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SerialEndpoint {
    /// DNS name or address.
    pub host: String,
    /// TCP port (22 for AWS).
    pub port: u16,
    /// The pinned host-key fingerprint, `SHA256:` + unpadded base64.
    pub fingerprint: String,
}

impl SerialEndpoint {
    /// The published endpoint of `region`, or `None` for a Region AWS has not listed.
    pub(crate) fn for_region(region: &str) -> Option<SerialEndpoint> {
        REGIONS
            .iter()
            .find(|(r, _, _)| *r == region)
            .map(|(_, host, fingerprint)| SerialEndpoint {
                host: (*host).to_string(),
                port: SSH_PORT,
                fingerprint: (*fingerprint).to_string(),
            })
    }

    /// The endpoint for `region` with the command line's overrides applied.
    ///
    /// An override host needs its own fingerprint: pinning AWS's key to a
    /// host that is not AWS's would always fail, and not pinning at all would
    /// be trust-on-first-use, which AWS warns against.
    pub(crate) fn resolve(
        region: &str,
        host_override: Option<&str>,
        fingerprint_override: Option<&str>,
    ) -> Result<SerialEndpoint> {
        let published = SerialEndpoint::for_region(region);
        let fingerprint = match fingerprint_override {
            Some(f) => parse_fingerprint(f)?,
            None => match (&published, host_override) {
                (Some(p), None) => p.fingerprint.clone(),
                (_, Some(host)) => {
                    return Err(Error::usage(format!(
                    "--serial-endpoint {host} needs --host-key-fingerprint SHA256:… (the host key \
                         of that endpoint, e.g. from `ssh-keygen -lf` on its public host key)"
                )))
                }
                (None, None) => return Err(unknown_region(region)),
            },
        };
        let (host, port) = match host_override {
            Some(h) => parse_host_port(h)?,
            None => {
                let p = published.ok_or_else(|| unknown_region(region))?;
                (p.host, p.port)
            }
        };
        Ok(SerialEndpoint {
            host,
            port,
            fingerprint,
        })
    }
}

fn unknown_region(region: &str) -> Error {
    Error::usage(format!(
        "no published EC2 Serial Console endpoint for Region {region:?}; check --region, or pass \
         --serial-endpoint HOST[:PORT] and --host-key-fingerprint SHA256:… from the EC2 User Guide \
         (\"EC2 Serial Console endpoints and fingerprints\")"
    ))
}

/// Parses `--serial-endpoint HOST[:PORT]` (IPv6 as `[ADDR]:PORT`).
pub(crate) fn parse_host_port(s: &str) -> Result<(String, u16)> {
    let bad = |why: &str| {
        Error::usage(format!(
            "bad --serial-endpoint {s:?}: {why}; give HOST or HOST:PORT (e.g. 127.0.0.1:2222)"
        ))
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad("junk after `]`")),
        };
        (addr, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return Err(bad("an IPv6 address goes in brackets: [ADDR]:PORT")),
            None => (s, None),
        }
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Err(bad("the host is empty or not a host name"));
    }
    let port = match port {
        None => SSH_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
    };
    Ok((host.to_string(), port))
}

/// Checks a `SHA256:…` fingerprint (43 characters of unpadded base64 after the prefix).
pub(crate) fn parse_fingerprint(s: &str) -> Result<String> {
    use base64::Engine;
    let body = s.strip_prefix("SHA256:").unwrap_or("");
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD.decode(body);
    match decoded {
        Ok(bytes) if bytes.len() == 32 => Ok(s.to_string()),
        _ => Err(Error::usage(format!(
            "bad --host-key-fingerprint {s:?}: give `SHA256:` followed by 43 characters of base64, \
             as `ssh-keygen -lf HOSTKEY.pub` prints"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The Regions' endpoints and fingerprints as AWS publishes them, copied
    /// from the project's reference notes into `fixtures/reference/`.
    fn reference_table() -> HashMap<String, (String, String)> {
        include_str!("../../fixtures/reference/ec2-serial-endpoints.md")
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line
                    .trim()
                    .trim_matches('|')
                    .split('|')
                    .map(str::trim)
                    .collect();
                (cells.len() == 3 && cells[2].starts_with("SHA256:")).then(|| {
                    (
                        cells[0].to_string(),
                        (cells[1].to_string(), cells[2].to_string()),
                    )
                })
            })
            .collect()
    }

    #[test]
    fn table_matches_the_reference_for_every_region() {
        let reference = reference_table();
        assert_eq!(
            reference.len(),
            REGIONS.len(),
            "Region count differs from the reference"
        );
        for (region, host, fingerprint) in REGIONS {
            let (h, f) = reference
                .get(*region)
                .unwrap_or_else(|| panic!("{region} not in the reference"));
            assert_eq!((h.as_str(), f.as_str()), (*host, *fingerprint), "{region}");
        }
    }

    #[test]
    fn every_pinned_fingerprint_is_well_formed_and_regions_unique() {
        let mut seen = std::collections::HashSet::new();
        for (region, _, fingerprint) in REGIONS {
            assert!(seen.insert(region), "{region} listed twice");
            parse_fingerprint(fingerprint).unwrap();
        }
    }

    #[test]
    fn the_two_regions_another_copy_gets_wrong_follow_aws() {
        let tokyo = SerialEndpoint::for_region("ap-northeast-1").unwrap();
        assert_eq!(
            tokyo.host,
            "serial-console.ec2-instance-connect.ap-northeast-1.aws"
        );
        assert_eq!(
            tokyo.fingerprint,
            "SHA256:RQfsDCZTOfQawewTRDV1t9Em/HMrFQe+CRlIOT5um4k"
        );
        let sao_paulo = SerialEndpoint::for_region("sa-east-1").unwrap();
        assert_eq!(
            sao_paulo.fingerprint,
            "SHA256:rd2+/32Ognjew1yVIemENaQzC+Botbih62OqAPDq1dI"
        );
    }

    #[test]
    fn overrides_need_a_fingerprint_and_parse_ports() {
        let fp = "SHA256:EhwPkTzRtTY7TRSzz26XbB0/HvV9jRM7mCZN0xw/d/0";
        let e = SerialEndpoint::resolve("us-east-2", Some("127.0.0.1:2222"), Some(fp)).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 2222));
        let e = SerialEndpoint::resolve("zz-nowhere-1", Some("[::1]:22"), Some(fp)).unwrap();
        assert_eq!(e.host, "::1");
        let err = SerialEndpoint::resolve("us-east-2", Some("127.0.0.1:2222"), None).unwrap_err();
        assert!(err.to_string().contains("--host-key-fingerprint"), "{err}");
        let err = SerialEndpoint::resolve("zz-nowhere-1", None, None).unwrap_err();
        assert!(err.to_string().contains("zz-nowhere-1"), "{err}");
        for bad in ["", "host:0", "host:99999", "a b", "::1:22", "[::1"] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
        for bad in ["", "SHA256:", "MD5:aa", "SHA256:abc"] {
            assert!(parse_fingerprint(bad).is_err(), "{bad}");
        }
    }
}
