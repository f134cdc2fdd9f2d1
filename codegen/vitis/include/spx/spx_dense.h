// spx.dense: res = x @ W + b.
//
// Per output o:  acc = b[o];  for i ascending:  acc += x[i] * W[i][o];  res[o] = acc converted to
// res_T. The n_in * n_out products run in reuse_factor pipelined steps of n_in * n_out / reuse_factor
// multiplications each (hls4ml's reuse factor); the step order keeps i ascending for every output,
// so an explicit (narrow) accumulator type rounds and saturates exactly as the reference does.
//
// Structure: the step loop pipelined (II 1), each step block_factor multipliers reading the weights
// reshaped cyclically by block_factor (one wide word per step); accumulators and biases partitioned.
// Expected latency ~ reuse_factor - 1 + adder-tree depth, II = reuse_factor. The index arithmetic
// divides the step counter by the constant n_out only. (C simulation runs an equivalent loop that
// skips zero inputs, see below; HLS synthesizes the reuse loop.)
#ifndef SPX_DENSE_H_
#define SPX_DENSE_H_

#include "spx_common.h"

namespace spx {

// Fields of a layer config: n_in, n_out, reuse_factor, block_factor (n_in * n_out / reuse_factor:
// multiplications per step) (unsigned); types weight_t, bias_t, accum_t.
struct dense_config {};

// weights [n_in][n_out] and biases [n_out] are raw integers of CONFIG_T::weight_t and bias_t.
template <class data_T, class res_T, typename CONFIG_T, class weight_raw_T, class bias_raw_T>
void dense(const data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
           const weight_raw_T weights[CONFIG_T::n_in * CONFIG_T::n_out], const bias_raw_T biases[CONFIG_T::n_out]) {
    SPX_CHECK_FACTOR(CONFIG_T::n_in * CONFIG_T::n_out, CONFIG_T::reuse_factor);
    static_assert(CONFIG_T::block_factor * CONFIG_T::reuse_factor == CONFIG_T::n_in * CONFIG_T::n_out, "block_factor");
    #pragma HLS ARRAY_RESHAPE variable=weights cyclic factor=CONFIG_T::block_factor
    #pragma HLS ARRAY_PARTITION variable=biases complete
    typename CONFIG_T::accum_t acc[CONFIG_T::n_out];
    #pragma HLS ARRAY_PARTITION variable=acc complete
    for (unsigned o = 0; o < CONFIG_T::n_out; o++) {
        #pragma HLS UNROLL
        acc[o] = from_raw<typename CONFIG_T::bias_t>(biases[o]);
    }
#if defined(__SYNTHESIS__) || defined(SPX_CSIM_AS_SYNTHESIZED)
    for (unsigned r = 0; r < CONFIG_T::reuse_factor; r++) {
        #pragma HLS PIPELINE II=1
        for (unsigned k = 0; k < CONFIG_T::block_factor; k++) {
            #pragma HLS UNROLL
            const unsigned w = r * CONFIG_T::block_factor + k;  // = i * n_out + o
            acc[w % CONFIG_T::n_out] += data[w / CONFIG_T::n_out] * from_raw<typename CONFIG_T::weight_t>(weights[w]);
        }
    }
#else
    // C simulation only: the same terms in the same order per output (i ascending), skipping zero
    // inputs (flattened sparse images are mostly zeros): acc + 0 is acc, exactly, in any accum_t.
    // tests/test_vitis_project.py runs the synthesized loop above too (-DSPX_CSIM_AS_SYNTHESIZED).
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        if (data[i] == 0) continue;
        for (unsigned o = 0; o < CONFIG_T::n_out; o++) {
            acc[o] += data[i] * from_raw<typename CONFIG_T::weight_t>(weights[i * CONFIG_T::n_out + o]);
        }
    }
#endif
    for (unsigned o = 0; o < CONFIG_T::n_out; o++) {
        #pragma HLS UNROLL
        res[o] = acc[o];
    }
}

}  // namespace spx

#endif
