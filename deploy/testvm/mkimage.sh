#!/bin/bash
# mkimage.sh CACHE_DIR GUEST_CIDR (mkimage.sh --mirror: print the mirror)
# builds (or keeps) the Debian bookworm arm64 root filesystem that
# make test-deploy-vm boots, in CACHE_DIR/rootfs, with the
# kernel and initrd copied to CACHE_DIR/vmlinuz and CACHE_DIR/initrd.img and a
# test-only ssh key in CACHE_DIR/id_ed25519. CACHE_DIR/stamp names the package
# list and layout it was built from: a run with the same stamp does nothing, a
# changed one rebuilds from scratch. The Debian mirror is read at run time from
# this machine's apt configuration. Needs root, debootstrap, qemu-user-static
# (registered through binfmt_misc with the F flag; this script registers it if
# nothing has) and ssh-keygen. Called by deploy/testvm (the Go program).
set -euo pipefail

# debian_mirror prints the mirror of this machine's apt configuration: the
# URIs of the deb822 stanza whose Suites has bookworm, else the URI of a
# `deb [options] URI bookworm ...` line of sources.list. The paths can be
# overridden (VARPAR_APT_SOURCES, VARPAR_APT_LIST) for the tests.
debian_mirror() {
	local sources=${VARPAR_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
	local list=${VARPAR_APT_LIST:-/etc/apt/sources.list} m=""
	if [[ -f $sources ]]; then
		m=$(awk 'BEGIN{RS=""; FS="\n"} {u=""; s=0; d=0; for(i=1;i<=NF;i++){ if($i ~ /^URIs:/){split($i,a,/[ \t]+/); u=a[2]} if($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) s=1; if($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) d=1 } if(s && d && u!=""){print u; exit}}' "$sources")
	fi
	if [[ -z $m && -f $list ]]; then
		m=$(awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while (i<=NF && $i !~ /\]$/) i++; i++ } if ($(i+1)=="bookworm") { print $i; exit } }' "$list")
	fi
	if [[ -z $m ]]; then
		echo "mkimage: no Debian bookworm mirror in $sources (URIs: of a Types: deb, Suites: bookworm stanza) or $list (a deb URI bookworm line)" >&2
		return 1
	fi
	echo "$m"
}

if [[ ${1:-} == --mirror ]]; then
	debian_mirror
	exit
fi

cache=${1:?usage: mkimage.sh CACHE_DIR GUEST_CIDR}
# The guest's static address on the tap link (e.g. 198.19.11.2/24; the Go
# program owns the plan and passes it).
guest_addr=${2:?usage: mkimage.sh CACHE_DIR GUEST_CIDR}
[[ $guest_addr =~ ^198\.1[89]\.[0-9]{1,3}\.[0-9]{1,3}/[0-9]{1,2}$ ]] || { echo "mkimage: guest address $guest_addr is not a CIDR in 198.18.0.0/15" >&2; exit 1; }
suite=bookworm
arch=arm64
variant=minbase
# The guest: systemd as PID 1, sshd and python3 for ansible, Debian's arm64
# kernel and an initrd (virtio and ext4 are modules in Debian's kernel).
packages=(systemd-sysv udev dbus openssh-server python3 sudo iproute2 procps
	linux-image-arm64 initramfs-tools zstd)
layout=4 # bump when the configuration below changes
stamp="suite=$suite arch=$arch variant=$variant packages=$(printf '%s\n' "${packages[@]}" | sort | paste -sd, -) addr=$guest_addr layout=$layout"

if [[ -f $cache/stamp && "$(cat "$cache/stamp")" == "$stamp" && -d $cache/rootfs && -f $cache/vmlinuz && -f $cache/id_ed25519 ]]; then
	echo "mkimage: cached image is current ($cache/stamp)"
	exit 0
fi
[[ $(id -u) == 0 ]] || { echo "mkimage: needs root" >&2; exit 1; }

mirror=$(debian_mirror) || exit 1

# qemu-aarch64 through binfmt_misc, F flag (the interpreter is opened now, so
# it works inside the chroot). Another helper may register it at the same
# time: "File exists" is fine, what counts is that the entry is there after.
bm=/proc/sys/fs/binfmt_misc
[[ -e $bm/register ]] || mount -t binfmt_misc binfmt_misc $bm 2>/dev/null || [[ -e $bm/register ]] ||
	{ echo "mkimage: cannot mount binfmt_misc on $bm" >&2; exit 1; }
if [[ ! -e $bm/qemu-aarch64 ]]; then
	[[ -x /usr/bin/qemu-aarch64-static ]] || { echo "mkimage: /usr/bin/qemu-aarch64-static missing (apt-get install qemu-user-static)" >&2; exit 1; }
	printf '%s' ':qemu-aarch64:M:0:\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' >$bm/register 2>/dev/null || true
fi
grep -qx enabled $bm/qemu-aarch64 2>/dev/null || { echo "mkimage: qemu-aarch64 is not registered (enabled) in $bm" >&2; exit 1; }

new=$cache/rootfs.new
mkdir -p "$cache"
rm -rf "$new" "$cache/stamp"
echo "mkimage: debootstrap --arch=$arch $suite from $mirror (emulated second stage: many minutes)"
start=$(date +%s)
fail() {
	tail -n 30 "$cache/debootstrap.log" >&2
	[[ -f $new/debootstrap/debootstrap.log ]] && tail -n 30 "$new/debootstrap/debootstrap.log" >&2
	echo "mkimage: $1 failed (log: $cache/debootstrap.log)" >&2
	exit 1
}
# Two stages, so that the initrd's configuration is in place before the
# kernel's postinst builds it: MODULES=most makes mkinitramfs copy and
# resolve about a thousand modules, over half an hour under qemu-user; the
# virt machine needs four.
debootstrap --foreign --arch=$arch --variant=$variant --include="$(IFS=,; echo "${packages[*]}")" \
	$suite "$new" "$mirror" >"$cache/debootstrap.log" 2>&1 || fail "debootstrap (first stage)"
mkdir -p "$new/etc/initramfs-tools/conf.d" "$new/etc/initramfs-tools/hooks"
printf '# varpar testvm: only what the qemu virt machine needs.\nMODULES=list\n' \
	>"$new/etc/initramfs-tools/conf.d/varpar-testvm.conf"
cat >"$new/etc/initramfs-tools/hooks/varpar-testvm" <<'HOOK'
#!/bin/sh
# varpar testvm: the qemu virt machine's disk, network and root filesystem.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk virtio_net ext4; do
	force_load "$m"
done
HOOK
chmod 755 "$new/etc/initramfs-tools/hooks/varpar-testvm"
chroot "$new" /debootstrap/debootstrap --second-stage >>"$cache/debootstrap.log" 2>&1 || fail "debootstrap --second-stage"
echo "mkimage: debootstrap took $(($(date +%s) - start)) s"

echo varpar-vm >"$new/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 varpar-vm\n' >"$new/etc/hosts"
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' >"$new/etc/fstab"
mkdir -p "$new/etc/systemd/network"
printf '[Match]\nName=eth0\n\n[Network]\nAddress=%s\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' "$guest_addr" >"$new/etc/systemd/network/10-eth0.network"
printf 'UseDNS no\nPermitRootLogin prohibit-password\n' >"$new/etc/ssh/sshd_config.d/varpar-testvm.conf"
chroot "$new" systemctl enable systemd-networkd.service >/dev/null 2>&1
# Nothing in the guest reaches a network but the tap: no apt timers.
chroot "$new" systemctl mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
rm -f "$cache/id_ed25519" "$cache/id_ed25519.pub"
ssh-keygen -q -t ed25519 -N '' -C varpar-testvm -f "$cache/id_ed25519"
install -d -m 0700 "$new/root/.ssh"
install -m 0600 "$cache/id_ed25519.pub" "$new/root/.ssh/authorized_keys"
rm -f "$new"/var/cache/apt/archives/*.deb

kernel=$(ls "$new"/boot/vmlinuz-* | sort -V | tail -n 1)
initrd=$(ls "$new"/boot/initrd.img-* | sort -V | tail -n 1)
[[ -f $kernel && -f $initrd ]] || { echo "mkimage: no kernel or initrd in $new/boot" >&2; exit 1; }
cp "$kernel" "$cache/vmlinuz"
cp "$initrd" "$cache/initrd.img"
grep -E '^CONFIG_(VIRTIO_BLK|VIRTIO_NET|VIRTIO_PCI|EXT4_FS)=' "$new"/boot/config-* >"$cache/kernel-virtio.txt" || true

rm -rf "$cache/rootfs"
mv "$new" "$cache/rootfs"
printf '%s' "$stamp" >"$cache/stamp"
echo "mkimage: built $cache/rootfs in $(($(date +%s) - start)) s"
