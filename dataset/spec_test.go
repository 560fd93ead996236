package dataset

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want Spec
		str  string // canonical form, when it differs from in
	}{
		{in: "mnist:train", want: Spec{Kind: KindMNIST, Split: SplitTrain}},
		{in: "mnist:test", want: Spec{Kind: KindMNIST, Split: SplitTest}},
		{in: "MNIST:test", want: Spec{Kind: KindMNIST, Split: SplitTest}, str: "mnist:test"},
		{in: "mnist:/data/mnist", want: Spec{Kind: KindMNIST, Split: SplitTrain, Paths: []string{"/data/mnist"}}},
		{in: "mnist:/data/mnist,test", want: Spec{Kind: KindMNIST, Split: SplitTest, Paths: []string{"/data/mnist"}}},
		{in: "mnist:d,train", want: Spec{Kind: KindMNIST, Split: SplitTrain, Paths: []string{"d"}}, str: "mnist:d"},
		{in: "fashion-mnist:train", want: Spec{Kind: KindFashionMNIST, Split: SplitTrain}},
		{in: "fashion-mnist:test", want: Spec{Kind: KindFashionMNIST, Split: SplitTest}},
		{in: "fashion-mnist:/x/fm", want: Spec{Kind: KindFashionMNIST, Split: SplitTrain, Paths: []string{"/x/fm"}}},
		{in: "fashion-mnist:/x/fm,test", want: Spec{Kind: KindFashionMNIST, Split: SplitTest, Paths: []string{"/x/fm"}}},
		{in: "idx:a.idx", want: Spec{Kind: KindIDX, Paths: []string{"a.idx"}}},
		{in: "idx:a-images.gz,a-labels.gz", want: Spec{Kind: KindIDX, Paths: []string{"a-images.gz", "a-labels.gz"}}},
		{in: "folder:/img/train", want: Spec{Kind: KindFolder, Paths: []string{"/img/train"}}},
		{in: "folder:a,b:c", want: Spec{Kind: KindFolder, Paths: []string{"a,b:c"}}},
		{in: "npy:x.npy", want: Spec{Kind: KindNPY, Paths: []string{"x.npy"}}},
		{in: "npy:x.npy,y.npy", want: Spec{Kind: KindNPY, Paths: []string{"x.npy", "y.npy"}}},
		{in: "npz:data.npz", want: Spec{Kind: KindNPZ, Paths: []string{"data.npz"}}},
		{in: "pb:test_data", want: Spec{Kind: KindPB, Paths: []string{"test_data"}}},
		{in: "pb:C:\\data", want: Spec{Kind: KindPB, Paths: []string{"C:\\data"}}},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.in)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSpec(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		str := tt.str
		if str == "" {
			str = tt.in
		}
		if got.String() != str {
			t.Errorf("ParseSpec(%q).String() = %q, want %q", tt.in, got.String(), str)
		}
		again, err := ParseSpec(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("ParseSpec(%q) does not round-trip: %+v, %v", got.String(), again, err)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "want KIND:ARG"},
		{"mnist", "want KIND:ARG"},
		{"mnist:", "missing argument"},
		{"cifar:train", `unknown kind "cifar"`},
		{"mnist:dir,valid", `split "valid"`},
		{"mnist:a,b,c", "want mnist:train|test"},
		{"fashion-mnist:a,test,x", "want fashion-mnist:train|test"},
		{"idx:a,b,c", "want idx:DATA[,LABELS]"},
		{"idx:a,", "empty path"},
		{"npy:,y.npy", "empty path"},
		{"npy:a,b,c", "want npy:DATA[,LABELS]"},
	}
	for _, tt := range tests {
		_, err := ParseSpec(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSpec(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}
