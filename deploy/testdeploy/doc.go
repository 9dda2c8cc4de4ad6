// Command testdeploy is `make test-deploy`: the proof that deploy/ansible
// rolls varpar out to real hosts, one of them arm64, and upgrades them
// without a failed request (issue 11).
//
// Test hosts (default three: amd64, amd64, arm64) are made on this machine.
// Each has
//   - a root filesystem from debootstrap (Debian bookworm, minbase, plus
//     openssh-server, python3 and what the role uses; see Include), from the
//     mirror this machine's apt uses, read at run time. One pristine tree per
//     architecture is cached in /var/cache/varpar-testdeploy/rootfs-ARCH with
//     a stamp (rootfs-ARCH.stamp); a changed include list rebuilds it. The
//     arm64 tree is made with --foreign and its second stage runs under
//     qemu-aarch64-static through binfmt_misc (mounted and registered with the
//     F flag if needed). Each host gets an overlayfs copy of its tree.
//   - its own network namespace with a veth on a bridge, an address in a free
//     /24 of 198.18.0.0/15; the control side (this program, ansible, the
//     checks) is the bridge's .254 in the root namespace.
//   - /proc, /sys, /dev, /dev/pts (a new instance) and /run mounted in the
//     chroot, and sshd running in the namespace and chroot (nsenter --net,
//     chroot), with a host key made per run (known_hosts is checked) and a
//     fresh ed25519 client key authorised for root.
//
// Everything the program makes is named vpd-ID-... (namespaces, links,
// host trees in /var/cache/varpar-testdeploy/hosts); a run first removes
// what a killed earlier run left (processes of those namespaces or with
// their root in those trees, killed by PID; mounts; namespaces; links), and
// tears its own hosts down at the end, also on failure.
//
// --stages hosts stops after the hosts answer over ssh (uname -m and
// python's platform.machine() checked) and testdata/ping.yml ran. The full
// run (--stages all) then: make release twice (two versions, copied
// aside), writes an inventory (group varpar, varpar_service_manager: direct,
// a fresh cluster key and API token from varpar keygen, the CIFAR-10 family
// or else MNIST), runs site.yml over ssh, and checks that every peer's
// /v1/cluster lists every peer; that N test images (balanced over the
// classes) classified through each host alone score at least varpar eval's
// fused accuracy on the same images minus --margin; that each host's running
// peer binary is of its architecture (file) and version; that a second
// site.yml reports changed=0 on every host; and that upgrade.yml to the
// second release under varpar loadgen against all hosts ends with no failed
// or dropped request and every member reporting the new version. It prints
// a summary and writes summary.json to --out.
//
// Without root, or without ip, debootstrap, ansible-playbook and the other
// tools it needs, it prints SKIP and exits 0.
package main
