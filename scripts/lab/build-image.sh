#!/usr/bin/env bash
# Builds the lab's Debian disk image: the recipe behind `ec2-serial-expect lab up`.
#
# Why a shell script: debootstrap, chroot and mkfs are shell tools, and a
# script is easy to read and to run by hand. The binary embeds this file
# (include_str!) and keys its image cache by a hash of it, so editing the
# recipe rebuilds the image on the next `lab up`.
#
# Inputs (environment, never argv, so nothing secret shows in `ps`):
#   LAB_OUT          directory to fill: disk.img, vmlinuz, initrd.img
#   LAB_MIRROR       Debian mirror URL (read from the machine's apt sources)
#   LAB_SUITE        Debian suite (bookworm)
#   LAB_PUBKEY_FILE  the ed25519 public key to authorize for ec2-user and lab-admin
#   LAB_PASSWORD_FILE file whose first line is the console password of both users
# Needs root (debootstrap, chroot, chown).
set -euo pipefail

: "${LAB_OUT:?}" "${LAB_MIRROR:?}" "${LAB_SUITE:?}" "${LAB_PUBKEY_FILE:?}" "${LAB_PASSWORD_FILE:?}"
HOSTNAME_=lab-instance
ROOTFS="$LAB_OUT/rootfs"
PACKAGES=systemd-sysv,openssh-server,fish,tcsh,zsh,mksh,ksh,linux-image-cloud-amd64,passwd,login,procps,iproute2,ifupdown,isc-dhcp-client,sudo,grub2-common,grub-pc-bin

step() { echo "== $(date +%T) $*"; }

rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"
step "debootstrap $LAB_SUITE from $LAB_MIRROR"
debootstrap --variant=minbase --include="$PACKAGES" "$LAB_SUITE" "$ROOTFS" "$LAB_MIRROR"

step "configuring the system"
echo "$HOSTNAME_" > "$ROOTFS/etc/hostname"
cat > "$ROOTFS/etc/hosts" <<HOSTS
127.0.0.1 localhost
127.0.1.1 $HOSTNAME_
::1 localhost ip6-localhost ip6-loopback
HOSTS
cat > "$ROOTFS/etc/fstab" <<'FSTAB'
/dev/vda / ext4 defaults,errors=remount-ro 0 0
FSTAB
cat > "$ROOTFS/etc/network/interfaces" <<'IFACES'
auto lo
iface lo inet loopback

auto ens3
iface ens3 inet dhcp
IFACES
# Every boot is a fresh -snapshot: no need to wait on a clock or apt.
rm -f "$ROOTFS/etc/machine-id" && touch "$ROOTFS/etc/machine-id"
echo 'SHELL=/bin/bash' > "$ROOTFS/etc/default/useradd"

# ec2-user: the AMI's default user, a password for the console and sudo
# without one. lab-admin: a second admin, the way back in when ec2-user
# itself is locked, and "another user" for the ownership scenarios.
for user in ec2-user lab-admin; do
  chroot "$ROOTFS" useradd -m -s /bin/bash "$user"
  printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" > "$ROOTFS/etc/sudoers.d/90-$user"
  chmod 0440 "$ROOTFS/etc/sudoers.d/90-$user"
  home="$ROOTFS/home/$user"
  mkdir -p "$home/.ssh"
  cp "$LAB_PUBKEY_FILE" "$home/.ssh/authorized_keys"
  chmod 0700 "$home" "$home/.ssh"
  chmod 0600 "$home/.ssh/authorized_keys"
  uid=$(chroot "$ROOTFS" id -u "$user"); gid=$(chroot "$ROOTFS" id -g "$user")
  chown -R "$uid:$gid" "$home"
  # printf is a builtin: the password never appears in a process's argv.
  printf '%s:%s\n' "$user" "$(head -n1 "$LAB_PASSWORD_FILE")" | chroot "$ROOTFS" chpasswd
done

# GRUB's configuration as on an AMI: the tools (update-grub) and a
# /etc/default/grub whose kernel line has the serial console, but whose menu
# is neither on the serial port nor waits (what `prepare` changes); on the
# text console, as Amazon Linux's "ec2-console" (GRUB's graphical terminal
# is slow under TCG). No
# grub.cfg yet: the boot CD of `lab up --boot grub` follows
# /boot/grub/grub.cfg once update-grub has written one, and shows its own
# serial menu until then.
cat > "$ROOTFS/etc/default/grub" <<'GRUB'
# Written by the lab's image recipe, like a cloud image's.
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL=console
GRUB
# Where update-grub writes (grub-install would have made it).
mkdir -p "$ROOTFS/boot/grub"

step "building disk.img"
cp "$ROOTFS"/boot/vmlinuz-*-cloud-amd64 "$LAB_OUT/vmlinuz"
cp "$ROOTFS"/boot/initrd.img-*-cloud-amd64 "$LAB_OUT/initrd.img"
mkfs.ext4 -q -F -L lab-root -d "$ROOTFS" "$LAB_OUT/disk.img" 2G
rm -rf "$ROOTFS"
step "done"
