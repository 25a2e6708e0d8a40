# musl 1.2.5 -> /out, a sysroot for the prefix /deps/musl.
# Installed modes must not follow the caller's umask (verify varies it).
umask 022
# Out of tree: /src/musl is read-only, configure writes config.mak here.
prefix=/deps/musl

CFLAGS="$CFLAGS -ffile-prefix-map=/src/musl=musl -ffile-prefix-map=/build=." \
	/src/musl/configure --prefix="$prefix" --syslibdir="$prefix/lib" \
	--enable-shared --enable-static --disable-debug \
	--enable-wrapper=gcc

make -j"$CAIRN_JOBS"
# DESTDIR staging: the installed tree must name $prefix, yet live in /out.
make install DESTDIR=/build/stage
cp -R /build/stage$prefix/. /out/

# Kernel headers from the seed's linux-libc-dev, so programs that include
# <linux/...>, <asm/...> or <mtd/...> (BusyBox does) build against musl alone.
inc=/out/include
for d in linux asm-generic mtd; do
	cp -R /usr/include/$d "$inc/$d"
done
cp -R /usr/include/x86_64-linux-gnu/asm "$inc/asm"

strip --strip-unneeded /out/lib/libc.so
