#!/usr/bin/env bash
# make lint-deploy: ansible-lint (production profile), a syntax check of the
# three playbooks against the example inventory, and systemd-analyze verify
# on the unit the role renders (where systemd-analyze exists). Needs Debian's
# ansible-core and ansible-lint.
set -euo pipefail
cd "$(dirname "$0")"

for tool in ansible-playbook ansible-lint ansible; do
	if ! command -v "$tool" >/dev/null; then
		echo "lint-deploy: $tool not found (apt-get install ansible-core ansible-lint)" >&2
		exit 1
	fi
done

export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_LOCAL_TEMP
tmp=$(mktemp -d /tmp/varpar-lint-deploy.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
ANSIBLE_LOCAL_TEMP=$tmp/ansible-local

echo "== ansible-playbook --syntax-check"
for pb in site.yml upgrade.yml remove.yml; do
	ansible-playbook -i inventory.example.yml --syntax-check "$pb"
done

echo "== ansible-lint --profile production"
ansible-lint --nocolor --profile production site.yml upgrade.yml remove.yml roles/varpar

# The unit as the role writes it, with the defaults; ExecStart must name an
# executable for systemd-analyze, so the link points at a stand-in.
echo "== render the unit and the test-only supervisor"
ln -s /bin/true "$tmp/varpar"
for t in varpar.service varpar-direct; do
	ansible localhost -c local -i localhost, -o -m ansible.builtin.template \
		-a "src=roles/varpar/templates/$t.j2 dest=$tmp/$t mode=0644" \
		-e @roles/varpar/defaults/main.yml -e varpar_node_name=lint -e "varpar_bin_link=$tmp/varpar" >/dev/null
done
bash -n "$tmp/varpar-direct"
grep -q "^ExecStart=$tmp/varpar peer --config /etc/varpar/peer.yaml$" "$tmp/varpar.service" || {
	echo "lint-deploy: the rendered unit has no ExecStart line of the expected form:" >&2
	cat "$tmp/varpar.service" >&2
	exit 1
}
if command -v systemd-analyze >/dev/null; then
	echo "== systemd-analyze verify"
	# verify prints problems but exits 0 for some of them: fail on any output.
	out=$(systemd-analyze verify "$tmp/varpar.service" 2>&1) || { echo "$out" >&2; exit 1; }
	if [ -n "$out" ]; then
		echo "$out" >&2
		exit 1
	fi
else
	echo "== systemd-analyze not found: unit not verified"
fi
echo "lint-deploy: ok"
