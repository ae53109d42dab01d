#!/usr/bin/env bash
# Install what the browser test (tests/browser, marker `browser`) needs:
# Debian's Chromium and its WebDriver. Run as root; the selenium package
# comes with requirements-dev.txt. Nothing is downloaded besides Debian
# packages: the test drives /usr/bin/chromium through /usr/bin/chromedriver.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    echo "chromium and chromedriver are installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "run as root: apt-get installs chromium and chromium-driver" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium chromium-driver
chromium --version
chromedriver --version
