package main

import (
	"encoding/json"
	"testing"

	"github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
)

func TestHWInt8(t *testing.T) {
	for _, tc := range []struct{ tier, want string }{
		{"generic", "go"},
		{kernel.Best().String(), int8.For(kernel.Best()).String()},
	} {
		code, out, errs := goslim(t, "hw", "--json", "--kernels", tc.tier)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var r hwReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bad JSON: %v\n%s", err, out)
		}
		if r.INT8GEMM != tc.want || r.INT8Note == "" || len(r.INT8Kernels) == 0 || r.INT8Kernels[0] != "go" {
			t.Errorf("tier %s: int8_gemm %q (want %q), note %q, kernels %v", tc.tier, r.INT8GEMM, tc.want, r.INT8Note, r.INT8Kernels)
		}
		if r.AMX.Granted != kernel.TierAMX.Available() || (!r.AMX.Granted && r.AMX.Reason == "") {
			t.Errorf("amx report %+v, tier available %v", r.AMX, kernel.TierAMX.Available())
		}
	}
}
