#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the main job need.
# Idempotent; run as root (or with sudo) on Debian 12.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  build-essential cmake pkg-config
  check libsubunit-dev
  libevent-dev libjansson-dev libcurl4-openssl-dev
  libhiredis-dev redis-server
  libpq-dev postgresql
  libxml2-utils valgrind python3-yaml
  clang strace bc
  locales
  chromium
)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
# The JUnit writer's test runs under a comma-decimal locale to prove numbers do not
# depend on it; localedef is idempotent.
$SUDO localedef -i de_DE -f UTF-8 de_DE.UTF-8
