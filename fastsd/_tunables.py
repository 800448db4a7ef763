"""Tunables of the training passes: chunk sizes and thread choices, in one place.

None of these changes results (except :data:`SAMPLES_PER_CALL` for SparseDream's
annealed rate, which steps once per call); they trade speed against responsiveness.
"""

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
