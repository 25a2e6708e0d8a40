package boot

// The few string functions the init needs, here rather than from package
// strings: strings imports unicode, whose initialisation comes after that of
// many packages in a binary like cairn, and a package is initialised only
// after all of its imports. Without it this package starts right after os.

func index(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func contains(s, sub string) bool { return index(s, sub) >= 0 }

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func cut(s, sep string) (before, after string, found bool) {
	if i := index(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

func cutPrefix(s, p string) (string, bool) {
	if !hasPrefix(s, p) {
		return s, false
	}
	return s[len(p):], true
}

func trimPrefix(s, p string) string { r, _ := cutPrefix(s, p); return r }

func trimSuffix(s, suf string) string {
	if len(s) >= len(suf) && s[len(s)-len(suf):] == suf {
		return s[:len(s)-len(suf)]
	}
	return s
}

func lastIndexByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func split(s, sep string) []string {
	var out []string
	for {
		b, a, ok := cut(s, sep)
		out = append(out, b)
		if !ok {
			return out
		}
		s = a
	}
}
