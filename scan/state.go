package scan

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// maxStateLine bounds one line of a state file (one record).
const maxStateLine = 16 << 20

// State is a scan's state file: JSON Lines of the records finished, in the
// order they were finished, appended to as the scan goes (records in error
// are not kept: a resumed run reads those artifacts again). A run given the
// file of a killed run replays its records and fetches nothing for them.
// The last line of a killed run may be cut short: it is dropped (the file
// is truncated to its last complete line).
//
// Besides records, the file holds one line of kind "orphan-check" per
// attachment subject a run looked for and settled (found, or gone and every
// orphan record of its attachment tags finished): a resumed run neither asks
// about the subject again nor reads its attachment tags. These lines are
// the file's own, never replayed as records.
//
// A nil *State is valid and records nothing.
type State struct {
	path string
	f    *os.File

	mu      sync.Mutex
	done    map[string]bool    // record keys
	index   map[string]*Record // finished image indexes, for their children
	tags    map[string]string  // scope + ":" + tag -> digest, of finished records
	digests map[string]bool    // repository + "@" + digest, finished
	checked map[string]bool    // repository + "@" + subject, orphan checks settled
	loaded  int64              // bytes of complete records read at open, replayed once
}

// OpenState opens (or creates) a state file and reads what it holds.
func OpenState(path string) (*State, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &StateError{Path: path, Err: err}
	}
	s := &State{path: path, f: f, done: map[string]bool{}, index: map[string]*Record{}, tags: map[string]string{}, digests: map[string]bool{}, checked: map[string]bool{}}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *State) load() error {
	r := bufio.NewReaderSize(s.f, 64<<10)
	var good int64
	line := 0
	for {
		data, err := readLine(r, maxStateLine)
		if errors.Is(err, io.EOF) && len(data) == 0 {
			break
		}
		line++
		complete := err == nil
		if err != nil && !errors.Is(err, io.EOF) {
			return &StateError{Path: s.path, Line: line, Err: err}
		}
		var rec Record
		if !complete || json.Unmarshal(data, &rec) != nil {
			if !complete {
				break // the cut-short last line of a killed run
			}
			return &StateError{Path: s.path, Line: line, Err: errors.New("not a scan record")}
		}
		if rec.Version != RecordVersion {
			return &StateError{Path: s.path, Line: line, Err: fmt.Errorf("record version %q, not %q", rec.Version, RecordVersion)}
		}
		good += int64(len(data)) + 1
		s.remember(&rec)
	}
	s.loaded = good
	if err := s.f.Truncate(good); err != nil {
		return &StateError{Path: s.path, Err: err}
	}
	if _, err := s.f.Seek(good, io.SeekStart); err != nil {
		return &StateError{Path: s.path, Err: err}
	}
	return nil
}

// readLine reads one line without its newline; io.EOF with data means the
// last line has no newline.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := r.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > limit {
			return nil, fmt.Errorf("a line is longer than %d bytes", limit)
		}
		switch {
		case err == nil:
			return out[:len(out)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return out, err
		}
	}
}

func (s *State) remember(r *Record) {
	if r.Kind == kindOrphanCheck {
		s.checked[orphanCheckKey(r.Registry, r.Layout, r.Repository, r.Subject)] = true
		return
	}
	s.done[r.key()] = true
	if r.Kind != KindArtifact || r.Digest == "" {
		return
	}
	repo := r.Registry + "/" + r.Repository
	if r.Layout != "" {
		repo = r.Layout
	}
	s.digests[repo+"@"+r.Digest] = true
	scope := r.Registry + "/" + r.Repository
	if r.Layout != "" {
		scope = r.Repository
	}
	for _, t := range r.Tags {
		s.tags[scope+":"+t] = r.Digest
	}
	if len(r.Children) > 0 {
		s.index[r.key()] = &Record{Children: r.Children}
	}
}

// replay hands each record read from the file at open to fn, once,
// reading the file again (records are not held in memory).
func (s *State) replay(fn func(*Record)) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	n := s.loaded
	s.loaded = 0
	s.mu.Unlock()
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, n), 64<<10)
	for {
		data, err := readLine(r, maxStateLine)
		if len(data) > 0 {
			var rec Record
			if json.Unmarshal(data, &rec) == nil && rec.Kind != kindOrphanCheck {
				fn(&rec)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return &StateError{Path: s.path, Err: err}
		}
	}
}

// finished reports whether a record of key is in the file.
func (s *State) finished(key string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[key]
}

// record returns a finished record (with only its Children), or nil.
func (s *State) record(key string) *Record {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done[key] {
		return nil
	}
	if r := s.index[key]; r != nil {
		return r
	}
	return &Record{}
}

// digestOfTag returns the digest a finished record gave a tag, or "".
func (s *State) digestOfTag(scope, tag string) string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tags[scope+":"+tag]
}

// hasDigest reports whether an artifact of the repository was finished.
func (s *State) hasDigest(repo, digest string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.digests[repo+"@"+digest]
}

// kindOrphanCheck is the kind of a state file line saying an orphan check
// was settled; it is never a record of the scan's output.
const kindOrphanCheck = "orphan-check"

func orphanCheckKey(registry, layout, repository, subject string) string {
	repo := registry + "/" + repository
	if layout != "" {
		repo = layout
	}
	return repo + "@" + subject
}

// orphanChecked reports whether a run settled the orphan check of subject
// in the repository.
func (s *State) orphanChecked(registry, layout, repository, subject string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checked[orphanCheckKey(registry, layout, repository, subject)]
}

// append writes a finished record as one line, in one write.
func (s *State) append(r *Record) error {
	if s == nil {
		return nil
	}
	data, err := json.Marshal(r)
	if err != nil {
		return &StateError{Path: s.path, Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Kind == kindOrphanCheck {
		if s.checked[orphanCheckKey(r.Registry, r.Layout, r.Repository, r.Subject)] {
			return nil
		}
	} else if s.done[r.key()] {
		return nil // replayed
	}
	if r.Status == StatusError {
		return nil // read again by the next run
	}
	s.remember(r)
	if _, err := s.f.Write(append(data, '\n')); err != nil {
		return &StateError{Path: s.path, Err: err}
	}
	return nil
}

// Close closes the file.
func (s *State) Close() error {
	if s == nil {
		return nil
	}
	return s.f.Close()
}
