#!/usr/bin/env bash
# The Python tools `make test` needs: moto's standalone server (the AWS
# emulator), aws-sam-translator, cfn-lint and checkov. Uses what is installed;
# otherwise installs all of them into .venv-tools/ (the Makefile puts its bin
# first on PATH), so a partial system install never mixes with the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
have() {
  python3 -c "import moto.server, werkzeug, samtranslator" 2>/dev/null &&
    command -v cfn-lint >/dev/null && command -v checkov >/dev/null
}
if have; then
  exit 0
fi
echo "installing moto[server], aws-sam-translator, cfn-lint and checkov into .venv-tools/ (about a minute)"
[ -x .venv-tools/bin/python ] || python3 -m venv .venv-tools
.venv-tools/bin/pip install --quiet --disable-pip-version-check \
  'moto[server]>=5.1,<6' 'aws-sam-translator>=1.90' 'cfn-lint>=1.20' 'checkov>=3'
command -v terraform >/dev/null || { echo "terraform not found: install Terraform 1.5+ (the infrastructure checks need it)"; exit 1; }
