// spx.sparse_activation: an elementwise activation on the active slots; empty slots stay 0.
// An active pixel whose value becomes 0 stays active (the hash is unchanged).
#ifndef SPX_SPARSE_ACTIVATION_H_
#define SPX_SPARSE_ACTIVATION_H_

#include "spx_activation.h"

namespace spx {

struct sparse_activation_config {
    static const unsigned n_max = 1, n_chan = 1;
    static const unsigned pixel_parallel = 1;
    static const unsigned table_size = 1024;
    static const int half_range = 8;         // 8 for sigmoid, 4 for tanh
    static const long long zero_raw = 0;     // raw of fn(0) in res_T
    typedef ap_fixed<11, 5, AP_TRN, AP_SAT> index_t;
};

template <class data_T, class hash_T, class res_T, typename CONFIG_T>
void sparse_linear(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                   res_T res[CONFIG_T::n_max * CONFIG_T::n_chan]) {
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            const unsigned k = i * CONFIG_T::n_chan + c;
            res[k] = is_active(hash, i) ? res_T(feat[k]) : from_raw<res_T>(0);
        }
    }
}

template <class data_T, class hash_T, class res_T, typename CONFIG_T>
void sparse_relu(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                 res_T res[CONFIG_T::n_max * CONFIG_T::n_chan]) {
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
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
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            const unsigned k = i * CONFIG_T::n_chan + c;
            res[k] = is_active(hash, i) ? table_value<data_T, res_T, CONFIG_T, table_T>(feat[k], table) : from_raw<res_T>(0);
        }
    }
}

}  // namespace spx

#endif
