#!/usr/bin/env bash
# aiosmtpd, the SMTP server the SMTP-delivery test sends to: the system's if
# it has one, else installed into .pytools/ (the test puts it on PYTHONPATH).
set -euo pipefail
cd "$(dirname "$0")/.."
if python3 -c "import aiosmtpd" 2>/dev/null || PYTHONPATH=.pytools python3 -c "import aiosmtpd" 2>/dev/null; then
  exit 0
fi
echo "installing aiosmtpd into .pytools/"
pip_install() { "$@" install --quiet --disable-pip-version-check --target .pytools 'aiosmtpd>=1.4,<2'; }
# Without a system pip, a throwaway venv's pip installs into the same place.
pip_install python3 -m pip 2>/dev/null || { python3 -m venv .venv-pip && pip_install .venv-pip/bin/pip; }
