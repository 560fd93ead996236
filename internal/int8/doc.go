// Package int8 holds goslim's INT8 compute kernels: a u8 x s8 -> s32 GEMM
// (C[m][n] = sum_k A[m][k]*B[k][n], A uint8, B int8, int32 wrapping
// accumulation) with B packed once (PackB) into panels of 32 columns and
// groups of 4 k-values per int32 lane, as VPDPBUSD and AMX TDPBUSD want,
// and the integer convolution built on it (conv.go) with fixed-point
// requantization (requant.go).
//
// # Kernels
//
// A Kernel is one implementation; all read the same PackedB and give
// exactly GemmRef's result (tested bit for bit on random shapes with
// tails, strides, accumulation, threads and guard bands):
//
//	kernel      tile     instructions
//	go          12 x 32  pure Go (always; the only one with -tags noasm)
//	avx2        6 x 16   VPMADDUBSW + VPMADDWD; 3 x 16 VPMADDWD on int16 weights when B could saturate
//	avxvnni     6 x 16   VEX VPDPBUSD ymm (BYTE-encoded: the Go assembler only emits EVEX)
//	avx512vnni  12 x 32  VPDPBUSD zmm; 24 x 16 when N <= 16
//	amx         32 x 32  TDPBUSD on 2 x 2 tiles of 16 x 16 (BYTE-encoded)
//
// For(tier) picks the kernel of a session tier (kernel.Info.Tier, so
// GOSLIM_KERNELS selects it): generic -> go, avx2 -> avx2 (avxvnni on CPUs
// with AVX-VNNI but no AVX-512), avx512 -> avxvnni (else avx2), vnni ->
// avx512vnni, amx -> amx. Each falls back to the next lower kernel the
// machine has. Kernels() lists what runs here; tests run every one.
//
// AVX2 exactness: VPMADDUBSW adds two u8*s8 products into a saturating
// int16. PackB checks every pair of adjacent k-values of every column
// (PackedB.SaturationFree: positive weights of a pair sum to <= 128 and
// negative ones to >= -128; true whenever |w| <= 64); otherwise the avx2
// kernel multiplies A widened to int16 (VPUNPCKLBW) by a copy of B
// widened to int16 pairs (built on first use, twice B's size) with
// VPMADDWD, which cannot overflow, and adds the two halves of each column
// with VPHADDD at the end of a tile (about 0.75x the fast path's speed).
//
// AMX: the tier needs the OS to grant the tile state
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA), asked once by
// kernel.AMXStatus). Every assembly call configures the tiles
// (LDTILECFG), computes, stores and releases them (TILERELEASE), so no
// tile state is live when the goroutine can be rescheduled; partial row
// and column tiles get their own tile configuration. The machine the
// kernel was written on (an AMD Zen 5 VM) has no AMX: the driver is
// tested on a Go emulation of the tile instructions (amx_emu_amd64.go),
// the encodings were checked with objdump, and KernelAMX is only offered
// after a one-time self-test against GemmRef passes on the real CPU.
//
// # API
//
//	p := int8.PackB(w, K, N)                 // once per weight matrix
//	int8.Gemm(tier, c, a, M, p)              // c = a*p, row-major, 1 thread
//	k := int8.For(tier)
//	k.Run(&int8.GemmOp{M: M, A: a, LdA: lda, B: p, C: c, LdC: ldc, Accumulate: acc})
//	k.RunParallel(&op, threads, ctx)         // ctx: *kernel.Ctx (ParallelTask)
//
// Gemm and Kernel.Run allocate nothing for any shape: tails (K % 4 != 0,
// rows past the last full tile, rows whose 4- or 64-byte reads would pass
// the end of A) are copied per K block into a buffer on the goroutine's
// stack. A may have a leading dimension (LdA) and C one (LdC);
// Accumulate adds to C. PackA copies a reused A into padded rows that
// every kernel reads in place. For threads, keep a Task in the kernel's
// state and call ctx.ParallelTask(task.Split(ctx.Threads), &task): units
// are row tiles (or column tiles when rows are few), each written by one
// thread, so results do not depend on the thread count and nothing is
// allocated. RowTile gives the tile height to align row blocks to.
//
// # Zero points
//
// RowSums and ColSums (PackedB.ColSums) give the corrections of
// asymmetric quantization: with zero point za of A and symmetric B,
// C = sum (a-za) b = sum a b - za*colsum(B).
//
// # Speed
//
// go test ./internal/int8 -run XXX -bench Gemm -cpu 1 reports GOP/s (a
// multiply-add counts 2) by wall time and by thread CPU time (cpu-GOP/s)
// for every kernel at 256/512/1024 and CNN shapes; docs/performance.md
// ("INT8 GEMM kernels") has the table. On this shared 2-vCPU Zen 5 VM, 1024^3,
// cpu-GOP/s (11:53 UTC run in that section): avx512vnni 683-757, avxvnni
// 374-390, avx2 130-134 full-range / 179-192 with |w| <= 64, go ~8.
package int8
