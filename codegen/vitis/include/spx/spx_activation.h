// spx.activation: relu, linear, sigmoid / tanh (tables), softmax (tables) on dense arrays.
//
// Table contents come from spx_ir.tables (computed once in Python, emitted as raw integers); the
// index rules here are that module's integer formulas, so every target agrees bit for bit.
//
// Structure: every loop fully unrolled (n_in elements at once). relu/linear: a compare and a
// conversion per element, 0 cycles. sigmoid/tanh: one table read per element; the table is
// partitioned completely (a LUT ROM every element reads at once), ~2 cycles. softmax: max tree,
// n_in exp-table reads (partitioned), a sum, one inverse-table read, n_in multiplies of
// exp_t x inv_t bits (exact widths, no 64-bit operands), a shift by at most kmax and the decision
// rule (a compare-select per element); ~4 cycles.
#ifndef SPX_ACTIVATION_H_
#define SPX_ACTIVATION_H_

#include "spx_common.h"

namespace spx {

// ---------------------------------------------------------------- elementwise, one value

template <class data_T, class res_T> res_T relu_value(data_T x) { return x > 0 ? res_T(x) : from_raw<res_T>(0); }

// Sigmoid / tanh: table over [-R, R) with CONFIG_T::table_size bins (R = CONFIG_T::half_range).
// x is first converted to CONFIG_T::index_t (narrow, TRN, SAT: spx_ir.tables.index_type), then
// idx = clamp(floor((v + R) * size / 2R), 0, size-1); the table holds raw integers of res_T.
// x == 0 gives CONFIG_T::zero_raw (fn(0)), which with the table's sign-preserving entries keeps
// sigmoid > 1/2 for every x > 0 and < 1/2 for every x < 0.
template <class data_T, class res_T, typename CONFIG_T, class table_T>
res_T table_value(data_T x, const table_T table[CONFIG_T::table_size]) {
    typedef typename CONFIG_T::index_t index_t;
    const int shift = ilog2(CONFIG_T::table_size) - ilog2(2 * CONFIG_T::half_range);
    const index_t v = x;
    const long long idx = scaled_floor<index_t>(to_raw(v), CONFIG_T::half_range, shift);
    return from_raw<res_T>(x == 0 ? CONFIG_T::zero_raw : (long long)table[clamp(idx, 0, CONFIG_T::table_size - 1)]);
}

// ---------------------------------------------------------------- dense arrays

// Fields of a layer config: n_in (unsigned); tables also table_size (unsigned), half_range (int:
// 8 for sigmoid, 4 for tanh), zero_raw (long long: raw of fn(0) in res_T) and type index_t (the
// narrow TRN/SAT type x is converted to before indexing, spx_ir.tables.index_type).
struct activation_config {};

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
    #pragma HLS ARRAY_PARTITION variable=table complete
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        res[i] = table_value<data_T, res_T, CONFIG_T>(data[i], table);
    }
}

// ---------------------------------------------------------------- softmax

// Fields of a layer config: n_in, exp_size, inv_size, kmax (floor(log2(n_in))) (unsigned), exp_range
// (int), out_min_raw (long long: smallest raw of res_T); types exp_t, inv_t (the tables' entries),
// prod_t (exp_t * inv_t with kmax more fraction bits), diff_t (max(x) - x, exactly:
// spx_ir.tables.softmax_diff_type) and index_t (narrow TRN/SAT exp-index type, index_type).
struct softmax_config {};

// p[k] = exp(x[k] - max x) / sum: exp by table, 1/sum by a mantissa-normalised table, then one
// conversion into res_T, then the decision rule (spx_ir.tables, "Softmax", steps 1-6). All steps
// are exact. exp_table and inv_table hold raw integers of CONFIG_T::exp_t and inv_t.
template <class data_T, class res_T, typename CONFIG_T, class exp_table_T, class inv_table_T>
void softmax(const data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in],
             const exp_table_T exp_table[CONFIG_T::exp_size], const inv_table_T inv_table[CONFIG_T::inv_size]) {
    #pragma HLS ARRAY_PARTITION variable=exp_table complete
    typedef typename CONFIG_T::index_t index_t;
    typedef ap_uint<CONFIG_T::exp_t::width> e_t;
    typedef ap_uint<CONFIG_T::exp_t::width + CONFIG_T::inv_t::width + CONFIG_T::kmax> p_t;
    const int exp_shift = ilog2(CONFIG_T::exp_size) - ilog2(CONFIG_T::exp_range);
    const int fs = frac_bits<typename CONFIG_T::exp_t>(), si = ilog2(CONFIG_T::inv_size);

    data_T max_v = data[0];
    for (unsigned k = 1; k < CONFIG_T::n_in; k++) {
        #pragma HLS UNROLL
        if (data[k] > max_v) max_v = data[k];
    }
    long long e[CONFIG_T::n_in];
    bool lower[CONFIG_T::n_in];  // below the maximum
    #pragma HLS ARRAY_PARTITION variable=e complete
    #pragma HLS ARRAY_PARTITION variable=lower complete
    long long sum = 0;
    for (unsigned k = 0; k < CONFIG_T::n_in; k++) {
        #pragma HLS UNROLL
        const typename CONFIG_T::diff_t u = max_v - data[k];
        const index_t v = u;
        const long long idx = scaled_floor<index_t>(to_raw(v), 0, exp_shift);
        e[k] = exp_table[idx < CONFIG_T::exp_size - 1 ? idx : CONFIG_T::exp_size - 1];
        lower[k] = u != 0;
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
    long long top = 0;  // raw result of the maxima
    for (unsigned k = 0; k < CONFIG_T::n_in; k++) {
        #pragma HLS UNROLL
        const p_t product = p_t(e_t(e[k])) * ap_uint<CONFIG_T::inv_t::width>(inv);
        typename CONFIG_T::prod_t p;  // same width and signedness as p_t: the raw bits, no conversion
        p.V = (product << (CONFIG_T::kmax - ks)).V;
        res[k] = p;
        if (!lower[k]) top = to_raw(res[k]);
    }
    // decision rule: every element below the maximum ends strictly below the maxima's result
    for (unsigned k = 0; k < CONFIG_T::n_in; k++) {
        #pragma HLS UNROLL
        if (lower[k] && to_raw(res[k]) >= top && top > CONFIG_T::out_min_raw) res[k] = from_raw<res_T>(top - 1);
    }
}

}  // namespace spx

#endif
