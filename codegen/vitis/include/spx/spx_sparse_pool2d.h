// spx.sparse_pool2d: 'valid' size x size pooling (avg or max) of the active slots.
//
// Slot i maps to pooled pixel (h_i / P, w_i / P) (0-based); rows and columns beyond height / P,
// width / P are dropped. The FIRST slot of each pooled pixel carries the result with the pooled hash
// (1-based); the other member slots become empty. avg = (exact member sum) / P^2 rounded ONCE into
// res_T (its quantization mode, then its overflow mode); max = the largest member feature, and with
// inactive_zero (the `inactive = "zero"` variant) at least 0 when the window has inactive pixels.
#ifndef SPX_SPARSE_POOL2D_H_
#define SPX_SPARSE_POOL2D_H_

#include "spx_common.h"

namespace spx {

enum pool_mode { pool_avg, pool_max };

struct sparse_pool2d_config {
    static const unsigned n_max = 1, n_chan = 1;
    static const unsigned size = 2, height = 2, width = 2;  // input image height x width
    static const pool_mode mode = pool_avg;
    static const unsigned pixel_parallel = 1, channel_parallel = 1;
    static const bool inactive_zero = false;
    typedef ap_fixed<16, 6> accum_t;  // holds any sum of size^2 inputs (same fraction bits)
    typedef ap_fixed<32, 16> wide_t;  // signed, res_T's fraction bits: holds the rounded average
};

template <class data_T, class res_T, typename CONFIG_T> res_T pool_average(typename CONFIG_T::accum_t sum) {
    const int shift = frac_bits<res_T>() - frac_bits<data_T>();
    const long long den = CONFIG_T::size * CONFIG_T::size;
    // sum * 2^shift / den with the scale moved into the denominator when shift < 0
    const long long q = shift >= 0 ? divide_round<res_T::qmode>(shift_left(to_raw(sum), shift), den)
                                   : divide_round<res_T::qmode>(to_raw(sum), shift_left(den, -shift));
    return res_T(from_raw<typename CONFIG_T::wide_t>(q));
}

template <class data_T, class hash_T, class res_T, class hash_res_T, typename CONFIG_T>
void sparse_pool2d(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                   res_T res[CONFIG_T::n_max * CONFIG_T::n_chan], hash_res_T hash_res[CONFIG_T::n_max * 2]) {
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
            typename CONFIG_T::accum_t sum = from_raw<typename CONFIG_T::accum_t>(0);
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
            const res_T pooled = CONFIG_T::mode == pool_avg ? pool_average<data_T, res_T, CONFIG_T>(sum) : res_T(best);
            res[i * CONFIG_T::n_chan + c] = leader ? pooled : from_raw<res_T>(0);
        }
    }
}

}  // namespace spx

#endif
