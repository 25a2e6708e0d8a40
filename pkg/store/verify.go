package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Problem is one stored thing that is not what its name says.
type Problem struct {
	What   string `json:"what"`   // "tree", "output", "blob", "deb", "record", "seed record"
	Name   string `json:"name"`   // its digest or key
	Path   string `json:"path"`   // where it is
	Reason string `json:"reason"` // what is wrong
	// Removed lists what --repair took out: the object and the records
	// that pointed at it or were made from it.
	Removed []string `json:"removed,omitempty"`
}

func (p Problem) String() string {
	return fmt.Sprintf("%s %s (%s): %s", p.What, p.Name, p.Path, p.Reason)
}

// Report is the result of VerifyAll.
type Report struct {
	Checked   map[string]int `json:"checked"`             // objects hashed, by kind
	Unchecked []string       `json:"unchecked,omitempty"` // outputs no record says how to hash
	Problems  []Problem      `json:"problems"`
}

// VerifyAll re-hashes every object of the store (trees, step outputs,
// blobs, .debs) and reads every record, and reports each that does not
// match. With repair, each bad object is removed with every record that
// points at it or was made from it, and each bad record removed, so that
// the next build rebuilds or fetches again.
func (s *Store) VerifyAll(ctx context.Context, repair bool) (*Report, error) {
	if repair {
		if err := s.writable(); err != nil {
			return nil, err
		}
	}
	rep := &Report{Checked: map[string]int{}}
	type job struct {
		ref   Ref
		path  string
		deb   bool
		epoch int64
	}
	var jobs []job
	for _, k := range []Kind{Tree, Output, Blob} {
		dir := filepath.Dir(s.Path(Ref{k, "sha256:x"}))
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			ref := Ref{k, "sha256:" + e.Name()}
			j := job{ref: ref, path: filepath.Join(dir, e.Name())}
			if !hex64.MatchString(e.Name()) {
				rep.Problems = append(rep.Problems, Problem{What: string(k), Name: e.Name(), Path: j.path, Reason: "not named by a sha256"})
				continue
			}
			if k == Output {
				ix, ok := readIndex(s.indexPath(ref))
				if !ok || ix.digest != ref.Digest {
					rep.Unchecked = append(rep.Unchecked, ref.Digest)
					continue
				}
				j.epoch = ix.epoch
			}
			jobs = append(jobs, j)
		}
	}
	filepath.WalkDir(s.DebDir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".deb") {
			jobs = append(jobs, job{ref: Ref{"deb", "sha256:" + strings.TrimSuffix(d.Name(), ".deb")}, path: p, deb: true})
		}
		return nil
	})

	var mu sync.Mutex
	work := make(chan job)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				kind := j.ref.Kind
				if j.deb {
					kind = Blob
				}
				got, err := hashObject(ctx, kind, j.path, j.epoch)
				mu.Lock()
				rep.Checked[string(j.ref.Kind)]++
				if err != nil && ctx.Err() == nil {
					got = "unreadable: " + err.Error()
				}
				if ctx.Err() == nil && got != j.ref.Digest {
					rep.Problems = append(rep.Problems, Problem{What: string(j.ref.Kind), Name: j.ref.Digest, Path: j.path,
						Reason: "does not match its digest (got " + got + ")"})
				} else if err == nil && !s.ro {
					s.writeIndex(j.ref, j.path, j.epoch)
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		work <- j
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Records: a changed byte, or a pointer to an object the store lacks.
	for _, ns := range []string{dirActions, dirSeeds} {
		ents, _ := os.ReadDir(filepath.Join(s.dir, ns))
		for _, e := range ents {
			p := filepath.Join(s.dir, ns, e.Name())
			what := "record"
			if ns == dirSeeds {
				what = "seed record"
			}
			rep.Checked[what]++
			r, err := s.readRecord(ns, e.Name())
			if err != nil {
				rep.Problems = append(rep.Problems, Problem{What: what, Name: "sha256:" + e.Name(), Path: p, Reason: err.Error()})
				continue
			}
			for _, t := range r.Targets() {
				if _, ok := s.Has(t); !ok {
					rep.Problems = append(rep.Problems, Problem{What: what, Name: "sha256:" + e.Name(), Path: p, Reason: "points at " + t.String() + ", which the store does not hold"})
					break
				}
			}
		}
	}
	sort.Slice(rep.Problems, func(i, j int) bool { return rep.Problems[i].Path < rep.Problems[j].Path })

	if repair {
		for i := range rep.Problems {
			p := &rep.Problems[i]
			switch p.What {
			case string(Tree), string(Output), string(Blob):
				removed, err := s.Evict(Ref{Kind(p.What), p.Name})
				if err != nil {
					return rep, err
				}
				p.Removed = append([]string{p.Path}, removed...)
			default:
				if err := removeAll(p.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return rep, err
				}
				p.Removed = []string{p.Path}
			}
		}
	}
	return rep, nil
}
