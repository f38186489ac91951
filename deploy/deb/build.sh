#!/usr/bin/env bash
# Builds build/ringcast_VERSION_ARCH.deb from the programs in BUILD with
# dpkg-deb (no debhelper, no source package): the broker and the CLI tools
# in /usr/bin, /etc/ringcast/ringcast.ini as a conffile, the systemd unit
# (deploy/ringcast.service running as the ringcast system user postinst
# makes), man pages, and the docs.  Runs lintian when it is installed and
# prints every finding (also in build/ringcast.lintian).
#
#   deploy/deb/build.sh [BUILD]           (make deb)
#
# DEB_MAINTAINER overrides the Maintainer field.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
version="$(sed -n 's/.*RINGCAST_VERSION "\(.*\)".*/\1/p' "$root/broker/config.h")"
arch="$(dpkg --print-architecture)"
maintainer="${DEB_MAINTAINER:-ringcast maintainers <maintainers@ringcast.invalid>}"
deb="$root/build/ringcast_${version}_${arch}.deb"
stage="$root/build/deb/ringcast"

rm -rf "$root/build/deb"
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/etc/ringcast" \
	"$stage/lib/systemd/system" "$stage/usr/share/man/man1" \
	"$stage/usr/share/doc/ringcast/examples"

for p in ringcast ringcast-pub ringcast-sub ringcast-bench; do
	[ -x "$build/$p" ] || { echo "deb: $build/$p not built (run make)" >&2; exit 1; }
	install -m 755 "$build/$p" "$stage/usr/bin/$p"
	strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/$p"
done
install -m 644 "$root/deploy/ringcast.ini" "$stage/etc/ringcast/ringcast.ini"

# The unit as in deploy/ringcast.service, installed from /usr/bin and run
# as the package's system user instead of a dynamic one (the user may then
# own files an operator gives it, e.g. a TLS key readable by group ringcast).
{
	echo "# systemd unit for the ringcast broker, installed by the ringcast package."
	echo "# Overrides go in a drop-in (systemctl edit ringcast), not in this file."
	echo "# See /usr/share/doc/ringcast/README.md for tuning."
	sed -n '/^\[Unit\]/,$p' "$root/deploy/ringcast.service" |
		sed -e 's|/usr/local/bin/ringcast|/usr/bin/ringcast|g' \
		    -e 's|^DynamicUser=yes$|User=ringcast\nGroup=ringcast|'
} >"$stage/lib/systemd/system/ringcast.service"
grep -q '^User=ringcast$' "$stage/lib/systemd/system/ringcast.service" ||
	{ echo "deb: deploy/ringcast.service has no DynamicUser=yes line to replace" >&2; exit 1; }
chmod 644 "$stage/lib/systemd/system/ringcast.service"

for m in "$root"/deploy/man/*.1; do
	sed "s/@VERSION@/$version/" "$m" | gzip -9n >"$stage/usr/share/man/man1/$(basename "$m").gz"
done
doc="$stage/usr/share/doc/ringcast"
install -m 644 "$root/deploy/README.md" "$doc/README.md"
install -m 644 "$root/broker/PROTOCOL.md" "$doc/PROTOCOL.md"
install -m 644 "$root/deploy/access.ini" "$doc/examples/access.ini"
{
	echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
	echo "Upstream-Name: ringcast"
	echo
	echo "Files: *"
	echo "Copyright: the ringcast authors"
	echo "License: see below"
	sed 's/^$/./; s/^/ /' "$root/LICENSE"
} >"$doc/copyright"
{
	echo "ringcast ($version) unstable; urgency=medium"
	echo
	echo "  * Built from the ringcast source tree with make deb."
	echo
	echo " -- $maintainer  $(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$doc/changelog.gz"
find "$doc" -type f -exec chmod 644 {} +

install -m 755 "$here/postinst" "$here/prerm" "$here/postrm" "$stage/DEBIAN/"
echo /etc/ringcast/ringcast.ini >"$stage/DEBIAN/conffiles"

# Depends from the shared libraries the programs load (dpkg-shlibdeps wants
# a debian/control to read; a minimal one in a scratch folder).
shl="$root/build/deb/shlibs"
mkdir -p "$shl/debian"
printf 'Source: ringcast\n\nPackage: ringcast\nArchitecture: any\n' >"$shl/debian/control"
depends="$(cd "$shl" && dpkg-shlibdeps -O "$stage"/usr/bin/* 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[ -n "$depends" ] || { echo "deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	-e "s/@DEPENDS@/$depends/" -e "s/@MAINTAINER@/$maintainer/" \
	"$here/control.in" >"$stage/DEBIAN/control"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | LC_ALL=C sort |
	xargs md5sum) >"$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "deb: $deb ($(du -k "$deb" | cut -f1) KiB)"
if command -v lintian >/dev/null; then
	lintian --tag-display-limit 0 --display-info --display-experimental --pedantic "$deb" >"$root/build/ringcast.lintian" 2>&1 || true
	if grep -qE '^[EWIPXN]: ' "$root/build/ringcast.lintian"; then
		echo "deb: lintian findings (also in build/ringcast.lintian):"
		grep -E '^[EWIPXN]: ' "$root/build/ringcast.lintian" | sed 's/^/  /'
	else
		echo "deb: lintian: no findings"
	fi
else
	echo "deb: lintian not installed: not checked"
fi
