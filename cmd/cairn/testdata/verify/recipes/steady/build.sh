mkdir -p /out/bin /out/share
cp /src/tiny/tiny.sh /out/bin/tiny.sh
cp /src/tiny/greeting.txt /out/share/greeting.txt
sha256sum /out/share/greeting.txt | cut -d' ' -f1 > /out/share/greeting.sha256
ln -s share/greeting.txt /out/greeting
