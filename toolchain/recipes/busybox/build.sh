# BusyBox -> /out/bin/busybox and its applet links (relative symlinks).
# Installed modes must not follow the caller's umask (verify varies it).
umask 022
# Out of tree (O=/build): /src/busybox stays read-only.
# The banner's date comes from SOURCE_DATE_EPOCH, read by BusyBox's kconfig
# (scripts/kconfig/confdata.c) when it writes include/autoconf.h. It calls
# gmtime() and then ctime(), which overwrites gmtime's static result with
# local time: the banner then follows TZ. Pin TZ for the whole build.
export TZ=UTC

# The seed is unpacked without maintainer scripts, so gawk's `awk`
# alternative is missing; without it applets/busybox.mkscripts finds no
# scripted applets and the link fails on scripted_main.
command -v awk >/dev/null || { mkdir -p /tmp/bin; ln -s /usr/bin/gawk /tmp/bin/awk; PATH=/tmp/bin:$PATH; }

cp /recipe/busybox.config .config
make -C /src/busybox O=/build oldconfig </dev/null >/dev/null

# Only the binary and its link list: the docs need perl's pod2*, not in the seed.
make -j"$CAIRN_JOBS" CC=/deps/musl/bin/musl-gcc HOSTCC=gcc busybox busybox.links
# The Makefile strips `busybox` itself (-s, no .note/.comment sections).
make CC=/deps/musl/bin/musl-gcc HOSTCC=gcc CONFIG_PREFIX=/out install >/dev/null
rm -f /out/linuxrc
