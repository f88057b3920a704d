#!/usr/bin/env bash
# One idempotent set-up step: everything platform-ctl needs on this machine (Debian 12, root).
#   - system packages: Docker Engine (Debian's docker.io), debootstrap, ssh client, loop support
#   - a running Docker daemon (started in the background where systemd is not PID 1)
#   - the virtualenv .venv with platform-ctl and its tools
#   - the artifacts the roles push to hosts (MinIO, mc and node_exporter, built with Go; Trino's server tarball from
#     Maven Central, trimmed; the Java runtime packed from the machine's Temurin JDK 24+), all under
#     ~/.cache/platform-ctl
#   - OpenTofu and the DigitalOcean provider, built the same way, with a provider mirror for `init`
#   - the local droplet image (cached under ~/.cache/platform-ctl, rebuilt when its recipe changes)
# Safe to run again: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1;36m[setup]\033[0m %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "setup: run as root (it installs packages and starts Docker)" >&2; exit 1; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ssh >/dev/null || need+=(openssh-client)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v losetup >/dev/null || need+=(mount)
command -v ip >/dev/null || need+=(iproute2)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -e /dev/loop-control ]; then
  say "loading the loop module"
  modprobe loop || { echo "setup: loop devices are unavailable (modprobe loop failed)" >&2; exit 1; }
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
    say "starting docker.service"
    systemctl enable --now docker
  else
    say "starting dockerd in the background (no systemd here); log: /var/log/platform-ctl-dockerd.log"
    setsid nohup dockerd >/var/log/platform-ctl-dockerd.log 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: Docker did not start; see /var/log/platform-ctl-dockerd.log" >&2; exit 1; }
fi

PY=${PYTHON:-python3}
CHECKOV_VERSION=3.3.30
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "setup: platform-ctl needs Python 3.11 (found $("$PY" --version))" >&2; exit 1; }
stamp=.venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
  say "creating the virtualenv .venv"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

say "artifacts made on the controller (MinIO, mc and node_exporter from source, Trino 0.8 GB from Maven Central: a few minutes, once)"
.venv/bin/python -m platform_ctl.artifacts | sed 's/^/  /'

say "OpenTofu and the DigitalOcean provider (built from source into the artifact cache: a few minutes, once)"
.venv/bin/python -m platform_ctl.infra.toolchain | sed 's/^/  /'

# checkov (the OpenTofu code's security scan) has its own virtualenv: its pins would fight Ansible's.
checkov_venv="${PLATFORM_CACHE_DIR:-$HOME/.cache/platform-ctl}/tools/checkov-$CHECKOV_VERSION"
if [ ! -x "$checkov_venv/bin/checkov" ]; then
  say "installing checkov $CHECKOV_VERSION into $checkov_venv"
  rm -rf "$checkov_venv"
  "$PY" -m venv "$checkov_venv"
  "$checkov_venv/bin/pip" install -q "checkov==$CHECKOV_VERSION"
fi

say "droplet image"
.venv/bin/python -m platform_ctl.infra.image | sed 's/^/  /'
say "ready: .venv/bin/platform-ctl --help"
