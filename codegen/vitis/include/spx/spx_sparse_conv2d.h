// spx.sparse_conv2d: 'same', stride-1 convolution evaluated on the active slots only.
//
// For an active slot i and filter o:  acc = b[o];  for each active slot j inside i's kernel window
// (j ascending), for each input channel c (ascending):  acc += feat[j][c] * W[dh][dw][c][o];  then
// out[i][o] = acc converted to res_T. bias_nonzero (the `bias_mode = "nonzero"` variant, exact accum_t
// only): acc starts at 0 and the bias is added only if the sum of products is non-zero. Empty slots give 0. accum_t is the op's accumulator type
// (by default wide enough that no step rounds or overflows). Cost: n_max^2 * n_chan * n_filt
// multiplications, independent of the kernel size; the loops unroll by the op's parallel factors.
#ifndef SPX_SPARSE_CONV2D_H_
#define SPX_SPARSE_CONV2D_H_

#include "spx_common.h"

namespace spx {

struct sparse_conv2d_config {
    static const unsigned n_max = 1, n_chan = 1, n_filt = 1;
    static const unsigned filt_height = 1, filt_width = 1;
    static const unsigned pixel_parallel = 1, filter_parallel = 1, channel_parallel = 1;
    static const bool bias_nonzero = false;
    typedef ap_fixed<16, 6> weight_t;
    typedef ap_fixed<16, 6> bias_t;
    typedef ap_fixed<32, 16> accum_t;
};

// weights [filt_height][filt_width][n_chan][n_filt] and biases [n_filt] are raw integers of
// CONFIG_T::weight_t and CONFIG_T::bias_t.
template <class data_T, class hash_T, class res_T, typename CONFIG_T, class weight_raw_T, class bias_raw_T>
void sparse_conv2d(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                   res_T res[CONFIG_T::n_max * CONFIG_T::n_filt],
                   const weight_raw_T weights[CONFIG_T::filt_height * CONFIG_T::filt_width * CONFIG_T::n_chan *
                                              CONFIG_T::n_filt],
                   const bias_raw_T biases[CONFIG_T::n_filt]) {
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
