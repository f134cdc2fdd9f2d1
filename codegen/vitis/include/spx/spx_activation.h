// spx.activation: relu, linear, sigmoid / tanh (tables), softmax (tables) on dense arrays.
//
// Table contents come from spx_ir.tables (computed once in Python, emitted as raw integers); the
// index rules here are that module's integer formulas, so every target agrees bit for bit.
#ifndef SPX_ACTIVATION_H_
#define SPX_ACTIVATION_H_

#include "spx_common.h"

namespace spx {

// ---------------------------------------------------------------- elementwise, one value

template <class data_T, class res_T> res_T relu_value(data_T x) { return x > 0 ? res_T(x) : from_raw<res_T>(0); }

// Sigmoid / tanh: table over [-R, R) with CONFIG_T::table_size bins (R = CONFIG_T::half_range):
// idx = clamp(floor((x + R) * size / 2R), 0, size-1); the table holds raw integers of res_T.
template <class data_T, class res_T, typename CONFIG_T, class table_T>
res_T table_value(data_T x, const table_T table[CONFIG_T::table_size]) {
    const int shift = ilog2(CONFIG_T::table_size) - ilog2(2 * CONFIG_T::half_range);
    const long long idx = scaled_floor<data_T>(to_raw(x), CONFIG_T::half_range, shift);
    return from_raw<res_T>(table[clamp(idx, 0, CONFIG_T::table_size - 1)]);
}

// ---------------------------------------------------------------- dense arrays

struct activation_config {
    static const unsigned n_in = 1;
    static const unsigned table_size = 1024;
    static const int half_range = 8;  // 8 for sigmoid, 4 for tanh
};

template <class data_T, class res_T, typename CONFIG_T>
void linear(const data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in]) {
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        res[i] = data[i];
    }
}

template <class data_T, class res_T, typename CONFIG_T>
void relu(const data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in]) {
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        res[i] = relu_value<data_T, res_T>(data[i]);
    }
}

template <class data_T, class res_T, typename CONFIG_T, class table_T>
void table_activation(const data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in],
                      const table_T table[CONFIG_T::table_size]) {
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        res[i] = table_value<data_T, res_T, CONFIG_T>(data[i], table);
    }
}

// ---------------------------------------------------------------- softmax

struct softmax_config {
    static const unsigned n_in = 1;
    static const unsigned exp_size = 2048, inv_size = 1024;
    static const int exp_range = 16;
    static const unsigned kmax = 0;       // floor(log2(n_in))
    typedef ap_ufixed<18, 1, AP_RND> exp_t;
    typedef ap_ufixed<18, 1, AP_RND> inv_t;
    typedef ap_ufixed<36, 2> prod_t;      // exp_t * inv_t with kmax more fraction bits
};

// p[k] = exp(x[k] - max x) / sum: exp by table, 1/sum by a mantissa-normalised table, then one
// conversion into res_T (spx_ir.tables, "Softmax"). All steps are exact integer arithmetic.
// exp_table and inv_table hold raw integers of CONFIG_T::exp_t and inv_t.
template <class data_T, class res_T, typename CONFIG_T, class exp_table_T, class inv_table_T>
void softmax(const data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in],
             const exp_table_T exp_table[CONFIG_T::exp_size], const inv_table_T inv_table[CONFIG_T::inv_size]) {
    const int exp_shift = ilog2(CONFIG_T::exp_size) - ilog2(CONFIG_T::exp_range);
    const int fs = frac_bits<typename CONFIG_T::exp_t>(), si = ilog2(CONFIG_T::inv_size);

    long long max_raw = to_raw(data[0]);
    for (unsigned k = 1; k < CONFIG_T::n_in; k++) {
        #pragma HLS UNROLL
        if (to_raw(data[k]) > max_raw) max_raw = to_raw(data[k]);
    }
    long long e[CONFIG_T::n_in];
    #pragma HLS ARRAY_PARTITION variable=e complete
    long long sum = 0;
    for (unsigned k = 0; k < CONFIG_T::n_in; k++) {
        #pragma HLS UNROLL
        const long long idx = scaled_floor<data_T>(max_raw - to_raw(data[k]), 0, exp_shift);
        e[k] = exp_table[idx < CONFIG_T::exp_size - 1 ? idx : CONFIG_T::exp_size - 1];
        sum += e[k];
    }
    int ks = 0;  // floor(log2(sum)), sum in exp_t's scale
    for (unsigned j = 1; j <= CONFIG_T::kmax; j++) {
        #pragma HLS UNROLL
        ks += sum >= (1LL << (fs + j));
    }
    const long long base = 1LL << (fs + ks);
    const long long ii = clamp(shift_left(sum - base, si - fs - ks), 0, CONFIG_T::inv_size - 1);
    const long long inv = inv_table[ii];
    for (unsigned k = 0; k < CONFIG_T::n_in; k++) {
        #pragma HLS UNROLL
        res[k] = from_raw<typename CONFIG_T::prod_t>(e[k] * inv * (1LL << (CONFIG_T::kmax - ks)));
    }
}

}  // namespace spx

#endif
