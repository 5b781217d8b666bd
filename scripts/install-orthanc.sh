#!/usr/bin/env bash
# Install Debian's Orthanc PACS with its DICOMweb and whole-slide plugins when they are missing: the PACS tests and
# benchmark start a throwaway Orthanc on loopback (testkit/orthanc.py) and load it with generated CT/MR series
# and a slide made DICOM by OrthancWSIDicomizer. Needs root (CI runs as root); idempotent.
set -euo pipefail

say() { printf '[install-orthanc] %s\n' "$*"; }

PLUGINS=/usr/share/orthanc/plugins
ready() {
  [ -x /usr/sbin/Orthanc ] && [ -f "$PLUGINS/libOrthancDicomWeb.so" ] && [ -f "$PLUGINS/libOrthancWSI.so" ] \
    && command -v OrthancWSIDicomizer >/dev/null 2>&1
}

if ready; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "Orthanc not found and not root: run 'sudo apt-get install orthanc orthanc-dicomweb orthanc-wsi' for the PACS tests"
  exit 0
fi
say "installing Debian's orthanc, orthanc-dicomweb and orthanc-wsi (a PACS for the DICOMweb tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb orthanc-wsi >/dev/null
# The package may start a service of its own on 8042 (HTTP) and 4242 (DICOM); the tests start their own.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now orthanc >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
  service orthanc stop >/dev/null 2>&1 || true
fi
ready || { say "ERROR: Orthanc or a plugin is still missing" >&2; exit 1; }
