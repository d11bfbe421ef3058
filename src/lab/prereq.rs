//! What the lab needs from the host, checked before anything starts.
//!
//! A missing program or missing root is a usage error (exit code 2) that
//! names the Debian package to install, so a user on a fresh machine knows
//! the one command to run instead of reading a QEMU or debootstrap failure.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::transport;

/// A program the lab runs, and the Debian package that provides it.
struct Tool {
    program: &'static str,
    package: &'static str,
}

/// Needed to boot the lab and talk to it.
const BOOT_TOOLS: &[Tool] = &[
    Tool {
        program: "qemu-system-x86_64",
        package: "qemu-system-x86",
    },
    Tool {
        program: "ssh",
        package: "openssh-client",
    },
    Tool {
        program: "ssh-keygen",
        package: "openssh-client",
    },
];

/// Needed to build the image (besides root).
const BUILD_TOOLS: &[Tool] = &[
    Tool {
        program: "debootstrap",
        package: "debootstrap",
    },
    Tool {
        program: "mkfs.ext4",
        package: "e2fsprogs",
    },
    Tool {
        program: "chroot",
        package: "coreutils",
    },
];

/// Needed for `lab up --boot grub` (the boot CD).
const GRUB_TOOLS: &[Tool] = &[
    Tool {
        program: "grub-mkrescue",
        package: "grub-common",
    },
    Tool {
        program: "xorriso",
        package: "xorriso",
    },
];

/// Where GRUB's BIOS modules are (Debian's grub-pc-bin).
pub const GRUB_BIOS_MODULES: &str = "/usr/lib/grub/i386-pc";

/// Checks what building the GRUB boot CD needs.
pub fn check_grub() -> Result<()> {
    check(GRUB_TOOLS)?;
    if !Path::new(GRUB_BIOS_MODULES).join("cdboot.img").exists() {
        return Err(Error::usage(format!(
            "`lab up --boot grub` needs GRUB's BIOS modules in {GRUB_BIOS_MODULES}: run \
             `sudo apt-get install -y grub-pc-bin` (or `sudo bash scripts/setup.sh` in the project)"
        )));
    }
    Ok(())
}

/// Checks the programs needed to boot a VM and reach it.
pub fn check_boot() -> Result<()> {
    check(BOOT_TOOLS)
}

/// Checks root and the programs needed to build the image.
pub fn check_build() -> Result<()> {
    check(BOOT_TOOLS)?;
    check(BUILD_TOOLS)?;
    if !super::layout::is_root() {
        return Err(Error::usage(
            "building the lab image needs root (debootstrap and chroot): run `sudo ec2-serial-expect lab up` \
             once; later boots reuse the cached image",
        ));
    }
    Ok(())
}

/// Finds `program` on PATH or in the sbin directories (often off a user's PATH).
pub fn find_program(program: &str) -> Option<PathBuf> {
    transport::on_path(program.as_ref()).or_else(|| {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .map(|dir| Path::new(dir).join(program))
            .into_iter()
            .find(|p| transport::is_executable(p))
    })
}

fn check(tools: &[Tool]) -> Result<()> {
    let missing: Vec<&Tool> = tools
        .iter()
        .filter(|t| find_program(t.program).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let programs: Vec<&str> = missing.iter().map(|t| t.program).collect();
    let mut packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    packages.dedup();
    Err(Error::usage(format!(
        "the lab needs {} which {} not installed: run `sudo apt-get install -y {}` \
         (or `sudo bash scripts/setup.sh` in the project)",
        programs.join(", "),
        if programs.len() == 1 { "is" } else { "are" },
        packages.join(" ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_its_package() {
        let err = check(&[Tool {
            program: "no-such-program-ese",
            package: "no-such-package",
        }])
        .unwrap_err();
        assert_eq!(err.exit_code().code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("apt-get install -y no-such-package"),
            "{text}"
        );
        assert!(text.contains("no-such-program-ese"), "{text}");
    }

    #[test]
    fn finds_a_real_program() {
        assert!(find_program("sh").is_some());
    }
}
