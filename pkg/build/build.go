// Package build runs a stack's recipes as a DAG of sandboxed steps and keeps
// their outputs in the store, keyed by action key.
//
// Each recipe is one step. Its action key (pkg/plan) covers the recipe's
// text and files, the tree digests of its pinned sources, the output digests
// of its dependencies, the seed's tree digest, the sandbox's spec version and
// the recipe's declared environment. The job count is deliberately not in
// the key: a recipe's output must not depend on it, and `cairn verify`
// checks that it does not.
//
// A step runs in a sandbox whose root is the seed, read-only, with its
// sources at /src/NAME, its dependencies' outputs at /deps/NAME and its own
// recipe directory at /recipe, all read-only and all out of the store, and a
// fresh /build and /out under the store's tmp/. The step's output digest is
// the sha256 of the deterministic tar of /out (pkg/rootfs): unlike the tree
// digest of sources it covers directories and modes, which an image root is
// made of.
//
// Store layout added by this package (beside pkg/store's):
//
//	outputs/sha256/HEX/   a step output whose tar digest is sha256:HEX, read-only
//	actions/HEX           action key sha256:HEX → its output digest (one line)
//	logs/HEX.log          the log of the step run for action key sha256:HEX
//
// An output is renamed into place only when complete, and the action record
// after it, so a build killed halfway leaves only tmp/ for the next run to
// clean.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-build/cairn/internal/atomicfile"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/rootfs"
	"github.com/cairn-build/cairn/pkg/sandbox"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// Config is what a build needs, resolved by the caller.
type Config struct {
	Stack *stack.Stack
	Store *store.Store

	SeedDir    string // the seed tree, read-only at / in every step
	SeedDigest string // its tree digest

	// Sources maps a source name to its tree in the store; every source a
	// built recipe names must be here.
	Sources map[string]string

	Jobs    int           // steps at once, and CAIRN_JOBS inside; default NumCPU
	Timeout time.Duration // per step; default 1 h
	Events  func(plan.Event)
	// Log, when set, also receives every step's output as it is written.
	Log io.Writer
}

// Builder runs the steps of one stack.
type Builder struct {
	cfg     Config
	recipes map[string]*recipeInfo
	plan    *plan.Plan
}

type recipeInfo struct {
	recipe stack.Recipe
	tree   string // tree digest of the recipe's directory
	files  []plan.Input
}

// New prepares the plan of every recipe in cfg.Stack.
func New(cfg Config) (*Builder, error) {
	if cfg.Jobs <= 0 {
		cfg.Jobs = runtime.NumCPU()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Hour
	}
	b := &Builder{cfg: cfg, recipes: map[string]*recipeInfo{}}
	var steps []plan.Step
	for _, r := range cfg.Stack.Recipes {
		info, err := describeRecipe(r)
		if err != nil {
			return nil, err
		}
		b.recipes[r.Name] = info
		st := plan.Step{ID: r.Name, Deps: r.Deps, Inputs: plan.Inputs{
			Recipe:  info.recipeText(),
			Files:   info.files,
			Seed:    cfg.SeedDigest,
			Sandbox: sandbox.SpecVersion,
			Env:     r.EnvList(),
		}}
		for _, s := range r.Sources {
			src := cfg.Stack.Source(s)
			if src == nil {
				return nil, fmt.Errorf("recipe %s: no source %q", r.Name, s)
			}
			in := plan.Input{Name: s, Digest: src.Tree()}
			if src.Patches != nil {
				in.Pristine = src.Pin.Tree
			}
			st.Inputs.Sources = append(st.Inputs.Sources, in)
		}
		steps = append(steps, st)
	}
	p, err := plan.New(steps)
	if err != nil {
		return nil, err
	}
	b.plan = p
	return b, nil
}

// Plan returns the DAG of steps.
func (b *Builder) Plan() *plan.Plan { return b.plan }

// describeRecipe digests a recipe's directory file by file: the key names
// each file, so that a cache miss says which one changed.
func describeRecipe(r stack.Recipe) (*recipeInfo, error) {
	m, err := digest.FromDir(context.Background(), r.Dir)
	if err != nil {
		return nil, fmt.Errorf("recipe %s: %w", r.Name, err)
	}
	info := &recipeInfo{recipe: r, tree: m.TreeDigest()}
	for _, e := range m {
		d := "sha256:" + hex.EncodeToString(e.SHA256[:])
		switch e.Kind {
		case digest.Exec:
			d += "+x"
		case digest.Symlink:
			return nil, fmt.Errorf("recipe %s: %s is a symbolic link; a recipe holds plain files", r.Name, e.Path)
		}
		info.files = append(info.files, plan.Input{Name: e.Path, Digest: d})
	}
	return info, nil
}

// recipeText is what the key calls the recipe: its name and stage, which the
// files do not say.
func (i *recipeInfo) recipeText() string {
	return "name " + i.recipe.Name + "\nstage " + strconv.Itoa(i.recipe.Stage) + "\nscript " + i.recipe.Script + "\n"
}

// Build runs the steps needed for targets (every step when empty), skipping
// those whose key the store already holds.
func (b *Builder) Build(ctx context.Context, targets ...string) (map[string]plan.Result, error) {
	p := b.plan
	if len(targets) > 0 {
		var err error
		if p, err = p.Subset(targets...); err != nil {
			return nil, err
		}
	}
	opts := []plan.BuildOption{plan.Jobs(b.cfg.Jobs), plan.UseCache(b)}
	if b.cfg.Events != nil {
		opts = append(opts, plan.Events(b.cfg.Events))
	}
	return plan.Build(ctx, p, plan.RunnerFunc(b.run), opts...)
}

// Status is, for `cairn plan`, each step's key if known and whether cached.
func (b *Builder) Status() []plan.Status { return plan.Resolve(b.plan, b) }

// Lookup implements plan.Cache: a key is cached when its action record
// names an output the store holds.
func (b *Builder) Lookup(key string) (string, bool) {
	h, ok := hexOf(key)
	if !ok {
		return "", false
	}
	data, err := os.ReadFile(filepath.Join(b.cfg.Store.Dir(), "actions", h))
	if err != nil {
		return "", false
	}
	out := strings.TrimSpace(string(data))
	if _, ok := b.OutputPath(out); !ok {
		return "", false
	}
	return out, true
}

// OutputPath returns where the step output with digest d is, if stored.
func (b *Builder) OutputPath(d string) (string, bool) {
	h, ok := hexOf(d)
	if !ok {
		return "", false
	}
	p := filepath.Join(b.cfg.Store.Dir(), "outputs", "sha256", h)
	fi, err := os.Lstat(p)
	return p, err == nil && fi.IsDir()
}

// LogPath returns where the log of action key is kept.
func (b *Builder) LogPath(key string) string {
	h, _ := hexOf(key)
	return filepath.Join(b.cfg.Store.Dir(), "logs", h+".log")
}

func hexOf(d string) (string, bool) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", false
	}
	return h, true
}

// run runs one step in its sandbox and stores what it wrote to /out.
func (b *Builder) run(ctx context.Context, job plan.Job) (plan.Result, error) {
	info := b.recipes[job.Step.ID]
	r := info.recipe
	st := b.cfg.Store
	recipeTree, err := st.AddTree(ctx, info.tree, func(dir string) error { return copyPlain(r.Dir, dir) })
	if err != nil {
		return plan.Result{}, fmt.Errorf("store recipe %s: %w", r.Dir, err)
	}
	tmp, cleanup, err := st.TempDir("step-" + r.Name)
	if err != nil {
		return plan.Result{}, err
	}
	defer cleanup()
	buildDir, outDir := filepath.Join(tmp, "build"), filepath.Join(tmp, "out")
	for _, d := range []string{buildDir, outDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return plan.Result{}, err
		}
	}

	mounts := []sandbox.Mount{
		{Target: "/recipe", Source: recipeTree},
		{Target: "/build", Source: buildDir, Writable: true},
		{Target: "/out", Source: outDir, Writable: true},
	}
	for _, s := range r.Sources {
		p, ok := b.cfg.Sources[s]
		if !ok {
			return plan.Result{}, fmt.Errorf("source %s was not fetched", s)
		}
		mounts = append(mounts, sandbox.Mount{Target: "/src/" + s, Source: p})
	}
	for _, d := range r.Deps {
		p, ok := b.OutputPath(job.Deps[d])
		if !ok {
			return plan.Result{}, fmt.Errorf("output %s of %s is not in the store", job.Deps[d], d)
		}
		mounts = append(mounts, sandbox.Mount{Target: "/deps/" + d, Source: p})
	}

	logPath := b.LogPath(job.Key)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return plan.Result{}, err
	}
	logTmp := filepath.Join(tmp, "log")
	logf, err := os.Create(logTmp)
	if err != nil {
		return plan.Result{}, err
	}
	var out io.Writer = logf
	if b.cfg.Log != nil {
		out = io.MultiWriter(logf, b.cfg.Log)
	}
	res, runErr := sandbox.Run(ctx, sandbox.Spec{
		Root:            b.cfg.SeedDir,
		Mounts:          mounts,
		Args:            []string{"/bin/sh", "-eu", "/recipe/" + r.Script},
		Env:             append(r.EnvList(), "CAIRN_JOBS="+strconv.Itoa(b.cfg.Jobs)),
		SourceDateEpoch: b.cfg.Stack.SourceDateEpoch,
		Timeout:         b.cfg.Timeout,
		Output:          out,
	})
	if runErr == nil && !res.Success() {
		runErr = fmt.Errorf("build script: %s", res)
	}
	if runErr != nil {
		fmt.Fprintf(logf, "\ncairn: step %s: %v\n", r.Name, runErr)
	}
	// The log is kept whatever happened: on failure it is what the user reads.
	logErr := logf.Close()
	if err := os.Rename(logTmp, logPath); err != nil && logErr == nil {
		logErr = err
	}
	if runErr != nil {
		return plan.Result{Log: logPath}, runErr
	}
	if logErr != nil {
		return plan.Result{Log: logPath}, logErr
	}

	outDigest, err := OutputDigest(ctx, outDir, b.cfg.Stack.SourceDateEpoch)
	if err != nil {
		return plan.Result{Log: logPath}, fmt.Errorf("output of %s: %w", r.Name, err)
	}
	if err := b.storeOutput(ctx, outDir, outDigest); err != nil {
		return plan.Result{Log: logPath}, err
	}
	if err := b.record(job.Key, outDigest); err != nil {
		return plan.Result{Log: logPath}, err
	}
	return plan.Result{Output: outDigest, Log: logPath}, nil
}

// OutputDigest is the identity of a step's output tree: the sha256 of its
// deterministic tar, which covers paths, types, modes, link targets and bytes.
func OutputDigest(ctx context.Context, dir string, epoch int64) (string, error) {
	h := sha256.New()
	if err := rootfs.WriteTar(ctx, dir, h, rootfs.WithEpoch(epoch)); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// storeOutput renames dir into outputs/ under d, unless another run already
// stored the same output.
func (b *Builder) storeOutput(ctx context.Context, dir, d string) error {
	h, _ := hexOf(d)
	if _, ok := b.OutputPath(d); ok {
		return nil
	}
	unlock, err := b.cfg.Store.Lock(ctx, "output-"+h)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := b.OutputPath(d); ok {
		return nil
	}
	final := filepath.Join(b.cfg.Store.Dir(), "outputs", "sha256", h)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	// Modes as the output digest sees them (and readable by the build uid
	// of the steps that mount this output), whatever umask cairn ran with.
	if err := store.NormaliseModes(dir); err != nil {
		return err
	}
	if err := syncTree(dir); err != nil {
		return err
	}
	if err := os.Rename(dir, final); err != nil {
		return fmt.Errorf("store output %s: %w", d, err)
	}
	return syncPath(filepath.Dir(final))
}

// record writes the action record key → output, atomically.
func (b *Builder) record(key, output string) error {
	h, _ := hexOf(key)
	dir := filepath.Join(b.cfg.Store.Dir(), "actions")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, h), []byte(output+"\n"), 0o644)
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncTree flushes a tree before it is renamed into the store: one syncfs
// of its filesystem, not an fsync per file (a musl sysroot has over a
// thousand headers, and per-file fsyncs cost seconds on a virtual disk).
func syncTree(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// copyPlain copies a recipe directory (plain files and directories only)
// into dst, keeping the executable bit.
func copyPlain(src, dst string) error {
	root, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer root.Close()
	var names []string
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		fi, err := root.Lstat(n)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(n))
		switch {
		case fi.IsDir():
			if err := os.Mkdir(target, 0o755); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			mode := os.FileMode(0o644)
			if fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
			if err := copyFile(root, n, target, mode); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: %w", filepath.Join(src, n), errors.New("not a plain file or directory"))
		}
	}
	return nil
}

func copyFile(root *os.Root, name, target string, mode os.FileMode) error {
	in, err := root.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
