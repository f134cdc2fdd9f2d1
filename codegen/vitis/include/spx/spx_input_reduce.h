// spx.input_reduce: keep the first n_max active pixels of a dense image, in raster order.
//
// Pixel p is active iff any channel is > threshold (channel0_only: iff channel 0 is, as sparsepixels),
// compared on raw integers: raw > threshold_raw (spx_ir.fixed.threshold_raw: equal to
// `value > threshold` for every input value, "always" and "never" included). Slot k holds the k-th
// active pixel: its features
// and hash (h+1, w+1); slots past the last active pixel stay empty (hash (0,0), features 0).
// Hardware form (as in the SparsePixels designs): n_max iterations, each a priority search for the
// first still-active pixel, which is then cleared; `pixel_parallel` slots are filled per iteration.
#ifndef SPX_INPUT_REDUCE_H_
#define SPX_INPUT_REDUCE_H_

#include "spx_common.h"

namespace spx {

struct input_reduce_config {
    static const unsigned height = 1, width = 1, n_chan = 1;
    static const unsigned n_max = 1;
    static const long long threshold_raw = 0;  // spx_ir.fixed.threshold_raw of the op's threshold
    static const unsigned pixel_parallel = 1;
    static const bool channel0_only = false;  // the `activity = "channel0"` variant
};

template <class data_T, class feat_T, class hash_T, typename CONFIG_T>
void input_reduce(const data_T x[CONFIG_T::height * CONFIG_T::width * CONFIG_T::n_chan],
                  feat_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], hash_T hash[CONFIG_T::n_max * 2]) {
    const unsigned n_pixels = CONFIG_T::height * CONFIG_T::width;

    bool active[n_pixels];
    #pragma HLS ARRAY_PARTITION variable=active complete
    // activity mask: any channel above the threshold
    for (unsigned p = 0; p < n_pixels; p++) {
        #pragma HLS UNROLL
        bool any = false;
        for (unsigned c = 0; c < (CONFIG_T::channel0_only ? 1 : CONFIG_T::n_chan); c++) {
            #pragma HLS UNROLL
            any = any || to_raw(x[p * CONFIG_T::n_chan + c]) > CONFIG_T::threshold_raw;
        }
        active[p] = any;
    }
    // slot k takes the first still-active pixel, which is then cleared from the mask
    for (unsigned k = 0; k < CONFIG_T::n_max; k++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        // the first still-active pixel (n_pixels if none is left): a min-reduction over the mask
        unsigned first = n_pixels;
        for (unsigned p = 0; p < n_pixels; p++) {
            #pragma HLS UNROLL
            const unsigned candidate = active[p] ? p : n_pixels;
            first = candidate < first ? candidate : first;
        }
        const bool found = first < n_pixels;
        if (found) active[first] = false;
        hash[2 * k] = found ? first / CONFIG_T::width + 1 : 0;
        hash[2 * k + 1] = found ? first % CONFIG_T::width + 1 : 0;
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            feat[k * CONFIG_T::n_chan + c] = found ? feat_T(x[first * CONFIG_T::n_chan + c]) : from_raw<feat_T>(0);
        }
    }
}

}  // namespace spx

#endif
