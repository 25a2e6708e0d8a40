echo constant > /out/constant
date +%s%N > /out/stamp
