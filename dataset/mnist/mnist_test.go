package mnist

import (
	"io"
	"testing"
)

func TestFiles(t *testing.T) {
	for _, name := range []string{TrainImages, TrainLabels, TestImages, TestLabels} {
		f, err := Open(name)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 2)
		if _, err := io.ReadFull(f, head); err != nil || head[0] != 0x1f || head[1] != 0x8b {
			t.Errorf("%s: %x %v, want gzip magic", name, head, err)
		}
		f.Close()
	}
	if _, err := Open("missing.gz"); err == nil {
		t.Error("Open(missing.gz): no error")
	}
}
