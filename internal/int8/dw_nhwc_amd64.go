//go:build amd64 && !noasm

package int8

import (
	"math"
	"unsafe"

	"golang.org/x/sys/cpu"

	"github.com/goslim/goslim/internal/kernel"
)

//go:noescape
func dwNHWCAVX512(out *int32, taps *unsafe.Pointer, segs *int, nseg int, w *int32, pairs int, c int, step int, flags int, rq *dwReq)

//go:noescape
func prefetchAVX512(p *byte, n int)

// prefetch asks the caches for b (no effect on the results).
func prefetch(b []byte) {
	if len(b) > 0 {
		prefetchAVX512(&b[0], len(b))
	}
}

// dwVBMI records (once, read-only) whether the CPU has the AVX-512 byte
// permutes the channels-last depthwise kernel uses.
var dwVBMI = cpu.X86.HasAVX512VBMI

//go:noescape
func dwNHWCAVX2(out *int32, taps *unsafe.Pointer, segs *int, nseg int, w *int32, pairs int, c int, step int, flags int, rq *dwReq)

// dwAVX2 records (once, read-only) whether the CPU runs AVX2 and FMA.
var dwAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dwKernel returns the channels-last depthwise kernel of tier t for c
// channels: dwKernAVX512 (needs VBMI), dwKernAVX2 (from kernel.TierAVX2
// up, c a multiple of 16) or dwKernGo.
func dwKernel(t kernel.Tier, c int) int {
	switch {
	case dwAsm(t):
		return dwKernAVX512
	case t >= kernel.TierAVX2 && dwAVX2 && c%16 == 0:
		return dwKernAVX2
	}
	return dwKernGo
}

// dwVNNI records (once, read-only) whether the CPU has AVX-512 VNNI.
var dwVNNI = cpu.X86.HasAVX512VNNI

// dwAsm reports whether tier t runs the AVX-512 channels-last depthwise
// kernel.
func dwAsm(t kernel.Tier) bool { return requantAsm(t) && dwVBMI }

// dwFlags returns the kernel flags of tier t: int8 inputs (bit 0) and
// VPDPWSSD multiply-adds from kernel.TierVNNI up (bit 1).
func dwFlags(t kernel.Tier, signed bool) int {
	f := 0
	if signed {
		f = 1
	}
	if t >= kernel.TierVNNI && dwVNNI {
		f |= 2
	}
	return f
}

//go:noescape
func dwBuild3VBMI(dst *int32, a, b, c *byte, n int, flip uint64, lm, sm uint64)

//go:noescape
func dwTapsVNNI(dst *byte, tb *int32, w *int32, c, n, step, kw, dstep int, rq *dwReq, mode int, magic uint64)

// dwVNNIKernel reports whether tier t runs the VPDPBUSD depthwise kernels
// (dwBuild3VBMI, dwTapsVNNI): AVX-512 VBMI and VNNI, kernel.TierVNNI up.
func dwVNNIKernel(t kernel.Tier) bool { return dwAsm(t) && t >= kernel.TierVNNI && dwVNNI }

// dwBuild3 is dwBuild3Go by dwBuild3VBMI.
func dwBuild3(dst []int32, a, b, c []byte, n int, flip uint8) {
	if n <= 0 {
		return
	}
	_, _, _, _ = dst[n-1], a[n-1], b[n-1], c[n-1]
	var lm, sm uint64
	if r := n % 64; r > 0 {
		lm = 1<<r - 1
		for k := range 4 {
			if d := min(max(r-16*k, 0), 16); d > 0 {
				sm |= (1<<d - 1) << (16 * k)
			}
		}
	}
	dwBuild3VBMI(&dst[0], &a[0], &b[0], &c[0], n, uint64(flip), lm, sm)
}

// dwTaps is dwTapsGo by dwTapsVNNI.
func dwTaps(dst []byte, tb, w []int32, c, n, step, kw, dstep int, rq *dwReq) {
	if n <= 0 || c <= 0 || kw <= 0 {
		return
	}
	cp := (c + 15) &^ 15
	_ = dst[n*c-1]
	_ = tb[(n-1)*step+(kw-1)*dstep+cp-1]
	_ = w[cp*kw-1]
	_ = unsafe.Slice(rq.scale, cp)[cp-1]
	_ = unsafe.Slice(rq.add, cp)[cp-1]
	// Saturating requantization for the full 8-bit ranges with an even
	// zero point (see dwTapsVNNI).
	mode := 0
	if rq.zero%2 == 0 {
		switch lo, hi := rq.lo+rq.zero, rq.hi+rq.zero; {
		case lo == 0 && hi == 255:
			mode = 1
		case lo == -128 && hi == 127:
			mode = 2
		}
	}
	dwTapsVNNI(&dst[0], &tb[0], &w[0], c, n, step, kw, dstep, rq, mode, math.Float64bits(0x1.8p52+float64(rq.zero)))
}

// dwRowsAsm runs kernel kern (dwNHWCAVX512 or dwNHWCAVX2) over len(segs) runs of segs[i] pixels of c
// channels: taps holds 2*pairs row pointers per run (each valid for
// (n-1)*step+c bytes), w the packed int16 weight pairs of (c+15)/16
// channel blocks. With dst nil the sums go to out; otherwise dst receives
// them requantized per rq (a copy: each call sets its own dst).
func dwRowsAsm(kern int, out []int32, dst []byte, taps []unsafe.Pointer, segs []int, w []int32, c, pairs, step, flags int, rq dwReq) {
	total := 0
	for _, n := range segs {
		if n <= 0 {
			panic("int8: empty depthwise run")
		}
		total += n
	}
	if total == 0 {
		return
	}
	_ = taps[len(segs)*2*pairs-1]
	_ = w[(c+15)/16*pairs*16-1]
	var o *int32
	if dst != nil {
		_ = dst[total*c-1]
		rq.dst = &dst[0]
	} else {
		_ = out[total*c-1]
		rq.dst, o = nil, &out[0]
	}
	if kern == dwKernAVX2 {
		if c%16 != 0 {
			panic("int8: AVX2 depthwise kernel needs a multiple of 16 channels")
		}
		dwNHWCAVX2(o, &taps[0], &segs[0], len(segs), &w[0], pairs, c, step, flags&1, &rq)
		return
	}
	dwNHWCAVX512(o, &taps[0], &segs[0], len(segs), &w[0], pairs, c, step, flags, &rq)
}
