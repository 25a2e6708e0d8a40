package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Record is what the store remembers of one action key: what it produced
// and the stored objects it was made from.
type Record struct {
	Output   string // a step's output digest
	Blob     string // an image's compressed rootfs tarball, a blob digest
	Manifest string // an image's OCI manifest digest (written to out/, not kept here)
	Archive  string // an image's docker-archive digest (written to out/, not kept here)
	Tree     string // a seed record's tree digest
	Uses     []Ref  // the stored objects it was made from
	// UsesUnknown marks a record migrated from format 1, which did not
	// say what it was made from: any corrupt tree or output invalidates it.
	UsesUnknown bool
}

// refers reports whether the record points at ref or was made from it.
func (r Record) refers(ref Ref) bool {
	switch {
	case ref.Kind == Output && r.Output == ref.Digest,
		ref.Kind == Blob && r.Blob == ref.Digest,
		ref.Kind == Tree && r.Tree == ref.Digest:
		return true
	}
	for _, u := range r.Uses {
		if u == ref {
			return true
		}
	}
	return r.UsesUnknown && (ref.Kind == Tree || ref.Kind == Output)
}

// Targets are the stored objects the record points at.
func (r Record) Targets() []Ref {
	var refs []Ref
	if r.Output != "" {
		refs = append(refs, Ref{Output, r.Output})
	}
	if r.Blob != "" {
		refs = append(refs, Ref{Blob, r.Blob})
	}
	if r.Tree != "" {
		refs = append(refs, Ref{Tree, r.Tree})
	}
	return refs
}

const recordHeader = "cairn record 1"

// encode writes the record's lines and, last, a sum over the key and them,
// so that a changed byte is seen.
func (r Record) encode(key string) []byte {
	var b strings.Builder
	b.WriteString(recordHeader + "\n")
	for _, kv := range [][2]string{{"output", r.Output}, {"blob", r.Blob}, {"manifest", r.Manifest}, {"archive", r.Archive}, {"tree", r.Tree}} {
		if kv[1] != "" {
			b.WriteString(kv[0] + " " + kv[1] + "\n")
		}
	}
	for _, u := range r.Uses {
		b.WriteString("use " + string(u.Kind) + " " + u.Digest + "\n")
	}
	if r.UsesUnknown {
		b.WriteString("uses unknown\n")
	}
	body := b.String()
	return []byte(body + "sum " + recordSum(key, body) + "\n")
}

func recordSum(key, body string) string {
	h := sha256.Sum256([]byte("key " + key + "\n" + body))
	return "sha256:" + hex.EncodeToString(h[:])
}

// RecordError says a record's bytes are not what cairn wrote.
type RecordError struct {
	Path string
	Err  string
}

func (e *RecordError) Error() string { return fmt.Sprintf("record %s: %s", e.Path, e.Err) }

func decodeRecord(path, key string, data []byte) (Record, error) {
	var r Record
	text := string(data)
	if !strings.HasPrefix(text, recordHeader+"\n") {
		return r, &RecordError{path, "not a cairn record"}
	}
	i := strings.LastIndex(strings.TrimSuffix(text, "\n"), "\nsum ")
	if i < 0 || !strings.HasSuffix(text, "\n") {
		return r, &RecordError{path, "no sum line"}
	}
	body, sum := text[:i+1], strings.TrimSpace(text[i+len("\nsum "):])
	if want := recordSum(key, body); sum != want {
		return r, &RecordError{path, "sum does not match its lines (changed since written)"}
	}
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n")[1:] {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "output":
			r.Output = f[1]
		case len(f) == 2 && f[0] == "blob":
			r.Blob = f[1]
		case len(f) == 2 && f[0] == "manifest":
			r.Manifest = f[1]
		case len(f) == 2 && f[0] == "archive":
			r.Archive = f[1]
		case len(f) == 2 && f[0] == "tree":
			r.Tree = f[1]
		case len(f) == 2 && f[0] == "uses" && f[1] == "unknown":
			r.UsesUnknown = true
		case len(f) == 3 && f[0] == "use":
			r.Uses = append(r.Uses, Ref{Kind(f[1]), f[2]})
		default:
			return r, &RecordError{path, fmt.Sprintf("bad line %q", l)}
		}
	}
	return r, nil
}

func (s *Store) readRecord(ns, name string) (Record, error) {
	p := filepath.Join(s.dir, ns, name)
	data, err := os.ReadFile(p)
	if err != nil {
		return Record{}, err
	}
	return decodeRecord(p, "sha256:"+name, data)
}

func recordName(key string) (string, error) {
	if h, err := hexOf(key); err == nil {
		return h, nil
	}
	return "", fmt.Errorf("store: record key %q: want sha256:HEX", key)
}

// Action returns the record of action key, with ErrNotFound if there is
// none. A record whose bytes changed is a *RecordError; it is removed (a
// record is a cache entry: the step runs again).
func (s *Store) Action(key string) (Record, error) { return s.record(dirActions, key) }

// PutAction writes the record of action key, atomically.
func (s *Store) PutAction(key string, r Record) error { return s.putRecord(dirActions, key, r) }

// SeedRecord returns the record of a seed by the key of its lock.
func (s *Store) SeedRecord(key string) (Record, error) { return s.record(dirSeeds, key) }

// PutSeedRecord writes the record of a seed by the key of its lock.
func (s *Store) PutSeedRecord(key string, r Record) error { return s.putRecord(dirSeeds, key, r) }

func (s *Store) record(ns, key string) (Record, error) {
	name, err := recordName(key)
	if err != nil {
		return Record{}, err
	}
	r, err := s.readRecord(ns, name)
	if errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("record %s: %w", key, ErrNotFound)
	}
	var re *RecordError
	if errors.As(err, &re) && !s.ro {
		os.Remove(filepath.Join(s.dir, ns, name))
	}
	return r, err
}

func (s *Store) putRecord(ns, key string, r Record) error {
	if err := s.writable(); err != nil {
		return err
	}
	name, err := recordName(key)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(s.dir, ns, name), r.encode("sha256:"+name), 0o444)
}

// LogPath returns where the log of the step with action key is kept.
func (s *Store) LogPath(key string) string {
	return filepath.Join(s.dir, dirLogs, strings.TrimPrefix(key, "sha256:")+".log")
}

// DebDir returns the directory the seed keeps its verified .debs in.
func (s *Store) DebDir() string { return filepath.Join(s.dir, dirDebs) }

// BlobMirror returns a directory that holds every blob as sha256/HEX, the
// layout `--mirror` reads: another store's build can take archives from it.
func (s *Store) BlobMirror() string { return filepath.Dir(filepath.Join(s.dir, dirBlobs)) }
