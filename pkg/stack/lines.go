package stack

import (
	"bufio"
	"bytes"
	"strings"
)

// lineIndex finds the line of a key in a TOML file, for error messages about
// values that decoded fine but mean something wrong. It knows the shapes this
// format uses: top-level keys, [table] and [[array]] headers, and simple keys.
type lineIndex struct {
	entries []lineEntry
}

type lineEntry struct {
	table string // "" for top level, else the header's name
	index int    // which [[table]] occurrence (0 for [table])
	key   string // "" for the header line itself
	line  int
}

func newLineIndex(data []byte) lineIndex {
	var li lineIndex
	counts := map[string]int{}
	table, index := "", 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "[["):
			name := strings.TrimSpace(strings.Trim(strings.SplitN(l, "]]", 2)[0], "[ "))
			table, index = name, counts[name]
			counts[name]++
			li.entries = append(li.entries, lineEntry{table: table, index: index, line: n})
		case strings.HasPrefix(l, "["):
			name := strings.TrimSpace(strings.Trim(strings.SplitN(l, "]", 2)[0], "[ "))
			// [image.modes] belongs to the latest [[image]].
			index = 0
			if parent, _, ok := strings.Cut(name, "."); ok && counts[parent] > 0 {
				index = counts[parent] - 1
			}
			table = name
			li.entries = append(li.entries, lineEntry{table: table, index: index, line: n})
		default:
			k, _, ok := strings.Cut(l, "=")
			if !ok || strings.HasPrefix(l, "#") {
				continue
			}
			k = strings.Trim(strings.TrimSpace(k), `"'`)
			li.entries = append(li.entries, lineEntry{table: table, index: index, key: k, line: n})
		}
	}
	return li
}

// key returns the line where key is set in the index'th [table] (or top
// level when table is ""), or 0.
func (li lineIndex) key(table string, index int, key string) int {
	for _, e := range li.entries {
		if e.table == table && e.index == index && e.key == key {
			return e.line
		}
	}
	return 0
}

// table returns the line of the index'th header of table, or 0.
func (li lineIndex) table(table string, index int) int {
	for _, e := range li.entries {
		if e.table == table && e.index == index && e.key == "" {
			return e.line
		}
	}
	return 0
}
