# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034 # sourced: pkgs is used by its callers
# tests/packaging/packages.sh - what install, run and purge share (sourced):
#   pkgs                 the packages debian/control builds
#   pkg_state PKG        dpkg's state of PKG ("installed", "config-files",
#                        ...; empty when dpkg never knew it)
pkgs=(xpmem-dkms libxpmem0 libxpmem-dev)
pkg_state() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null; }
