package dataset

import (
	"fmt"
	"strings"
)

// Source kinds, the part of a spec string before the first colon.
const (
	KindMNIST        = "mnist"
	KindFashionMNIST = "fashion-mnist"
	KindIDX          = "idx"
	KindFolder       = "folder"
	KindNPY          = "npy"
	KindNPZ          = "npz"
	KindPB           = "pb"
)

// Splits of MNIST-like sources.
const (
	SplitTrain = "train"
	SplitTest  = "test"
)

// Spec is a parsed source spec.
type Spec struct {
	// Kind is one of the Kind constants.
	Kind string
	// Split is SplitTrain or SplitTest for mnist and fashion-mnist, else "".
	Split string
	// Paths holds the files or directory the spec names: none for the
	// built-in MNIST and Debian's Fashion-MNIST, one directory for
	// mnist/fashion-mnist/folder/pb, one file for npz, one or two files
	// (data, labels) for idx and npy.
	Paths []string
}

// specUsage lists the accepted forms for error messages.
const specUsage = "mnist:train|test, fashion-mnist:train|test, idx:IMAGES[,LABELS], folder:DIR, npy:X.npy[,Y.npy], npz:FILE, pb:DIR"

// ParseSpec parses a source spec string KIND:ARG:
//
//	mnist:train, mnist:test              the embedded MNIST
//	mnist:DIR, mnist:DIR,test            MNIST IDX files in DIR (train split by default)
//	fashion-mnist:train, :test           Fashion-MNIST in FashionMNISTDir
//	fashion-mnist:DIR, fashion-mnist:DIR,test
//	idx:IMAGES, idx:IMAGES,LABELS
//	folder:DIR
//	npy:X.npy, npy:X.npy,Y.npy
//	npz:FILE
//	pb:DIR
//
// Paths of the two-part forms cannot contain commas; folder, npz and pb
// take the whole argument as the path. The kind is case-insensitive.
func ParseSpec(s string) (Spec, error) {
	kind, arg, ok := strings.Cut(s, ":")
	kind = strings.ToLower(strings.TrimSpace(kind))
	if !ok {
		return Spec{}, fmt.Errorf("dataset: source %q: want KIND:ARG, one of %s", s, specUsage)
	}
	if arg == "" {
		return Spec{}, fmt.Errorf("dataset: source %q: missing argument after %q", s, kind+":")
	}
	bad := func(why string) (Spec, error) {
		return Spec{}, fmt.Errorf("dataset: source %q: %s", s, why)
	}
	if kind == KindFolder || kind == KindNPZ || kind == KindPB {
		return Spec{Kind: kind, Paths: []string{arg}}, nil
	}
	parts := strings.Split(arg, ",")
	for _, p := range parts {
		if p == "" {
			return bad("empty path")
		}
	}
	switch kind {
	case KindMNIST, KindFashionMNIST:
		switch {
		case len(parts) == 1 && (parts[0] == SplitTrain || parts[0] == SplitTest):
			return Spec{Kind: kind, Split: parts[0]}, nil
		case len(parts) == 1:
			return Spec{Kind: kind, Split: SplitTrain, Paths: parts}, nil
		case len(parts) == 2 && (parts[1] == SplitTrain || parts[1] == SplitTest):
			return Spec{Kind: kind, Split: parts[1], Paths: parts[:1]}, nil
		case len(parts) == 2:
			return bad(fmt.Sprintf("split %q: want train or test", parts[1]))
		}
		return bad("want " + kind + ":train|test or " + kind + ":DIR[,train|test]")
	case KindIDX, KindNPY:
		if len(parts) > 2 {
			return bad("want " + kind + ":DATA[,LABELS]")
		}
		return Spec{Kind: kind, Paths: parts}, nil
	}
	return bad(fmt.Sprintf("unknown kind %q; want one of %s", kind, specUsage))
}

// String formats s as a spec string that ParseSpec accepts.
func (s Spec) String() string {
	switch s.Kind {
	case KindMNIST, KindFashionMNIST:
		if len(s.Paths) == 0 {
			return s.Kind + ":" + s.Split
		}
		if s.Split == "" || s.Split == SplitTrain {
			return s.Kind + ":" + s.Paths[0]
		}
		return s.Kind + ":" + s.Paths[0] + "," + s.Split
	}
	return s.Kind + ":" + strings.Join(s.Paths, ",")
}
