# shellcheck shell=bash
# Install the Debian packages the fleet, the demo and the tests need, if any is missing.
# Sourced by scripts/demo and scripts/test; defines functions only.

# Debian 12 packages and, for each, one file that proves it is installed.
DRAY_PACKAGES=(
  "docker.io:/usr/sbin/dockerd"
  "containerd:/usr/bin/containerd"
  "runc:/usr/sbin/runc"
  "docker-registry:/usr/bin/docker-registry"
  "openssh-server:/usr/sbin/sshd"
  "openssh-client:/usr/bin/ssh"
  "busybox-static:/bin/busybox"
  "iproute2:/usr/sbin/ip"
  "iptables:/usr/sbin/iptables"
  "util-linux:/usr/bin/unshare"
  "curl:/usr/bin/curl"
  "git:/usr/bin/git"
  # dray-proxy's ACME test (crates/dray-proxy/tests/acme.rs): an RFC 8555 test server.
  "pebble:/usr/bin/pebble"
)

# Print the packages whose marker file is missing, one per line.
dray_missing_packages() {
  local entry pkg file
  for entry in "${DRAY_PACKAGES[@]}"; do
    pkg=${entry%%:*}
    file=${entry#*:}
    # busybox-static and busybox both ship /bin/busybox; only the static one works in an image.
    if [[ $pkg == busybox-static ]]; then
      if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
        echo "$pkg"
      fi
      continue
    fi
    [[ -e $file ]] || echo "$pkg"
  done
}

# Install what is missing, without letting package scripts start any system service.
dray_install_packages() {
  local missing=()
  mapfile -t missing < <(dray_missing_packages)
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  if [[ $(id -u) != 0 ]]; then
    echo "error: missing packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}" >&2
    return 1
  fi
  echo "==> installing missing Debian packages: ${missing[*]}"
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# written by dray scripts/lib/packages.sh during install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  } </dev/null || rc=$?
  if ((created_policy)); then
    rm -f "$policy"
  fi
  if ((rc != 0)); then
    echo "error: apt-get failed (exit $rc) installing: ${missing[*]}" >&2
    return "$rc"
  fi
  # Package scripts may have started services despite policy-rc.d (no init here): nothing to undo.
  return 0
}
