package ortoracle

import (
	"os"
	"testing"
)

// Require returns an Oracle for a test or benchmark. When ONNX Runtime is
// missing it skips tb with the reason, except when the environment variable
// CI is "true": then a missing ORT fails tb, so CI cannot pass by skipping.
func Require(tb testing.TB) *Oracle {
	tb.Helper()
	o, err := Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("ONNX Runtime oracle unavailable (CI=true): %v", err)
		}
		tb.Skipf("ONNX Runtime oracle unavailable: %v", err)
	}
	return o
}
