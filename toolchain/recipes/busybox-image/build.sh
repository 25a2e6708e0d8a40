# /deps/busybox (bin/busybox + relative applet links) -> /out, an image root.
# Installed modes must not follow the caller's umask (verify varies it).
umask 022
cp -R /deps/busybox/. /out/

for d in dev proc sys etc root home run var var/log tmp var/tmp; do
	mkdir -p "/out/$d"
done
cp /recipe/passwd /recipe/group /out/etc/

# Fixed modes: directories 755, files 644, the binary 755; then the
# exceptions. Symlinks have no mode of their own.
find /out -type d -exec chmod 0755 {} +
find /out -type f -exec chmod 0644 {} +
chmod 0755 /out/bin/busybox
chmod 0700 /out/root
chmod 1777 /out/tmp /out/var/tmp
