// spx.sparse_pool2d: 'valid' size x size pooling (avg or max) of the active slots.
//
// Slot i maps to pooled pixel (h_i / P, w_i / P) (0-based); rows and columns beyond height / P,
// width / P are dropped. The FIRST slot of each pooled pixel carries the result with the pooled hash
// (1-based); the other member slots become empty. avg = (exact member sum) / P^2 rounded ONCE into
// res_T (its quantization mode, then its overflow mode); max = the largest member feature, and with
// inactive_zero (the `inactive = "zero"` variant) at least 0 when the window has inactive pixels.
//
// Structure: pooled coordinates by a division by the constant P (all slots at once), then the slot
// loop unrolled by pixel_parallel = PP; per slot a leader test against the earlier slots and, per
// channel (unrolled by channel_parallel = CP), an n_max-input masked sum / max. avg divides by P^2 with NO divider: a shift
// for the power-of-two part of the denominator and an exact reciprocal multiply for the odd part
// (spx_ir.accum.pool_average, whose constants the config carries and whose exactness over the
// bounded sum range tests/test_vitis_static.py proves), then a remainder for the rounding.
// Expected latency = II ~ (n_max/PP) * (2 + cycles of an n_max chain); per slot and channel one
// recip_mult multiplier (none when P is a power of two).
#ifndef SPX_SPARSE_POOL2D_H_
#define SPX_SPARSE_POOL2D_H_

#include <type_traits>

#include "spx_common.h"

namespace spx {

enum pool_mode { pool_avg, pool_max };

// Fields of a layer config: n_max, n_chan, size, height, width (the input image), pixel_parallel,
// channel_parallel (unsigned); mode (pool_mode); inactive_zero (bool); types sum_t (exact member
// sum), wide_t (res_T's fraction bits, holds every rounded average). mode == pool_avg only: the
// constants of spx_ir.accum.pool_average: num_shift, den_pow2, recip_shift, num_bits, mult_bits
// (unsigned), den, recip_mult (unsigned long long), offset, offset_q (long long: offset / den).
struct sparse_pool2d_config {};

// round(sum * 2^num_shift / den) into res_T, exactly (spx_ir.fixed.divide_round), by shifts and
// the reciprocal multiply on n = num + offset >= 0.
template <class res_T, typename CONFIG_T> res_T pool_average(typename CONFIG_T::sum_t sum) {
    typedef ap_uint<CONFIG_T::num_bits> num_t;
    typedef ap_uint<CONFIG_T::num_bits + CONFIG_T::mult_bits> prod_t;
    const long long num = to_raw(sum) * (1LL << CONFIG_T::num_shift);
    const num_t n = num + CONFIG_T::offset;
    const prod_t prod = prod_t(n >> CONFIG_T::den_pow2) * ap_uint<CONFIG_T::mult_bits>(CONFIG_T::recip_mult);
    const num_t q = prod >> CONFIG_T::recip_shift;  // floor(n / den)
    const num_t rem = n - q * CONFIG_T::den;        // in [0, den)
    const long long floor_q = (long long)q.to_uint64() - CONFIG_T::offset_q;
    const bool inexact = rem != 0, tie = inexact && 2 * rem == CONFIG_T::den, above = 2 * rem > CONFIG_T::den;
    const long long rounded = floor_q + (round_up<res_T::qmode>(floor_q, above, tie, inexact, num < 0) ? 1 : 0);
    return res_T(from_raw<typename CONFIG_T::wide_t>(rounded));
}

// One pooled value: the average of the member sum, or the best member (max). Chosen at compile time,
// so a max layer's config needs no average constants.
template <class res_T, typename CONFIG_T, class data_T>
res_T pooled_value(typename CONFIG_T::sum_t sum, data_T, std::true_type) {
    return pool_average<res_T, CONFIG_T>(sum);
}

template <class res_T, typename CONFIG_T, class data_T>
res_T pooled_value(typename CONFIG_T::sum_t, data_T best, std::false_type) {
    return res_T(best);
}

template <class data_T, class hash_T, class res_T, class hash_res_T, typename CONFIG_T>
void sparse_pool2d(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                   res_T res[CONFIG_T::n_max * CONFIG_T::n_chan], hash_res_T hash_res[CONFIG_T::n_max * 2]) {
    SPX_CHECK_FACTOR(CONFIG_T::n_max, CONFIG_T::pixel_parallel);
    SPX_CHECK_FACTOR(CONFIG_T::n_chan, CONFIG_T::channel_parallel);
    const unsigned P = CONFIG_T::size, out_h = CONFIG_T::height / P, out_w = CONFIG_T::width / P;
    unsigned ph[CONFIG_T::n_max], pw[CONFIG_T::n_max];
    bool valid[CONFIG_T::n_max];
    #pragma HLS ARRAY_PARTITION variable=ph complete
    #pragma HLS ARRAY_PARTITION variable=pw complete
    #pragma HLS ARRAY_PARTITION variable=valid complete
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL
        const bool active = is_active(hash, i);
        ph[i] = active ? unsigned(hash[2 * i] - 1) / P : 0;
        pw[i] = active ? unsigned(hash[2 * i + 1] - 1) / P : 0;
        valid[i] = active && ph[i] < out_h && pw[i] < out_w;
    }
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        bool leader = valid[i];
        for (unsigned j = 0; j < i; j++) {
            #pragma HLS UNROLL
            if (valid[j] && ph[j] == ph[i] && pw[j] == pw[i]) leader = false;
        }
        hash_res[2 * i] = leader ? ph[i] + 1 : 0;
        hash_res[2 * i + 1] = leader ? pw[i] + 1 : 0;
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL factor=CONFIG_T::channel_parallel
            unsigned members = 0;
            typename CONFIG_T::sum_t sum = from_raw<typename CONFIG_T::sum_t>(0);
            data_T best = feat[i * CONFIG_T::n_chan + c];
            for (unsigned j = 0; j < CONFIG_T::n_max; j++) {
                #pragma HLS UNROLL
                if (!valid[j] || ph[j] != ph[i] || pw[j] != pw[i]) continue;
                const data_T v = feat[j * CONFIG_T::n_chan + c];
                sum += v;
                members++;
                if (v > best) best = v;
            }
            if (CONFIG_T::inactive_zero && members < P * P && best < 0) best = from_raw<data_T>(0);
            const res_T pooled = pooled_value<res_T, CONFIG_T>(sum, best, std::integral_constant<bool, CONFIG_T::mode == pool_avg>());
            res[i * CONFIG_T::n_chan + c] = leader ? pooled : from_raw<res_T>(0);
        }
    }
}

}  // namespace spx

#endif
