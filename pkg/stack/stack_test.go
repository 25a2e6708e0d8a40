package stack

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodStack = `name = "test"
source_date_epoch = 1700000000
recipes = ["recipes/hello"]

[seed]
lock = "seed.lock"

[[source]]
name = "zlib"
version = "1"
license = "Zlib"
tree = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
archive_sha256 = "2222222222222222222222222222222222222222222222222222222222222222"
strip = 1
archives = ["https://example.invalid/zlib-1.tar.gz"]
debian = "zlib=1:1.2.13-1"

[[source]]
name = "abc"
version = "2"
license = "MIT"
tree = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
git_commit = "4444444444444444444444444444444444444444"
git = "https://example.invalid/abc.git"
transports = ["store", "git"]

[[image]]
name = "hello"
recipe = "hello"
entrypoint = ["/bin/hello"]
env = ["A=1"]

[image.modes]
"var/tmp" = "1777"
`

const goodRecipe = `name = "hello"
stage = 2
sources = ["zlib", "abc"]
script = "build.sh"

[env]
CFLAGS = "-O2"
`

// writeStack lays out a stack directory and returns the stack file's path.
func writeStack(t *testing.T, stackText, recipeText string) string {
	t.Helper()
	dir := t.TempDir()
	rdir := filepath.Join(dir, "recipes", "hello")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		filepath.Join(dir, "stack.toml"):   stackText,
		filepath.Join(rdir, "recipe.toml"): recipeText,
		filepath.Join(rdir, "build.sh"):    "true\n",
	} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "stack.toml")
}

func TestLoadGood(t *testing.T) {
	file := writeStack(t, goodStack, goodRecipe)
	st, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{st.Sources[0].Name, st.Sources[1].Name}; got[0] != "abc" || got[1] != "zlib" {
		t.Errorf("sources not sorted by name: got %v", got)
	}
	z := st.Source("zlib")
	if z == nil || z.Strip != 1 || z.Pin.ArchiveSHA256 == "" || z.Line != 8 {
		t.Fatalf("zlib source = %+v", z)
	}
	if n, v := z.DebianPackage(); n != "zlib" || v != "1:1.2.13-1" {
		t.Errorf("DebianPackage = %q %q", n, v)
	}
	if got := strings.Join(st.Transports, ","); got != strings.Join(DefaultTransports, ",") {
		t.Errorf("transports = %s, want the default order", got)
	}
	if st.Seed.Lock != filepath.Join(filepath.Dir(file), "seed.lock") {
		t.Errorf("seed lock = %q", st.Seed.Lock)
	}
	r := st.Recipe("hello")
	if r == nil || r.Stage != 2 || r.EnvList()[0] != "CFLAGS=-O2" {
		t.Fatalf("recipe = %+v", r)
	}
	if img := st.Image("hello"); img == nil || img.Modes["var/tmp"] != 0o777|fs.ModeSticky {
		t.Errorf("image modes = %+v, want var/tmp sticky 0777", img)
	}
	withMeta := strings.Replace(goodStack, "strip = 1", "strip = 1\nsupplier = \"Organization: zlib\"\nupstream = \"https://example.invalid/up/zlib-1.tar.gz\"\narchive_name = \"zlib_1.orig.tar.gz\"", 1)
	withMeta = strings.Replace(withMeta, "source_date_epoch", "supplier = \"Person: Ann\"\nsource_date_epoch", 1)
	m, err := Load(writeStack(t, withMeta, goodRecipe))
	if err != nil {
		t.Fatal(err)
	}
	if z := m.Source("zlib"); m.Supplier != "Person: Ann" || z.Supplier != "Organization: zlib" || z.Upstream != "https://example.invalid/up/zlib-1.tar.gz" || z.ArchiveName != "zlib_1.orig.tar.gz" {
		t.Errorf("supplier, upstream, archive name: got %q, %+v", m.Supplier, z)
	}
	if st.Image("hello") == nil || st.SourceDateEpoch != 1700000000 {
		t.Errorf("image or epoch missing: %+v", st)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name         string
		from, to     string // replace in goodStack
		rfrom, rto   string // replace in goodRecipe
		file         string // stack.toml or recipe.toml
		line         int
		key, message string
	}{
		{name: "unknown key", from: "strip = 1", to: "strip = 1\ncolour = \"red\"", file: "stack.toml", line: 15, key: "source.colour", message: "unknown key"},
		{name: "missing tree pin", from: "tree = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\n", to: "", file: "stack.toml", line: 8, key: "source[zlib].tree", message: "missing pin"},
		{name: "tree of the wrong form", from: "sha256:3333", to: "sha1:3333", file: "stack.toml", line: 22, key: "source[abc].tree", message: "want \"sha256:\""},
		{name: "archive sha256 short", from: "\"2222222222", to: "\"22", file: "stack.toml", line: 13, key: "source[zlib].archive_sha256", message: "64 lowercase hex"},
		{name: "git commit uppercase", from: "4444444444444444444444444444444444444444", to: "444444444444444444444444444444444444444A", file: "stack.toml", line: 23, key: "source[abc].git_commit"},
		{name: "git URL is an option", from: "https://example.invalid/abc.git", to: "-uexploit", file: "stack.toml", line: 24, key: "source[abc].git", message: "must not start with '-'"},
		{name: "git ext transport", from: "https://example.invalid/abc.git", to: "ext::sh -c touch% /tmp/pwned", file: "stack.toml", line: 24, key: "source[abc].git", message: "ext::"},
		{name: "submodule leaves the tree", from: "git = \"https", to: "submodule = \"../../etc\"\ngit = \"https", file: "stack.toml", line: 24, key: "source[abc].submodule", message: "relative path inside"},
		{name: "archive without sha256", from: "archive_sha256 = \"2222222222222222222222222222222222222222222222222222222222222222\"\n", to: "", file: "stack.toml", line: 14, key: "source[zlib].archive_sha256", message: "missing pin"},
		{name: "bad debian package", from: "zlib=1:1.2.13-1", to: "zlib 1.2", file: "stack.toml", line: 16, key: "source[zlib].debian"},
		{name: "unknown transport", from: "[\"store\", \"git\"]", to: "[\"store\", \"ftp\"]", file: "stack.toml", line: 25, key: "source[abc].transports", message: "unknown transport \"ftp\""},
		{name: "duplicate source", from: "name = \"abc\"", to: "name = \"zlib\"", file: "stack.toml", line: 18, key: "source.name", message: "defined twice"},
		{name: "syntax error", from: "strip = 1", to: "strip = = 1", file: "stack.toml", line: 14},
		{name: "wrong type", from: "strip = 1", to: "strip = \"one\"", file: "stack.toml", line: 14, key: "source.strip"},
		{name: "missing epoch", from: "source_date_epoch = 1700000000\n", to: "", file: "stack.toml", key: "source_date_epoch", message: "missing"},
		{name: "image of unknown recipe", from: "recipe = \"hello\"", to: "recipe = \"nope\"", file: "stack.toml", line: 29, key: "image[hello].recipe", message: "no recipe named \"nope\""},
		{name: "image mode not octal", from: "\"1777\"", to: "\"rwx\"", file: "stack.toml", line: 34, key: "image[hello].modes.var/tmp", message: "octal mode"},
		{name: "image mode path leaves", from: "\"var/tmp\" =", to: "\"../tmp\" =", file: "stack.toml", line: 34, key: "image[hello].modes", message: "inside the image"},
		{name: "supplier without kind", from: "strip = 1", to: "strip = 1\nsupplier = \"zlib authors\"", file: "stack.toml", line: 15, key: "source[zlib].supplier", message: "Organization: NAME"},
		{name: "stack supplier with a newline", from: "source_date_epoch = 1700000000", to: "source_date_epoch = 1700000000\nsupplier = \"Person: a\\nb\"", file: "stack.toml", line: 3, key: "supplier", message: "Person: NAME"},
		{name: "upstream not http", from: "strip = 1", to: "strip = 1\nupstream = \"file:///etc/passwd\"", file: "stack.toml", line: 15, key: "source[zlib].upstream", message: "https or http URL"},
		{name: "archive name with a directory", from: "strip = 1", to: "strip = 1\narchive_name = \"../zlib.tar.gz\"", file: "stack.toml", line: 15, key: "source[zlib].archive_name", message: "no directory"},
		{name: "archive name without archive", from: "transports = [", to: "archive_name = \"abc.tar.gz\"\ntransports = [", file: "stack.toml", line: 25, key: "source[abc].archive_name", message: "there is none"},
		{name: "image stop signal a number", from: "env = [\"A=1\"]", to: "env = [\"A=1\"]\nstop_signal = \"15\"", file: "stack.toml", line: 32, key: "image[hello].stop_signal", message: "want a signal name"},
		{name: "image stop signal bare name", from: "env = [\"A=1\"]", to: "env = [\"A=1\"]\nstop_signal = \"TERM\"", file: "stack.toml", line: 32, key: "image[hello].stop_signal", message: "want a signal name"},
		{name: "image stop signal past RTMAX", from: "env = [\"A=1\"]", to: "env = [\"A=1\"]\nstop_signal = \"SIGRTMIN+16\"", file: "stack.toml", line: 32, key: "image[hello].stop_signal"},
		{name: "recipe names unknown source", rfrom: "\"abc\"]", rto: "\"xyz\"]", file: "recipe.toml", key: "sources", message: "no source named \"xyz\""},
		{name: "recipe script outside", rfrom: "build.sh", rto: "../x.sh", file: "recipe.toml", line: 4, key: "script", message: "inside the recipe's directory"},
		{name: "recipe sets PATH", rfrom: "CFLAGS", rto: "PATH", file: "recipe.toml", line: 7, key: "env.PATH", message: "set by the sandbox"},
		{name: "recipe name differs from dir", rfrom: "name = \"hello\"", rto: "name = \"other\"", file: "recipe.toml", line: 1, key: "name"},
		{name: "recipe unknown key", rfrom: "stage = 2", rto: "stage = 2\nnetwork = true", file: "recipe.toml", line: 3, key: "network", message: "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := strings.Replace(goodStack, tc.from, tc.to, 1)
			if tc.from != "" && s == goodStack {
				t.Fatalf("fixture edit %q not applied", tc.from)
			}
			r := strings.Replace(goodRecipe, tc.rfrom, tc.rto, 1)
			if tc.rfrom != "" && r == goodRecipe {
				t.Fatalf("fixture edit %q not applied", tc.rfrom)
			}
			_, err := Load(writeStack(t, s, r))
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("got %v, want stack.Errors", err)
			}
			for _, e := range es {
				if filepath.Base(e.File) == tc.file && (tc.line == 0 || e.Line == tc.line) &&
					(tc.key == "" || e.Key == tc.key) && strings.Contains(e.Error(), tc.message) {
					return
				}
			}
			t.Errorf("got %q, want an error at %s:%d key %q containing %q", es.Error(), tc.file, tc.line, tc.key, tc.message)
		})
	}
}

func TestLoadStopSignal(t *testing.T) {
	for _, sig := range []string{"", "SIGTERM", "SIGQUIT", "SIGWINCH", "SIGKILL", "SIGRTMIN", "SIGRTMIN+3", "SIGRTMAX-14"} {
		text := goodStack
		if sig != "" {
			text = strings.Replace(goodStack, "env = [\"A=1\"]\n", "env = [\"A=1\"]\nstop_signal = \""+sig+"\"\n", 1)
		}
		st, err := Load(writeStack(t, text, goodRecipe))
		if err != nil {
			t.Fatalf("stop_signal %q: %v", sig, err)
		}
		if got := st.Image("hello").StopSignal; got != sig {
			t.Errorf("stop_signal %q: parsed as %q", sig, got)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for p, want := range map[string]bool{
		"submodules/musl": true, "a": true, "": false, ".": false, "..": false, "../a": false,
		"a/../..": false, "/etc": false, "-x": false, "a//b": false, "a/./b": false, "a\\b": false,
	} {
		if got := LocalPath(p); got != want {
			t.Errorf("LocalPath(%q) = %v, want %v", p, got, want)
		}
	}
}

const patchedSource = `
[source.patches]
debian_tar_sha256 = "5555555555555555555555555555555555555555555555555555555555555555"
series = ["CVE-1.patch", "fix.patch"]
local = ["recipes/hello/local.patch"]
tree = "sha256:6666666666666666666666666666666666666666666666666666666666666666"

[source.patches.resolves]
"CVE-1.patch" = ["CVE-2025-26519"]
`

func TestLoadPatches(t *testing.T) {
	// The patches table belongs to the [[source]] before it: zlib.
	text := strings.Replace(goodStack, "debian = \"zlib=1:1.2.13-1\"\n", "debian = \"zlib=1:1.2.13-1\"\n"+patchedSource, 1)
	st, err := Load(writeStack(t, text, goodRecipe))
	if err != nil {
		t.Fatal(err)
	}
	z := st.Source("zlib")
	if z.Patches == nil {
		t.Fatal("zlib: no patches parsed")
	}
	if got, want := strings.Join(z.Patches.PatchNames(), " "), "CVE-1.patch fix.patch local.patch"; got != want {
		t.Errorf("patch names %q, want %q", got, want)
	}
	if got, want := z.Tree(), "sha256:6666666666666666666666666666666666666666666666666666666666666666"; got != want {
		t.Errorf("Tree() = %s, want the patched tree %s", got, want)
	}
	if got := st.Source("abc").Tree(); got != st.Source("abc").Pin.Tree {
		t.Errorf("unpatched Tree() = %s, want the pin", got)
	}
	if got, want := z.Patches.Local[0], filepath.Join(st.Dir, "recipes", "hello", "local.patch"); got != want {
		t.Errorf("local patch path %s, want %s", got, want)
	}
}

func TestLoadPatchesBad(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"no tree", `tree = "sha256:6666666666666666666666666666666666666666666666666666666666666666"` + "\n\n[source.patches.resolves]", "[source.patches.resolves]", "source[zlib].patches.tree: missing pin"},
		{"no debian tar", `debian_tar_sha256 = "5555555555555555555555555555555555555555555555555555555555555555"`, "", "patches.debian_tar_sha256: missing pin"},
		{"unknown resolves", `"CVE-1.patch" =`, `"other.patch" =`, `"other.patch" is not a patch of this source`},
		{"bad cve", `["CVE-2025-26519"]`, `["bug 12"]`, `"bug 12": want a CVE id`},
		{"local outside", `local = ["recipes/hello/local.patch"]`, `local = ["../x.patch"]`, `must be a relative path inside`},
		{"series path", `series = ["CVE-1.patch", "fix.patch"]`, `series = ["../CVE-1.patch"]`, `want a patch name from debian/patches/series`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := strings.Replace(patchedSource, tc.from, tc.to, 1)
			text := strings.Replace(goodStack, "debian = \"zlib=1:1.2.13-1\"\n", "debian = \"zlib=1:1.2.13-1\"\n"+p, 1)
			_, err := Load(writeStack(t, text, goodRecipe))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRecipeLimits(t *testing.T) {
	for _, tc := range []struct {
		table, err string
		want       Limits
	}{
		{"memory = \"12G\"\npids = 4096\noutput_size = \"4G\"\nlog_size = \"64M\"\n", "", Limits{Memory: 12 << 30, Pids: 4096, OutputSize: 4 << 30, LogSize: 64 << 20}},
		{"memory = \"1M\"\n", "limits.memory", Limits{}},
		{"pids = -3\n", "limits.pids", Limits{}},
		{"output_size = \"lots\"\n", "limits.output_size", Limits{}},
	} {
		top := t.TempDir()
		dir := filepath.Join(top, "r")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		toml := "name = \"r\"\nstage = 2\nscript = \"build.sh\"\n\n[limits]\n" + tc.table
		if err := os.WriteFile(filepath.Join(dir, "recipe.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "build.sh"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(top)
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := loadRecipe(root, "r", dir)
		root.Close()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "recipe.toml:") {
				t.Errorf("%q: got %v, want an error naming %s with its line", tc.table, err, tc.err)
			}
			continue
		}
		if err != nil || r.Limits != tc.want {
			t.Errorf("%q: got %+v, %v, want %+v", tc.table, r.Limits, err, tc.want)
		}
	}
}
