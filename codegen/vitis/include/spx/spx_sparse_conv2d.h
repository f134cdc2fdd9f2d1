// spx.sparse_conv2d: 'same', stride-1 convolution evaluated on the active slots only.
//
// For an active slot i and filter o:  acc = b[o];  for each active slot j inside i's kernel window
// (j ascending), for each input channel c (ascending):  acc += feat[j][c] * W[dh][dw][c][o];  then
// out[i][o] = acc converted to res_T. bias_nonzero (the `bias_mode = "nonzero"` variant, exact accum_t
// only): acc starts at 0 and the bias is added only if the sum of products is non-zero. Empty slots
// give 0. accum_t is the op's accumulator type (by default wide enough that no step rounds or overflows).
//
// Structure: loops i (slots, unrolled by pixel_parallel = PP), o (filters, filter_parallel = FP),
// j (slot pairs, fully unrolled), c (channels, channel_parallel = CP). One (i, o) output is a chain
// of n_max * n_chan select-multiply-adds; PP * FP outputs are computed at once, each with
// n_max * CP multipliers (all n_max * n_chan when CP = n_chan). Every product reads its weight at a
// hash-dependent tap: the weights (and biases) are partitioned completely, so each read is a
// Kh*Kw-way selection from registers/LUTs (the published kernels' offset if-chain), never a ROM port.
// Expected latency = II ~ (n_max/PP) * (n_filt/FP) * (2 + cycles of the n_max * n_chan chain,
// n_chan/CP sequential steps per pair when CP < n_chan); multipliers = PP * FP * n_max * CP.
#ifndef SPX_SPARSE_CONV2D_H_
#define SPX_SPARSE_CONV2D_H_

#include "spx_common.h"

namespace spx {

// Fields of a layer config: n_max, n_chan, n_filt, filt_height, filt_width, pixel_parallel,
// filter_parallel, channel_parallel (unsigned), bias_nonzero (bool); types weight_t, bias_t, accum_t.
struct sparse_conv2d_config {};

// weights [filt_height][filt_width][n_chan][n_filt] and biases [n_filt] are raw integers of
// CONFIG_T::weight_t and CONFIG_T::bias_t.
template <class data_T, class hash_T, class res_T, typename CONFIG_T, class weight_raw_T, class bias_raw_T>
void sparse_conv2d(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                   res_T res[CONFIG_T::n_max * CONFIG_T::n_filt],
                   const weight_raw_T weights[CONFIG_T::filt_height * CONFIG_T::filt_width * CONFIG_T::n_chan *
                                              CONFIG_T::n_filt],
                   const bias_raw_T biases[CONFIG_T::n_filt]) {
    SPX_CHECK_FACTOR(CONFIG_T::n_max, CONFIG_T::pixel_parallel);
    SPX_CHECK_FACTOR(CONFIG_T::n_filt, CONFIG_T::filter_parallel);
    SPX_CHECK_FACTOR(CONFIG_T::n_chan, CONFIG_T::channel_parallel);
    #pragma HLS ARRAY_PARTITION variable=weights complete
    #pragma HLS ARRAY_PARTITION variable=biases complete
    typedef typename CONFIG_T::weight_t weight_t;
    const int pad_h = (CONFIG_T::filt_height - 1) / 2, pad_w = (CONFIG_T::filt_width - 1) / 2;
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        const int hi = hash[2 * i], wi = hash[2 * i + 1];
        for (unsigned o = 0; o < CONFIG_T::n_filt; o++) {
            #pragma HLS UNROLL factor=CONFIG_T::filter_parallel
            const typename CONFIG_T::bias_t bias = from_raw<typename CONFIG_T::bias_t>(biases[o]);
            typename CONFIG_T::accum_t acc = from_raw<typename CONFIG_T::accum_t>(0);
            if (!CONFIG_T::bias_nonzero) acc = bias;
            for (unsigned j = 0; j < CONFIG_T::n_max; j++) {
                #pragma HLS UNROLL
                const int dh = int(hash[2 * j]) - hi + pad_h, dw = int(hash[2 * j + 1]) - wi + pad_w;
                const bool inside = dh >= 0 && dh < int(CONFIG_T::filt_height) && dw >= 0 && dw < int(CONFIG_T::filt_width);
                if (!is_active(hash, j) || !inside) continue;
                const unsigned tap = dh * CONFIG_T::filt_width + dw;
                for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                    #pragma HLS UNROLL factor=CONFIG_T::channel_parallel
                    const weight_t w = from_raw<weight_t>(weights[(tap * CONFIG_T::n_chan + c) * CONFIG_T::n_filt + o]);
                    acc += feat[j * CONFIG_T::n_chan + c] * w;
                }
            }
            if (CONFIG_T::bias_nonzero && acc != 0) acc += bias;
            res[i * CONFIG_T::n_filt + o] = is_active(hash, i) ? res_T(acc) : from_raw<res_T>(0);
        }
    }
}

}  // namespace spx

#endif
