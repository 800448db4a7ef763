"""Every tunable of fastsd in one place: compile options, kernel sizes, pass chunks.

Each constant has one name and one meaning, and says what it trades. None of them
changes a result (except :data:`SAMPLES_PER_CALL` for SparseDream's annealed rate,
which steps once per call, and the fast-math flags, which allow last-bit differences
from numpy): they trade speed against memory, responsiveness or portability.

The kernels (:mod:`fastsd.kernels`) read their constants when Numba compiles them;
a changed value needs the kernel recompiled (``kernel.recompile()``, or a fresh
Numba cache).
"""
from __future__ import annotations

# -- compile options ------------------------------------------------------------------

#: Floating-point flags for the kernels: reassociation and FMA contraction let LLVM
#: vectorise reductions (last-bit differences from numpy), while NaN/inf semantics are
#: kept so that the non-finite checks and ``w <= prec`` pruning behave exactly.
FASTMATH = {"reassoc", "contract", "nsz"}

#: Options of every serial kernel: cached on disk (compile once per machine), the GIL
#: released (a pass can run beside the progress bar and other Python threads).
JIT = dict(cache=True, nogil=True, fastmath=FASTMATH)

#: Options for helpers that divide in a loop: IEEE division (``x / 0`` is inf or NaN, as
#: in numpy) instead of Python's ``ZeroDivisionError`` check, a branch per division that
#: keeps the loop from vectorising.
JIT_IEEE = dict(JIT, error_model="numpy")

#: Options of the kernels with a ``prange`` loop (a parallel region per call: worth it
#: only for work of tens of microseconds and more).
PARALLEL_JIT = dict(JIT, parallel=True)

#: :data:`PARALLEL_JIT` with IEEE division (see :data:`JIT_IEEE`).
PARALLEL_JIT_IEEE = dict(JIT_IEEE, parallel=True)

# -- memory layout --------------------------------------------------------------------

#: Bytes per cache line: the step of ``prefetch_row`` and the width of one row of the
#: in-register transpose tile (:mod:`fastsd.kernels.simd`: a 64-byte row is one
#: AVX-512 register, two AVX2 or four SSE ones; LLVM splits it as the CPU needs).
CACHE_LINE = 64

#: Columns (pixels) or units per alignment step: the boundaries of the mini-batch
#: column parts and of the Krotov unit blocks are multiples of it (one cache line of
#: float32), so that no two threads write the same cache line.
ALIGN = CACHE_LINE // 4

#: Rows of ``W`` handled together by the blocked per-sample loops (reconstruction,
#: weight update): ``r[j]``, ``g[j]``, ``v[j]`` are loaded once per this many rows.
#: More rows need more registers; results do not depend on it.
ROW_BLOCK = 4

#: Non-zero pixels combined per sweep over a Krotov drive row (rows of ``S`` read
#: together, one load and store of the drive per this many pixels).
DRIVE_UNROLL = 4

#: Entries tested together by one vectorised test before a scalar scan of them
#: (``indices_other_than`` of the mini-batch pass, the Krotov ranking scan): a run
#: without a hit costs one vector test. Longer runs skip more but scan more on a hit.
SCAN = 64

#: Tile edge of the symmetry test of ``L`` (both reads of a tile stay in the cache).
SYMMETRY_TILE = 32

# -- parallel work --------------------------------------------------------------------

#: Parts of the pixel columns of the mini-batch weight half (and threads that can work
#: on them at once; fixed so that results do not depend on the number of threads).
PARTS = 2

#: Bytes of ``Wᵀ`` per block of the mini-batch drives: within a core's L2 cache (1-2
#: MB). At N=6400 one part's drives took 24-29 µs per sample with 1 MB blocks, 30-38 µs
#: with 512 KB ones and 28-46 µs unblocked (2-core Zen 5, 2 MB L2, shared machine).
DRIVE_BLOCK_BYTES = 1 << 20

#: Bytes of ``S`` per Krotov unit block (the block is re-read by every sample of a
#: batch: it should stay in a core's L2 cache, 1-2 MB on current x86 server cores;
#: only the rows of pixels that are non-zero in the batch are read). Narrower blocks
#: cost more loop overhead than they save (measured on Zen 5, N=1600: 160-unit blocks
#: a third slower than 400-unit ones).
UNIT_BLOCK_BYTES = 1 << 21

#: Samples per parallel task of the evaluators and of the batched responses (scratch
#: is allocated once per task; fewer samples balance the threads better).
SAMPLES_PER_TASK = 256

#: Positions between the additions of the constant part of the inhibition updates to
#: ``L`` in the mini-batch pass (one sweep over ``L`` each). Results depend on it only
#: in the last bits (the same positions however a pass is split into calls).
FLUSH_EVERY = 4096

# -- training passes (estimator level) -------------------------------------------------

#: Samples handed to a compiled pass per call (rounded up to whole batches): bounds the
#: time between progress-bar updates and Ctrl-C checks. SparseDream's annealed rate
#: changes once per call, so this also sets its annealing steps.
SAMPLES_PER_CALL = 4096

#: Bytes per second the exact per-sample SparseDream pass moves through memory at
#: best, for the slow-pass warning (its state is streamed through the caches once per
#: sample; the memory bandwidth of one core of a current server is of this order).
PASS_BANDWIDTH = 20e9

#: The exact per-sample SparseDream pass may use two threads from this many neurons
#: on: a sample then moves megabytes (N=1600 with inhibition: 15 MB, 1.9x faster on two
#: threads of an idle 2-core AMD EPYC), while at N=400 three parallel regions per
#: sample gained nothing and at N=100 they cost 1.6x.
PARTS_MIN_NEURONS = 1024

#: Turns of the thread probe of a batch-parallel pass (Krotov–Hopfield) on each
#: setting; the fastest turn of each is compared.
PROBE_ROUNDS = 4

#: Target seconds of one chunk of rows of an evaluation (:func:`fastsd._interrupt.map_rows`):
#: Ctrl-C is answered between chunks, so this bounds the wait; much shorter chunks would
#: pay a parallel region and scratch arrays too often.
EVAL_CHUNK_SECONDS = 0.25
