#!/usr/bin/env bash
# Makes the runtime image's root file system without pulling anything: the
# broker binary and exactly the shared libraries it loads (from ldd, i.e.
# this machine's Debian 12 packages), a static busybox for the health check,
# a passwd/group with the unprivileged `ringcast` user (uid 10001), and the
# configuration at /etc/ringcast/ringcast.ini listening on 0.0.0.0:8080.
#
#   deploy/image/rootfs.sh BINARY OUTDIR
#
# deploy/image/build.sh copies OUTDIR into an empty (scratch) image.
# Needs busybox-static (apt-get install busybox-static).
set -euo pipefail
bin="$1" out="$2"
here="$(cd "$(dirname "$0")" && pwd)"
[ -x "$bin" ] || { echo "rootfs: no broker at $bin" >&2; exit 1; }
bb=/bin/busybox
# ldd fails on a static executable: the image has no libraries for another.
if [ ! -x "$bb" ] || ldd "$bb" >/dev/null 2>&1; then
	echo "rootfs: $bb is not the static busybox (apt-get install busybox-static)" >&2
	exit 1
fi

rm -rf "$out"
mkdir -p "$out"/usr/local/bin "$out"/bin "$out"/etc/ringcast "$out"/tmp
chmod 1777 "$out"/tmp
install -m 755 "$bin" "$out"/usr/local/bin/ringcast
strip "$out"/usr/local/bin/ringcast 2>/dev/null || true
install -m 755 "$bb" "$out"/bin/busybox
# Every library the dynamic linker resolves, at the same path (the loader
# itself included).
ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
	mkdir -p "$out$(dirname "$lib")"
	cp -L "$lib" "$out$lib"
done
# /lib64 -> usr/lib64 and /lib -> usr/lib as on Debian, if ldd named them.
printf 'root:x:0:0:root:/root:/sbin/nologin\nringcast:x:10001:10001:ringcast:/nonexistent:/sbin/nologin\n' \
	>"$out"/etc/passwd
printf 'root:x:0:\nringcast:x:10001:\n' >"$out"/etc/group
# The example file with every key, listening on all interfaces (a container
# is reached through its published port).  Access control still applies:
# the broker refuses a non-loopback listener until RINGCAST_AUTH names an
# access file (or is `none`, open on purpose).
sed 's/^listen = 127\.0\.0\.1:8080$/listen = 0.0.0.0:8080/' "$here/../ringcast.ini" \
	>"$out"/etc/ringcast/ringcast.ini
grep -q '^listen = 0\.0\.0\.0:8080$' "$out"/etc/ringcast/ringcast.ini ||
	{ echo "rootfs: deploy/ringcast.ini has no 'listen = 127.0.0.1:8080' line to change" >&2; exit 1; }
chmod 644 "$out"/etc/passwd "$out"/etc/group "$out"/etc/ringcast/ringcast.ini
