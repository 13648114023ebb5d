# --- Chromium for the console's browser tests (suanli-server, tests/console_browser.rs) -------
# Sourced by .ci/run. Installs Debian's chromium and chromium-driver (idempotent; root or
# passwordless sudo; no stdin) and exports SUANLI_TEST_CHROMIUM and SUANLI_TEST_CHROMEDRIVER.
# With these set, the browser tests must pass: they fail, never skip, if the browser is broken.
if [ -z "${SUANLI_TEST_CHROMIUM:-}" ]; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
  if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      chromium chromium-driver >/dev/null
  fi
  export SUANLI_TEST_CHROMIUM=/usr/bin/chromium
  export SUANLI_TEST_CHROMEDRIVER=/usr/bin/chromedriver
fi
# --- end Chromium -------------------------------------------------------------------------------
