#!/usr/bin/env bash
# Installs Debian's chromium when missing (the dashboard and email tests run
# it headless). Browser test tools never download a browser of their own.
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is missing: sudo apt-get install chromium"; exit 1
fi
