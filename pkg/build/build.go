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
// The store (pkg/store) keeps the outputs, the action records and the logs;
// this package asks it for them by digest and key. Before a stored object is
// used (a cached output, a dependency's output, a source or the seed tree)
// it is checked: by its stat fingerprint, or with Config.Verify by hashing
// it again. A corrupt cached output is a cache miss (the step runs again);
// a corrupt source or seed is removed and the build stops, naming it.
//
// One flock per action key is held while a step runs, so that two cairn
// processes sharing a store run a step once: the second waits and then finds
// the first one's record.
package build

import (
	"context"
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
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/plan"
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

	// Verify re-hashes every stored object before it is used, rather than
	// trusting an unchanged stat fingerprint.
	Verify bool
	// Hook, when set, is called at named points ("step": a step has
	// written its first output; "xz": an image's tarball is being placed
	// in out/; "oci": its OCI layout is being written). Tests kill cairn
	// there.
	Hook func(point string)
}

// Builder runs the steps of one stack.
type Builder struct {
	cfg     Config
	recipes map[string]*recipeInfo
	plan    *plan.Plan
	seedErr error
	seedChk sync.Once

	outMu    sync.Mutex
	outLocks map[string]*os.File
}

func (b *Builder) hook(point string) {
	if b.cfg.Hook != nil {
		b.cfg.Hook(point)
	}
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
// names an output the store holds and that output still has its digest.
// A changed record or a corrupt output is a miss: the store drops them and
// the step runs again.
func (b *Builder) Lookup(key string) (string, bool) {
	st := b.cfg.Store
	rec, err := st.Action(key)
	if err != nil || rec.Output == "" {
		return "", false
	}
	if err := st.Check(context.Background(), store.Ref{Kind: store.Output, Digest: rec.Output},
		store.Full(b.cfg.Verify), store.Epoch(b.cfg.Stack.SourceDateEpoch)); err != nil {
		return "", false
	}
	return rec.Output, true
}

// OutputPath returns where the step output with digest d is, if stored.
func (b *Builder) OutputPath(d string) (string, bool) { return b.cfg.Store.OutputPath(d) }

// LogPath returns where the log of action key is kept.
func (b *Builder) LogPath(key string) string { return b.cfg.Store.LogPath(key) }

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

// storedTree returns the digest of the store tree at p, if p is one.
func (b *Builder) storedTree(p string) (string, bool) {
	d := "sha256:" + filepath.Base(p)
	if q, ok := b.cfg.Store.Tree(d); ok && q == p {
		return d, true
	}
	return "", false
}

// checkInputs checks the stored objects a step is about to mount.
func (b *Builder) checkInputs(ctx context.Context, r stack.Recipe, deps map[string]string) ([]store.Ref, error) {
	st := b.cfg.Store
	opt := store.Full(b.cfg.Verify)
	var uses []store.Ref
	b.seedChk.Do(func() {
		if d, ok := b.storedTree(b.cfg.SeedDir); ok {
			if err := st.Check(ctx, store.Ref{Kind: store.Tree, Digest: d}, opt); err != nil {
				b.seedErr = fmt.Errorf("seed: %w; the next build makes it again", err)
			}
		}
	})
	if b.seedErr != nil {
		return nil, b.seedErr
	}
	if d, ok := b.storedTree(b.cfg.SeedDir); ok {
		uses = append(uses, store.Ref{Kind: store.Tree, Digest: d})
	}
	for _, s := range r.Sources {
		p, ok := b.cfg.Sources[s]
		if !ok {
			return nil, fmt.Errorf("source %s was not fetched", s)
		}
		if d, ok := b.storedTree(p); ok {
			ref := store.Ref{Kind: store.Tree, Digest: d}
			if err := st.Check(ctx, ref, opt); err != nil {
				return nil, fmt.Errorf("source %s: %w; the next build fetches it again", s, err)
			}
			uses = append(uses, ref)
		}
	}
	for _, d := range r.Deps {
		ref := store.Ref{Kind: store.Output, Digest: deps[d]}
		if err := st.Check(ctx, ref, opt, store.Epoch(b.cfg.Stack.SourceDateEpoch)); err != nil {
			return nil, fmt.Errorf("output of %s: %w", d, err)
		}
		uses = append(uses, ref)
	}
	return uses, nil
}

// run runs one step in its sandbox and stores what it wrote to /out.
func (b *Builder) run(ctx context.Context, job plan.Job) (plan.Result, error) {
	info := b.recipes[job.Step.ID]
	r := info.recipe
	st := b.cfg.Store
	// One run per key across processes: a cairn that waited here finds
	// the record the other one wrote.
	h, _ := hexOf(job.Key)
	unlock, err := st.Lock(ctx, "action-"+h)
	if err != nil {
		return plan.Result{}, err
	}
	defer unlock()
	if out, ok := b.Lookup(job.Key); ok {
		return plan.Result{Output: out, Cached: true, Log: b.LogPath(job.Key)}, nil
	}
	uses, err := b.checkInputs(ctx, r, job.Deps)
	if err != nil {
		return plan.Result{}, err
	}
	recipeTree, err := st.AddTree(ctx, info.tree, func(dir string) error { return copyPlain(r.Dir, dir) })
	if err != nil {
		return plan.Result{}, fmt.Errorf("store recipe %s: %w", r.Dir, err)
	}
	if err := st.Check(ctx, store.Ref{Kind: store.Tree, Digest: info.tree}, store.Full(b.cfg.Verify)); err != nil {
		return plan.Result{}, fmt.Errorf("recipe %s: %w", r.Name, err)
	}
	uses = append(uses, store.Ref{Kind: store.Tree, Digest: info.tree})
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
		mounts = append(mounts, sandbox.Mount{Target: "/src/" + s, Source: b.cfg.Sources[s]})
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
	if b.cfg.Hook != nil {
		out = &firstWrite{w: out, fn: func() { b.hook("step") }}
	}
	res, runErr := sandbox.Run(ctx, sandbox.Spec{
		Root:            b.cfg.SeedDir,
		Mounts:          mounts,
		Args:            []string{"/bin/sh", "-eu", "/recipe/" + r.Script},
		Env:             append(r.EnvList(), "CAIRN_JOBS="+strconv.Itoa(b.cfg.Jobs)),
		SourceDateEpoch: b.cfg.Stack.SourceDateEpoch,
		Timeout:         b.cfg.Timeout,
		Output:          out,
		Limits: sandbox.Limits{
			Memory: r.Limits.Memory, Pids: r.Limits.Pids, OutputSize: r.Limits.OutputSize, LogSize: r.Limits.LogSize,
		},
	})
	if runErr == nil && !res.Success() {
		runErr = fmt.Errorf("build script: %s", res)
	}
	if runErr != nil {
		runErr = noSpace(runErr, tmp)
		if errors.Is(runErr, syscall.ENOSPC) {
			// Free the step's files first, so that the note fits.
			os.RemoveAll(buildDir)
			os.RemoveAll(outDir)
		}
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
	if _, err := st.AddOutput(ctx, outDir, outDigest, b.cfg.Stack.SourceDateEpoch); err != nil {
		return plan.Result{Log: logPath}, noSpace(err, tmp)
	}
	if err := st.PutAction(job.Key, store.Record{Output: outDigest, Uses: uses}); err != nil {
		return plan.Result{Log: logPath}, noSpace(err, tmp)
	}
	return plan.Result{Output: outDigest, Log: logPath}, nil
}

// firstWrite calls fn once, before the first byte is written through it.
type firstWrite struct {
	w    io.Writer
	fn   func()
	once sync.Once
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(f.fn)
	return f.w.Write(p)
}

// NoSpaceError says a step failed while the store's filesystem was full:
// the build's own message may be lost (its log could not be written).
type NoSpaceError struct {
	Dir  string
	Free uint64
	Err  error
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("%v: no space left on device (ENOSPC): %s has %d bytes free", e.Err, e.Dir, e.Free)
}

func (e *NoSpaceError) Unwrap() []error { return []error{e.Err, syscall.ENOSPC} }

// noSpace names ENOSPC in err when the filesystem of dir is full (under
// 1 MiB free), which a build script's failure does not say by itself.
func noSpace(err error, dir string) error {
	var ns *NoSpaceError
	if err == nil || errors.As(err, &ns) {
		return err
	}
	var fs unix.Statfs_t
	if serr := unix.Statfs(dir, &fs); serr != nil {
		return err
	}
	free := fs.Bavail * uint64(fs.Bsize)
	if free >= 1<<20 && !errors.Is(err, syscall.ENOSPC) {
		return err
	}
	return &NoSpaceError{Dir: dir, Free: free, Err: err}
}

// OutputDigest is the identity of a step's output tree: the sha256 of its
// deterministic tar, which covers paths, types, modes, link targets and bytes.
func OutputDigest(ctx context.Context, dir string, epoch int64) (string, error) {
	return store.OutputDigest(ctx, dir, epoch)
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
