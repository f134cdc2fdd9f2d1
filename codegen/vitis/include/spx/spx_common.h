// spx kernel library: helpers shared by the layer kernels.
//
// Values are Xilinx ap_fixed / ap_ufixed; hashes are ap_uint (DESIGN.md section 2). The integer
// helpers below implement the raw-integer rules of spx_ir (fixed.divide_round, tables.scaled_floor)
// exactly, so every kernel agrees bit for bit with the NumPy reference.
#ifndef SPX_COMMON_H_
#define SPX_COMMON_H_

// g++ -O2 reports uninitialized reads inside ap_private's own constructors (third-party code, and
// reported even with -isystem because the warning is raised after inlining); silence exactly those
// two warnings for the ap_types headers only, so -Wall -Wextra -Werror still checks spx code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "ap_fixed.h"
#include "ap_int.h"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Per-layer trace hook of the top function (C simulation only; a no-op unless defined before).
#ifndef SPX_TRACE
#define SPX_TRACE(array, size)
#endif

namespace spx {

// Config structs: the kernels' *_config structs list the fields each layer's config must define and
// define none of them, so a field the emitter misses or misspells fails to compile.

// The value with raw integer `raw` (value = raw * 2^-F): sets the bits directly, so it is exact
// (also used for zeros: no conversion code runs, whatever the type).
// Weights and tables are stored as raw integers and read through this (free in hardware).
template <class T> T from_raw(long long raw) {
    T x;
    x.V = raw;
    return x;
}

// The raw integer of a fixed-point value, sign-extended.
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
long long to_raw(const ap_fixed_base<W, I, S, Q, O, N> &x) {
    ap_int_base<W, S> bits;
    bits.V = x.V;
    return bits.to_int64();
}

template <int W, bool S> long long to_raw(const ap_int_base<W, S> &x) { return x.to_int64(); }

// Fraction bits of a fixed-point type (negative when the LSB weighs more than 1).
template <class T> constexpr int frac_bits() { return T::width - T::iwidth; }

// log2 of a power of two.
constexpr int ilog2(unsigned long long n) { return n <= 1 ? 0 : 1 + ilog2(n >> 1); }

// v * 2^n for n >= 0, floor(v / 2^-n) for n < 0.
inline long long shift_left(long long v, int n) { return n >= 0 ? v * (1LL << n) : v >> -n; }

// floor((raw * 2^-F + offset) * 2^shift), exactly (spx_ir.tables.scaled_floor).
template <class T> long long scaled_floor(long long raw, long long offset, int shift) {
    const int F = frac_bits<T>();
    if (F >= 0)
        return shift_left(raw + shift_left(offset, F), shift - F);
    return shift_left(shift_left(raw, -F) + offset, shift);
}

inline long long clamp(long long v, long long lo, long long hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Whether the floor quotient q of a division must be incremented to round by quantization mode Q
// (spx_ir.fixed._round_increment): above = remainder > den/2, tie = remainder == den/2 (> 0).
template <ap_q_mode Q> bool round_up(long long q, bool above, bool tie, bool inexact, bool negative) {
    switch (Q) {
    case AP_TRN: return false;
    case AP_TRN_ZERO: return inexact && negative;
    case AP_RND: return above || tie;
    case AP_RND_ZERO: return above || (tie && negative);
    case AP_RND_INF: return above || (tie && !negative);
    case AP_RND_MIN_INF: return above;
    case AP_RND_CONV: return above || (tie && (q & 1));
    }
    return false;
}

// A schedule factor must divide its loop's trip count (also makes every factor a C++ use, so a
// missing or misspelt config field fails g++, not only Vitis).
#define SPX_CHECK_FACTOR(trip, factor) static_assert((factor) >= 1 && (trip) % (factor) == 0, \
                                                     #factor " must divide " #trip)

// num / 2^shift (shift >= 1) rounded by quantization mode Q (spx_ir.fixed.divide_round for a
// power-of-two divisor), by a shift and a mask: no divider.
template <ap_q_mode Q> long long shift_round(long long num, int shift) {
    const long long q = num >> shift, rem = num & ((1LL << shift) - 1), half = 1LL << (shift - 1);
    return q + (round_up<Q>(q, rem > half, rem == half, rem != 0, num < 0) ? 1 : 0);
}

// Dataflow plumbing: a value read by several layers is cloned so that every array has one reader.
template <class T, unsigned N> void clone(const T in[N], T out1[N], T out2[N]) {
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS UNROLL
        out1[i] = in[i];
        out2[i] = in[i];
    }
}

template <class T, unsigned N> void copy(const T in[N], T out[N]) {
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS UNROLL
        out[i] = in[i];
    }
}

// A slot is empty when its hash is (0, 0).
template <class hash_T> bool is_active(const hash_T hash[], unsigned slot) {
    return hash[2 * slot] != 0 && hash[2 * slot + 1] != 0;
}

}  // namespace spx

#endif
