#!/usr/bin/env bash
# Installs what the tests need when it is missing:
#   - Debian libonnx-testdata (ONNX backend conformance tests)
#   - Debian dataset-fashion-mnist (dataset's Fashion-MNIST tests)
#   - Node.js and onnxruntime-node (the ONNX Runtime oracle), into $GOSLIM_ORT_DIR
# As root it installs Debian packages with apt; otherwise it says what is missing.
# Tests skip a missing asset locally and fail under CI=true.
set -u
ORT_VERSION=${ORT_VERSION:-1.30.0}
ORT_DIR=${GOSLIM_ORT_DIR:-$(pwd)/.cache/ort}

apt_pkgs=()
[ -d /usr/share/libonnx-testdata/data ] || apt_pkgs+=(libonnx-testdata)
[ -d /usr/share/datasets/fashion-mnist ] || apt_pkgs+=(dataset-fashion-mnist)
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_pkgs+=(npm)

if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "install-test-deps: apt-get install ${apt_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null \
      || echo "install-test-deps: apt-get install ${apt_pkgs[*]} failed" >&2
  else
    echo "install-test-deps: missing Debian packages ${apt_pkgs[*]} (run as root to install)" >&2
  fi
fi

if [ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "install-test-deps: npm install onnxruntime-node@$ORT_VERSION into $ORT_DIR"
    mkdir -p "$ORT_DIR"
    # --ignore-scripts: the package's install script downloads extra binaries,
    # which fails offline; the CPU binaries ship inside the npm package.
    npm install --prefix "$ORT_DIR" --ignore-scripts --no-audit --no-fund --loglevel=error \
      "onnxruntime-node@$ORT_VERSION" >/dev/null || echo "install-test-deps: npm install failed" >&2
  else
    echo "install-test-deps: npm missing; ONNX Runtime oracle tests will skip (fail under CI)" >&2
  fi
fi
exit 0
