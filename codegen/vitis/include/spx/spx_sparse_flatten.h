// spx.sparse_flatten: scatter the active slots into the flattened dense image.
// res = 0, then res[((h-1)*width + (w-1))*n_chan + c] = feat[i][c] for each active slot i (equals a
// Keras Flatten of the masked dense tensor). A hash outside the image is ignored, never written.
//
// Structure: the output cleared at once, then the slot loop unrolled by pixel_parallel = PP, each
// slot writing its n_chan features at a hash-dependent position (a decoder per output element).
// Expected latency = II ~ 2 + (n_max/PP) * (cycles of PP chained slot writes).
#ifndef SPX_SPARSE_FLATTEN_H_
#define SPX_SPARSE_FLATTEN_H_

#include "spx_common.h"

namespace spx {

// Fields of a layer config: n_max, n_chan, height, width, pixel_parallel (unsigned).
struct sparse_flatten_config {};

template <class data_T, class hash_T, class res_T, typename CONFIG_T>
void sparse_flatten(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                    res_T res[CONFIG_T::height * CONFIG_T::width * CONFIG_T::n_chan]) {
    SPX_CHECK_FACTOR(CONFIG_T::n_max, CONFIG_T::pixel_parallel);
    for (unsigned k = 0; k < CONFIG_T::height * CONFIG_T::width * CONFIG_T::n_chan; k++) {
        #pragma HLS UNROLL
        res[k] = from_raw<res_T>(0);
    }
    for (unsigned i = 0; i < CONFIG_T::n_max; i++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        const unsigned h = hash[2 * i], w = hash[2 * i + 1];
        if (!is_active(hash, i) || h > CONFIG_T::height || w > CONFIG_T::width) continue;
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            res[((h - 1) * CONFIG_T::width + (w - 1)) * CONFIG_T::n_chan + c] = feat[i * CONFIG_T::n_chan + c];
        }
    }
}

}  // namespace spx

#endif
