#!/usr/bin/env bash
# Installs what the build and the tests need:
#   - OpenBLAS (burn's ndarray backend links the system OpenBLAS),
#   - protoc (ssdit-proto's build.rs),
#   - docker-compose (CI validates docker-compose.yml; no engine needed),
#   - nats-server with JetStream (ssdit-bus tests start a private one on a free port),
#   - moto's S3 server (ssdit-store tests start a private one on a free port).
# Idempotent: does nothing when everything is already there.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

have() { command -v "$1" >/dev/null 2>&1; }

apt_packages=()
[ -e /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] || [ -e /usr/include/openblas/cblas.h ] \
  || ldconfig -p 2>/dev/null | grep -q 'libopenblas.so ' || apt_packages+=(libopenblas-dev)
have docker-compose || apt_packages+=(docker-compose)
have protoc || apt_packages+=(protobuf-compiler)
have nats-server || [ -x /usr/sbin/nats-server ] || apt_packages+=(nats-server)
have python3 || apt_packages+=(python3 python3-pip)

if [ "${#apt_packages[@]}" -gt 0 ]; then
  echo "install-test-deps: apt-get install ${apt_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

if ! python3 -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
  echo "install-test-deps: pip install moto[server]"
  python3 -m pip install --quiet 'moto[server]>=5,<6' \
    || python3 -m pip install --quiet --break-system-packages 'moto[server]>=5,<6'
fi

echo "install-test-deps: protoc $(protoc --version | cut -d' ' -f2)," \
  "nats-server $({ nats-server --version 2>/dev/null || /usr/sbin/nats-server --version; } | awk '{print $NF}')," \
  "moto $(python3 -c 'import moto; print(moto.__version__)')"
