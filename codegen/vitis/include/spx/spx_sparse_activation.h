// spx.sparse_activation: an elementwise activation on the active slots; empty slots stay 0.
// An active pixel whose value becomes 0 stays active (the hash is unchanged).
//
// Structure: the slot loop unrolled by pixel_parallel = PP, the channel loop fully unrolled, so
// PP * n_chan elements per step. relu/linear: a compare and a conversion each (0 cycles when PP =
// n_max). sigmoid/tanh: one table read per element; the table is partitioned completely (a LUT
// ROM read by every element at once). Expected latency = II ~ (n_max/PP) * body (0 for relu/linear,
// 2 for tables; II 1 when PP = n_max).
#ifndef SPX_SPARSE_ACTIVATION_H_
#define SPX_SPARSE_ACTIVATION_H_

#include "spx_activation.h"

namespace spx {

// Fields of a layer config: n_max, n_chan, pixel_parallel (unsigned); tables also table_size
// (unsigned), half_range (int: 8 for sigmoid, 4 for tanh), zero_raw (long long) and type index_t
// (see spx_activation.h, table_value).
struct sparse_activation_config {};

template <class data_T, class hash_T, class res_T, typename CONFIG_T>
void sparse_linear(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                   res_T res[CONFIG_T::n_max * CONFIG_T::n_chan]) {
    SPX_CHECK_FACTOR(CONFIG_T::n_max, CONFIG_T::pixel_parallel);
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            const unsigned k = i * CONFIG_T::n_chan + c;
            res[k] = is_active(hash, i) ? res_T(feat[k]) : from_raw<res_T>(0);
        }
    }
}

template <class data_T, class hash_T, class res_T, typename CONFIG_T>
void sparse_relu(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                 res_T res[CONFIG_T::n_max * CONFIG_T::n_chan]) {
    SPX_CHECK_FACTOR(CONFIG_T::n_max, CONFIG_T::pixel_parallel);
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            const unsigned k = i * CONFIG_T::n_chan + c;
            res[k] = is_active(hash, i) ? relu_value<data_T, res_T>(feat[k]) : from_raw<res_T>(0);
        }
    }
}

// sigmoid / tanh by table (see spx_activation.h, table_value).
template <class data_T, class hash_T, class res_T, typename CONFIG_T, class table_T>
void sparse_table_activation(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan],
                             const hash_T hash[CONFIG_T::n_max * 2], res_T res[CONFIG_T::n_max * CONFIG_T::n_chan],
                             const table_T table[CONFIG_T::table_size]) {
    #pragma HLS ARRAY_PARTITION variable=table complete
    SPX_CHECK_FACTOR(CONFIG_T::n_max, CONFIG_T::pixel_parallel);
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            const unsigned k = i * CONFIG_T::n_chan + c;
            res[k] = is_active(hash, i) ? table_value<data_T, res_T, CONFIG_T, table_T>(feat[k], table) : from_raw<res_T>(0);
        }
    }
}

}  // namespace spx

#endif
