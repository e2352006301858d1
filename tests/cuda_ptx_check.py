"""Compile every CUDA kernel of phylo to PTX for sm_90 (H100/H200) with the argument
types of real calls, without a GPU (needs NVVM/NVRTC: ``pip install 'numba-cuda[cu13]'``).
The simulator runs kernels as Python, so it cannot see typing or lowering errors of the
real target; this can. Run as a script (``NUMBA_ENABLE_CUDASIM`` unset): prints one
line per kernel, exits 3 when the CUDA toolkit libraries are missing."""
from __future__ import annotations

import sys

from phylo._kernels.cuda_import import import_cuda

cuda = import_cuda()
from numba import types  # noqa: E402
from numba.core import config  # noqa: E402

F64 = types.float64
I32 = types.int32
U8 = types.uint8


def arr(ndim: int, dtype=F64):
    return types.Array(dtype, ndim, "C")


def main() -> int:
    if config.ENABLE_CUDASIM:
        print("the simulator is enabled; unset NUMBA_ENABLE_CUDASIM", file=sys.stderr)
        return 2
    from phylo._kernels import cuda_pruning as k

    def compile_one(fn, sig, name):
        ptx, _ = cuda.compile_ptx(fn, sig, cc=(9, 0))
        print(f"{name}: PTX {len(ptx)} chars", flush=True)

    try:
        compile_one(k.weighted_sum_kernel.py_func, (arr(2), arr(1), arr(1)), "weighted_sum")
    except Exception as exc:  # the toolkit's libraries (NVRTC, NVVM) are not installed
        if "libnvrtc" in str(exc) or "libnvvm" in str(exc) or "NVVM" in str(exc):
            print(f"no CUDA toolkit libraries: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 3
        raise
    compile_one(k.row_sum_kernel.py_func, (arr(3), arr(2)), "row_sum")
    compile_one(k.transition_kernel.py_func, (arr(2), arr(2), arr(3), arr(3), types.boolean),
                "transition")
    for shared in (True, False):
        for nc in (1, 4):
            kern = k.make_loglik_kernel(6, nc, 2, 51, shared)
            compile_one(kern.py_func, (arr(3), arr(3, I32), arr(2, U8), arr(2), arr(2), arr(2),
                                       arr(2)), f"loglik shared={shared} C={nc}")
    for nc in (1, 4):
        kern = k.make_gradient_kernel(nc)
        compile_one(kern.py_func, (arr(3), arr(3), arr(3, I32), arr(2, U8), arr(2), arr(2),
                                   arr(1), arr(4), arr(4), arr(2), arr(2), arr(3)),
                    f"gradient C={nc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
