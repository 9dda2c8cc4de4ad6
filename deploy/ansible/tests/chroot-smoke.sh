#!/usr/bin/env bash
# A quick local run of the role, for its developers: three "hosts" that are
# overlay chroots of this machine's own root (in a private mount namespace,
# so nothing of this machine's /etc, users or services changes), reached
# with the community.general.chroot connection, peers on 127.0.0.1 ports
# 37010-37032 under the test-only direct supervisor. It runs site.yml, site.yml
# again (every host changed=0), upgrade.yml to a second build, upgrade.yml
# back to the first (the rollback), and remove.yml, checking each step.
# Not the real test (make test-deploy: debootstrapped hosts over ssh, one
# arm64); it needs root, no network and no Debian mirror.
#   deploy/ansible/tests/chroot-smoke.sh [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "chroot-smoke: needs root (overlay mounts, chroot)" >&2; exit 1; }
for tool in ansible-playbook unshare setpriv go; do
	command -v "$tool" >/dev/null || { echo "chroot-smoke: $tool not found" >&2; exit 1; }
done

if [ "${1:-}" != --inside ]; then
	work=${1:-/tmp/varpar-chroot-smoke}
	case "$work" in /tmp/varpar-chroot-smoke*) ;; *) echo "chroot-smoke: WORKDIR must start with /tmp/varpar-chroot-smoke" >&2; exit 1 ;; esac
	# Leftovers of a killed run: its peers (found by their config path under
	# WORKDIR) and its files. Its mounts died with its mount namespace.
	for pid in $(pgrep -f "peer --config /etc/varpar/peer.yaml" || true); do
		case "$(readlink "/proc/$pid/root" 2>/dev/null)" in
		"$work"/*)
			echo "chroot-smoke: killing peer $pid left by an earlier run"
			kill -KILL "$pid" || true
			;;
		esac
	done
	rm -rf "$work"
	mkdir -p "$work"
	exec unshare --mount --propagation private -- "$0" --inside "$work"
fi
work=$2
cd "$here"

hosts=(h1 h2 h3)
cleanup() {
	local h pid
	for h in "${hosts[@]}"; do
		pid=$(cat "$work/$h/root/var/lib/varpar/varpar-direct.pid" 2>/dev/null || true)
		if [[ "$pid" =~ ^[0-9]+$ ]] && readlink "/proc/$pid/root" 2>/dev/null | grep -q "^$work/"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	sleep 0.5
	umount -R "$work/mnt" 2>/dev/null || umount -lR "$work/mnt" 2>/dev/null || true
}
trap cleanup EXIT

echo "== two builds of varpar (amd64), each with its SHA256SUMS"
for v in smoke-1 smoke-2; do
	mkdir -p "$work/release-$v"
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$v" -o "$work/release-$v/varpar-linux-amd64" ./cmd/varpar)
	(cd "$work/release-$v" && sha256sum varpar-linux-amd64 >SHA256SUMS)
done
"$work/release-smoke-1/varpar-linux-amd64" keygen --out "$work/cluster.key" --token "$work/api.token"

echo "== three overlay chroots of /"
mkdir -p "$work/mnt"
mount -t tmpfs -o size=512m varpar-smoke "$work/mnt"
inv="$work/inventory.yml"
{
	echo "varpar:"
	echo "  vars:"
	echo "    ansible_connection: community.general.chroot"
	echo "    ansible_python_interpreter: /usr/bin/python3"
	echo "    varpar_service_manager: direct"
	echo "    varpar_cluster_key_file: $work/cluster.key"
	echo "    varpar_api_token_file: $work/api.token"
	echo "    varpar_family_dir: $repo/models/mnist"
	echo "    varpar_listen_host: 127.0.0.1"
	echo "    varpar_http_host: 127.0.0.1"
	echo "    varpar_advertise_addr: 127.0.0.1"
	echo "    varpar_threads: 1"
	echo "    varpar_stop_timeout: 15"
	echo "    varpar_wait_timeout: 90s"
	echo "  hosts:"
} >"$inv"
i=0
for h in "${hosts[@]}"; do
	i=$((i + 1))
	d=$work/mnt/$h
	mkdir -p "$d/upper" "$d/work" "$d/root" "$work/$h"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/root"
	mount -t proc proc "$d/root/proc"
	mount --rbind /dev "$d/root/dev"
	mount -t tmpfs tmpfs "$d/root/tmp"
	mount -t tmpfs tmpfs "$d/root/run"
	ln -sfn "$d/root" "$work/$h/root"
	# These hosts have no systemd: fail loudly if the role asks for it.
	cat >>"$inv" <<EOI
    $h:
      ansible_host: $d/root
      varpar_node_name: smoke-$h
      varpar_gossip_port: 370${i}0
      varpar_p2p_port: 370${i}1
      varpar_http_port: 370${i}2
EOI
done
peers=(--peer http://127.0.0.1:37012 --peer http://127.0.0.1:37022 --peer http://127.0.0.1:37032)
vp=$work/release-smoke-1/varpar-linux-amd64

export ANSIBLE_NOCOLOR=1 ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
play() { # play LOG PLAYBOOK ARGS...: runs it, keeps its output
	local log=$1
	shift
	echo "== ansible-playbook $*"
	if ! ansible-playbook -i "$inv" "$@" >"$work/$log" 2>&1; then
		tail -n 60 "$work/$log"
		echo "chroot-smoke: FAIL: ansible-playbook $* (log $work/$log)" >&2
		exit 1
	fi
	sed -n '/^PLAY RECAP/,$p' "$work/$log"
}
recap_changed() { # prints "host changed" per host of a log's recap
	sed -n '/^PLAY RECAP/,$p' "$work/$1" | awk '/ok=/{for(i=1;i<=NF;i++) if ($i ~ /^changed=/) {split($i,a,"="); print $1, a[2]}}'
}
fail() {
	echo "chroot-smoke: FAIL: $*" >&2
	exit 1
}
views_at() { # every peer's view lists all three at version $1
	local v=$1 u out
	for u in 37012 37022 37032; do
		out=$(curl -sf -H "Authorization: Bearer $(cat "$work/api.token")" "http://127.0.0.1:$u/v1/cluster") || fail "GET :$u/v1/cluster"
		python3 - "$v" "$out" <<'EOP' || fail "view of :$u: $out"
import json, sys
want, cv = sys.argv[1], json.loads(sys.argv[2])
got = sorted((m["name"], m["version"]) for m in cv["members"])
exp = [("smoke-h1", want), ("smoke-h2", want), ("smoke-h3", want)]
if got != exp:
    sys.exit(f"members {got}, want {exp}")
EOP
	done
	echo "every view lists smoke-h1..3 at $v"
}

common=(-e "varpar_release_dir=$work/release-smoke-1" -e varpar_version=smoke-1)
play site1.log site.yml "${common[@]}"
for h in "${hosts[@]}"; do
	"$vp" wait-member "${peers[@]}" --member "smoke-$h" --token-file "$work/api.token" --timeout 90s >/dev/null ||
		fail "smoke-$h is not a settled member after site.yml"
done
views_at smoke-1

play site2.log site.yml "${common[@]}"
recap_changed site2.log | while read -r h n; do
	[ "$n" = 0 ] || fail "second site.yml: $h changed=$n, want 0 (log $work/site2.log)"
done
[ "$(recap_changed site2.log | wc -l)" = 3 ] || fail "second site.yml: recap of $(recap_changed site2.log | wc -l) hosts, want 3"
echo "second run: changed=0 on every host"

play upgrade.log upgrade.yml -e "varpar_release_dir=$work/release-smoke-2" -e varpar_version=smoke-2
grep -q "smoke-h3: ready, a live member in all 3 peers" "$work/upgrade.log" || fail "upgrade.log lacks wait-member's success for smoke-h3"
views_at smoke-2
for h in "${hosts[@]}"; do
	r=$work/$h/root
	[ "$(readlink "$r/usr/local/bin/varpar")" = /usr/local/lib/varpar/varpar-smoke-2 ] || fail "$h: symlink $(readlink "$r/usr/local/bin/varpar")"
	[ -x "$r/usr/local/lib/varpar/varpar-smoke-1" ] || fail "$h: the previous release's binary is gone"
done

play rollback.log upgrade.yml "${common[@]}"
views_at smoke-1

play remove.log remove.yml
for h in "${hosts[@]}"; do
	r=$work/$h/root
	! grep -q '^varpar:' "$r/etc/passwd" || fail "$h: user varpar still there"
	[ ! -e "$r/usr/local/bin/varpar" ] && [ ! -e "$r/etc/varpar" ] || fail "$h: binary or config still there"
	[ -d "$r/var/lib/varpar" ] || fail "$h: data dir removed without varpar_remove_data"
done
curl -sf -m 2 http://127.0.0.1:37012/healthz >/dev/null && fail "smoke-h1 still answers after remove.yml"
echo "chroot-smoke: ok (logs in $work)"
