#!/usr/bin/env bash
# Debian packages the test suite uses that a fresh machine may lack: Chromium and its driver
# for browser tests, a CJK font so Chinese renders in headless Chromium (not as boxes), the
# standard `age` and `minisign` tools that sponsors use to open extract packages, and nginx for
# the test of the server behind a reverse proxy. Installs only what is missing (needs root or
# sudo).
set -euo pipefail
need=()
for pair in chromium:chromium chromedriver:chromium-driver age:age minisign:minisign nginx:nginx-light; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then need+=(fonts-wqy-microhei); fi
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
