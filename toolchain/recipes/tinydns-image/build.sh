# /deps/tinydns/bin + /recipe/data (the example zone) -> /out: bin/, srv/tinydns/data{,.cdb}.
# Installed modes must not follow the caller's umask (verify varies it).
umask 022
mkdir -p /out/bin /out/srv/tinydns
cp /deps/tinydns/bin/tinydns /deps/tinydns/bin/tinydns-data /out/bin/

# tinydns-data takes the SOA serial from the mtime of `data` (when a zone
# line leaves it empty), so pin that mtime to SOURCE_DATE_EPOCH.
cp /recipe/data data
touch -d "@$SOURCE_DATE_EPOCH" data
/out/bin/tinydns-data
cp data data.cdb /out/srv/tinydns/

find /out -type d -exec chmod 0755 {} +
chmod 0755 /out/bin/tinydns /out/bin/tinydns-data
chmod 0644 /out/srv/tinydns/data /out/srv/tinydns/data.cdb
