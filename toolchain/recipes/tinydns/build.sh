# tinydns, tinydns-data -> /out/bin, static, stripped.
# Installed modes must not follow the caller's umask (verify varies it).
umask 022
# /src/djbdns is already patched: Debian's security fixes and cairn's own
# portability patches are the source's [source.patches] (docs/patches.md).
cp -R /src/djbdns/. .

# conf-* hold the compile and link commands on their first line.
echo '/deps/musl/bin/musl-gcc -O2 -Wimplicit -Wunused -Wcomment -Wchar-subscripts -Wuninitialized -Wshadow -Wcast-qual -Wcast-align -Wwrite-strings' >conf-cc
echo '/deps/musl/bin/musl-gcc -s -static' >conf-ld
# systype is made from uname (kernel release and version); pin it so the
# build machine's kernel cannot steer the build.
echo 'linux-cairn-:x86-cpuid-:-:x86_64-:' >systype

make -j"$CAIRN_JOBS" tinydns tinydns-data
mkdir -p /out/bin
cp tinydns tinydns-data /out/bin/
chmod 0755 /out/bin/tinydns /out/bin/tinydns-data
