// Package stack reads a stack definition: the pinned sources, the seed lock,
// the recipes and the images that cairn builds.
//
// A stack is a TOML file (toolchain/stack.toml by default). Sources are
// pinned by content (the cairn tree digest) and carry the transports that may
// deliver them; recipes live each in a directory of their own beside the
// stack file (recipe.toml plus the files it names); images name the recipe
// whose output is their root. The format is documented in docs/stack.md.
//
// Every error names the file, the line and the key, so that a maintainer can
// go straight to the mistake: unknown keys, missing pins and digests of the
// wrong form are all refused here, before anything is fetched.
package stack

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Bounds of a stack's values, checked when it is read so that nothing out
// of range reaches a step.
const (
	// MaxSourceDateEpoch is the latest time a USTAR header's 11 octal
	// digits hold (2242-03-16); the rootfs writer keeps every entry USTAR
	// where it can, and an OCI "created" time of year ≤ 9999 is well past it.
	MaxSourceDateEpoch = 1<<33 - 1
	// MaxStage is the last stage: 1 libc, 2 programs, 3 image roots.
	MaxStage = 3
	// MaxNameLen bounds every name: stack, source, recipe, image.
	MaxNameLen = 128
	// MaxEnvValueLen bounds one declared environment value.
	MaxEnvValueLen = 32 << 10
)

// Transport names, in the default order cairn tries them: what is already
// here first, then what the machine can reach.
const (
	TransportStore     = "store"
	TransportMirror    = "mirror"
	TransportSubmodule = "submodule"
	TransportGit       = "git"
	TransportArchive   = "archive"
	TransportDebian    = "debian"
)

// DefaultTransports is the order used when neither the stack nor a source
// gives one.
var DefaultTransports = []string{TransportStore, TransportMirror, TransportSubmodule, TransportGit, TransportArchive, TransportDebian}

// Stack is a parsed, validated stack definition. Slices are sorted by name so
// that nothing downstream depends on the order of the file.
type Stack struct {
	File            string // the definition's path, as given
	Dir             string // the directory the definition's relative paths start from
	Name            string
	SourceDateEpoch int64
	Supplier        string // who supplies the images: "Organization: NAME" or "Person: NAME"; "" unsaid
	Transports      []string
	Seed            Seed
	Sources         []Source
	Recipes         []Recipe
	Images          []Image
}

// Seed names the lock file of the build-time root.
type Seed struct {
	Lock string // path, resolved against Stack.Dir
}

// Pin is what a source must contain, whoever delivers it.
type Pin struct {
	Tree          string // "sha256:HEX", the cairn tree digest: the identity
	GitTree       string // hex SHA-1 of the git tree, where known
	GitCommit     string // hex SHA-1 of the commit, where known
	ArchiveSHA256 string // hex sha256 of the release archive, where known
}

// Source is one pinned source and the transports that may deliver it.
type Source struct {
	Name       string
	Version    string
	License    string // SPDX licence expression
	Pin        Pin
	Strip      int      // leading path components to strip from archives
	Submodule  string   // path of a git submodule of the superproject
	Git        string   // git remote URL
	Archives   []string // release archive URLs (https, http, file)
	Debian     string   // Debian source package "NAME=VERSION"
	Transports []string // order of transports for this source; empty: the stack's
	Patches    *Patches // applied before any recipe sees the tree; nil: none
	// What the SBOM says of the source besides its pins: who supplies it
	// ("Organization: NAME" or "Person: NAME"), where upstream releases it
	// when the archives are not upstream's bytes (a Debian repack), and the
	// file name ArchiveSHA256 is the checksum of when no archive URL names it.
	Supplier    string
	Upstream    string
	ArchiveName string
	Line        int // where its table starts, for messages
}

// Patches is a source's patch series: pinned inputs applied to the pristine
// tree (Pin.Tree) before a recipe sees it. Debian's patches come from the
// packaging tarball of the same source package as Source.Debian, pinned by
// its sha256 like the orig tarball; cairn's own portability patches are
// files beside the stack. The patched tree has its own digest.
type Patches struct {
	DebianTarSHA256 string   // hex sha256 of NAME_VERSION.debian.tar.*; "" when no Debian patch is taken
	Series          []string // names from debian/patches/series, applied in series order; ["*"]: the whole series
	Local           []string // patch files (resolved against Stack.Dir), applied after the series
	Tree            string   // "sha256:HEX", the tree digest after every patch is applied
	// Resolves names the vulnerabilities each patch fixes, by patch name
	// (the series name, or the base name of a local file): "CVE-2025-26519".
	Resolves map[string][]string
	Line     int
}

// PatchNames returns the names of the patches in the order they are applied
// (the series as pinned, then the local files' base names). A series of
// ["*"] is returned as is: only the packaging tarball knows its names.
func (p *Patches) PatchNames() []string {
	if p == nil {
		return nil
	}
	out := append([]string(nil), p.Series...)
	for _, l := range p.Local {
		out = append(out, filepath.Base(l))
	}
	return out
}

// Tree returns the digest of the tree that recipes see: the patched tree if
// the source has patches, else the pristine one.
func (s Source) Tree() string {
	if s.Patches != nil {
		return s.Patches.Tree
	}
	return s.Pin.Tree
}

// DebianPackage splits Debian into name and version.
func (s Source) DebianPackage() (name, version string) {
	name, version, _ = strings.Cut(s.Debian, "=")
	return name, version
}

// Recipe is one build step's definition, read from DIR/recipe.toml.
type Recipe struct {
	Name    string
	Dir     string // the recipe's directory (mounted at /recipe)
	Stage   int
	Sources []string
	Deps    []string
	Script  string            // file in Dir, run as /bin/sh -eu /recipe/SCRIPT
	Env     map[string]string // declared environment
	Limits  Limits            // [limits]: the sandbox's limits for this step
}

// EnvList returns the declared environment as sorted KEY=VALUE strings.
func (r Recipe) EnvList() []string {
	out := make([]string, 0, len(r.Env))
	for k, v := range r.Env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Image is one image built from a recipe's output tree.
type Image struct {
	Name       string
	Recipe     string
	Entrypoint []string
	Cmd        []string
	User       string
	Env        []string
	WorkingDir string
	Ports      []string
	// StopSignal is the signal a runtime sends to stop the container
	// ("SIGTERM"); "" leaves the runtime's default, which is SIGTERM.
	StopSignal string
	// Modes sets the mode of paths of the root explicitly (the rootfs
	// writer otherwise normalises every mode): "tmp" = 0o1777.
	Modes map[string]fs.FileMode
	Line  int
}

// ModeList returns Modes sorted by path, for keys and for the writer.
func (img Image) ModeList() []string {
	out := make([]string, 0, len(img.Modes))
	for p, m := range img.Modes {
		out = append(out, fmt.Sprintf("%s %s", p, m))
	}
	sort.Strings(out)
	return out
}

// StopSignalOK reports whether sig is a stop signal an image may declare:
// a Linux signal name in the SIGNAME form ("SIGTERM", "SIGRTMIN+3").
func StopSignalOK(sig string) bool { return stopSignalRE.MatchString(sig) }

// Error is a problem in a definition, located.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key, e.g. "source[musl].tree"
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Errors collects every problem of one file, so a maintainer sees them all.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// The file's shape, as TOML sees it. Unknown keys are refused.
type fileStack struct {
	Name            string       `toml:"name"`
	SourceDateEpoch *int64       `toml:"source_date_epoch"`
	Supplier        string       `toml:"supplier"`
	Transports      []string     `toml:"transports"`
	Recipes         []string     `toml:"recipes"`
	Seed            *fileSeed    `toml:"seed"`
	Source          []fileSource `toml:"source"`
	Image           []fileImage  `toml:"image"`
}

type fileSeed struct {
	Lock string `toml:"lock"`
}

type fileSource struct {
	Name          string       `toml:"name"`
	Version       string       `toml:"version"`
	License       string       `toml:"license"`
	Tree          string       `toml:"tree"`
	GitTree       string       `toml:"git_tree"`
	GitCommit     string       `toml:"git_commit"`
	ArchiveSHA256 string       `toml:"archive_sha256"`
	Strip         int          `toml:"strip"`
	Submodule     string       `toml:"submodule"`
	Git           string       `toml:"git"`
	Archives      []string     `toml:"archives"`
	Debian        string       `toml:"debian"`
	Transports    []string     `toml:"transports"`
	Patches       *filePatches `toml:"patches"`
	Supplier      string       `toml:"supplier"`
	Upstream      string       `toml:"upstream"`
	ArchiveName   string       `toml:"archive_name"`
}

type filePatches struct {
	DebianTarSHA256 string              `toml:"debian_tar_sha256"`
	Series          []string            `toml:"series"`
	Local           []string            `toml:"local"`
	Tree            string              `toml:"tree"`
	Resolves        map[string][]string `toml:"resolves"`
}

type fileImage struct {
	Name       string            `toml:"name"`
	Recipe     string            `toml:"recipe"`
	Entrypoint []string          `toml:"entrypoint"`
	Cmd        []string          `toml:"cmd"`
	User       string            `toml:"user"`
	Env        []string          `toml:"env"`
	WorkingDir string            `toml:"working_dir"`
	Ports      []string          `toml:"ports"`
	StopSignal string            `toml:"stop_signal"`
	Modes      map[string]string `toml:"modes"`
}

type fileRecipe struct {
	Name    string            `toml:"name"`
	Stage   int               `toml:"stage"`
	Sources []string          `toml:"sources"`
	Deps    []string          `toml:"deps"`
	Script  string            `toml:"script"`
	Env     map[string]string `toml:"env"`
	Limits  fileLimits        `toml:"limits"`
}

// Load reads and validates the stack definition at file, and the recipes it
// names.
func Load(file string) (*Stack, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("stack definition: %w", err)
	}
	return Parse(file, data)
}

// Parse validates data as the stack definition read from file. Recipes are
// read from disk, relative to file's directory.
func Parse(file string, data []byte) (*Stack, error) {
	var doc fileStack
	if err := decodeStrict(file, data, &doc); err != nil {
		return nil, err
	}
	v := &validator{file: file, stackDir: filepath.Dir(file), lines: newLineIndex(data), recipeLines: map[string]lineIndex{}}
	st := &Stack{File: file, Dir: filepath.Dir(file), Name: doc.Name, Supplier: doc.Supplier}
	// Every file the stack names is reached through root, so that a
	// symlink out of the stack directory is refused rather than followed:
	// nothing outside it is read, or quoted in an error.
	root, err := os.OpenRoot(st.Dir)
	if err != nil {
		return nil, Errors{{File: file, Msg: fmt.Sprintf("stack directory: %v", err)}}
	}
	defer root.Close()
	v.root = root
	if doc.Supplier != "" {
		if err := checkSupplier(doc.Supplier); err != nil {
			v.fail(v.lines.key("", 0, "supplier"), "supplier", err.Error())
		}
	}

	if doc.Name == "" {
		v.fail(v.lines.key("", 0, "name"), "name", "missing")
	} else {
		v.name("name", doc.Name, v.lines.key("", 0, "name"))
	}
	if doc.SourceDateEpoch == nil {
		v.fail(0, "source_date_epoch", "missing: every output's timestamps come from it")
	} else if e := *doc.SourceDateEpoch; e < 0 || e > MaxSourceDateEpoch {
		v.fail(v.lines.key("", 0, "source_date_epoch"), "source_date_epoch",
			fmt.Sprintf("%d: want 0 to %d (%s, the latest time a tar header holds in its 11 octal digits)",
				e, int64(MaxSourceDateEpoch), time.Unix(MaxSourceDateEpoch, 0).UTC().Format(time.DateOnly)))
	} else {
		st.SourceDateEpoch = *doc.SourceDateEpoch
	}
	st.Transports = DefaultTransports
	if doc.Transports != nil {
		st.Transports = doc.Transports
		v.transports("transports", doc.Transports, v.lines.key("", 0, "transports"))
	}

	if doc.Seed == nil || doc.Seed.Lock == "" {
		v.fail(v.lines.table("seed", 0), "seed.lock", "missing")
	} else {
		line := v.lines.key("seed", 0, "lock")
		if st.Seed.Lock = v.relPath("seed.lock", doc.Seed.Lock, line, st.Dir); st.Seed.Lock != "" {
			// A missing lock is the seed's to report, when a build needs it.
			v.inside("seed.lock", doc.Seed.Lock, line, false, false)
		}
	}

	seen := map[string]bool{}
	for i, fsrc := range doc.Source {
		src := v.source(i, fsrc)
		if src.Name != "" && seen[src.Name] {
			v.fail(src.Line, "source.name", fmt.Sprintf("source %q defined twice", src.Name))
		}
		seen[src.Name] = true
		st.Sources = append(st.Sources, src)
	}
	sort.Slice(st.Sources, func(i, j int) bool { return st.Sources[i].Name < st.Sources[j].Name })

	for i, rdir := range doc.Recipes {
		key := fmt.Sprintf("recipes[%d]", i)
		line := v.lines.key("", 0, "recipes")
		dir := v.relPath(key, rdir, line, st.Dir)
		if dir == "" || !v.inside(key, rdir, line, true, true) {
			continue
		}
		r, li, err := loadRecipe(root, rdir, dir)
		if err != nil {
			v.errs = append(v.errs, asErrors(err)...)
			continue
		}
		v.recipeLines[r.Name] = li
		st.Recipes = append(st.Recipes, r)
	}
	sort.Slice(st.Recipes, func(i, j int) bool { return st.Recipes[i].Name < st.Recipes[j].Name })
	v.crossCheck(st)

	for i, fi := range doc.Image {
		line := v.lines.table("image", i)
		img := Image{Name: fi.Name, Recipe: fi.Recipe, Entrypoint: fi.Entrypoint, Cmd: fi.Cmd,
			User: fi.User, Env: fi.Env, WorkingDir: fi.WorkingDir, Ports: fi.Ports, StopSignal: fi.StopSignal, Line: line}
		key := fmt.Sprintf("image[%d]", i)
		if fi.Name != "" && len(fi.Name) <= MaxNameLen {
			key = fmt.Sprintf("image[%s]", fi.Name)
		}
		if fi.Name == "" {
			v.fail(line, key+".name", "missing")
		} else {
			v.imageName(key+".name", fi.Name, v.lines.key("image", i, "name"))
		}
		if st.recipe(fi.Recipe) == nil {
			v.fail(v.lines.key("image", i, "recipe"), key+".recipe", fmt.Sprintf("no recipe named %q", fi.Recipe))
		}
		v.imageConfig(i, key, fi, line)
		if fi.StopSignal != "" && !StopSignalOK(fi.StopSignal) {
			v.fail(v.lines.key("image", i, "stop_signal"), key+".stop_signal",
				fmt.Sprintf("%q: want a signal name such as \"SIGTERM\" or \"SIGQUIT\"", fi.StopSignal))
		}
		for p, m := range fi.Modes {
			line := v.lines.key("image.modes", i, p)
			if !localPath(p) {
				v.fail(line, key+".modes", fmt.Sprintf("%q must be a relative path inside the image", p))
				continue
			}
			mode, err := parseMode(m)
			if err != nil {
				v.fail(line, key+".modes."+p, err.Error())
				continue
			}
			if img.Modes == nil {
				img.Modes = map[string]fs.FileMode{}
			}
			img.Modes[p] = mode
		}
		st.Images = append(st.Images, img)
	}
	sort.Slice(st.Images, func(i, j int) bool { return st.Images[i].Name < st.Images[j].Name })
	for i := 1; i < len(st.Images); i++ {
		if st.Images[i].Name == st.Images[i-1].Name {
			v.fail(st.Images[i].Line, "image.name", fmt.Sprintf("image %q defined twice", st.Images[i].Name))
		}
	}

	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool {
			return v.errs[i].File < v.errs[j].File || v.errs[i].File == v.errs[j].File && v.errs[i].Line < v.errs[j].Line
		})
		return nil, v.errs
	}
	return st, nil
}

// ReadFile reads a file the stack names (Seed.Lock, a local patch) through
// an os.Root on the stack directory, as Load checked it: a symlink put in
// its place since still cannot lead out of the directory.
func (st *Stack) ReadFile(p string) ([]byte, error) {
	rel, err := filepath.Rel(st.Dir, p)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%s: not inside the stack directory %s", p, st.Dir)
	}
	root, err := os.OpenRoot(st.Dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(rel)
}

// Source returns the source called name, or nil.
func (st *Stack) Source(name string) *Source {
	for i := range st.Sources {
		if st.Sources[i].Name == name {
			return &st.Sources[i]
		}
	}
	return nil
}

// Recipe returns the recipe called name, or nil.
func (st *Stack) Recipe(name string) *Recipe { return st.recipe(name) }

func (st *Stack) recipe(name string) *Recipe {
	for i := range st.Recipes {
		if st.Recipes[i].Name == name {
			return &st.Recipes[i]
		}
	}
	return nil
}

// Image returns the image called name, or nil.
func (st *Stack) Image(name string) *Image {
	for i := range st.Images {
		if st.Images[i].Name == name {
			return &st.Images[i]
		}
	}
	return nil
}

// loadRecipe reads the recipe in directory rel of root (dir on disk) and
// returns it with the line index of its file.
func loadRecipe(root *os.Root, rel, dir string) (Recipe, lineIndex, error) {
	file := filepath.Join(dir, "recipe.toml")
	data, err := root.ReadFile(path.Join(rel, "recipe.toml"))
	if err != nil {
		msg := "cannot be read inside the stack directory (a symlink out of it is refused)"
		if errors.Is(err, fs.ErrNotExist) {
			msg = "missing"
		}
		return Recipe{}, lineIndex{}, Errors{{File: file, Msg: msg}}
	}
	var fr fileRecipe
	if err := decodeStrict(file, data, &fr); err != nil {
		return Recipe{}, lineIndex{}, err
	}
	v := &validator{file: file, lines: newLineIndex(data), root: root}
	r := Recipe{Name: fr.Name, Dir: dir, Stage: fr.Stage, Sources: fr.Sources, Deps: fr.Deps, Script: fr.Script, Env: fr.Env}
	if fr.Name == "" {
		v.fail(0, "name", "missing")
	} else if fr.Name != filepath.Base(dir) {
		v.fail(v.lines.key("", 0, "name"), "name", fmt.Sprintf("%q must equal the recipe's directory name %q", fr.Name, filepath.Base(dir)))
	} else {
		v.name("name", fr.Name, v.lines.key("", 0, "name"))
	}
	if fr.Stage < 1 || fr.Stage > MaxStage {
		v.fail(v.lines.key("", 0, "stage"), "stage", fmt.Sprintf("%d: want 1 (libc), 2 (programs) or 3 (image roots)", fr.Stage))
	}
	if fr.Script == "" {
		v.fail(0, "script", "missing")
	} else if !localName(fr.Script) {
		v.fail(v.lines.key("", 0, "script"), "script", fmt.Sprintf("%q must be a file inside the recipe's directory", fr.Script))
	} else if fi, err := root.Lstat(path.Join(rel, fr.Script)); err != nil || !fi.Mode().IsRegular() {
		v.fail(v.lines.key("", 0, "script"), "script", fmt.Sprintf("%q: no such regular file in %s", fr.Script, dir))
	}
	r.Limits = v.limits(fr.Limits)
	for k, val := range fr.Env {
		if !envKey.MatchString(k) {
			v.fail(v.lines.key("env", 0, k), "env."+k, "not a valid environment variable name")
		} else if reservedEnv[k] {
			v.fail(v.lines.key("env", 0, k), "env."+k, "set by the sandbox; a recipe may not declare it")
		}
		if msg := envValueProblem(val); msg != "" {
			v.fail(v.lines.key("env", 0, k), "env."+k, msg)
		}
	}
	if len(v.errs) > 0 {
		return Recipe{}, lineIndex{}, v.errs
	}
	return r, v.lines, nil
}

// decodeStrict decodes TOML refusing unknown keys, with errors located.
func decodeStrict(file string, data []byte, dst any) error {
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		return nil
	}
	var sme *toml.StrictMissingError
	if errors.As(err, &sme) {
		var es Errors
		for _, de := range sme.Errors {
			row, _ := de.Position()
			es = append(es, &Error{File: file, Line: row, Key: strings.Join(de.Key(), "."), Msg: "unknown key"})
		}
		return es
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return Errors{{File: file, Line: row, Key: strings.Join(de.Key(), "."), Msg: fmt.Sprintf("column %d: %s", col, de.Error())}}
	}
	return Errors{{File: file, Msg: err.Error()}}
}

func asErrors(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	return Errors{{Msg: err.Error()}}
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	hex40    = regexp.MustCompile(`^[0-9a-f]{40}$`)
	hex64    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	treeRE   = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	debianRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+=[0-9][A-Za-z0-9.+~:-]*$`)
	envKey   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// A repository path component of the OCI distribution spec.
	ociComponent = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
	userRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)
	knownTran    = map[string]bool{TransportStore: true, TransportMirror: true, TransportSubmodule: true,
		TransportGit: true, TransportArchive: true, TransportDebian: true}
	// The sandbox sets these for every step; letting a recipe set them
	// would let it opt out of the fixed build environment.
	reservedEnv = map[string]bool{"PATH": true, "HOME": true, "TMPDIR": true, "TZ": true, "LC_ALL": true,
		"SOURCE_DATE_EPOCH": true, "CAIRN_JOBS": true}
	// An image's stop_signal: Linux's signal names in the SIGNAME form the
	// OCI image spec asks for (a program may stop on any of them: httpd
	// stops gracefully on SIGWINCH), or a real-time signal, SIGRTMIN+3.
	// Numbers and bare names ("TERM") are refused, so one signal has one
	// spelling in the config and in the image key.
	stopSignalRE = regexp.MustCompile(`^SIG(HUP|INT|QUIT|ILL|TRAP|ABRT|BUS|FPE|KILL|USR1|SEGV|USR2|PIPE|ALRM|TERM|STKFLT|` +
		`CHLD|CONT|STOP|TSTP|TTIN|TTOU|URG|XCPU|XFSZ|VTALRM|PROF|WINCH|IO|PWR|SYS|RTMIN|RTMAX|RTMIN\+([1-9]|1[0-5])|RTMAX-([1-9]|1[0-4]))$`)
)

type validator struct {
	file        string
	stackDir    string   // where the stack's relative paths start
	root        *os.Root // stackDir, through which every named file is reached
	lines       lineIndex
	recipeLines map[string]lineIndex // each recipe's file, by recipe name
	errs        Errors
}

func (v *validator) fail(line int, key, msg string) {
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Key: key, Msg: msg})
}

func (v *validator) name(key, s string, line int) {
	switch {
	case len(s) > MaxNameLen:
		v.fail(line, key, fmt.Sprintf("%.20q...: %d characters, want at most %d", s, len(s), MaxNameLen))
	case !nameRE.MatchString(s):
		v.fail(line, key, fmt.Sprintf("%q: want lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", s))
	}
}

func (v *validator) transports(key string, ts []string, line int) {
	seen := map[string]bool{}
	for _, t := range ts {
		if !knownTran[t] {
			v.fail(line, key, fmt.Sprintf("unknown transport %q (known: %s)", t, strings.Join(DefaultTransports, ", ")))
		}
		if seen[t] {
			v.fail(line, key, fmt.Sprintf("transport %q listed twice", t))
		}
		seen[t] = true
	}
}

// relPath checks that p is a relative path that stays below base, and
// returns it joined to base ("" on error).
func (v *validator) relPath(key, p string, line int, base string) string {
	if !localPath(p) {
		v.fail(line, key, fmt.Sprintf("%q must be a relative path inside %s", p, base))
		return ""
	}
	return filepath.Join(base, filepath.FromSlash(p))
}

func (v *validator) source(i int, f fileSource) Source {
	line := v.lines.table("source", i)
	key := fmt.Sprintf("source[%d]", i)
	if f.Name != "" && len(f.Name) <= MaxNameLen {
		key = fmt.Sprintf("source[%s]", f.Name)
	}
	at := func(k string) int {
		if l := v.lines.key("source", i, k); l > 0 {
			return l
		}
		return line
	}
	s := Source{Name: f.Name, Version: f.Version, License: f.License, Strip: f.Strip,
		Submodule: f.Submodule, Git: f.Git, Archives: f.Archives, Debian: f.Debian,
		Transports: f.Transports, Line: line,
		Supplier: f.Supplier, Upstream: f.Upstream, ArchiveName: f.ArchiveName,
		Pin: Pin{Tree: f.Tree, GitTree: f.GitTree, GitCommit: f.GitCommit, ArchiveSHA256: f.ArchiveSHA256}}
	if f.Name == "" {
		v.fail(line, key+".name", "missing")
	} else {
		v.name(key+".name", f.Name, at("name"))
	}
	if f.Version == "" {
		v.fail(line, key+".version", "missing")
	}
	if f.License == "" {
		v.fail(line, key+".license", "missing (an SPDX licence expression; the SBOM names it)")
	}
	switch {
	case f.Tree == "":
		v.fail(line, key+".tree", "missing pin: the content digest \"sha256:HEX\" that every transport must deliver (cairn digest prints it)")
	case !treeRE.MatchString(f.Tree):
		v.fail(at("tree"), key+".tree", fmt.Sprintf("%q: want \"sha256:\" and 64 lowercase hex digits", f.Tree))
	}
	if f.GitTree != "" && !hex40.MatchString(f.GitTree) {
		v.fail(at("git_tree"), key+".git_tree", fmt.Sprintf("%q: want 40 lowercase hex digits", f.GitTree))
	}
	if f.GitCommit != "" && !hex40.MatchString(f.GitCommit) {
		v.fail(at("git_commit"), key+".git_commit", fmt.Sprintf("%q: want 40 lowercase hex digits", f.GitCommit))
	}
	if f.ArchiveSHA256 != "" && !hex64.MatchString(f.ArchiveSHA256) {
		v.fail(at("archive_sha256"), key+".archive_sha256", fmt.Sprintf("%q: want 64 lowercase hex digits", f.ArchiveSHA256))
	}
	if f.Strip < 0 || f.Strip > 16 {
		v.fail(at("strip"), key+".strip", fmt.Sprintf("%d: want 0 to 16", f.Strip))
	}
	if f.Submodule != "" {
		if !localPath(f.Submodule) {
			v.fail(at("submodule"), key+".submodule", fmt.Sprintf("%q must be a relative path inside the superproject", f.Submodule))
		}
		if f.GitCommit == "" {
			v.fail(at("submodule"), key+".git_commit", "missing pin: a submodule transport needs the commit its gitlink must name")
		}
	}
	if f.Git != "" {
		if err := checkGitURL(f.Git); err != nil {
			v.fail(at("git"), key+".git", err.Error())
		}
		if f.GitCommit == "" {
			v.fail(at("git"), key+".git_commit", "missing pin: a git transport needs the commit to fetch")
		}
	}
	for _, a := range f.Archives {
		if err := checkArchiveURL(a); err != nil {
			v.fail(at("archives"), key+".archives", err.Error())
		}
	}
	if f.Supplier != "" {
		if err := checkSupplier(f.Supplier); err != nil {
			v.fail(at("supplier"), key+".supplier", err.Error())
		}
	}
	if f.Upstream != "" {
		if err := checkArchiveURL(f.Upstream); err != nil || !strings.HasPrefix(f.Upstream, "http") {
			v.fail(at("upstream"), key+".upstream", fmt.Sprintf("%q: want the https or http URL of upstream's release archive", f.Upstream))
		}
	}
	if f.ArchiveName != "" {
		switch {
		case !localName(f.ArchiveName):
			v.fail(at("archive_name"), key+".archive_name", fmt.Sprintf("%q: want a file name, no directory", f.ArchiveName))
		case f.ArchiveSHA256 == "":
			v.fail(at("archive_name"), key+".archive_name", "names the file archive_sha256 is the checksum of, and there is none")
		}
	}
	if len(f.Archives) > 0 && f.ArchiveSHA256 == "" {
		v.fail(at("archives"), key+".archive_sha256", "missing pin: archive URLs need the archive's sha256, checked before anything is unpacked")
	}
	if f.Debian != "" {
		if !debianRE.MatchString(f.Debian) {
			v.fail(at("debian"), key+".debian", fmt.Sprintf("%q: want a Debian source package as NAME=VERSION", f.Debian))
		}
		if f.ArchiveSHA256 == "" {
			v.fail(at("debian"), key+".archive_sha256", "missing pin: the Debian transport picks the orig tarball by its sha256")
		}
	}
	if f.Transports != nil {
		v.transports(key+".transports", f.Transports, at("transports"))
	}
	if f.Patches != nil {
		s.Patches = v.patches(i, key+".patches", f, line)
	}
	return s
}

var cveRE = regexp.MustCompile(`^(CVE-[0-9]{4}-[0-9]{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3})$`)

func (v *validator) patches(i int, key string, f fileSource, line int) *Patches {
	fp := f.Patches
	at := func(k string) int {
		if l := v.lines.key("source.patches", i, k); l > 0 {
			return l
		}
		return line
	}
	p := &Patches{DebianTarSHA256: fp.DebianTarSHA256, Series: fp.Series, Tree: fp.Tree, Resolves: fp.Resolves, Line: at("tree")}
	switch {
	case fp.Tree == "":
		v.fail(line, key+".tree", "missing pin: the digest of the patched tree (cairn fetch prints it)")
	case !treeRE.MatchString(fp.Tree):
		v.fail(at("tree"), key+".tree", fmt.Sprintf("%q: want \"sha256:\" and 64 lowercase hex digits", fp.Tree))
	case fp.Tree == f.Tree:
		v.fail(at("tree"), key+".tree", "equals the pristine tree: the patches change nothing")
	}
	if len(fp.Series) > 0 {
		if f.Debian == "" {
			v.fail(at("series"), key+".series", "a Debian patch series needs the source's debian = \"NAME=VERSION\"")
		}
		if fp.DebianTarSHA256 == "" {
			v.fail(at("series"), key+".debian_tar_sha256", "missing pin: the sha256 of the Debian packaging tarball the series comes from")
		}
	}
	if fp.DebianTarSHA256 != "" && !hex64.MatchString(fp.DebianTarSHA256) {
		v.fail(at("debian_tar_sha256"), key+".debian_tar_sha256", fmt.Sprintf("%q: want 64 lowercase hex digits", fp.DebianTarSHA256))
	}
	names := map[string]bool{}
	for _, n := range fp.Series {
		if n == "*" && len(fp.Series) == 1 {
			continue
		}
		if !localName(n) {
			v.fail(at("series"), key+".series", fmt.Sprintf("%q: want a patch name from debian/patches/series, or [\"*\"] alone", n))
		}
		if names[n] {
			v.fail(at("series"), key+".series", fmt.Sprintf("patch %q listed twice", n))
		}
		names[n] = true
	}
	for j, l := range fp.Local {
		rel := v.relPath(fmt.Sprintf("%s.local[%d]", key, j), l, at("local"), v.stackDir)
		if rel == "" || !v.inside(fmt.Sprintf("%s.local[%d]", key, j), l, at("local"), false, false) {
			continue
		}
		if names[filepath.Base(l)] {
			v.fail(at("local"), key+".local", fmt.Sprintf("patch %q listed twice", filepath.Base(l)))
		}
		names[filepath.Base(l)] = true
		p.Local = append(p.Local, rel)
	}
	if len(fp.Series) == 0 && len(fp.Local) == 0 {
		v.fail(line, key, "no patch: give series, local or both")
	}
	for n, ids := range fp.Resolves {
		if !names[n] && !(len(fp.Series) == 1 && fp.Series[0] == "*") {
			v.fail(v.lines.key("source.patches.resolves", i, n), key+".resolves", fmt.Sprintf("%q is not a patch of this source", n))
		}
		for _, id := range ids {
			if !cveRE.MatchString(id) {
				v.fail(v.lines.key("source.patches.resolves", i, n), key+".resolves."+n, fmt.Sprintf("%q: want a CVE id (CVE-YYYY-NNNN) or a GHSA id", id))
			}
		}
	}
	return p
}

// crossCheck checks the references between recipes and sources, and the
// stage rule: a recipe depends only on recipes of a lower stage (which
// also rules out cycles).
func (v *validator) crossCheck(st *Stack) {
	for i := 1; i < len(st.Recipes); i++ {
		if st.Recipes[i].Name == st.Recipes[i-1].Name {
			v.fail(v.lines.key("", 0, "recipes"), "recipes", fmt.Sprintf("recipe %q listed twice", st.Recipes[i].Name))
		}
	}
	for _, r := range st.Recipes {
		rf := filepath.Join(r.Dir, "recipe.toml")
		li := v.recipeLines[r.Name]
		for _, s := range r.Sources {
			if st.Source(s) == nil {
				v.errs = append(v.errs, &Error{File: rf, Line: li.key("", 0, "sources"), Key: "sources", Msg: fmt.Sprintf("no source named %q in %s", s, st.File)})
			}
		}
		for _, d := range r.Deps {
			dr := st.recipe(d)
			switch {
			case dr == nil:
				v.errs = append(v.errs, &Error{File: rf, Line: li.key("", 0, "deps"), Key: "deps", Msg: fmt.Sprintf("no recipe named %q in %s", d, st.File)})
			case dr.Stage >= r.Stage:
				v.errs = append(v.errs, &Error{File: rf, Line: li.key("", 0, "deps"), Key: "deps",
					Msg: fmt.Sprintf("%q is a stage %d recipe: a stage %d recipe may depend only on recipes of a lower stage", d, dr.Stage, r.Stage)})
			}
		}
	}
}

// inside checks that rel, a clean relative path, is reached inside the
// stack directory without leaving it through a symlink, and is a directory
// (dir) or a regular file. A missing one is an error only when mustExist.
// It reports whether the path is fine.
func (v *validator) inside(key, rel string, line int, dir, mustExist bool) bool {
	what := "regular file"
	if dir {
		what = "directory"
	}
	fi, err := v.root.Stat(filepath.FromSlash(rel))
	switch {
	case errors.Is(err, fs.ErrNotExist) && !mustExist:
		return true
	case errors.Is(err, fs.ErrNotExist):
		v.fail(line, key, fmt.Sprintf("%q: no such %s in the stack directory", rel, what))
	case err != nil:
		// The cause is not quoted: it may name where a symlink points.
		v.fail(line, key, fmt.Sprintf("%q: refused: it leads out of the stack directory (a symlink?) or cannot be read there", rel))
	case dir != fi.IsDir() || !dir && !fi.Mode().IsRegular():
		v.fail(line, key, fmt.Sprintf("%q: not a %s", rel, what))
	default:
		return true
	}
	return false
}

// imageName checks an image name: a name, and also a repository path
// component of an OCI reference (cairn/NAME:latest), whose separators may
// not start, end or double up.
func (v *validator) imageName(key, s string, line int) {
	v.name(key, s, line)
	if len(s) <= MaxNameLen && nameRE.MatchString(s) && !ociComponent.MatchString(s) {
		v.fail(line, key, fmt.Sprintf("%q: not usable in an image reference: '.', '_' and '-' only between letters or digits (at most \"__\" or a run of '-')", s))
	}
}

// imageConfig checks the fields that go into an image's OCI config.
func (v *validator) imageConfig(i int, key string, fi fileImage, line int) {
	at := func(k string) int {
		if l := v.lines.key("image", i, k); l > 0 {
			return l
		}
		return line
	}
	seen := map[string]bool{}
	for _, e := range fi.Env {
		k, val, ok := strings.Cut(e, "=")
		switch {
		case !ok || !envKey.MatchString(k):
			v.fail(at("env"), key+".env", fmt.Sprintf("%q: want KEY=VALUE with KEY of letters, digits and '_', not starting with a digit", e))
		case seen[k]:
			v.fail(at("env"), key+".env", fmt.Sprintf("%s set twice", k))
		default:
			if msg := envValueProblem(val); msg != "" {
				v.fail(at("env"), key+".env", k+": "+msg)
			}
		}
		seen[k] = true
	}
	for _, p := range fi.Ports {
		if !validPort(p) {
			v.fail(at("ports"), key+".ports", fmt.Sprintf("%q: want PORT or PORT/tcp, PORT/udp, PORT/sctp, with PORT 1 to 65535", p))
		}
	}
	if w := fi.WorkingDir; w != "" && (!strings.HasPrefix(w, "/") || path.Clean(w) != w || strings.ContainsAny(w, "\x00\n\r") || len(w) > 4096) {
		v.fail(at("working_dir"), key+".working_dir", fmt.Sprintf("%q: want a clean absolute path", w))
	}
	if u := fi.User; u != "" && !userRE.MatchString(u) {
		v.fail(at("user"), key+".user", fmt.Sprintf("%q: want USER, UID, USER:GROUP or UID:GID", u))
	}
	for _, f := range []struct {
		k    string
		args []string
	}{{"entrypoint", fi.Entrypoint}, {"cmd", fi.Cmd}} {
		for _, a := range f.args {
			if strings.ContainsRune(a, 0) {
				v.fail(at(f.k), key+"."+f.k, fmt.Sprintf("%q: an argument may not hold a NUL byte", a))
			}
		}
	}
}

// envValueProblem says what is wrong with an environment value, or "". A
// NUL cannot be passed to exec; a line break would split the labelled
// lines that action keys and provenance are made of.
func envValueProblem(val string) string {
	switch {
	case strings.ContainsRune(val, 0):
		return "the value holds a NUL byte"
	case strings.ContainsAny(val, "\n\r"):
		return "the value holds a line break"
	case len(val) > MaxEnvValueLen:
		return fmt.Sprintf("the value is %d bytes, want at most %d", len(val), MaxEnvValueLen)
	}
	return ""
}

func validPort(p string) bool {
	n, proto, ok := strings.Cut(p, "/")
	if ok && proto != "tcp" && proto != "udp" && proto != "sctp" {
		return false
	}
	if n == "" || n[0] == '0' || len(n) > 5 {
		return false
	}
	v, err := strconv.Atoi(n)
	return err == nil && v >= 1 && v <= 65535
}

// parseMode reads an octal mode such as "1777" or "0700" into a FileMode
// with Go's sticky, setuid and setgid bits.
func parseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("%q: want an octal mode such as \"0755\" or \"1777\"", s)
	}
	m := fs.FileMode(n & 0o777)
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	return m, nil
}

// localPath reports whether p is a slash-separated relative path that stays
// inside its base and cannot be read as an option.
func localPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "-") || strings.ContainsAny(p, "\\\x00\n") {
		return false
	}
	c := path.Clean(p)
	return c == p && c != "." && !path.IsAbs(c) && c != ".." && !strings.HasPrefix(c, "../")
}

// localName reports whether p names a file directly inside its base.
func localName(p string) bool { return localPath(p) && !strings.Contains(p, "/") }

// checkGitURL refuses URLs that git would read as options or as commands:
// CVE-2018-17456 (leading dash) and the ext:: transport.
func checkGitURL(u string) error {
	if strings.HasPrefix(u, "-") {
		return fmt.Errorf("%q: a URL must not start with '-'", u)
	}
	if strings.Contains(u, "::") {
		return fmt.Errorf("%q: transport helpers (ext::, fd::, ...) are refused", u)
	}
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%q: %v", u, err)
	}
	switch pu.Scheme {
	case "https", "http", "git", "file":
		return nil
	}
	return fmt.Errorf("%q: want an https, http, git or file URL", u)
}

func checkArchiveURL(u string) error {
	if strings.HasPrefix(u, "-") {
		return fmt.Errorf("%q: a URL must not start with '-'", u)
	}
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%q: %v", u, err)
	}
	switch pu.Scheme {
	case "https", "http", "file":
	default:
		return fmt.Errorf("%q: want an https, http or file URL", u)
	}
	if path.Base(pu.Path) == "" || path.Base(pu.Path) == "/" || path.Base(pu.Path) == "." {
		return fmt.Errorf("%q: the URL names no file", u)
	}
	return nil
}

// checkSupplier wants SPDX's form of a supplier, which CycloneDX's
// supplier name is taken from.
func checkSupplier(s string) error {
	for _, kind := range []string{"Organization: ", "Person: "} {
		if name, ok := strings.CutPrefix(s, kind); ok && strings.TrimSpace(name) == name && name != "" && !strings.ContainsAny(name, "\n\r") {
			return nil
		}
	}
	return fmt.Errorf("%q: want \"Organization: NAME\" or \"Person: NAME\"", s)
}

// CheckGitURL is the URL check the stack applies, for transports that read
// URLs from elsewhere (a superproject's .gitmodules).
func CheckGitURL(u string) error { return checkGitURL(u) }

// LocalPath reports whether p is a clean relative path that stays inside its
// base and cannot be read as an option.
func LocalPath(p string) bool { return localPath(p) }
