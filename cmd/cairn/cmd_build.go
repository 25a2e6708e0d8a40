package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cairn-build/cairn/pkg/attest"
	"github.com/cairn-build/cairn/pkg/build"
	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/sandbox"
	"github.com/cairn-build/cairn/pkg/seed"
	"github.com/cairn-build/cairn/pkg/source"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// buildFlags are shared by build, plan and log.
type buildFlags struct {
	sourceFlags
	jobs    int
	timeout time.Duration
	verbose bool
	out     string
}

func addBuildFlags(c *cobra.Command, bf *buildFlags) {
	addSourceFlags(c, &bf.sourceFlags)
	f := c.Flags()
	f.IntVarP(&bf.jobs, "jobs", "j", 0, fmt.Sprintf("steps at once, and the job count inside each, 1 to %d (default: the number of cores)", maxJobs))
}

// Bounds of -j and --timeout: more jobs than any machine has cores only
// thrashes, and a step that takes longer than a week is hung.
const (
	maxJobs        = 1024
	minStepTimeout = time.Second
	maxStepTimeout = 7 * 24 * time.Hour
)

// check refuses flag values out of range, before anything is read or run.
// -j left out means the number of cores; given, it must be 1 to maxJobs.
func (bf *buildFlags) check(cmd *cobra.Command) error {
	if cmd.Flags().Changed("jobs") {
		if err := intRange("-j/--jobs", bf.jobs, 1, maxJobs); err != nil {
			return err
		}
	}
	if cmd.Flags().Lookup("timeout") != nil {
		if err := durationRange("--timeout", bf.timeout, minStepTimeout, maxStepTimeout); err != nil {
			return err
		}
	}
	_, err := bf.net.timeouts()
	return err
}

func init() {
	var bf buildFlags
	c := &cobra.Command{
		Use:   "build [TARGET...]",
		Short: "Build the stack's recipes in sandboxes and write its images' rootfs tarballs",
		Long: `Build fetches the sources the stack pins (as 'cairn fetch' does), makes the
seed from toolchain/seed.lock, runs every recipe as one sandboxed step in
dependency order (up to -j at once), and writes each image as
OUT/NAME.rootfs.sha256-HEX.tar.xz (HEX the sha256 of that file), an OCI image
layout OUT/NAME.oci and a docker-archive OUT/NAME.docker.tar. It prints a
line per image: name, tarball, size, its sha256, and the OCI manifest digest.

A TARGET is a recipe or an image name; with none, everything is built. A step
whose action key is already in the store is not run again. The first failure
stops new work; the failed step's log is kept and its path printed
('cairn log STEP' shows it). Ctrl-C stops every step.

Every stored object is checked before it is used: a source, the seed, a
dependency's or a cached output, an image's blob and the files already in
OUT. Without --verify an object whose files' stat data (size, mode, times,
inode) is unchanged since it was last hashed is trusted; with --verify each
is hashed again. A corrupt cached output is built again; a corrupt source
or seed is removed from the store and the build stops, naming it (the next
build fetches or makes it again). Two builds sharing a store run a step
once: the second waits for the first's step and uses its output.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd.Context(), cmd, &bf, args)
		},
	}
	addBuildFlags(c, &bf)
	addTransportFlags(c, &bf.sourceFlags)
	c.Flags().DurationVar(&bf.timeout, "timeout", time.Hour, "time limit of one step, 1s to 168h")
	c.Flags().BoolVarP(&bf.verbose, "verbose", "v", false, "also show every step's output as it runs")
	c.Flags().StringVar(&bf.out, "out", "out", "directory the rootfs tarballs are written to")
	rootCmd.AddCommand(c)
}

// prepared is a stack ready to build: sources fetched, seed made.
type prepared struct {
	stack *stack.Stack
	store *store.Store
	b     *build.Builder
}

// prepare loads the stack, fetches its sources and makes the seed.
func prepare(ctx context.Context, cmd *cobra.Command, bf *buildFlags, events func(plan.Event), log io.Writer) (*prepared, error) {
	if err := bf.check(cmd); err != nil {
		return nil, err
	}
	st, err := bf.loadStack()
	if err != nil {
		return nil, err
	}
	s, err := bf.openStore()
	if err != nil {
		return nil, err
	}
	res, err := bf.fetchSources(ctx, cmd, st, s, nil)
	if err != nil {
		s.Close()
		return nil, err
	}
	paths := map[string]string{}
	for _, r := range res {
		paths[r.Source] = r.Path
	}
	opts := []seed.Option{seed.WithAptTimeout(max(bf.net.net, bf.net.stall))}
	for _, m := range bf.mirrors {
		opts = append(opts, seed.WithMirror(m))
	}
	if bf.offline {
		opts = append(opts, seed.WithoutApt())
	}
	lockData, err := st.ReadFile(st.Seed.Lock)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("seed lock: %w", err)
	}
	seedDir, seedDigest, err := build.Seed(ctx, s, st.Seed.Lock, lockData, opts...)
	if err == nil && bf.verify {
		// Also when no step runs: --verify checks everything the build
		// stands on. A corrupt seed is removed with the records made on it.
		if err = s.Check(ctx, store.Ref{Kind: store.Tree, Digest: seedDigest}, store.Full(true)); err != nil {
			err = fmt.Errorf("seed: %w; the next build makes it again", err)
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if hook := testHook(); hook != nil {
		s.SetHook(hook)
	}
	b, err := build.New(build.Config{Stack: st, Store: s, SeedDir: seedDir, SeedDigest: seedDigest,
		Sources: paths, Jobs: bf.jobs, Timeout: bf.timeout, Events: events, Log: log,
		Verify: bf.verify, Hook: testHook()})
	if err != nil {
		s.Close()
		return nil, err
	}
	// Once per run: how steps are bounded where cgroups cannot be used.
	if n := sandbox.Notice(); n != "" {
		fmt.Fprintln(os.Stderr, "cairn: "+n)
	}
	return &prepared{stack: st, store: s, b: b}, nil
}

// targets splits names into recipe steps and images.
func targets(st *stack.Stack, names []string) (steps []string, images []stack.Image, err error) {
	if len(names) == 0 {
		for _, r := range st.Recipes {
			steps = append(steps, r.Name)
		}
		return steps, st.Images, nil
	}
	for _, n := range names {
		switch {
		case st.Image(n) != nil:
			img := *st.Image(n)
			images = append(images, img)
			steps = append(steps, img.Recipe)
		case st.Recipe(n) != nil:
			steps = append(steps, n)
		default:
			return nil, nil, withCode(exitUsage, fmt.Errorf("no recipe or image named %q in %s", n, st.File))
		}
	}
	return steps, images, nil
}

func runBuild(ctx context.Context, cmd *cobra.Command, bf *buildFlags, args []string) error {
	start := time.Now()
	stderr := cmd.ErrOrStderr()
	pr := newProgress(stderr)
	defer pr.stop()
	var log io.Writer
	if bf.verbose {
		log = stderr
	}
	p, err := prepare(ctx, cmd, bf, pr.event, log)
	if err != nil {
		return err
	}
	defer p.store.Close()
	defer p.b.Close()
	steps, images, err := targets(p.stack, args)
	if err != nil {
		return err
	}
	results, err := p.b.Build(ctx, steps...)
	pr.stop()
	if err != nil {
		var se *plan.StepError
		if errors.As(err, &se) && se.Log != "" {
			return fmt.Errorf("%w\nsee the log: cairn log %s (or %s)", err, se.Step, se.Log)
		}
		return err
	}
	out := cmd.OutOrStdout()
	var in *attest.Inputs
	for _, img := range images {
		res, ok := results[img.Recipe]
		if !ok {
			return fmt.Errorf("image %s: recipe %s was not built", img.Name, img.Recipe)
		}
		w, err := p.b.WriteImage(ctx, img, res.Output, bf.out)
		if err != nil {
			return err
		}
		if in == nil {
			if in, err = attestInputs(ctx, bf, p, args); err != nil {
				return err
			}
		}
		if err := writeAttestations(ctx, in, img, w, bf.out); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\t%s\t%d bytes\t%s\toci %s\n", img.Name, w.Path, w.Size, w.Digest, w.Manifest)
	}
	fmt.Fprintf(stderr, "cairn: %d steps: %d built, %d cached, in %s\n",
		len(results), pr.built, pr.cached, time.Since(start).Round(time.Millisecond))
	return nil
}

// attestInputs gathers what every image's SBOM and provenance name.
func attestInputs(ctx context.Context, bf *buildFlags, p *prepared, args []string) (*attest.Inputs, error) {
	in, err := attest.Load(ctx, filepath.ToSlash(bf.stack))
	if err != nil {
		return nil, err
	}
	in.CairnVersion, in.Targets = version, args
	// The SBOMs name each Debian patch by the sha256 of the bytes applied,
	// read from the packaging tarball the fetch left in the store.
	f := source.New(p.store, source.WithOffline(true), source.WithMirrors(bf.mirrors...))
	for _, src := range p.stack.Sources {
		if src.Patches == nil || len(src.Patches.Series) == 0 {
			continue
		}
		sums, err := f.PatchSums(ctx, p.stack, src)
		if err != nil {
			return nil, err
		}
		debianSums := sums[:len(sums)-len(src.Patches.Local)]
		if len(src.Patches.Series) == 1 && src.Patches.Series[0] == "*" {
			names := make([]string, len(debianSums))
			for i, ps := range debianSums {
				names[i] = ps.Name
			}
			in.SetSeries(src.Name, names)
		}
		for _, ps := range debianSums {
			if err := in.SetPatchSHA256(src.Name, ps.Name, ps.SHA256); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range p.b.Status() {
		if s.KeyKnown {
			in.ActionKeys = append(in.ActionKeys, attest.ActionKey{Step: s.ID, Key: s.Key, Output: s.Output})
		}
	}
	return in, nil
}

// writeAttestations writes IMAGE.spdx.json, IMAGE.cdx.json and
// IMAGE.provenance.json beside the image; they are functions of the inputs
// and the image, so an image found in the cache keeps the ones in place.
func writeAttestations(ctx context.Context, in *attest.Inputs, img stack.Image, w *build.Image, outDir string) error {
	if w.Cached {
		present := true
		for _, suffix := range []string{".spdx.json", ".cdx.json", ".provenance.json"} {
			if _, err := os.Stat(filepath.Join(outDir, img.Name+suffix)); err != nil {
				present = false
			}
		}
		if present {
			return nil
		}
	}
	ai, err := attest.ReadImage(ctx, img.Name, w.Path)
	if err != nil {
		return err
	}
	ai.Recipe, ai.OCIManifest = img.Recipe, w.Manifest
	// The docker-archive is a subject of the provenance like the tarball.
	switch sum, err := fileSum(filepath.Join(outDir, img.Name+".docker.tar")); {
	case err == nil:
		ai.DockerArchive = "sha256:" + sum
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("image %s: docker-archive: %w", img.Name, err)
	}
	in.Image = ai
	_, err = attest.Write(in, outDir)
	return err
}

// progress renders plan events: on a terminal, one line redrawn each second
// naming the running steps and their time; elsewhere, a timestamped line per
// event.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	running map[string]time.Time
	waited  map[string]bool // steps another cairn built while this one waited
	built   int
	cached  int
	done    chan struct{}
	once    sync.Once
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, running: map[string]time.Time{}, waited: map[string]bool{}, done: make(chan struct{})}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		go p.tick()
	}
	return p
}

func (p *progress) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

// redraw draws the running steps; called with mu held.
func (p *progress) redraw() {
	if !p.tty {
		return
	}
	var parts []string
	for s, t := range p.running {
		parts = append(parts, fmt.Sprintf("%s %ds", s, int(time.Since(t).Seconds())))
	}
	sort.Strings(parts)
	line := ""
	if len(parts) > 0 {
		line = "building: " + strings.Join(parts, ", ")
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
}

func (p *progress) event(e plan.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var msg string
	switch e.Kind {
	case plan.Started:
		p.running[e.Step] = time.Now()
		if !p.tty {
			msg = "started"
		}
	case plan.Cached:
		p.cached++
		msg = "cached"
		if p.waited[e.Step] {
			msg = "cached (built by another cairn meanwhile)"
		}
	case plan.Finished:
		delete(p.running, e.Step)
		if e.Result.Cached {
			// Another cairn ran it while this one waited for its lock;
			// the Cached event that follows says so.
			p.waited[e.Step] = true
			break
		}
		p.built++
		msg = fmt.Sprintf("built in %s", e.Elapsed.Round(100*time.Millisecond))
	case plan.Failed:
		delete(p.running, e.Step)
		msg = fmt.Sprintf("failed after %s", e.Elapsed.Round(100*time.Millisecond))
	}
	if msg != "" {
		if p.tty {
			fmt.Fprintf(p.w, "\r\x1b[K%s: %s\n", e.Step, msg)
		} else {
			fmt.Fprintf(p.w, "%s %s: %s\n", time.Now().UTC().Format("15:04:05"), e.Step, msg)
		}
	}
	p.redraw()
}

func (p *progress) stop() {
	p.once.Do(func() {
		close(p.done)
		p.mu.Lock()
		if p.tty {
			fmt.Fprint(p.w, "\r\x1b[K")
		}
		p.mu.Unlock()
	})
}
