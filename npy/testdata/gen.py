#!/usr/bin/python3
"""Writes the small .npy/.npz files that npy's tests read.

Run from the repository root:  /usr/bin/python3 npy/testdata/gen.py
(Debian python3-numpy; the files are committed, rerun only to change them).
Every array is arange(n) * 0.5 - 1 (floats) or arange(n) - 1 (signed ints),
arange(n) (unsigned ints), arange(n) % 3 == 0 (bool), reshaped, so the Go
test can recompute the expected values from the dtype and shape alone.
"""
import os

import numpy as np

OUT = os.path.dirname(os.path.abspath(__file__))


def values(dtype, shape):
    n = int(np.prod(shape, dtype=np.int64))
    a = np.arange(n)
    k = np.dtype(dtype).kind
    if k == "f":
        a = a * 0.5 - 1
    elif k == "i":
        a = a - 1
    elif k == "b":
        a = a % 3 == 0
    return a.astype(dtype).reshape(shape)


def save(name, arr, version=None):
    path = os.path.join(OUT, name)
    if version is None:
        np.save(path, arr)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=version)


for descr, shape in [
    ("<f4", (2, 3)), ("<f8", ()), ("<f2", (5,)), ("|i1", (2, 2)), ("|u1", (4,)),
    ("<i2", (3,)), ("<u2", (3,)), ("<i4", (2, 1, 2)), ("<u4", (3,)),
    ("<i8", (4,)), ("<u8", (2,)), ("|b1", (2, 3)),
]:
    save("%s.npy" % descr[1:], values(descr, shape))

save("empty_f4.npy", values("<f4", (0, 3)))
save("be_f4.npy", values(">f4", (2, 3)))   # big-endian
save("be_i8.npy", values(">i8", (3,)))
save("fortran_f4.npy", np.asfortranarray(values("<f4", (2, 3))))
save("v2_f4.npy", values("<f4", (2, 3)), version=(2, 0))
save("v3_f4.npy", values("<f4", (2, 3)), version=(3, 0))
save("c8.npy", np.zeros(2, dtype=np.complex64))  # unsupported dtype

np.savez(os.path.join(OUT, "stored.npz"), x=values("<f4", (2, 3)), idx=values("<i8", (4,)))
np.savez_compressed(os.path.join(OUT, "deflated.npz"), x=values("<f4", (2, 3)), idx=values("<i8", (4,)))
