"""Hand-over between two threads running compiled (Numba) loops: step counters in a shared
int64 array, written with release stores and read with acquire loads; a waiting thread spins
briefly, then sleeps (a Linux futex, elsewhere a yield) until the other publishes.
"""

from __future__ import annotations

import os
import platform
import sys

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# Counter slots are 64 bytes apart so each sits on its own cache line; the slot after a
# counter says whether a thread sleeps on it.
FRONT_DONE = 0
SKIP_DONE = 8
BACK_DONE = 16
ABORT = 24
FLAGS = 32
# A wait spins this many times (about 0.2 ms) before it sleeps, which only happens when the
# other thread is not running: more runnable threads than cores, or a very large model.
_SPINS = 1 << 14
# Sleeps are cut into slices of this many nanoseconds, after each of which the wait looks at
# the abort flag again.
_SLEEP_NS = 1_000_000

_MACHINE = platform.machine().lower()
# Linux futex system call number, where the waits can sleep in the kernel; None elsewhere,
# where they yield the core (`sched_yield`; on Windows they keep spinning) instead.
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98}.get(_MACHINE)
if not sys.platform.startswith("linux"):
    _SYS_FUTEX = None
_POSIX = os.name == "posix"
_FUTEX_WAIT_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 129
# NOTE: a safety net against a hang that the protocol rules out: after this many sleeps of up
# to 1 ms (or yields of a microsecond or more), i.e. minutes, a wait gives up and the run
# raises. A thread that the OS deschedules for a while only costs time.
_MAX_SLEEPS = 1 << 17 if _SYS_FUTEX is not None else 1 << 28


def _flag_pointer(context, builder, signature, args):
    """LLVM pointer to flags[index] for the intrinsics below."""
    array_type = signature.args[0]
    array = context.make_array(array_type)(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, array_type, array, [args[1]])


def _is_flags(flags) -> bool:
    return isinstance(flags, types.Array) and flags.ndim == 1 and flags.dtype == types.int64


@intrinsic
def _load_acquire(typingctx, flags, index):
    """flags[index] as an atomic load with acquire ordering (never hoisted out of a loop)."""
    if not (_is_flags(flags) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_flag_pointer(context, builder, signature, args), "acquire", 8)

    return types.int64(flags, types.intp), codegen


@intrinsic
def _store_release(typingctx, flags, index, value):
    """flags[index] = value as an atomic store with release ordering."""
    if not (_is_flags(flags) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        pointer = _flag_pointer(context, builder, signature, args)
        builder.store_atomic(args[2], pointer, "release", 8)
        return context.get_dummy_value()

    return types.void(flags, types.intp, types.int64), codegen


@intrinsic
def _fence(typingctx):
    """A sequentially consistent fence: no load after it passes a store before it."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


def _emit_spin_hint(builder) -> None:
    """The CPU's spin-wait hint (x86 `pause`, Arm `yield`); nothing elsewhere."""
    if _MACHINE in ("x86_64", "amd64"):
        fnty = ir.FunctionType(ir.VoidType(), [])
        name = "llvm.x86.sse2.pause"
        builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), [])
    elif _MACHINE in ("aarch64", "arm64"):
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(32)])
        hint = cgutils.get_or_insert_function(builder.module, fnty, "llvm.aarch64.hint")
        builder.call(hint, [ir.Constant(ir.IntType(32), 1)])


@intrinsic
def _cpu_relax(typingctx):
    """Tell the core that this thread spins, waiting."""

    def codegen(context, builder, signature, args):
        _emit_spin_hint(builder)
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _sleep_on(typingctx, flags, index, seen):
    """Sleep until flags[index] changes from `seen`, a wake-up, or _SLEEP_NS pass.

    Linux futex on the counter's low 32 bits (counters stay small, the CPUs are little-endian);
    elsewhere `sched_yield`, or a spin hint.
    """
    if not (_is_flags(flags) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        if _SYS_FUTEX is None:
            if _POSIX:
                fnty = ir.FunctionType(ir.IntType(32), [])
                yield_ = cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
                builder.call(yield_, [])
            else:
                _emit_spin_hint(builder)
            return context.get_dummy_value()
        timeout = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))  # struct timespec
        builder.store(ir.Constant(ir.ArrayType(i64, 2), [0, _SLEEP_NS]), timeout)
        address = builder.ptrtoint(_flag_pointer(context, builder, signature, args), i64)
        fnty = ir.FunctionType(i64, [i64], var_arg=True)
        call = cgutils.get_or_insert_function(builder.module, fnty, "syscall")
        op = ir.Constant(i64, _FUTEX_WAIT_PRIVATE)
        zero = ir.Constant(i64, 0)
        arguments = [ir.Constant(i64, _SYS_FUTEX), address, op, args[2]]
        builder.call(call, [*arguments, builder.ptrtoint(timeout, i64), zero, zero])
        return context.get_dummy_value()

    return types.void(flags, types.intp, types.int64), codegen


@intrinsic
def _wake(typingctx, flags, index):
    """Wake a thread sleeping in `_sleep_on(flags, index, ...)` (nothing to do off Linux)."""
    if not (_is_flags(flags) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        if _SYS_FUTEX is not None:
            i64 = ir.IntType(64)
            address = builder.ptrtoint(_flag_pointer(context, builder, signature, args), i64)
            fnty = ir.FunctionType(i64, [i64], var_arg=True)
            call = cgutils.get_or_insert_function(builder.module, fnty, "syscall")
            op, one, zero = (ir.Constant(i64, v) for v in (_FUTEX_WAKE_PRIVATE, 1, 0))
            builder.call(call, [ir.Constant(i64, _SYS_FUTEX), address, op, one, zero, zero, zero])
        return context.get_dummy_value()

    return types.void(flags, types.intp), codegen


@njit(cache=True, nogil=True)
def publish(flags, index, value):
    """Set counter flags[index] = value, waking the other thread if it sleeps on it."""
    _store_release(flags, index, value)
    # Store-then-load across threads (with the fence in `wait_for`): either this thread sees
    # the sleeper's mark, or the sleeper sees the new value before it sleeps.
    _fence()
    if _load_acquire(flags, index + 1) != 0:
        _wake(flags, index)


@njit(cache=True, nogil=True)
def wait_for(flags, index, target):
    """Wait until counter flags[index] >= target. False when the run was aborted (or gave up)."""
    spins = 0
    while _load_acquire(flags, index) < target:
        if _load_acquire(flags, ABORT) != 0:
            return False
        spins += 1
        if spins < _SPINS:
            _cpu_relax()
            continue
        if spins - _SPINS >= _MAX_SLEEPS:
            _store_release(flags, ABORT, 1)
            return False
        _store_release(flags, index + 1, 1)
        _fence()
        seen = _load_acquire(flags, index)
        if seen < target:
            _sleep_on(flags, index, seen)
        _store_release(flags, index + 1, 0)
    return True
