// Package verify rebuilds a stack from nothing under variations that must not
// matter and compares every output bit for bit with the reference build's.
//
// Both builds are `cairn build` run as subprocesses of the same binary
// (Config.Exe), so what is checked is the command users run, with nothing
// shared in memory. The reference build uses the caller's store and
// environment; whatever it finds cached it keeps, which is the point: a
// cached output is a claim, and the varied build tests it. The varied build
// gets an empty store in a new directory (so another store path and,
// through it, other host paths behind /build and /out), and:
//
//   - umask 077 for cairn's own process (Variation.Umask);
//   - another hostname, set in a new UTS namespace (Variation.Hostname);
//   - -j 1 against the reference's default, or 2 against a reference -j 1;
//   - another time zone and locale, a longer PATH, another HOME and an
//     extra variable in cairn's environment (Variation.Env);
//   - another order of reading directories: the varied store is on a new
//     tmpfs (Variation.Tmpfs), which lists a directory newest first where
//     ext4 lists it in name-hash order.
//
// The umask and hostname are applied by a small command of the same binary
// (Config.Enter) that calls Enter and then execs the build: a Go process
// cannot set either for a child it starts without such a step. Nothing of
// the reference store is reused but what is pinned by content and checked
// again on use: the sources' archives (the reference store's blobs, given
// to the varied build as a mirror) and the seed's .debs (hard links of the
// reference store's deb cache). Trees, outputs and action records are made
// again.
//
// Comparison is by digest first: each step's output digest (the sha256 of
// its deterministic tar) from the two stores' plans, and each image's file
// digests from the two builds' out directories. Only an output whose digests
// differ is read again, with pkg/diff, to name the files and what differs;
// so on a reproducible stack the comparison costs two `cairn plan` runs and
// hashing the out directories' files.
package verify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-build/cairn/pkg/diff"
	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/store"
)

// Variation is what the varied build changes.
type Variation struct {
	Hostname string   // set in a new UTS namespace; "" keeps the host's (needs root otherwise)
	Umask    int      // cairn's own umask; negative keeps it
	Jobs     int      // the -j of the varied build
	Env      []string // KEY=VALUE, set in cairn's environment, replacing the key
	// Tmpfs puts the varied build's store and out directory on a new
	// tmpfs (needs root): another filesystem, so every directory of its
	// sources, trees and outputs is read in another order (ext4 lists
	// names in hash order, tmpfs newest first).
	Tmpfs bool
}

// DefaultVariation is the variation verify uses: refJobs is the reference
// build's -j (0 for the default, the number of cores); base its environment.
func DefaultVariation(refJobs int, base []string) Variation {
	jobs := 1
	if refJobs == 1 {
		jobs = 2
	}
	path := "/usr/sbin:/usr/bin:/sbin:/bin"
	if p, ok := lookup(base, "PATH"); ok {
		path = p
	}
	return Variation{
		Hostname: "cairn-verify-other-host",
		Umask:    0o077,
		Jobs:     jobs,
		Tmpfs:    true,
		Env: []string{
			"TZ=GMT-14",
			"LC_ALL=et_EE.UTF-8",
			"LANG=et_EE.UTF-8",
			"LANGUAGE=et_EE.UTF-8:fr",
			"HOME=/nonexistent/cairn-verify",
			"PATH=" + path + ":/i_capture_the_path",
			"CAIRN_VERIFY_CANARY=1",
		},
	}
}

// Enter applies v's hostname and umask to the calling process; the hidden
// command named by Config.Enter calls it, in the new UTS namespace Run
// started it in, before it execs the build.
func Enter(hostname string, umask int) error {
	if hostname != "" {
		if err := syscall.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", hostname, err)
		}
	}
	if umask >= 0 {
		syscall.Umask(umask)
	}
	return nil
}

// Config is one verification.
type Config struct {
	Exe string // the cairn binary both builds run
	// Enter is the argv after Exe of the command that takes
	// `--hostname H --umask OCTAL -- ARGV...`, calls Enter and execs ARGV.
	Enter []string
	Flags []string // flags for every build and plan: --stack, --mirror, --offline, ...
	// BuildFlags are flags for the builds only (--timeout, --transports).
	BuildFlags []string
	Targets    []string
	Store      string   // the reference build's store
	Jobs       int      // the reference build's -j; 0 the default
	Env        []string // the reference build's environment
	WorkDir    string   // an empty directory for the varied store and both out directories
	// Hook, when set, is called at named points ("mounted": the varied
	// store's tmpfs is mounted). Tests kill cairn there.
	Hook func(point string)
	Vary Variation
	Log  io.Writer // both builds' stderr; nil discards
	// Keep leaves a tmpfs (Variation.Tmpfs) mounted at Report.Mounted
	// after Run; otherwise Run unmounts it before it returns.
	Keep bool
}

// Kinds of output.
const (
	KindStep  = "step"
	KindImage = "image"
)

// Output is one compared output.
type Output struct {
	Kind         string       `json:"kind"`
	Name         string       `json:"name"` // a step, or an image file such as busybox.rootfs.tar.xz
	A            string       `json:"reference"`
	B            string       `json:"varied"`
	PathA        string       `json:"reference_path,omitempty"`
	PathB        string       `json:"varied_path,omitempty"`
	Reproducible bool         `json:"reproducible"`
	Diff         *diff.Result `json:"diff,omitempty"` // when not reproducible and the output is a tree
	// FirstDifference is, for a single file that differs, the offset of
	// its first differing byte.
	FirstDifference *int64 `json:"first_difference,omitempty"`
}

// Report is the result of Run.
type Report struct {
	Outputs     []Output      `json:"outputs"` // steps in plan order, then image files by name
	Variation   Variation     `json:"variation"`
	RefStore    string        `json:"reference_store"`
	RefOut      string        `json:"reference_out"`
	VariedStore string        `json:"varied_store"`
	VariedOut   string        `json:"varied_out"`
	RefBuild    time.Duration `json:"reference_build_ns"`
	VariedBuild time.Duration `json:"varied_build_ns"`
	Compare     time.Duration `json:"compare_ns"` // the two plans and the comparison
	// Mounted is the tmpfs left mounted for Keep, to unmount when done.
	Mounted string `json:"mounted,omitempty"`
}

// Reproducible reports whether every output was.
func (r *Report) Reproducible() bool {
	for _, o := range r.Outputs {
		if !o.Reproducible {
			return false
		}
	}
	return len(r.Outputs) > 0
}

// BuildError is a build or plan subprocess that failed.
type BuildError struct {
	Which  string // "reference build", "varied build", ...
	Args   []string
	Err    error
	Stderr string // its last lines
}

func (e *BuildError) Error() string {
	msg := fmt.Sprintf("%s (%s): %v", e.Which, strings.Join(e.Args, " "), e.Err)
	if e.Stderr != "" {
		msg += "\n" + e.Stderr
	}
	return msg
}
func (e *BuildError) Unwrap() error { return e.Err }

// Run builds twice and compares.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	rep := &Report{
		Variation:   cfg.Vary,
		RefStore:    cfg.Store,
		RefOut:      filepath.Join(cfg.WorkDir, "reference", "out"),
		VariedStore: filepath.Join(cfg.WorkDir, "varied", "store"),
		VariedOut:   filepath.Join(cfg.WorkDir, "varied", "out"),
	}
	if cfg.Vary.Tmpfs {
		mnt := filepath.Join(cfg.WorkDir, "varied")
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			return nil, err
		}
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
			return nil, fmt.Errorf("tmpfs for the varied store at %s: %w", mnt, err)
		}
		if cfg.Hook != nil {
			cfg.Hook("mounted")
		}
		if cfg.Keep {
			rep.Mounted = mnt
		} else {
			defer syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	}
	for _, d := range []string{rep.RefOut, rep.VariedStore, rep.VariedOut} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}

	t0 := time.Now()
	refArgs := buildArgs(cfg.Store, rep.RefOut, cfg.Jobs, append(append([]string{}, cfg.Flags...), cfg.BuildFlags...), cfg.Targets)
	refLines, err := run(ctx, cfg, "reference build", refArgs, cfg.Env, nil)
	if err != nil {
		return nil, err
	}
	rep.RefBuild = time.Since(t0)

	refStore, err := store.Open(cfg.Store)
	if err != nil {
		return nil, err
	}
	defer refStore.Close()
	varStore, err := store.Open(rep.VariedStore)
	if err != nil {
		return nil, err
	}
	defer varStore.Close()
	if err := linkDebs(refStore.DebDir(), varStore.DebDir()); err != nil {
		return nil, fmt.Errorf("seed .debs for the varied store: %w", err)
	}
	t1 := time.Now()
	vFlags := append(append([]string{}, cfg.Flags...), "--mirror", refStore.BlobMirror())
	varArgs := buildArgs(rep.VariedStore, rep.VariedOut, cfg.Vary.Jobs, append(append([]string{}, vFlags...), cfg.BuildFlags...), cfg.Targets)
	umask := "-1"
	if cfg.Vary.Umask >= 0 {
		umask = fmt.Sprintf("%04o", cfg.Vary.Umask)
	}
	argv := append(append([]string{}, cfg.Enter...), "--hostname", cfg.Vary.Hostname, "--umask", umask, "--", cfg.Exe)
	var sys *syscall.SysProcAttr
	if cfg.Vary.Hostname != "" {
		sys = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS}
	}
	varLines, err := run(ctx, cfg, "varied build", append(argv, varArgs...), Merge(cfg.Env, cfg.Vary.Env), sys)
	if err != nil {
		return nil, err
	}
	rep.VariedBuild = time.Since(t1)

	t2 := time.Now()
	refPlan, err := readPlan(ctx, cfg, cfg.Store, cfg.Flags)
	if err != nil {
		return nil, err
	}
	varPlan, err := readPlan(ctx, cfg, rep.VariedStore, vFlags)
	if err != nil {
		return nil, err
	}
	if err := compareSteps(ctx, rep, refPlan, varPlan, refStore, varStore); err != nil {
		return nil, err
	}
	if err := compareImages(ctx, rep, refLines, varLines); err != nil {
		return nil, err
	}
	rep.Compare = time.Since(t2)
	return rep, nil
}

func buildArgs(store, out string, jobs int, flags, targets []string) []string {
	a := []string{"build", "--store", store, "--out", out}
	if jobs > 0 {
		a = append(a, fmt.Sprintf("-j%d", jobs))
	}
	a = append(a, flags...)
	if len(targets) > 0 {
		a = append(append(a, "--"), targets...)
	}
	return a
}

// run runs Exe with args (or, for the varied build, the enter command
// whose argv already names Exe) and returns its stdout.
func run(ctx context.Context, cfg Config, which string, args, env []string, sys *syscall.SysProcAttr) (string, error) {
	cmd := exec.CommandContext(ctx, cfg.Exe, args...)
	// On Ctrl-C the build stops its steps and cleans up as it does when
	// run by hand; only a build that does not stop is killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Env = env
	cmd.SysProcAttr = sys
	var stdout bytes.Buffer
	tail := &tailBuffer{max: 4 << 10}
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(cfg.Log, tail)
	if err := cmd.Run(); err != nil {
		return "", &BuildError{Which: which, Args: args, Err: err, Stderr: strings.TrimSpace(tail.String())}
	}
	return stdout.String(), nil
}

// readPlan runs `cairn plan --json` against store.
func readPlan(ctx context.Context, cfg Config, store string, flags []string) ([]plan.Status, error) {
	args := append([]string{"plan", "--json", "--store", store}, flags...)
	out, err := run(ctx, cfg, "plan", args, cfg.Env, nil)
	if err != nil {
		return nil, err
	}
	var st []plan.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("plan --store %s: %w", store, err)
	}
	return st, nil
}

// StoredOutputError says a stored step output that verify was about to
// compare does not match its digest: the store is corrupt, which is not a
// reproducibility failure of this or a later step.
type StoredOutputError struct {
	Step  string
	Which string // "reference" or "varied"
	Err   error
}

func (e *StoredOutputError) Error() string {
	return fmt.Sprintf("stored output of step %s does not match its digest (%s store): %v; 'cairn store verify --repair' removes it", e.Step, e.Which, e.Err)
}

func (e *StoredOutputError) Unwrap() error { return e.Err }

// storedOutput hashes the stored output d of step again and returns its
// path: what is compared must be what its digest says.
func storedOutput(ctx context.Context, st *store.Store, which, step, d string) (string, error) {
	p, ok := st.OutputPath(d)
	if !ok {
		return "", fmt.Errorf("step %s: output %s is not in the %s store", step, d, which)
	}
	// Both builds just looked every compared output up, which recorded
	// the epoch it is hashed at.
	err := st.Check(ctx, store.Ref{Kind: store.Output, Digest: d}, store.Full(true), store.KeepCorrupt())
	var ce *store.CorruptError
	if errors.As(err, &ce) {
		return "", &StoredOutputError{Step: step, Which: which, Err: err}
	}
	if err != nil && !errors.Is(err, store.ErrUnchecked) {
		return "", err
	}
	return p, nil
}

// compareSteps compares every step the varied build made (the fresh store
// holds exactly the targets' closure) with the reference's output, after
// checking that both stored outputs still match their digests.
func compareSteps(ctx context.Context, rep *Report, ref, varied []plan.Status, refStore, varStore *store.Store) error {
	refByID := map[string]plan.Status{}
	for _, s := range ref {
		refByID[s.ID] = s
	}
	for _, v := range varied {
		if !v.Cached {
			continue
		}
		r, ok := refByID[v.ID]
		if !ok || !r.Cached {
			return fmt.Errorf("step %s: built by the varied build but not in the reference store", v.ID)
		}
		o := Output{Kind: KindStep, Name: v.ID, A: r.Output, B: v.Output, Reproducible: r.Output == v.Output}
		var err error
		if o.PathA, err = storedOutput(ctx, refStore, "reference", v.ID, r.Output); err != nil {
			return err
		}
		if o.PathB, err = storedOutput(ctx, varStore, "varied", v.ID, v.Output); err != nil {
			return err
		}
		if !o.Reproducible {
			if o.Diff, err = diff.Paths(ctx, o.PathA, o.PathB); err != nil {
				return fmt.Errorf("step %s: %w", v.ID, err)
			}
		}
		rep.Outputs = append(rep.Outputs, o)
	}
	return nil
}

// imageFile is one file or directory a build wrote to its out directory.
type imageFile struct {
	key    string // the name with a rootfs tarball's digest left out
	path   string
	digest string // sha256 of a file; the manifest digest of an OCI layout
}

// compareImages compares what the two builds wrote to their out
// directories, file by file, matched by name (a rootfs tarball's name
// carries its digest, which is left out of the match).
func compareImages(ctx context.Context, rep *Report, refLines, varLines string) error {
	a, err := imageFiles(rep.RefOut, refLines)
	if err != nil {
		return err
	}
	b, err := imageFiles(rep.VariedOut, varLines)
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		fa, fb := a[k], b[k]
		o := Output{Kind: KindImage, Name: k, A: fa.digest, B: fb.digest, PathA: fa.path, PathB: fb.path}
		o.Reproducible = fa.digest != "" && fa.digest == fb.digest
		if !o.Reproducible && fa.path != "" && fb.path != "" {
			switch {
			case strings.HasSuffix(k, ".tar.xz") || strings.HasSuffix(k, ".oci"):
				if o.Diff, err = diff.Paths(ctx, fa.path, fb.path); err != nil {
					return fmt.Errorf("image file %s: %w", k, err)
				}
			default:
				off, err := firstDifference(fa.path, fb.path)
				if err != nil {
					return fmt.Errorf("image file %s: %w", k, err)
				}
				o.FirstDifference = &off
			}
		}
		rep.Outputs = append(rep.Outputs, o)
	}
	return nil
}

// imageFiles lists an out directory: each image's OCI layout by its
// manifest digest (from the build's stdout lines), every other file by its
// sha256.
func imageFiles(dir, lines string) (map[string]imageFile, error) {
	manifests := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(lines))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) == 5 && strings.HasPrefix(f[4], "oci ") {
			manifests[f[0]+".oci"] = strings.TrimPrefix(f[4], "oci ")
		}
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]imageFile{}
	for _, de := range des {
		name, p := de.Name(), filepath.Join(dir, de.Name())
		key := rootfsKey(name)
		if de.IsDir() {
			m, ok := manifests[name]
			if !ok {
				return nil, fmt.Errorf("%s: a directory the build named no manifest for", p)
			}
			out[key] = imageFile{key: key, path: p, digest: m}
			continue
		}
		if !de.Type().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file", p)
		}
		d, err := fileDigest(p)
		if err != nil {
			return nil, err
		}
		out[key] = imageFile{key: key, path: p, digest: d}
	}
	return out, nil
}

// rootfsKey turns NAME.rootfs.sha256-HEX.tar.xz into NAME.rootfs.tar.xz.
func rootfsKey(name string) string {
	before, rest, ok := strings.Cut(name, ".rootfs.sha256-")
	if !ok {
		return name
	}
	if i := strings.Index(rest, "."); i == 64 {
		return before + ".rootfs" + rest[i:]
	}
	return name
}

func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// firstDifference is the offset of the first byte where two files differ.
func firstDifference(a, b string) (int64, error) {
	fa, err := os.Open(a)
	if err != nil {
		return 0, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return 0, err
	}
	defer fb.Close()
	ra, rb := bufio.NewReaderSize(fa, 64<<10), bufio.NewReaderSize(fb, 64<<10)
	for off := int64(0); ; off++ {
		x, errA := ra.ReadByte()
		y, errB := rb.ReadByte()
		if errA != nil || errB != nil {
			if errors.Is(errA, io.EOF) || errors.Is(errB, io.EOF) {
				return off, nil
			}
			return 0, errors.Join(errA, errB)
		}
		if x != y {
			return off, nil
		}
	}
}

// linkDebs fills dst with hard links to the verified .debs under src (a
// copy where a link cannot be made); the seed re-hashes each before use.
func linkDebs(src, dst string) error {
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case de.IsDir():
			return os.MkdirAll(target, 0o755)
		case de.Type().IsRegular():
			if err := os.Link(p, target); err == nil {
				return nil
			}
			return copyFile(p, target)
		}
		return nil // anything else is not a cached .deb
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Merge returns base with each KEY=VALUE of set replacing its key, sorted.
func Merge(base, set []string) []string {
	m := map[string]string{}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		m[k] = kv
	}
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		m[k] = kv
	}
	out := make([]string, 0, len(m))
	for _, kv := range m {
		out = append(out, kv)
	}
	sort.Strings(out)
	return out
}

func lookup(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// RemoveAll removes a verification's work directory, making read-only
// directories of its store writable first.
func RemoveAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }
