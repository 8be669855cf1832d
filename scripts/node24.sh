#!/usr/bin/env bash
# The one place that provisions Node.js 24 for this project.
#
#   scripts/node24.sh <command...>   run a command with Node 24 first on PATH
#   source scripts/node24.sh         put Node 24 on PATH of the current shell
#
# When the machine's own node is already 24 or newer it is used as is.
# Otherwise the pinned release is installed once from the npm registry (the
# node-<os>-<arch> package, which also carries the C headers) into
# .cache/node-<version>/, and npm is pointed at those headers so native
# addons (better-sqlite3) build against the Node that will load them.
NAVI_NODE_VERSION="${NAVI_NODE_VERSION:-24.21.0}"
NAVI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

navi_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

navi_provision_node24() {
  if [ "$(navi_node_major)" -ge 24 ]; then
    return 0
  fi
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) echo "node24.sh: unsupported OS $(uname -s)" >&2; return 1 ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "node24.sh: unsupported CPU $(uname -m)" >&2; return 1 ;;
  esac
  local pkg="node-${os}-${arch}"
  local prefix="${NAVI_ROOT}/.cache/node-${NAVI_NODE_VERSION}"
  local home="${prefix}/node_modules/${pkg}"
  # npm finds its global npmrc next to the node it runs on; keep the machine's
  # (registry, proxy CA file...) when npm runs on the provisioned node.
  if [ -z "${npm_config_globalconfig:-}" ]; then
    local globalconfig
    globalconfig="$(npm config get globalconfig 2>/dev/null || true)"
    if [ -n "${globalconfig}" ] && [ -f "${globalconfig}" ]; then export npm_config_globalconfig="${globalconfig}"; fi
  fi
  if [ ! -x "${home}/bin/node" ]; then
    echo "node24.sh: installing ${pkg}@${NAVI_NODE_VERSION} into ${prefix}" >&2
    mkdir -p "${prefix}"
    npm install --prefix "${prefix}" --no-save --no-package-lock --no-audit --no-fund \
      --loglevel=error "${pkg}@${NAVI_NODE_VERSION}" >&2
  fi
  export PATH="${home}/bin:${PATH}"
  export npm_config_nodedir="${home}"
  hash -r
  if [ "$(navi_node_major)" -lt 24 ]; then
    echo "node24.sh: provisioning failed, node is $(node --version)" >&2
    return 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  navi_provision_node24
  [ "$#" -gt 0 ] || { node --version; exit 0; }
  exec "$@"
else
  navi_provision_node24
fi
