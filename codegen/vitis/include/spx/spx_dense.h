// spx.dense: res = x @ W + b.
//
// Per output o:  acc = b[o];  for i ascending:  acc += x[i] * W[i][o];  res[o] = acc converted to
// res_T. The n_in * n_out products run in reuse_factor pipelined steps of n_in * n_out / reuse_factor
// multiplications each (hls4ml's reuse factor); the step order keeps i ascending for every output,
// so an explicit (narrow) accumulator type rounds and saturates exactly as the reference does.
#ifndef SPX_DENSE_H_
#define SPX_DENSE_H_

#include "spx_common.h"

namespace spx {

struct dense_config {
    static const unsigned n_in = 1, n_out = 1;
    static const unsigned reuse_factor = 1;
    static const unsigned block_factor = n_in * n_out / reuse_factor;  // multiplications per step
    typedef ap_fixed<16, 6> weight_t;
    typedef ap_fixed<16, 6> bias_t;
    typedef ap_fixed<32, 16> accum_t;
};

// weights [n_in][n_out] and biases [n_out] are raw integers of CONFIG_T::weight_t and bias_t.
template <class data_T, class res_T, typename CONFIG_T, class weight_raw_T, class bias_raw_T>
void dense(const data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
           const weight_raw_T weights[CONFIG_T::n_in * CONFIG_T::n_out], const bias_raw_T biases[CONFIG_T::n_out]) {
    #pragma HLS ARRAY_RESHAPE variable=weights cyclic factor=CONFIG_T::block_factor
    typename CONFIG_T::accum_t acc[CONFIG_T::n_out];
    #pragma HLS ARRAY_PARTITION variable=acc complete
    for (unsigned o = 0; o < CONFIG_T::n_out; o++) {
        #pragma HLS UNROLL
        acc[o] = from_raw<typename CONFIG_T::bias_t>(biases[o]);
    }
    for (unsigned r = 0; r < CONFIG_T::reuse_factor; r++) {
        #pragma HLS PIPELINE II=1
        for (unsigned k = 0; k < CONFIG_T::block_factor; k++) {
            #pragma HLS UNROLL
            const unsigned w = r * CONFIG_T::block_factor + k;  // = i * n_out + o
            acc[w % CONFIG_T::n_out] += data[w / CONFIG_T::n_out] * from_raw<typename CONFIG_T::weight_t>(weights[w]);
        }
    }
    for (unsigned o = 0; o < CONFIG_T::n_out; o++) {
        #pragma HLS UNROLL
        res[o] = acc[o];
    }
}

}  // namespace spx

#endif
