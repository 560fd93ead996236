package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReplaceSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "perf.md")
	for _, tc := range []struct{ before, want string }{
		{"# P\n\n## A\nx\n", "# P\n\n## A\nx\n\n## INT8\nnew\n"},
		{"# P\n\n## INT8\nold\n\n## B\ny\n", "# P\n\n## B\ny\n\n## INT8\nnew\n"},
		{"# P\n\n## A\n\n## INT8\nold\nmore\n", "# P\n\n## A\n\n## INT8\nnew\n"},
	} {
		if err := os.WriteFile(p, []byte(tc.before), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := replaceSection(p, "## INT8\nnew\n"); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if string(b) != tc.want {
			t.Errorf("from %q got %q, want %q", tc.before, b, tc.want)
		}
	}
}
