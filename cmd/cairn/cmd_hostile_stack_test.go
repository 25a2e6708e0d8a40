package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// hostileBase is a stack whose one source would be fetched from url.
func hostileBase(url string) (stackText, recipeText string) {
	stackText = `name = "t"
source_date_epoch = 1700000000
recipes = ["recipes/hello"]

[seed]
lock = "seed.lock"

[[source]]
name = "a"
version = "1"
license = "MIT"
tree = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
archive_sha256 = "2222222222222222222222222222222222222222222222222222222222222222"
strip = 1
archives = ["` + url + `/a-1.tar.gz"]

[[image]]
name = "hello"
recipe = "hello"
entrypoint = ["/bin/hello"]
env = ["A=1"]
`
	recipeText = `name = "hello"
stage = 2
sources = ["a"]
script = "build.sh"

[env]
CFLAGS = "-O2"
`
	return stackText, recipeText
}

// lineOf returns "FILE:N" where N is the first line of text containing sub.
func lineOf(file, text, sub string) string {
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			return fmt.Sprintf("%s:%d", file, i+1)
		}
	}
	return file + ":?"
}

// TestHostileStack is one row per hostile stack: each is refused by
// `cairn build` before anything runs, with exit status 2 and an error that
// names the file and line; the archive server sees no request, no store is
// made, and nothing read through a symlink out of the stack reaches the
// error.
func TestHostileStack(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	secret := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(secret, []byte("root:SECRET-HASH:19000:0:99999:7:::\n"), 0o600)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "recipe.toml"), []byte("name = \"hello\"\nstage = 2\nscript = \"build.sh\"\n"), 0o644)
	os.WriteFile(filepath.Join(outside, "build.sh"), []byte("true\n"), 0o644)
	os.WriteFile(filepath.Join(outside, "x.patch"), []byte("SECRET-PATCH\n"), 0o644)

	type layout struct{ dir, stack, recipe string }
	tests := []struct {
		name string
		// edit changes the stack and recipe texts, or the tree, before
		// they are written; it returns the error text wanted, located.
		edit func(l *layout) string
	}{
		{"seed.lock symlinked out", func(l *layout) string {
			os.Remove(filepath.Join(l.dir, "seed.lock"))
			os.Symlink(secret, filepath.Join(l.dir, "seed.lock"))
			return lineOf("stack.toml", l.stack, "lock =") + `: seed.lock: "seed.lock": refused: it leads out of the stack directory`
		}},
		{"seed.lock through a relative symlink out", func(l *layout) string {
			os.Remove(filepath.Join(l.dir, "seed.lock"))
			os.Symlink("../../../../../../../../.."+secret, filepath.Join(l.dir, "seed.lock"))
			return lineOf("stack.toml", l.stack, "lock =") + `: seed.lock: "seed.lock": refused`
		}},
		{"recipe directory symlinked out", func(l *layout) string {
			os.RemoveAll(filepath.Join(l.dir, "recipes", "hello"))
			os.Symlink(outside, filepath.Join(l.dir, "recipes", "hello"))
			return lineOf("stack.toml", l.stack, "recipes =") + `: recipes[0]: "recipes/hello": refused`
		}},
		{"recipes parent symlinked out", func(l *layout) string {
			os.RemoveAll(filepath.Join(l.dir, "recipes"))
			os.Mkdir(filepath.Join(outside, "hello"), 0o755)
			os.Symlink(outside, filepath.Join(l.dir, "recipes"))
			return lineOf("stack.toml", l.stack, "recipes =") + `: recipes[0]: "recipes/hello": refused`
		}},
		{"recipe.toml symlinked out", func(l *layout) string {
			p := filepath.Join(l.dir, "recipes", "hello", "recipe.toml")
			os.Remove(p)
			os.Symlink(filepath.Join(outside, "recipe.toml"), p)
			return "recipe.toml: cannot be read inside the stack directory (a symlink out of it is refused)"
		}},
		{"patch symlinked out", func(l *layout) string {
			l.stack = strings.Replace(l.stack, "[[image]]", "[source.patches]\ntree = \"sha256:3333333333333333333333333333333333333333333333333333333333333333\"\nlocal = [\"fix.patch\"]\n\n[[image]]", 1)
			os.Symlink(filepath.Join(outside, "x.patch"), filepath.Join(l.dir, "fix.patch"))
			return lineOf("stack.toml", l.stack, "local =") + `: source[a].patches.local[0]: "fix.patch": refused`
		}},
		{"stage 7", func(l *layout) string {
			l.recipe = strings.Replace(l.recipe, "stage = 2", "stage = 7", 1)
			return lineOf("recipe.toml", l.recipe, "stage =") + ": stage: 7: want 1 (libc), 2 (programs) or 3 (image roots)"
		}},
		{"stage 0", func(l *layout) string {
			l.recipe = strings.Replace(l.recipe, "stage = 2", "stage = 0", 1)
			return lineOf("recipe.toml", l.recipe, "stage =") + ": stage: 0: want 1 (libc), 2 (programs) or 3 (image roots)"
		}},
		{"stage 1 depends on stage 3", func(l *layout) string {
			l.recipe = strings.Replace(l.recipe, "stage = 2", "stage = 1\ndeps = [\"late\"]", 1)
			l.stack = strings.Replace(l.stack, `recipes = ["recipes/hello"]`, `recipes = ["recipes/hello", "recipes/late"]`, 1)
			os.MkdirAll(filepath.Join(l.dir, "recipes", "late"), 0o755)
			os.WriteFile(filepath.Join(l.dir, "recipes", "late", "recipe.toml"), []byte("name = \"late\"\nstage = 3\nscript = \"build.sh\"\n"), 0o644)
			os.WriteFile(filepath.Join(l.dir, "recipes", "late", "build.sh"), []byte("true\n"), 0o644)
			return lineOf("recipe.toml", l.recipe, "deps =") + `: deps: "late" is a stage 3 recipe: a stage 1 recipe may depend only on recipes of a lower stage`
		}},
		{"same-stage dependency", func(l *layout) string {
			l.recipe = strings.Replace(l.recipe, "stage = 2", "stage = 2\ndeps = [\"peer\"]", 1)
			l.stack = strings.Replace(l.stack, `recipes = ["recipes/hello"]`, `recipes = ["recipes/hello", "recipes/peer"]`, 1)
			os.MkdirAll(filepath.Join(l.dir, "recipes", "peer"), 0o755)
			os.WriteFile(filepath.Join(l.dir, "recipes", "peer", "recipe.toml"), []byte("name = \"peer\"\nstage = 2\nscript = \"build.sh\"\n"), 0o644)
			os.WriteFile(filepath.Join(l.dir, "recipes", "peer", "build.sh"), []byte("true\n"), 0o644)
			return `deps: "peer" is a stage 2 recipe: a stage 2 recipe may depend only on recipes of a lower stage`
		}},
		{"epoch beyond tar", func(l *layout) string {
			l.stack = strings.Replace(l.stack, "1700000000", "99999999999", 1)
			return lineOf("stack.toml", l.stack, "source_date_epoch") + ": source_date_epoch: 99999999999: want 0 to 8589934591 (2242-03-16"
		}},
		{"negative epoch", func(l *layout) string {
			l.stack = strings.Replace(l.stack, "1700000000", "-1", 1)
			return lineOf("stack.toml", l.stack, "source_date_epoch") + ": source_date_epoch: -1: want 0 to 8589934591"
		}},
		{"300-character image name", func(l *layout) string {
			long := strings.Repeat("a", 300)
			l.stack = strings.Replace(l.stack, `name = "hello"`, `name = "`+long+`"`, 1)
			return lineOf("stack.toml", l.stack, long) + ": image[0].name: \"aaaaaaaaaaaaaaaaaaaa\"...: 300 characters, want at most 128"
		}},
		{"image name not a reference", func(l *layout) string {
			l.stack = strings.Replace(l.stack, `name = "hello"`, `name = "hello-"`, 1)
			return lineOf("stack.toml", l.stack, `"hello-"`) + `: image[hello-].name: "hello-": not usable in an image reference`
		}},
		{"NUL in recipe env", func(l *layout) string {
			l.recipe = strings.Replace(l.recipe, `CFLAGS = "-O2"`, `CFLAGS = "-O2\u0000-evil"`, 1)
			return lineOf("recipe.toml", l.recipe, "CFLAGS") + ": env.CFLAGS: the value holds a NUL byte"
		}},
		{"newline in recipe env", func(l *layout) string {
			l.recipe = strings.Replace(l.recipe, `CFLAGS = "-O2"`, `CFLAGS = "-O2\nroot /dev/null"`, 1)
			return lineOf("recipe.toml", l.recipe, "CFLAGS") + ": env.CFLAGS: the value holds a line break"
		}},
		{"newline in image env", func(l *layout) string {
			l.stack = strings.Replace(l.stack, `env = ["A=1"]`, `env = ["A=1\nB=2"]`, 1)
			return lineOf("stack.toml", l.stack, "env =") + ": image[hello].env: A: the value holds a line break"
		}},
		{"image env without a key", func(l *layout) string {
			l.stack = strings.Replace(l.stack, `env = ["A=1"]`, `env = ["=1"]`, 1)
			return lineOf("stack.toml", l.stack, "env =") + `: image[hello].env: "=1": want KEY=VALUE`
		}},
		{"port out of range", func(l *layout) string {
			l.stack = strings.Replace(l.stack, `env = ["A=1"]`, `env = ["A=1"]`+"\nports = [\"70000/tcp\"]", 1)
			return lineOf("stack.toml", l.stack, "ports =") + `: image[hello].ports: "70000/tcp": want PORT or PORT/tcp`
		}},
		{"relative working_dir", func(l *layout) string {
			l.stack = strings.Replace(l.stack, `env = ["A=1"]`, `env = ["A=1"]`+"\nworking_dir = \"srv/../..\"", 1)
			return lineOf("stack.toml", l.stack, "working_dir =") + `: image[hello].working_dir: "srv/../..": want a clean absolute path`
		}},
		{"user with a newline", func(l *layout) string {
			l.stack = strings.Replace(l.stack, `env = ["A=1"]`, `env = ["A=1"]`+"\nuser = \"root\\nx\"", 1)
			return lineOf("stack.toml", l.stack, "user =") + `: image[hello].user: "root\nx": want USER, UID, USER:GROUP or UID:GID`
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &layout{dir: t.TempDir()}
			l.stack, l.recipe = hostileBase(srv.URL)
			rdir := filepath.Join(l.dir, "recipes", "hello")
			os.MkdirAll(rdir, 0o755)
			os.WriteFile(filepath.Join(rdir, "build.sh"), []byte("true\n"), 0o644)
			os.WriteFile(filepath.Join(l.dir, "seed.lock"), nil, 0o644)
			want := tt.edit(l)
			os.WriteFile(filepath.Join(l.dir, "stack.toml"), []byte(l.stack), 0o644)
			if fi, err := os.Lstat(filepath.Join(l.dir, "recipes", "hello")); err == nil && fi.IsDir() {
				if fi, err := os.Lstat(filepath.Join(rdir, "recipe.toml")); err != nil || fi.Mode().IsRegular() {
					os.WriteFile(filepath.Join(rdir, "recipe.toml"), []byte(l.recipe), 0o644)
				}
			}
			storeDir := filepath.Join(l.dir, "store")
			before := requests.Load()
			_, stderr, code := runCairn(t, "build", "--stack", filepath.Join(l.dir, "stack.toml"), "--store", storeDir, "--out", filepath.Join(l.dir, "out"))
			if code != exitUsage {
				t.Errorf("exit %d, want %d (usage)\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr:\n%s\nwant it to contain:\n%s", stderr, want)
			}
			if strings.Contains(stderr, "SECRET") {
				t.Errorf("stderr quotes a file outside the stack:\n%s", stderr)
			}
			if n := requests.Load() - before; n != 0 {
				t.Errorf("the archive server saw %d requests, want none", n)
			}
			for _, p := range []string{storeDir, filepath.Join(l.dir, "out")} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s exists: something ran before the stack was refused", p)
				}
			}
		})
	}
}
