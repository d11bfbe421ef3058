//! The boot CD that puts a real GRUB 2 in front of the lab's kernel
//! (`lab up --boot grub`).
//!
//! The lab's disk is a bare ext4 filesystem and this machine may have no
//! loop devices, so GRUB is not installed on it: `grub-mkrescue` makes a
//! small El Torito CD holding GRUB (BIOS, `i386-pc`), its `grub.cfg`, the
//! kernel and the initrd, and QEMU boots from it with the disk still the
//! root (`/dev/vda`). What the rescue path meets is what an EC2 instance
//! shows: the menu with its countdown on the serial console, an entry whose
//! script has several lines around the `linux` one, and the editor. The CD
//! is built once per image, next to it, and rebuilt when [`GRUB_CFG`]
//! changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::lab::image::{self, Image};
use crate::lab::layout::LabDirs;

/// The menu, as Debian's `update-grub` writes it for a serial console
/// (`GRUB_TERMINAL=serial`, `GRUB_TIMEOUT=5`), with the lab's root.
const GRUB_CFG: &str = include_str!("../../../scripts/lab/grub.cfg");

/// The boot CD for `image`, built now if it is missing or stale.
pub(super) fn ensure_iso(dirs: &LabDirs, image: &Image) -> Result<PathBuf> {
    let iso = image.dir.join("grub.iso");
    let stamp = image.dir.join("grub.cfg");
    let current = |stamp: &Path| std::fs::read_to_string(stamp).is_ok_and(|t| t == GRUB_CFG);
    if iso.exists() && current(&stamp) {
        return Ok(iso);
    }
    crate::lab::prereq::check_grub()?;
    let lock = image::lock_builds(dirs)?;
    if !(iso.exists() && current(&stamp)) {
        build(image, &iso)?;
        std::fs::write(&stamp, GRUB_CFG)
            .map_err(|e| Error::io(format!("writing {}", stamp.display()), e))?;
    }
    drop(lock);
    Ok(iso)
}

/// Lays out the CD's files and runs `grub-mkrescue` (BIOS only: no EFI
/// image, so no mtools needed).
fn build(image: &Image, iso: &Path) -> Result<()> {
    let root = image.dir.join("grub-iso.partial");
    let _ = std::fs::remove_dir_all(&root);
    let grub_dir = root.join("boot/grub");
    std::fs::create_dir_all(&grub_dir)
        .map_err(|e| Error::io(format!("creating {}", grub_dir.display()), e))?;
    std::fs::write(grub_dir.join("grub.cfg"), GRUB_CFG)
        .map_err(|e| Error::io("writing the CD's grub.cfg", e))?;
    for (from, name) in [(&image.kernel, "vmlinuz"), (&image.initrd, "initrd.img")] {
        std::fs::copy(from, root.join(name))
            .map_err(|e| Error::io(format!("copying {} onto the boot CD", from.display()), e))?;
    }
    let partial = iso.with_extension("iso.partial");
    let output = Command::new("grub-mkrescue")
        .arg("-d")
        .arg(crate::lab::prereq::GRUB_BIOS_MODULES)
        .arg("-o")
        .arg(&partial)
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::io(
                "running grub-mkrescue for the lab's GRUB boot (install grub-pc-bin and xorriso: scripts/setup.sh)",
                e,
            )
        })?;
    let _ = std::fs::remove_dir_all(&root);
    if !output.status.success() {
        return Err(Error::io(
            format!("grub-mkrescue could not build {}", iso.display()),
            std::io::Error::other(String::from_utf8_lossy(&output.stderr).trim().to_string()),
        ));
    }
    std::fs::rename(&partial, iso)
        .map_err(|e| Error::io(format!("moving the boot CD to {}", iso.display()), e))
}
